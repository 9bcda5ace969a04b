//! [`DiskCache`]: judge replies stored as one JSON file per request, keyed by a sha256 of the
//! request and written atomically (temp file + rename), so a rerun costs nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{GenParams, Message};
use crate::error::{JudgeError, Result};

/// A directory of cached replies, `<dir>/<sha256>.json`.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    counter: AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    reply: String,
}

#[derive(Serialize)]
struct KeyParts<'a> {
    base_url: &'a str,
    model: &'a str,
    messages: &'a [Message],
    params: &'a GenParams,
}

impl DiskCache {
    /// Uses (and creates, if needed) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| JudgeError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            counter: AtomicU64::new(0),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hex sha256 of the canonical JSON of (base URL, model, messages, params).
    pub fn key(base_url: &str, model: &str, messages: &[Message], params: &GenParams) -> String {
        let parts = KeyParts {
            base_url,
            model,
            messages,
            params,
        };
        // Serializing plain data cannot fail.
        let json = serde_json::to_vec(&parts).unwrap_or_default();
        Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached reply for `key`; `None` when absent or unreadable (a corrupt entry is a miss).
    pub fn get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        let e: Entry = serde_json::from_str(&text).ok()?;
        (e.key == key).then_some(e.reply)
    }

    /// Stores `reply` under `key` atomically: write a unique temp file, then rename over the entry.
    pub fn put(&self, key: &str, reply: &str) -> Result<()> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        let body = serde_json::to_vec(&Entry {
            key: key.to_string(),
            reply: reply.to_string(),
        })
        .unwrap_or_default();
        std::fs::write(&tmp, body).map_err(|source| JudgeError::Io {
            path: tmp.clone(),
            source,
        })?;
        let dest = self.path(key);
        std::fs::rename(&tmp, &dest).map_err(|source| JudgeError::Io { path: dest, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_part_and_entries_round_trip() -> Result<()> {
        let m = [Message::user("hi")];
        let p = GenParams::default();
        let k = DiskCache::key("http://x", "m", &m, &p);
        assert_eq!(k.len(), 64);
        assert_eq!(k, DiskCache::key("http://x", "m", &m, &p));
        assert_ne!(k, DiskCache::key("http://y", "m", &m, &p));
        assert_ne!(k, DiskCache::key("http://x", "n", &m, &p));
        assert_ne!(
            k,
            DiskCache::key("http://x", "m", &[Message::user("ho")], &p)
        );
        assert_ne!(
            k,
            DiskCache::key(
                "http://x",
                "m",
                &m,
                &GenParams {
                    temperature: 0.5,
                    ..p
                }
            )
        );
        let dir =
            std::env::temp_dir().join(format!("temper-judge-cache-unit-{}", std::process::id()));
        let c = DiskCache::new(&dir)?;
        assert_eq!(c.get(&k), None);
        c.put(&k, "[[A]]")?;
        assert_eq!(c.get(&k).as_deref(), Some("[[A]]"));
        c.put(&k, "[[B]]")?;
        assert_eq!(c.get(&k).as_deref(), Some("[[B]]"));
        std::fs::write(dir.join(format!("{k}.json")), "{not json").map_err(|source| {
            JudgeError::Io {
                path: dir.clone(),
                source,
            }
        })?;
        assert_eq!(c.get(&k), None);
        let leftovers = std::fs::read_dir(&dir).map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .count()
        });
        assert_eq!(leftovers.ok(), Some(0));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
