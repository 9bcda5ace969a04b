//! The retrieval seam: [`Retriever`] (one required method: a query and k → ranked [`Hit`]s), implemented by BM25,
//! the dense indexes, HNSW and the hybrid fusion; and the [`Reranker`] seam that re-scores a retriever's hits.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One retrieved chunk: its id and the retriever's score (higher is better; scales differ between retrievers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The chunk's id (`source#n`).
    pub chunk_id: String,
    /// The score.
    pub score: f32,
}

/// Anything that ranks chunks for a query. One required method.
pub trait Retriever {
    /// The best `k` chunks for `query`, best first (fewer when the index holds fewer matches).
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>>;
}

impl<T: Retriever + ?Sized> Retriever for &T {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        (**self).retrieve(query, k)
    }
}

impl<T: Retriever + ?Sized> Retriever for Box<T> {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        (**self).retrieve(query, k)
    }
}

/// Re-scores passages for a query (a cross-encoder, an LLM judge). One required method.
pub trait Reranker {
    /// One score per passage, higher is better.
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>>;
}

/// A retriever whose first `depth` hits are re-ordered by a [`Reranker`] (equal scores keep the first stage's
/// order); `text` looks a chunk's text up by id. When more than `depth` hits are asked for, the first stage's hits
/// after the first `depth` follow the re-ranked ones in their own order, with their first-stage scores.
pub struct Reranked<R, S, T> {
    /// The first stage.
    pub inner: R,
    /// The second stage.
    pub reranker: S,
    /// Chunk id → text.
    pub text: T,
    /// How many first-stage hits are re-scored.
    pub depth: usize,
}

impl<R: Retriever, S: Reranker, T: Fn(&str) -> Result<String>> Retriever for Reranked<R, S, T> {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let mut hits = self.inner.retrieve(query, self.depth.max(k))?;
        let rest = hits.split_off(self.depth.min(hits.len()));
        let texts = hits
            .iter()
            .map(|h| (self.text)(&h.chunk_id))
            .collect::<Result<Vec<String>>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let scores = self.reranker.score(query, &refs)?;
        if scores.len() != hits.len() {
            return Err(crate::error::RagError::Index(format!(
                "the re-ranker returned {} scores for {} passages",
                scores.len(),
                hits.len()
            )));
        }
        let mut out: Vec<Hit> = hits
            .into_iter()
            .zip(scores)
            .map(|(h, score)| Hit {
                chunk_id: h.chunk_id,
                score,
            })
            .collect();
        // Stable: passages the re-ranker scores equally keep the first stage's order.
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.extend(rest);
        out.truncate(k);
        Ok(out)
    }
}

impl<T: Reranker + ?Sized> Reranker for &T {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        (**self).score(query, passages)
    }
}

/// Sorts by score, best first; ties by chunk id so that rankings are deterministic.
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Retriever for Fixed {
        fn retrieve(&self, _: &str, k: usize) -> Result<Vec<Hit>> {
            let all = ["a", "bb", "ccc"].map(|id| Hit {
                chunk_id: id.into(),
                score: 1.0,
            });
            Ok(all.into_iter().take(k).collect())
        }
    }
    /// Prefers longer passages.
    struct ByLength;
    impl Reranker for ByLength {
        fn score(&self, _: &str, passages: &[&str]) -> Result<Vec<f32>> {
            Ok(passages.iter().map(|p| p.len() as f32).collect())
        }
    }

    #[test]
    fn reranker_reorders_the_first_stage() -> Result<()> {
        let r = Reranked {
            inner: Fixed,
            reranker: ByLength,
            text: |id: &str| Ok(id.repeat(2)),
            depth: 3,
        };
        let ids: Vec<String> = r
            .retrieve("q", 2)?
            .into_iter()
            .map(|h| h.chunk_id)
            .collect();
        assert_eq!(ids, ["ccc", "bb"]);
        // Depth 2: only `a` and `bb` are re-scored; `ccc` follows with its first-stage score.
        let shallow = Reranked { depth: 2, ..r };
        let hits = shallow.retrieve("q", 3)?;
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids, ["bb", "a", "ccc"]);
        assert_eq!(hits[2].score, 1.0);
        let boxed: Box<dyn Retriever> = Box::new(Fixed);
        assert_eq!(boxed.retrieve("q", 1)?.len(), 1);
        Ok(())
    }
}
