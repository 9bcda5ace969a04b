//! The crate's single error type: bad configs, mismatched shapes, and inputs a loss needs but did not get.

/// Everything that can go wrong when building a config or evaluating an objective.
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// A config field has an invalid value, or two fields are incompatible.
    #[error("invalid {config}.{field}: {message}")]
    Config {
        /// Config struct name, e.g. `"DpoConfig"`.
        config: &'static str,
        /// Field name (TRL's spelling).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An input tensor or slice has the wrong shape.
    #[error("{op}: `{input}` has shape {got:?}, expected {expected}")]
    Shape {
        /// The objective being evaluated, e.g. `"dpo_loss"`.
        op: &'static str,
        /// Which input.
        input: &'static str,
        /// The shape received.
        got: Vec<usize>,
        /// The shape required, in words.
        expected: String,
    },
    /// An optional input is required by the chosen config.
    #[error("{op}: input `{input}` is required because {reason}")]
    MissingInput {
        /// The objective being evaluated.
        op: &'static str,
        /// Which input is missing.
        input: &'static str,
        /// Which config setting needs it.
        reason: &'static str,
    },
}

pub(crate) fn config_err(
    config: &'static str,
    field: &'static str,
    message: impl Into<String>,
) -> ObjectiveError {
    ObjectiveError::Config {
        config,
        field,
        message: message.into(),
    }
}
