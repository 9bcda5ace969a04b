//! The crate's one error type, [`RagError`]: what indexing, retrieval, encoding and grounded generation fail with.

use std::path::PathBuf;

/// Everything `temper-rag` can fail with; each message names the file, the field or the parameter.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not what it should be (a corrupt index, a query file with a bad line).
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the whole file is at fault).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A parameter is out of range (chunk size, k1, b, k).
    #[error("invalid parameter `{name}`: {message}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Why it is rejected.
        message: String,
    },
    /// A file of the corpus was skipped (binary, not UTF-8, unreadable).
    #[error("{path}: skipped: {reason}")]
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A chunk id that the index does not hold.
    #[error("unknown chunk id `{0}`")]
    UnknownChunk(String),
    /// The index lacks what the request needs (no embeddings for a dense query, a dimension mismatch).
    #[error("index: {0}")]
    Index(String),
    /// The sentence encoder failed (weights, tokenizer, shapes).
    #[error("encoder: {0}")]
    Encoder(String),
    /// The chat back end failed during grounded generation.
    #[error(transparent)]
    Chat(#[from] temper_chat::ChatError),
}

/// `Result` with [`RagError`].
pub type Result<T, E = RagError> = std::result::Result<T, E>;

/// A closure that turns an `io::Error` into [`RagError::Io`] for `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RagError + '_ {
    move |source| RagError::Io {
        path: path.to_path_buf(),
        source,
    }
}
