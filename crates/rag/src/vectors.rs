//! Dense vectors, without burn: the [`Embedder`] seam (texts → vectors) and [`ExactIndex`], exact top-k by inner
//! product (cosine for L2-normalised vectors) — one matrix-vector product over all stored vectors — and
//! [`DenseRetriever`], which embeds the query and searches any [`VectorSearch`].

use crate::error::{RagError, Result};
use crate::retriever::{Hit, Retriever, sort_hits};

/// Turns texts into vectors of one dimension. One required method.
pub trait Embedder {
    /// One vector per text.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

impl<T: Embedder + ?Sized> Embedder for &T {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed(texts)
    }
}

/// Nearest vectors by inner product: exact ([`ExactIndex`]) or approximate (the HNSW index).
pub trait VectorSearch {
    /// The `k` stored vectors with the largest inner product with `query`, best first.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>>;
}

/// All vectors in one row-major matrix; search is one product with the query.
#[derive(Debug, Clone, Default)]
pub struct ExactIndex {
    dim: usize,
    ids: Vec<String>,
    matrix: Vec<f32>,
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> ExactIndex {
        ExactIndex {
            dim,
            ids: Vec::new(),
            matrix: Vec::new(),
        }
    }

    /// Adds a vector under `id`.
    pub fn push(&mut self, id: String, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(RagError::Index(format!(
                "vector of `{id}` has {} values, the index {}",
                vector.len(),
                self.dim
            )));
        }
        self.ids.push(id);
        self.matrix.extend_from_slice(vector);
        Ok(())
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds no vector.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The ids, in insertion order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The `i`-th vector.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.matrix[i * self.dim..(i + 1) * self.dim]
    }
}

/// Inner product (eight running sums, so that the compiler can use SIMD lanes; a single running sum has to add
/// in order and stays scalar).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl VectorSearch for ExactIndex {
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        if query.len() != self.dim {
            return Err(RagError::Index(format!(
                "query has {} values, the index {}",
                query.len(),
                self.dim
            )));
        }
        let scores: Vec<f32> = if self.dim == 0 {
            Vec::new()
        } else {
            self.matrix
                .chunks_exact(self.dim)
                .map(|row| dot(row, query))
                .collect()
        };
        let mut order: Vec<usize> = (0..scores.len()).collect();
        let k = k.min(order.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        order.select_nth_unstable_by(k - 1, |&a, &b| scores[b].total_cmp(&scores[a]));
        let mut hits: Vec<Hit> = order[..k]
            .iter()
            .map(|&i| Hit {
                chunk_id: self.ids[i].clone(),
                score: scores[i],
            })
            .collect();
        sort_hits(&mut hits);
        Ok(hits)
    }
}

/// Embeds the query, then searches vectors: the dense [`Retriever`].
pub struct DenseRetriever<E, S> {
    /// The query encoder.
    pub embedder: E,
    /// The vector index.
    pub index: S,
}

impl<E: Embedder, S: VectorSearch> Retriever for DenseRetriever<E, S> {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let v = self.embedder.embed(&[query])?;
        let q = v
            .first()
            .ok_or_else(|| RagError::Encoder("no vector for the query".into()))?;
        self.index.search(q, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_top_k_by_inner_product() -> Result<()> {
        let mut idx = ExactIndex::new(2);
        idx.push("x".into(), &[1.0, 0.0])?;
        idx.push("y".into(), &[0.0, 1.0])?;
        idx.push("xy".into(), &[0.7, 0.7])?;
        let hits = idx.search(&[0.9, 0.1], 2)?;
        assert_eq!(
            hits.iter().map(|h| h.chunk_id.as_str()).collect::<Vec<_>>(),
            ["x", "xy"]
        );
        assert!(idx.push("bad".into(), &[1.0]).is_err());
        let long: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let want: f32 = long.iter().map(|x| x * x).sum();
        assert!((dot(&long, &long) - want).abs() < 1e-4 * want);
        struct Axis;
        impl Embedder for Axis {
            fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
                Ok(texts
                    .iter()
                    .map(|t| {
                        if t.starts_with('y') {
                            vec![0.0, 1.0]
                        } else {
                            vec![1.0, 0.0]
                        }
                    })
                    .collect())
            }
        }
        let r = DenseRetriever {
            embedder: Axis,
            index: idx,
        };
        assert_eq!(r.retrieve("yes", 1)?[0].chunk_id, "y");
        Ok(())
    }
}
