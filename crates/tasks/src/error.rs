//! The crate's one error type, [`TaskError`]: every message says what went wrong and where (file, line, field).

use std::path::PathBuf;

/// Everything that can go wrong in `temper-tasks`.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A config field has a value outside its valid range.
    #[error("field `{field}`: {message}")]
    InvalidConfig {
        /// The config field, e.g. `digits`.
        field: String,
        /// What is wrong with the value.
        message: String,
    },
    /// Arguments of a function are inconsistent (more held-out problems asked for than exist...).
    #[error("{what}: {message}")]
    InvalidInput {
        /// The function that was called.
        what: &'static str,
        /// What is wrong with the arguments.
        message: String,
    },
    /// A task section of a config (e.g. `[task]`) cannot be built.
    #[error("config {path}: {message}")]
    Config {
        /// The config file or section (`[task]`).
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a JSONL data file is malformed.
    #[error("{path}{}: {message}", at_line(*.line))]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A problem cannot be rendered as asked (no chat template, a turn the plain format has no place for).
    #[error("{0}")]
    Render(String),
    /// The tokenizer or its chat template failed.
    #[error(transparent)]
    Tokenizer(#[from] temper_tokenizer::TokenizerError),
}

/// `:line` after a file name, nothing for line 0 (the file as a whole).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// `Result` with [`TaskError`].
pub type Result<T, E = TaskError> = std::result::Result<T, E>;
