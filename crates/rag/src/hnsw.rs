//! An approximate nearest-neighbour index: HNSW (Malkov & Yashunin 2018, <https://arxiv.org/abs/1603.09320>) from
//! the `instant-distance` crate, over L2-normalised vectors with distance `1 − cosine`; persisted as one binary
//! file (postcard), written atomically. A corpus index keeps it next to its vectors ([`HNSW_FILE`]), tagged with a
//! fingerprint of the vectors it was built from, so a stale graph is refused rather than searched.
//!
//! `instant-distance` fixes `M` (32; 64 links on layer 0) and stores the search's `ef` inside the graph when it is
//! built; [`HnswIndex::set_ef_search`] and [`HnswIndex::open_with_ef`] rewrite that one stored value (the first
//! field of the crate's serialised `Hnsw`, checked against the value this index recorded), so `ef` can be chosen per
//! search setting without rebuilding the graph.

use std::path::Path;

use instant_distance::{Builder, HnswMap, Point, Search};
use serde::{Deserialize, Serialize};

use crate::corpus::{CorpusIndex, write_atomic};
use crate::error::{RagError, Result, io};
use crate::retriever::Hit;
use crate::vectors::{ExactIndex, VectorSearch, dot};

/// The HNSW file inside a corpus index folder.
pub const HNSW_FILE: &str = "hnsw.bin";

/// A normalised vector; distance `1 − u·v`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unit(Vec<f32>);

impl Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// Build and search parameters (names as in the paper).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HnswParams {
    /// Candidate list size while building (`efConstruction`; 100 is the crate's default).
    pub ef_construction: usize,
    /// Candidate list size while searching (`ef`; 100 is the crate's default).
    pub ef_search: usize,
    /// Seed of the level assignment, for reproducible graphs.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            ef_construction: 100,
            ef_search: 100,
            seed: 0,
        }
    }
}

/// An HNSW graph of vectors with chunk ids.
///
/// Serialised field order matters: [`patch_ef`] finds `ef_search` and the crate's copy of it right after `dim`.
#[derive(Serialize, Deserialize)]
pub struct HnswIndex {
    dim: usize,
    ef_search: usize,
    map: HnswMap<Unit, String>,
    /// [`fingerprint`] of the ids and vectors the graph was built from.
    fingerprint: String,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("len", &self.map.values.len())
            .finish()
    }
}

impl HnswIndex {
    /// Builds the graph of `vectors` (all of one dimension) with their ids.
    pub fn build(
        ids: Vec<String>,
        vectors: Vec<Vec<f32>>,
        params: HnswParams,
    ) -> Result<HnswIndex> {
        if ids.len() != vectors.len() {
            return Err(RagError::Index(format!(
                "{} ids for {} vectors",
                ids.len(),
                vectors.len()
            )));
        }
        let dim = vectors.first().map_or(0, Vec::len);
        if let Some(i) = vectors.iter().position(|v| v.len() != dim) {
            return Err(RagError::Index(format!(
                "vector {i} (`{}`) has {} values, the first {dim}",
                ids[i],
                vectors[i].len()
            )));
        }
        if params.ef_search == 0 || params.ef_construction == 0 {
            return Err(RagError::Param {
                name: "ef",
                message: "ef_search and ef_construction must be > 0".into(),
            });
        }
        let fingerprint = fingerprint(
            ids.iter()
                .map(String::as_str)
                .zip(vectors.iter().map(Vec::as_slice)),
        );
        let points: Vec<Unit> = vectors.into_iter().map(Unit).collect();
        let map = Builder::default()
            .ef_construction(params.ef_construction)
            .ef_search(params.ef_search)
            .seed(params.seed)
            .build(points, ids);
        Ok(HnswIndex {
            dim,
            ef_search: params.ef_search,
            map,
            fingerprint,
        })
    }

    /// The graph of every vector of an exact index.
    pub fn from_exact(exact: &ExactIndex, params: HnswParams) -> Result<HnswIndex> {
        let vectors = (0..exact.len()).map(|i| exact.vector(i).to_vec()).collect();
        HnswIndex::build(exact.ids().to_vec(), vectors, params)
    }

    /// The search's candidate list size.
    pub fn ef_search(&self) -> usize {
        self.ef_search
    }

    /// Changes the search's candidate list size (larger: higher recall, slower searches); the graph is kept.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<()> {
        let bytes = postcard::to_stdvec(self).map_err(|e| RagError::Index(e.to_string()))?;
        *self = postcard::from_bytes(&patch_ef(&bytes, ef)?)
            .map_err(|e| RagError::Index(format!("re-reading the graph: {e}")))?;
        Ok(())
    }

    /// The fingerprint of the ids and vectors the graph was built from (see [`CorpusIndex::vectors_fingerprint`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.map.values.len()
    }

    /// Whether it holds no vector.
    pub fn is_empty(&self) -> bool {
        self.map.values.is_empty()
    }

    /// Writes the index to `path` (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = postcard::to_stdvec(self)
            .map_err(|e| RagError::Index(format!("{}: {e}", path.display())))?;
        write_atomic(path, &bytes)
    }

    /// Reads an index written by [`HnswIndex::save`].
    pub fn open(path: &Path) -> Result<HnswIndex> {
        HnswIndex::open_with_ef(path, None)
    }

    /// Reads an index written by [`HnswIndex::save`], searching with candidate list size `ef` when given.
    pub fn open_with_ef(path: &Path, ef: Option<usize>) -> Result<HnswIndex> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let parse_err = |message: String| RagError::Parse {
            path: path.to_path_buf(),
            line: 0,
            message,
        };
        let bytes = match ef {
            Some(ef) => patch_ef(&bytes, ef).map_err(|e| parse_err(e.to_string()))?,
            None => bytes,
        };
        postcard::from_bytes(&bytes).map_err(|e| parse_err(e.to_string()))
    }
}

/// sha256 over the ids and the vectors' little-endian bytes, in order.
pub(crate) fn fingerprint<'a>(rows: impl Iterator<Item = (&'a str, &'a [f32])>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (id, v) in rows {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
        for x in v {
            h.update(x.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the unsigned LEB128 varint (postcard's `usize`) at `at`: its value and the offset after it.
fn varint(bytes: &[u8], at: usize) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().skip(at).take(10) {
        value |= u64::from(b & 0x7f) << (7 * (i - at));
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(RagError::Index(format!("no varint at byte {at}")))
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The serialised [`HnswIndex`] `bytes` with both stored copies of `ef_search` (ours, then `instant-distance`'s,
/// the first field of its `Hnsw`) set to `ef`. Refuses bytes whose two copies differ: then the layout is not the
/// one this code knows.
fn patch_ef(bytes: &[u8], ef: usize) -> Result<Vec<u8>> {
    if ef == 0 {
        return Err(RagError::Param {
            name: "ef",
            message: "must be > 0".into(),
        });
    }
    let (_, ours_at) = varint(bytes, 0)?;
    let (ours, theirs_at) = varint(bytes, ours_at)?;
    let (theirs, rest_at) = varint(bytes, theirs_at)?;
    if ours != theirs {
        return Err(RagError::Index(format!(
            "unexpected HNSW layout: ef_search {ours} and the graph's {theirs} differ"
        )));
    }
    let mut out = Vec::with_capacity(bytes.len() + 4);
    out.extend_from_slice(&bytes[..ours_at]);
    push_varint(&mut out, ef as u64);
    push_varint(&mut out, ef as u64);
    out.extend_from_slice(&bytes[rest_at..]);
    Ok(out)
}

impl CorpusIndex {
    /// An HNSW graph of the chunks' embeddings.
    pub fn build_hnsw(&self, params: HnswParams) -> Result<HnswIndex> {
        HnswIndex::from_exact(&self.exact_index()?, params)
    }

    /// Reads the graph saved in the index folder `dir` ([`HNSW_FILE`]), refusing one built from other vectors
    /// than this index holds (files re-indexed since).
    pub fn open_hnsw(&self, dir: &Path, ef: Option<usize>) -> Result<HnswIndex> {
        let path = dir.join(HNSW_FILE);
        let hnsw = HnswIndex::open_with_ef(&path, ef)?;
        if hnsw.fingerprint != self.vectors_fingerprint()? {
            return Err(RagError::Index(format!(
                "{}: built from other vectors than the index holds (re-run the indexing with HNSW)",
                path.display()
            )));
        }
        Ok(hnsw)
    }

    /// sha256 of the embedded chunks' ids and vectors, in index order (what [`HnswIndex::fingerprint`] records).
    pub fn vectors_fingerprint(&self) -> Result<String> {
        let exact = self.exact_index()?;
        Ok(fingerprint(
            (0..exact.len()).map(|i| (exact.ids()[i].as_str(), exact.vector(i))),
        ))
    }
}

impl VectorSearch for HnswIndex {
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        if query.len() != self.dim && !self.is_empty() {
            return Err(RagError::Index(format!(
                "query has {} values, the index {}",
                query.len(),
                self.dim
            )));
        }
        let mut search = Search::default();
        Ok(self
            .map
            .search(&Unit(query.to_vec()), &mut search)
            .take(k)
            .map(|item| Hit {
                chunk_id: item.value.clone(),
                score: 1.0 - item.distance,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn finds_the_exact_neighbours_of_a_small_set_and_round_trips() -> Result<()> {
        // A deterministic spread of 500 vectors in 8 dimensions.
        let vectors: Vec<Vec<f32>> = (0..500)
            .map(|i| {
                unit(
                    (0..8)
                        .map(|j| ((i * 7 + j * 13) % 31) as f32 - 15.0 + 0.01 * j as f32)
                        .collect(),
                )
            })
            .collect();
        let ids: Vec<String> = (0..500).map(|i| format!("v{i}")).collect();
        let mut exact = ExactIndex::new(8);
        for (id, v) in ids.iter().zip(&vectors) {
            exact.push(id.clone(), v)?;
        }
        let hnsw = HnswIndex::build(ids, vectors.clone(), HnswParams::default())?;
        let q = &vectors[42];
        assert_eq!(hnsw.search(q, 1)?[0].score, exact.search(q, 1)?[0].score);
        let dir = std::env::temp_dir().join(format!("temper-rag-hnsw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("hnsw.bin");
        hnsw.save(&path)?;
        let back = HnswIndex::open(&path)?;
        assert_eq!(back.search(q, 5)?, hnsw.search(q, 5)?);
        assert_eq!(back.ef_search(), 100);
        // ef changed on open and in memory: the same graph, a wider search.
        let wide = HnswIndex::open_with_ef(&path, Some(300))?;
        assert_eq!(wide.ef_search(), 300);
        assert_eq!(wide.fingerprint(), hnsw.fingerprint());
        assert_eq!(wide.search(q, 1)?[0].score, exact.search(q, 1)?[0].score);
        let mut narrow = back;
        narrow.set_ef_search(1)?;
        assert_eq!(narrow.ef_search(), 1);
        narrow.set_ef_search(129)?; // two varint bytes
        assert_eq!(narrow.ef_search(), 129);
        assert_eq!(narrow.search(q, 5)?.len(), 5);
        assert!(narrow.set_ef_search(0).is_err());
        // A graph whose two stored ef values disagree is refused, not misread.
        let mut bytes = std::fs::read(&path).map_err(io(&path))?;
        let (_, at) = varint(&bytes, 0)?;
        bytes[at] ^= 1;
        assert!(patch_ef(&bytes, 50).is_err());
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        Ok(())
    }
}
