//! The crate's single error type: every failure names the file, the byte offset and what was expected.

use std::path::PathBuf;

/// Everything that can go wrong while reading a GGUF file or one of its tensors.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or memory-mapped.
    #[error("{path}: cannot read the file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error("{path}: byte 0: bad magic {found:02x?}, expected the bytes \"GGUF\" (47 47 55 46)")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The bytes found instead.
        found: Vec<u8>,
    },
    /// The version field is neither 2 nor 3.
    #[error("{path}: byte 4: unsupported GGUF version {version}, expected 2 or 3")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file ends before a field (or a tensor's data) that it announces.
    #[error(
        "{path}: byte {offset}: file truncated, expected {expected} but the file is {file_len} bytes long"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the missing field (or data) starts.
        offset: u64,
        /// What should have been there.
        expected: String,
        /// Length of the file.
        file_len: u64,
    },
    /// A string is not valid UTF-8.
    #[error("{path}: byte {offset}: {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the string's bytes start.
        offset: u64,
        /// Which string (a key, a value, a tensor name).
        what: String,
    },
    /// A metadata value type id that GGUF does not define.
    #[error(
        "{path}: byte {offset}: unknown metadata value type {type_id} for key {key:?}, expected 0..=12"
    )]
    UnknownValueType {
        /// The file.
        path: PathBuf,
        /// Where the type id is.
        offset: u64,
        /// The key whose value has this type.
        key: String,
        /// The type id found.
        type_id: u32,
    },
    /// A tensor's ggml type id is unknown or not supported by this reader.
    #[error(
        "{path}: byte {offset}: tensor {tensor:?} has unknown or unsupported ggml type {type_id}"
    )]
    UnknownGgmlType {
        /// The file.
        path: PathBuf,
        /// Where the type id is.
        offset: u64,
        /// The tensor.
        tensor: String,
        /// The type id found.
        type_id: u32,
    },
    /// The header is well-formed byte-wise but inconsistent (bad alignment, too many dims, duplicate names...).
    #[error("{path}: byte {offset}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where the offending field is.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A metadata key asked for by a typed getter is absent.
    #[error("{path}: metadata key {key:?} is missing")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A metadata key exists but holds a value of another type.
    #[error("{path}: metadata key {key:?} holds {found}, expected {expected}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What the getter accepts.
        expected: &'static str,
        /// What the key holds.
        found: String,
    },
    /// No tensor has this name.
    #[error("{path}: no tensor named {name:?}")]
    TensorNotFound {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
}
