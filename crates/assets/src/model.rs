//! [`resolve_model`]: what a `--model` argument names — a path to a model on disk (a `.gguf` file or an HF
//! folder), or the name of an asset holding one, fetched on first use.

use std::path::{Path, PathBuf};

use crate::cache::{Cache, Fetched};
use crate::catalog::find;
use crate::error::AssetError;
use crate::progress::Progress;

impl Cache {
    /// Resolves `spec` against this cache: an existing path is returned as it is; otherwise `spec` must be an
    /// asset name, fetched if the cache does not hold it yet, and the result is its model file (a `.gguf` file
    /// or a folder with `config.json`).
    pub fn resolve_model(&self, spec: &str, progress: &mut dyn Progress) -> Result<PathBuf, AssetError> {
        let path = Path::new(spec);
        if path.exists() {
            return Ok(path.to_path_buf());
        }
        let asset = find(spec).map_err(|e| AssetError::NotAModel {
            spec: spec.to_string(),
            reason: e.to_string(),
        })?;
        let fetched = match self.cached(asset) {
            Some(f) => f,
            None => self.fetch(asset, progress)?,
        };
        model_in(&fetched).ok_or_else(|| AssetError::NoModelFile {
            asset: asset.name.to_string(),
        })
    }
}

/// [`Cache::resolve_model`] on the cache in [`crate::home`].
pub fn resolve_model(spec: &str, progress: &mut dyn Progress) -> Result<PathBuf, AssetError> {
    Cache::default().resolve_model(spec, progress)
}

/// The first file of `fetched` that is a model: a `.gguf` file or a folder with `config.json`.
fn model_in(fetched: &Fetched) -> Option<PathBuf> {
    fetched
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "gguf") || f.join("config.json").is_file())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn paths_pass_through_unknown_names_are_explained_and_model_files_are_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = Cache::new(dir.path());
        let spec = dir.path().to_string_lossy().into_owned();
        assert_eq!(cache.resolve_model(&spec, &mut NoProgress).expect("a path"), dir.path());
        let e = cache.resolve_model("no-such-model", &mut NoProgress).expect_err("unknown").to_string();
        assert!(
            e.starts_with("`no-such-model` is neither a path nor a known asset: unknown asset `no-such-model`; known assets: "),
            "{e}"
        );
        assert!(e.contains("smollm2"), "{e}");

        let hf = dir.path().join("hf");
        std::fs::create_dir_all(&hf).expect("mkdir");
        let tok = dir.path().join("tokenizer.json");
        std::fs::write(&tok, "{}").expect("write");
        let fetched = |files: Vec<PathBuf>| Fetched {
            dir: dir.path().to_path_buf(),
            files,
            already_cached: true,
        };
        assert_eq!(model_in(&fetched(vec![tok.clone(), hf.clone()])), None);
        std::fs::write(hf.join("config.json"), "{}").expect("write");
        assert_eq!(model_in(&fetched(vec![tok.clone(), hf.clone()])), Some(hf));
        let gguf = dir.path().join("m.gguf");
        assert_eq!(model_in(&fetched(vec![tok, gguf.clone()])), Some(gguf));
        assert_eq!(
            AssetError::NoModelFile { asset: "gsm8k".into() }.to_string(),
            "asset `gsm8k` holds no model file"
        );
    }
}
