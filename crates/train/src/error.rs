//! The one error type of `temper-train`: what failed and where (file, line, field, step).

use std::path::PathBuf;

/// Errors raised by the trainers.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of a JSONL data file is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The TOML config is malformed or inconsistent.
    #[error("config {path}: {message}")]
    Config {
        /// The config file (or `<defaults>`).
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The loss became NaN or infinite; a checkpoint of the last good state was saved.
    #[error("non-finite loss {value} at step {step}{}", .checkpoint.as_ref().map(|p| format!("; last good state saved to {}", p.display())).unwrap_or_default())]
    NonFinite {
        /// The optimizer step.
        step: usize,
        /// The offending value.
        value: f64,
        /// Where the last good state was saved.
        checkpoint: Option<PathBuf>,
    },
    /// A checkpoint is missing a file or is inconsistent.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Exporting weights failed.
    #[error("export: {0}")]
    Export(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] temper_models::ModelError),
    /// An objective rejected its inputs or config.
    #[error(transparent)]
    Objective(#[from] temper_rl_objectives::ObjectiveError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] temper_tokenizer::TokenizerError),
    /// A task could not be built or rendered, or a JSONL data file is malformed.
    #[error(transparent)]
    Task(#[from] temper_tasks::TaskError),
    /// A reward function failed.
    #[error("reward: {0}")]
    Reward(String),
    /// A tool or Toolformer's filter rejected its input.
    #[error(transparent)]
    Tool(#[from] temper_tools::ToolError),
    /// Toolformer's annotation was asked something impossible (a setting, a position).
    #[error("toolformer: {0}")]
    Toolformer(String),
    /// The evaluation path failed.
    #[error(transparent)]
    Eval(#[from] temper_eval::EvalError),
}

/// Result alias for this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
