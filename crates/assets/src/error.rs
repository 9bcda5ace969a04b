//! The one error type of this crate: every message says what failed and where (asset, file, hash).

use std::path::PathBuf;

/// Everything that can go wrong while finding, fetching, extracting or verifying an asset.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The name is not in the catalog.
    #[error("unknown asset `{name}`; known assets: {known}")]
    UnknownAsset {
        /// The name asked for.
        name: String,
        /// The catalog's names, comma separated.
        known: String,
    },
    /// A model spec is neither an existing path nor an asset name.
    #[error("`{spec}` is neither a path nor a known asset: {reason}")]
    NotAModel {
        /// The spec given (`--model`, `--judge`).
        spec: String,
        /// Why it is not an asset (the catalog's answer, with the known names).
        reason: String,
    },
    /// The asset holds no model file (no `.gguf`, no folder with `config.json`).
    #[error("asset `{asset}` holds no model file")]
    NoModelFile {
        /// The asset's name.
        asset: String,
    },
    /// The asset has no file by that name.
    #[error("asset `{asset}` has no file `{file}`; its files: {known}")]
    UnknownFile {
        /// The asset's name.
        asset: String,
        /// The file asked for.
        file: String,
        /// The asset's files as laid out in the cache, comma separated.
        known: String,
    },
    /// The cache holds no complete, marked copy of the asset.
    #[error("asset `{asset}` is not cached in {dir}: {reason}; run `temper fetch {asset}`")]
    NotCached {
        /// The asset's name.
        asset: String,
        /// The asset's cache folder.
        dir: PathBuf,
        /// Why the cache does not count (no marker, a file missing or truncated, ...).
        reason: String,
    },
    /// The registry client (pip, npm, apt-get, dpkg-deb) is not installed.
    #[error("`{command}` is not installed (needed to {purpose}); {install}")]
    MissingClient {
        /// The program that could not be started.
        command: String,
        /// What it was needed for.
        purpose: String,
        /// How to install it.
        install: String,
    },
    /// The registry client ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    ClientFailed {
        /// The full command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines of what it wrote to stderr.
        stderr: String,
    },
    /// The client succeeded but the expected package file is not where it should be.
    #[error("expected package file `{expected}` in {dir}, found: [{found}]")]
    PackageFileMissing {
        /// The download folder.
        dir: PathBuf,
        /// The file name the catalog expects.
        expected: String,
        /// What the folder holds instead.
        found: String,
    },
    /// A file does not have the expected size (a truncated download or file).
    #[error("{file} has {actual} bytes, expected {expected} (truncated or wrong file)")]
    SizeMismatch {
        /// The file.
        file: PathBuf,
        /// Expected size in bytes.
        expected: u64,
        /// Actual size in bytes.
        actual: u64,
    },
    /// A file does not have the expected sha256.
    #[error("sha256 mismatch for {file}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The file (a package file, an extracted file, or a member of the package).
        file: PathBuf,
        /// Expected sha256, lowercase hex.
        expected: String,
        /// Actual sha256, lowercase hex.
        actual: String,
    },
    /// A listed file is not inside the package.
    #[error("{archive} has no member `{member}`")]
    MissingMember {
        /// The package file.
        archive: PathBuf,
        /// The path inside the package.
        member: String,
    },
    /// The package cannot be read as an archive (corrupt or truncated).
    #[error("cannot read {archive} (member `{member}`): {detail}")]
    Archive {
        /// The package file.
        archive: PathBuf,
        /// The member being read, or `-` for the archive itself.
        member: String,
        /// What the archive reader said.
        detail: String,
    },
    /// The `.complete` marker exists but cannot be read or written.
    #[error("marker {path}: {detail}")]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `read`, `rename`, `lock`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl AssetError {
    /// Wraps an I/O error with the operation and the path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
