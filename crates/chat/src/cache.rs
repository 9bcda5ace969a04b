//! [`DiskCache`]: chat replies stored as one JSON file per request, keyed by a sha256 of the
//! request and written atomically (temp file + rename), so a rerun costs nothing. The API key is never part
//! of the key or of an entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ChatError, Result};
use crate::message::Message;
use crate::openai::WireParams;
use crate::params::GenerationParams;

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
    params: &'a WireParams<'a>,
}

impl DiskCache {
    /// Uses (and creates, if needed) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| ChatError::Io {
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

    /// The hex sha256 of the canonical JSON of (base URL, model, messages, params as sent to the endpoint).
    /// Parameters the endpoint would refuse (see [`crate::OpenAiBackend`]) are an error.
    pub fn key(
        base_url: &str,
        model: &str,
        messages: &[Message],
        params: &GenerationParams,
    ) -> Result<String> {
        Ok(Self::wire_key(base_url, model, messages, &WireParams::new(params)?))
    }

    pub(crate) fn wire_key(
        base_url: &str,
        model: &str,
        messages: &[Message],
        params: &WireParams<'_>,
    ) -> String {
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
        std::fs::write(&tmp, body).map_err(|source| ChatError::Io {
            path: tmp.clone(),
            source,
        })?;
        let dest = self.path(key);
        std::fs::rename(&tmp, &dest).map_err(|source| ChatError::Io { path: dest, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_part_and_entries_round_trip() -> Result<()> {
        let m = [Message::user("hi")];
        let p = GenerationParams::greedy(2048);
        let k = DiskCache::key("http://x", "m", &m, &p)?;
        assert_eq!(k.len(), 64);
        // The judge's cache keys from before the chat crate (temperature 0, 2048 tokens) still match.
        let old = r#"{"base_url":"http://x","model":"m","messages":[{"role":"user","content":"hi"}],"params":{"temperature":0.0,"max_tokens":2048}}"#;
        let old: String = Sha256::digest(old.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(k, old);
        assert_eq!(k, DiskCache::key("http://x", "m", &m, &p)?);
        assert_ne!(k, DiskCache::key("http://y", "m", &m, &p)?);
        assert_ne!(k, DiskCache::key("http://x", "n", &m, &p)?);
        assert_ne!(k, DiskCache::key("http://x", "m", &[Message::user("ho")], &p)?);
        for other in [
            GenerationParams { temperature: 0.5, ..p.clone() },
            GenerationParams { max_new_tokens: 10, ..p.clone() },
            GenerationParams { top_p: Some(0.9), ..p.clone() },
            GenerationParams { stop: vec!["x".into()], ..p.clone() },
            GenerationParams { seed: 1, ..p.clone() },
        ] {
            assert_ne!(k, DiskCache::key("http://x", "m", &m, &other)?, "{other:?}");
        }
        assert!(DiskCache::key("http://x", "m", &m, &GenerationParams { top_k: Some(2), ..p }).is_err());
        let dir =
            std::env::temp_dir().join(format!("temper-chat-cache-unit-{}", std::process::id()));
        let c = DiskCache::new(&dir)?;
        assert_eq!(c.get(&k), None);
        c.put(&k, "[[A]]")?;
        assert_eq!(c.get(&k).as_deref(), Some("[[A]]"));
        c.put(&k, "[[B]]")?;
        assert_eq!(c.get(&k).as_deref(), Some("[[B]]"));
        std::fs::write(dir.join(format!("{k}.json")), "{not json").map_err(|source| {
            ChatError::Io {
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
