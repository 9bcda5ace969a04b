//! One entry point for "a model on disk": a GGUF file or an HF folder, with its tokenizer when it has one.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use temper_tokenizer::Tokenizer;

use crate::error::{ModelError, Result};
use crate::llama::Llama;
use crate::loader::{load_gguf, load_hf_dir};

/// A model with its tokenizer.
pub struct LoadedModel {
    /// The network.
    pub model: Llama,
    /// The tokenizer (from the GGUF vocabulary or `tokenizer.json`), if the checkpoint carries one.
    pub tokenizer: Option<Tokenizer>,
    /// Where it was loaded from.
    pub source: PathBuf,
}

/// Loads `path`: a `.gguf` file, or a folder with `config.json` + safetensors (+ optional `tokenizer.json`).
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(ModelError::Layout {
            path: path.to_path_buf(),
            message: "no such file or folder".into(),
        });
    }
    if path.is_file() {
        let gguf = temper_gguf::GgufFile::open(path)?;
        let model = load_gguf(&gguf, path, device)?;
        let tokenizer = Some(Tokenizer::from_gguf(&gguf)?);
        return Ok(LoadedModel {
            model,
            tokenizer,
            source: path.to_path_buf(),
        });
    }
    if path.join("config.json").is_file() {
        let model = load_hf_dir(path, device)?;
        let tok_path = path.join("tokenizer.json");
        let tokenizer = if tok_path.is_file() {
            Some(Tokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        return Ok(LoadedModel {
            model,
            tokenizer,
            source: path.to_path_buf(),
        });
    }
    Err(ModelError::Layout {
        path: path.to_path_buf(),
        message: "expected a .gguf file or a folder with config.json and model.safetensors".into(),
    })
}
