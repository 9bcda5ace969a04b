//! The crate's one error type, [`RewardError`]: every message says what went wrong and where.

use std::path::PathBuf;

/// Everything that can go wrong in `temper-rewards`.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// A reward that compares against a reference got an item without one.
    #[error("reward `{reward}`: batch item {index} has no reference answer")]
    MissingReference {
        /// The reward's name.
        reward: String,
        /// Index of the item in the batch.
        index: usize,
    },
    /// A reference answer could not be read (e.g. a GSM8K solution whose `####` line is empty).
    #[error("reward `{reward}`: batch item {index} has an unusable reference {reference:?}")]
    BadReference {
        /// The reward's name.
        reward: String,
        /// Index of the item in the batch.
        index: usize,
        /// The reference text.
        reference: String,
    },
    /// A reward returned a different number of scores than the batch had items.
    #[error("reward `{reward}` returned {got} scores for a batch of {expected} items")]
    BatchSize {
        /// The reward's name.
        reward: String,
        /// The batch size.
        expected: usize,
        /// The number of scores returned.
        got: usize,
    },
    /// A regular expression in a config field does not compile.
    #[error("field `{field}`: invalid regex {pattern:?}: {message}")]
    InvalidRegex {
        /// The config field, e.g. `reward[1].regex`.
        field: String,
        /// The pattern as written.
        pattern: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A config field has a value outside its valid range.
    #[error("field `{field}`: {message}")]
    InvalidConfig {
        /// The config field, e.g. `reward[0].cache_len`.
        field: String,
        /// What is wrong with the value.
        message: String,
    },
    /// Arguments of a function are inconsistent (lengths differ, all scores NaN, k > n...).
    #[error("{what}: {message}")]
    InvalidInput {
        /// The function that was called.
        what: &'static str,
        /// What is wrong with the arguments.
        message: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a data file is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// An external component (a proposer or verifier backed by a model, a user closure) failed.
    #[error("{context}: {message}")]
    External {
        /// Which component failed.
        context: String,
        /// Its message.
        message: String,
    },
}

/// `Result` with [`RewardError`].
pub type Result<T, E = RewardError> = std::result::Result<T, E>;
