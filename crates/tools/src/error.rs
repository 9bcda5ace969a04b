//! The crate's one error type, [`ToolError`]: what a tool, a parser, the loop or the BFCL reader can fail with.

use std::path::PathBuf;

/// Everything `temper-tools` can fail with. A tool's own failure ([`ToolError::Failed`]) and invalid arguments
/// ([`ToolError::InvalidArguments`]) are fed back to the model as the tool's reply; the rest stop the caller.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the tool's JSON schema (or do not deserialize into its Rust type).
    #[error("invalid arguments for tool `{tool}`: {message}")]
    InvalidArguments {
        /// The tool called.
        tool: String,
        /// Every violation, one per line, each with the JSON pointer of the offending value.
        message: String,
    },
    /// The model named a tool the registry does not have.
    #[error("unknown tool `{name}`; known tools: {known}")]
    UnknownTool {
        /// The name the model used.
        name: String,
        /// The registry's tool names, comma-separated.
        known: String,
    },
    /// The tool ran and refused (division by zero, an unknown unit, an invalid date).
    #[error("tool `{tool}` failed: {message}")]
    Failed {
        /// The tool.
        tool: String,
        /// Why.
        message: String,
    },
    /// Model output that tries to call a tool but cannot be read as the format's call syntax.
    #[error("{format} tool call: {message} (at byte {offset})")]
    Parse {
        /// The format being parsed (`hermes`, `pythonic`, …).
        format: &'static str,
        /// Byte offset into the model's text where reading failed.
        offset: usize,
        /// What was expected.
        message: String,
    },
    /// A registry or tool definition is unusable (duplicate name, a schema that does not compile).
    #[error("tool registry: {0}")]
    Registry(String),
    /// Numbers handed to a pure function are unusable (mismatched lengths, NaN), naming the field.
    #[error("{0}")]
    InvalidInput(String),
    /// A data file (BFCL questions, possible answers, responses) has a bad line.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is the whole file).
        line: usize,
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
    /// The chat back end failed.
    #[error(transparent)]
    Chat(#[from] temper_chat::ChatError),
}

impl ToolError {
    /// A [`ToolError::Failed`] for `tool`.
    pub fn failed(tool: impl Into<String>, message: impl Into<String>) -> ToolError {
        ToolError::Failed {
            tool: tool.into(),
            message: message.into(),
        }
    }

    /// A [`ToolError::Parse`] of `format` at `offset`.
    pub(crate) fn parse(
        format: &'static str,
        offset: usize,
        message: impl Into<String>,
    ) -> ToolError {
        ToolError::Parse {
            format,
            offset,
            message: message.into(),
        }
    }
}

/// Short-hand for `Result<T, ToolError>`.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
