//! A corpus index of a folder: files read recursively (text, Markdown, HTML), chunked, BM25-indexed and optionally
//! embedded; persisted in a folder (`index.json` + `vectors.f32`, each written to a temporary name and renamed)
//! and updated incrementally: a file whose sha256 is unchanged keeps its chunks, terms and vectors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::analyzer::AnalyzerConfig;
use crate::bm25::{Bm25, Bm25Params};
use crate::chunk::{Chunk, Chunker};
use crate::error::{RagError, Result, io};
use crate::html::html_to_text;
use crate::vectors::{Embedder, ExactIndex};

/// Version of the on-disk format.
const FORMAT: u32 = 1;
/// The index file inside an index folder.
pub const INDEX_FILE: &str = "index.json";
/// The vectors file inside an index folder (little-endian f32, rows in `dense.ids` order).
pub const VECTORS_FILE: &str = "vectors.f32";

/// How a corpus is indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// How files are cut.
    pub chunker: Chunker,
    /// How text becomes terms.
    pub analyzer: AnalyzerConfig,
    /// BM25's parameters.
    pub bm25: Bm25Params,
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileEntry {
    sha256: String,
    chunks: usize,
}

/// The embeddings of the chunks (all of one model).
#[derive(Debug, Clone, Default)]
struct Dense {
    model: String,
    dim: usize,
    vectors: HashMap<String, Vec<f32>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenseMeta {
    model: String,
    dim: usize,
    ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    format: u32,
    config: IndexConfig,
    files: BTreeMap<String, FileEntry>,
    chunks: Vec<Chunk>,
    bm25: Bm25,
    dense: Option<DenseMeta>,
}

/// What an update did, file by file (paths relative to the folder).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateReport {
    /// New files.
    pub added: Vec<String>,
    /// Files whose content changed (re-chunked and re-indexed).
    pub changed: Vec<String>,
    /// Files kept as they were.
    pub unchanged: Vec<String>,
    /// Files gone from the folder (their chunks removed).
    pub removed: Vec<String>,
    /// Files that could not be indexed, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The index of a folder.
#[derive(Debug, Clone)]
pub struct CorpusIndex {
    config: IndexConfig,
    files: BTreeMap<String, FileEntry>,
    chunks: Vec<Chunk>,
    by_id: HashMap<String, usize>,
    bm25: Bm25,
    dense: Option<Dense>,
}

impl CorpusIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<CorpusIndex> {
        config.chunker.validate()?;
        let bm25 = Bm25::new(config.bm25, config.analyzer.clone())?;
        Ok(CorpusIndex {
            config,
            files: BTreeMap::new(),
            chunks: Vec::new(),
            by_id: HashMap::new(),
            bm25,
            dense: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// All chunks, file by file.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// A chunk by id.
    pub fn chunk(&self, id: &str) -> Result<&Chunk> {
        self.by_id
            .get(id)
            .map(|&i| &self.chunks[i])
            .ok_or_else(|| RagError::UnknownChunk(id.to_string()))
    }

    /// Number of indexed files.
    pub fn num_files(&self) -> usize {
        self.files.len()
    }

    /// The BM25 index (a [`crate::Retriever`]).
    pub fn bm25(&self) -> &Bm25 {
        &self.bm25
    }

    /// The embedding model's name, if the chunks are embedded.
    pub fn dense_model(&self) -> Option<&str> {
        self.dense.as_ref().map(|d| d.model.as_str())
    }

    /// An exact vector index of every embedded chunk.
    pub fn exact_index(&self) -> Result<ExactIndex> {
        let dense = self
            .dense
            .as_ref()
            .ok_or_else(|| RagError::Index("the chunks have no embeddings".into()))?;
        let mut idx = ExactIndex::new(dense.dim);
        for c in &self.chunks {
            if let Some(v) = dense.vectors.get(&c.id) {
                idx.push(c.id.clone(), v)?;
            }
        }
        Ok(idx)
    }

    /// Indexes `dir` recursively (hidden files and folders skipped): new and changed files are read, chunked and
    /// indexed, removed files dropped, unchanged files (same sha256) kept as they are. A file that cannot be read
    /// as text is reported in [`UpdateReport::skipped`], never an error.
    pub fn update_from_dir(&mut self, dir: &Path) -> Result<UpdateReport> {
        let mut paths = Vec::new();
        walk(dir, dir, &mut paths)?;
        let mut report = UpdateReport::default();
        let mut seen = HashSet::new();
        let mut fresh: Vec<(String, String, Vec<Chunk>)> = Vec::new();
        for (rel, path) in paths {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    report.skipped.push((rel, e.to_string()));
                    continue;
                }
            };
            let sha = hex(&Sha256::digest(&bytes));
            if self.files.get(&rel).is_some_and(|f| f.sha256 == sha) {
                seen.insert(rel.clone());
                report.unchanged.push(rel);
                continue;
            }
            let text = match decode(&bytes) {
                Ok(t) => t,
                Err(reason) => {
                    report.skipped.push((rel, reason));
                    continue;
                }
            };
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            let text = if ext == "html" || ext == "htm" {
                html_to_text(&text)
            } else {
                text
            };
            let chunks = self.config.chunker.chunk(&rel, &text)?;
            seen.insert(rel.clone());
            if self.files.contains_key(&rel) {
                report.changed.push(rel.clone());
            } else {
                report.added.push(rel.clone());
            }
            fresh.push((rel, sha, chunks));
        }
        report.removed = self
            .files
            .keys()
            .filter(|f| !seen.contains(*f))
            .cloned()
            .collect();
        let replaced: HashSet<&str> = report
            .removed
            .iter()
            .chain(&report.changed)
            .map(String::as_str)
            .collect();
        // Drop the chunks of changed and removed files, then add the new ones.
        self.chunks
            .retain(|c| !replaced.contains(c.source.as_str()));
        let kept: HashSet<String> = self.chunks.iter().map(|c| c.id.clone()).collect();
        self.bm25.retain(|id| kept.contains(id));
        if let Some(d) = &mut self.dense {
            d.vectors.retain(|id, _| kept.contains(id));
        }
        for f in &report.removed {
            self.files.remove(f);
        }
        let analyzer = self.bm25.analyzer();
        let terms: Vec<(String, Vec<String>)> = fresh
            .iter()
            .flat_map(|(_, _, cs)| {
                cs.iter()
                    .map(|c| (c.id.clone(), analyzer.terms(&c.indexed_text())))
            })
            .collect();
        self.bm25.extend_terms(terms);
        for (rel, sha, chunks) in fresh {
            self.files.insert(
                rel,
                FileEntry {
                    sha256: sha,
                    chunks: chunks.len(),
                },
            );
            self.chunks.extend(chunks);
        }
        self.chunks
            .sort_by(|a, b| a.source.cmp(&b.source).then(a.start.cmp(&b.start)));
        self.reindex_ids();
        Ok(report)
    }

    fn reindex_ids(&mut self) {
        self.by_id = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
    }

    /// Embeds every chunk that has no vector yet (all of them when `model` differs from the stored one), `batch`
    /// chunks at a time. Returns how many were embedded.
    pub fn embed_missing(
        &mut self,
        model: &str,
        embedder: &dyn Embedder,
        batch: usize,
    ) -> Result<usize> {
        if self.dense.as_ref().is_some_and(|d| d.model != model) {
            self.dense = None;
        }
        let dense = self.dense.get_or_insert_with(|| Dense {
            model: model.to_string(),
            ..Dense::default()
        });
        let todo: Vec<&Chunk> = self
            .chunks
            .iter()
            .filter(|c| !dense.vectors.contains_key(&c.id))
            .collect();
        for group in todo.chunks(batch.max(1)) {
            let texts: Vec<String> = group.iter().map(|c| c.indexed_text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = embedder.embed(&refs)?;
            for (c, v) in group.iter().zip(vectors) {
                if dense.dim == 0 {
                    dense.dim = v.len();
                }
                if v.len() != dense.dim {
                    return Err(RagError::Index(format!(
                        "`{}`: vector of {} values, expected {}",
                        c.id,
                        v.len(),
                        dense.dim
                    )));
                }
                dense.vectors.insert(c.id.clone(), v);
            }
        }
        Ok(todo.len())
    }

    /// Writes the index into `dir` (created if needed); each file goes to a temporary name first, then is renamed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dense = self.dense.as_ref().map(|d| {
            let ids: Vec<String> = self
                .chunks
                .iter()
                .filter(|c| d.vectors.contains_key(&c.id))
                .map(|c| c.id.clone())
                .collect();
            let mut bytes = Vec::with_capacity(ids.len() * d.dim * 4);
            for id in &ids {
                for x in &d.vectors[id] {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
            }
            (
                DenseMeta {
                    model: d.model.clone(),
                    dim: d.dim,
                    ids,
                },
                bytes,
            )
        });
        let (meta, bytes) = match dense {
            Some((m, b)) => (Some(m), b),
            None => (None, Vec::new()),
        };
        write_atomic(&dir.join(VECTORS_FILE), &bytes)?;
        let disk = OnDisk {
            format: FORMAT,
            config: self.config.clone(),
            files: self.files.clone(),
            chunks: self.chunks.clone(),
            bm25: self.bm25.clone(),
            dense: meta,
        };
        let json = serde_json::to_vec(&disk).map_err(|e| RagError::Index(e.to_string()))?;
        write_atomic(&dir.join(INDEX_FILE), &json)
    }

    /// Reads an index written by [`CorpusIndex::save`].
    pub fn open(dir: &Path) -> Result<CorpusIndex> {
        let path = dir.join(INDEX_FILE);
        let text = std::fs::read(&path).map_err(io(&path))?;
        let disk: OnDisk = serde_json::from_slice(&text).map_err(|e| RagError::Parse {
            path: path.clone(),
            line: e.line(),
            message: e.to_string(),
        })?;
        if disk.format != FORMAT {
            return Err(RagError::Parse {
                path,
                line: 0,
                message: format!("format {} (this build reads {FORMAT})", disk.format),
            });
        }
        let dense = match disk.dense {
            None => None,
            Some(meta) => {
                let vpath = dir.join(VECTORS_FILE);
                let bytes = std::fs::read(&vpath).map_err(io(&vpath))?;
                if bytes.len() != meta.ids.len() * meta.dim * 4 {
                    return Err(RagError::Parse {
                        path: vpath,
                        line: 0,
                        message: format!(
                            "{} bytes, expected {} vectors of {} f32",
                            bytes.len(),
                            meta.ids.len(),
                            meta.dim
                        ),
                    });
                }
                let floats: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let vectors = if meta.dim == 0 {
                    HashMap::new()
                } else {
                    meta.ids
                        .into_iter()
                        .zip(floats.chunks_exact(meta.dim).map(<[f32]>::to_vec))
                        .collect()
                };
                Some(Dense {
                    model: meta.model,
                    dim: meta.dim,
                    vectors,
                })
            }
        };
        let mut idx = CorpusIndex {
            config: disk.config,
            files: disk.files,
            chunks: disk.chunks,
            by_id: HashMap::new(),
            bm25: disk.bm25,
            dense,
        };
        idx.reindex_ids();
        Ok(idx)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of a file, or why it is not text.
fn decode(bytes: &[u8]) -> std::result::Result<String, String> {
    if let Some(at) = bytes.iter().take(8192).position(|&b| b == 0) {
        return Err(format!("binary (NUL byte at offset {at})"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Every regular file under `dir` (hidden entries and symbolic links skipped), as (path relative to `root` with
/// `/`, path), sorted.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io(dir)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if hidden || meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel
                .iter()
                .map(|p| p.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}
