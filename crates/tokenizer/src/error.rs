//! The crate's single error type: what failed and where (file, key, index, template line).

use std::path::PathBuf;

/// Everything that can go wrong while building a tokenizer, encoding, decoding or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Reading the GGUF metadata failed (missing key, wrong type).
    #[error(transparent)]
    Gguf(#[from] temper_gguf::GgufError),
    /// The GGUF tokenizer metadata is inconsistent.
    #[error("{path}: {key}[{index}]: {reason}")]
    BadGgufVocab {
        /// The GGUF file.
        path: PathBuf,
        /// The metadata key, e.g. `tokenizer.ggml.merges`.
        key: &'static str,
        /// The offending item.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A special-token id key (`tokenizer.ggml.bos_token_id`...) points outside the vocabulary.
    #[error("{path}: {key} = {id} is not a token id (vocabulary of {vocab_size})")]
    BadSpecialToken {
        /// The GGUF file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// The id found.
        id: u64,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The GGUF declares a tokenizer model or pre-tokenizer this crate does not reproduce exactly.
    #[error("{path}: {key} = {value:?} is not supported (supported: {supported})")]
    Unsupported {
        /// The GGUF file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What would be accepted.
        supported: &'static str,
    },
    /// A file could not be read.
    #[error("{path}: cannot read the file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A JSON file (tokenizer_config.json) is malformed or has a field of the wrong type.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (with serde's line and column when it is a syntax error).
        reason: String,
    },
    /// The `tokenizers` library rejected the tokenizer definition.
    #[error("{origin}: cannot build the tokenizer: {reason}")]
    Build {
        /// The GGUF or tokenizer.json path.
        origin: PathBuf,
        /// The library's message.
        reason: String,
    },
    /// Encoding failed.
    #[error("cannot encode {text_start:?}...: {reason}")]
    Encode {
        /// The first characters of the text.
        text_start: String,
        /// The library's message.
        reason: String,
    },
    /// A token id to decode is not in the vocabulary.
    #[error("token id {id} at position {position} is out of the vocabulary (size {vocab_size})")]
    UnknownId {
        /// The id.
        id: u32,
        /// Its index in the input.
        position: usize,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// Decoding failed.
    #[error("cannot decode: {reason}")]
    Decode {
        /// The library's message.
        reason: String,
    },
    /// The tokenizer has no chat template.
    #[error("the tokenizer has no chat template")]
    NoChatTemplate,
    /// The chat template has a syntax error or failed while rendering (`raise_exception` included).
    #[error("chat template{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The line of the template, when known.
        line: Option<usize>,
        /// What went wrong.
        reason: String,
    },
}
