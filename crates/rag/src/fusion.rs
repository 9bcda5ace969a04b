//! Hybrid ranking by reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a chunk's fused score is
//! `Σ_r weight_r / (k + rank_r)` over the retrievers that return it (rank from 1), so retrievers with
//! incomparable score scales combine without calibration.

use std::collections::HashMap;

use crate::error::{RagError, Result};
use crate::retriever::{Hit, Retriever, sort_hits};

/// Reciprocal rank fusion of several retrievers; itself a [`Retriever`].
pub struct Rrf<'a> {
    retrievers: Vec<(Box<dyn Retriever + 'a>, f32)>,
    k: f32,
    depth: usize,
}

impl<'a> Rrf<'a> {
    /// Fusion with constant `k` (60 in the paper), asking each retriever for its first `depth` hits.
    pub fn new(k: f32, depth: usize) -> Result<Rrf<'a>> {
        if !(k.is_finite() && k >= 0.0) {
            return Err(RagError::Param {
                name: "rrf_k",
                message: format!("{k} is not a finite number >= 0"),
            });
        }
        if depth == 0 {
            return Err(RagError::Param {
                name: "depth",
                message: "must be > 0".into(),
            });
        }
        Ok(Rrf {
            retrievers: Vec::new(),
            k,
            depth,
        })
    }

    /// Adds a retriever with a weight (1 for plain RRF).
    pub fn with(mut self, retriever: impl Retriever + 'a, weight: f32) -> Rrf<'a> {
        self.retrievers.push((Box::new(retriever), weight));
        self
    }
}

/// Fuses ranked lists: `Σ weight / (k + rank)`.
pub fn fuse(lists: &[(Vec<Hit>, f32)], k: f32) -> Vec<Hit> {
    let mut fused: HashMap<&str, f32> = HashMap::new();
    for (hits, weight) in lists {
        for (i, h) in hits.iter().enumerate() {
            *fused.entry(h.chunk_id.as_str()).or_default() += weight / (k + (i + 1) as f32);
        }
    }
    let mut out: Vec<Hit> = fused
        .into_iter()
        .map(|(id, score)| Hit {
            chunk_id: id.to_string(),
            score,
        })
        .collect();
    sort_hits(&mut out);
    out
}

impl Retriever for Rrf<'_> {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let mut lists = Vec::with_capacity(self.retrievers.len());
        for (r, w) in &self.retrievers {
            lists.push((r.retrieve(query, self.depth.max(k))?, *w));
        }
        let mut out = fuse(&lists, self.k);
        out.truncate(k);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(ids: &[&str]) -> Vec<Hit> {
        ids.iter()
            .map(|id| Hit {
                chunk_id: id.to_string(),
                score: 0.0,
            })
            .collect()
    }

    #[test]
    fn fuses_by_reciprocal_rank() -> Result<()> {
        let fused = fuse(
            &[(hits(&["a", "b", "c"]), 1.0), (hits(&["c", "a"]), 1.0)],
            60.0,
        );
        // a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62.
        let ids: Vec<&str> = fused.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-7);
        struct Fixed(Vec<Hit>);
        impl Retriever for Fixed {
            fn retrieve(&self, _: &str, k: usize) -> Result<Vec<Hit>> {
                Ok(self.0.iter().take(k).cloned().collect())
            }
        }
        let rrf = Rrf::new(1.0, 10)?
            .with(Fixed(hits(&["x", "y"])), 1.0)
            .with(Fixed(hits(&["y"])), 1.0);
        assert_eq!(rrf.retrieve("q", 1)?[0].chunk_id, "y");
        assert!(Rrf::new(-1.0, 10).is_err());
        Ok(())
    }
}
