//! An approximate nearest-neighbour index: HNSW (Malkov & Yashunin 2018, <https://arxiv.org/abs/1603.09320>) from
//! the `instant-distance` crate, over L2-normalised vectors with distance `1 − cosine`; persisted as one binary
//! file (postcard), written atomically.

use std::path::Path;

use instant_distance::{Builder, HnswMap, Point, Search};
use serde::{Deserialize, Serialize};

use crate::corpus::write_atomic;
use crate::error::{RagError, Result, io};
use crate::retriever::Hit;
use crate::vectors::{VectorSearch, dot};

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
#[derive(Serialize, Deserialize)]
pub struct HnswIndex {
    dim: usize,
    map: HnswMap<Unit, String>,
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
        let points: Vec<Unit> = vectors.into_iter().map(Unit).collect();
        let map = Builder::default()
            .ef_construction(params.ef_construction)
            .ef_search(params.ef_search)
            .seed(params.seed)
            .build(points, ids);
        Ok(HnswIndex { dim, map })
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
        let bytes = std::fs::read(path).map_err(io(path))?;
        postcard::from_bytes(&bytes).map_err(|e| RagError::Parse {
            path: path.to_path_buf(),
            line: 0,
            message: e.to_string(),
        })
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
    use crate::vectors::ExactIndex;

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
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        Ok(())
    }
}
