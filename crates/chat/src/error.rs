//! The crate's one error type, [`ChatError`]: what a chat back end can fail with.

use std::path::PathBuf;

/// Everything a chat back end can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A file (a cache entry, a config) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The back end is misconfigured (a missing endpoint, an invalid parameter).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An HTTP request failed for good (after retries, or with a non-retryable status).
    #[error("POST {url}: {message} (after {attempts} attempt(s))")]
    Http {
        /// The URL requested.
        url: String,
        /// Status or transport error.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The endpoint answered 2xx but the body is not an OpenAI chat completion.
    #[error("POST {url}: malformed reply: {message}; body starts {body:?}")]
    MalformedReply {
        /// The URL requested.
        url: String,
        /// What is missing or wrong.
        message: String,
        /// The first 200 characters of the body.
        body: String,
    },
    /// A back end failed for a reason of its own (the local model, a tokenizer without a chat template).
    #[error("chat back end: {0}")]
    Backend(String),
}

/// Short-hand for `Result<T, ChatError>`.
pub type Result<T, E = ChatError> = std::result::Result<T, E>;
