//! The one error type of `temper-models`: every message says what failed and where.

use std::path::PathBuf;

/// Errors raised while loading, configuring or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` is not valid or misses a field.
    #[error("invalid model config {path}: {message}")]
    Config {
        /// The config file (or GGUF file for metadata).
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A weight is missing, has the wrong shape or an unsupported dtype.
    #[error("weight `{name}` in {path}: {message}")]
    Weight {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor name as stored in the checkpoint.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The GGUF reader failed.
    #[error(transparent)]
    Gguf(#[from] temper_gguf::GgufError),
    /// The tokenizer failed.
    #[cfg(feature = "tokenizer")]
    #[error(transparent)]
    Tokenizer(#[from] temper_tokenizer::TokenizerError),
    /// A device name was not recognised or its backend is not compiled in.
    #[error("device `{0}`: {1}")]
    Device(String, String),
    /// Generation was asked for something impossible.
    #[error("generation: {0}")]
    Generation(String),
    /// A model directory or file has an unknown layout.
    #[error("{path}: {message}")]
    Layout {
        /// The path that was given.
        path: PathBuf,
        /// What was expected there.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
