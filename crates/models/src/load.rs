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
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        check_vocab(&tokenizer, &model, path)?;
        let tokenizer = Some(tokenizer);
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
            let tokenizer = Tokenizer::from_file(&tok_path)?;
            check_vocab(&tokenizer, &model, &tok_path)?;
            Some(tokenizer)
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

/// A tokenizer whose largest id is outside the model's embedding table belongs to another model: refuse it here,
/// before a token id indexes past the table.
fn check_vocab(tokenizer: &Tokenizer, model: &Llama, path: &Path) -> Result<()> {
    let ids = tokenizer
        .inner()
        .get_vocab(true)
        .into_values()
        .max()
        .map_or(0, |m| m as usize + 1);
    let rows = model.config().vocab_size;
    if ids > rows {
        return Err(ModelError::Layout {
            path: path.to_path_buf(),
            message: format!(
                "the tokenizer has token ids up to {} but the model's vocab_size is {rows}: they do not belong together",
                ids - 1
            ),
        });
    }
    Ok(())
}
