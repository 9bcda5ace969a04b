//! The crate's one error type, [`JudgeError`]: every message says what went wrong and where.

use std::path::PathBuf;

use temper_chat::ChatError;

/// Everything that can go wrong in `temper-judges`.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSONL line did not parse or had a field of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong with the line.
        message: String,
    },
    /// A data file parsed as JSON but does not have the expected shape (the message names the field).
    #[error("{path}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong, and where in the file.
        message: String,
    },
    /// Inputs to a metric or a table have inconsistent shapes.
    #[error("shape mismatch in {what}: {detail}")]
    Shape {
        /// The metric or function that was called.
        what: &'static str,
        /// Which lengths disagree.
        detail: String,
    },
    /// A metric needs numeric labels but got a string.
    #[error("{what} needs numeric labels, found {label:?}")]
    NotNumeric {
        /// The metric.
        what: &'static str,
        /// The offending label.
        label: String,
    },
    /// A prompt template refers to a field the item does not provide.
    #[error("prompt template `{template}` needs field `{field}`, which the item (id {id}) lacks")]
    MissingField {
        /// Template name.
        template: String,
        /// Placeholder name, e.g. `ref_answer_1`.
        field: String,
        /// Item id.
        id: String,
    },
    /// A named prompt template was not found.
    #[error("no prompt template named `{name}` (known: {known})")]
    UnknownTemplate {
        /// The requested name.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The chat back end failed (HTTP, a malformed reply, the local model); its message is shown as is.
    #[error(transparent)]
    Chat(#[from] ChatError),
}

/// Short-hand for `Result<T, JudgeError>`.
pub type Result<T, E = JudgeError> = std::result::Result<T, E>;
