//! [`EvalError`], the one error type of `temper-eval`.

use thiserror::Error;

/// An evaluation error; messages name the problem, strategy or setting at fault.
#[derive(Debug, Error)]
pub enum EvalError {
    /// A setting of the evaluation is invalid (`n`, `k`, the strategy's needs).
    #[error("invalid evaluation setting `{field}`: {message}")]
    Config {
        /// The setting (`n`, `k`, `scorer`, `strategy`...).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The policy failed to sample a problem.
    #[error("sampling problem `{problem}`: {message}")]
    Policy {
        /// The problem id.
        problem: String,
        /// The policy's error.
        message: String,
    },
    /// The scorer (a `Reward`) failed.
    #[error("scoring problem `{problem}`: {source}")]
    Reward {
        /// The problem id.
        problem: String,
        /// The reward's error.
        source: temper_rewards::RewardError,
    },
    /// A task error (problems, rendering).
    #[error(transparent)]
    Task(#[from] temper_tasks::TaskError),
}

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
