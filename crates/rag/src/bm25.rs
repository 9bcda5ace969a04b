//! Okapi BM25 over analyzed terms, in memory, serialisable.
//!
//! The score of document `d` for query terms `q₁…qₙ` (a repeated query term counts each time) is the textbook
//! Robertson–Spärck Jones form
//!
//! `score(d) = Σᵢ idf(qᵢ) · f(qᵢ,d)·(k1 + 1) / (f(qᵢ,d) + k1·(1 − b + b·|d|/avgdl))`
//!
//! with `f` the term's count in `d`, `|d|` the document's length in terms and `avgdl` the mean length. Two IDF
//! variants ([`Idf`]), `N` documents of which `n(q)` contain `q`:
//! - [`Idf::Lucene`] (the default): `ln(1 + (N − n + 0.5)/(n + 0.5))`, always positive (Lucene, Elasticsearch);
//! - [`Idf::Okapi`]: `ln((N − n + 0.5)/(n + 0.5))`, with every negative value replaced by `epsilon · mean idf`
//!   (the mean over all terms of the corpus), exactly as Python's `rank_bm25.BM25Okapi` does.
//!
//! Both are checked against `rank_bm25` on a committed fixture (`tests/bm25_reference.rs`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::error::{RagError, Result};
use crate::retriever::{Hit, Retriever, sort_hits};

/// The IDF variant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Idf {
    /// `ln(1 + (N − n + 0.5)/(n + 0.5))`.
    Lucene,
    /// `ln((N − n + 0.5)/(n + 0.5))`, negatives floored to `epsilon · mean idf` (`rank_bm25.BM25Okapi`).
    Okapi {
        /// The floor factor (`rank_bm25` uses 0.25).
        epsilon: f64,
    },
}

/// BM25's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25Params {
    /// Term-frequency saturation, ≥ 0 (1.2: Robertson & Zaragoza, "The Probabilistic Relevance Framework", 2009).
    pub k1: f64,
    /// Length normalisation in [0, 1] (0.75: same source).
    pub b: f64,
    /// The IDF variant.
    pub idf: Idf,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params {
            k1: 1.2,
            b: 0.75,
            idf: Idf::Lucene,
        }
    }
}

impl Bm25Params {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(RagError::Param {
                name: "k1",
                message: format!("{} is not a finite number >= 0", self.k1),
            });
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(RagError::Param {
                name: "b",
                message: format!("{} is not in [0, 1]", self.b),
            });
        }
        Ok(())
    }
}

/// One indexed document: its id, length and term counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    id: String,
    len: u32,
    tf: Vec<(String, u32)>,
}

/// What is persisted: parameters, analyzer and documents (the postings are rebuilt on load).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bm25Data {
    params: Bm25Params,
    analyzer: AnalyzerConfig,
    docs: Vec<Doc>,
}

/// A BM25 index of documents (chunks) by id; a [`Retriever`] through its analyzer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(try_from = "Bm25Data", into = "Bm25Data")]
pub struct Bm25 {
    params: Bm25Params,
    analyzer: Analyzer,
    docs: Vec<Doc>,
    /// term → (doc index, count)
    postings: HashMap<String, Vec<(u32, u32)>>,
    idf: HashMap<String, f64>,
    avgdl: f64,
}

impl Clone for Bm25 {
    fn clone(&self) -> Self {
        Bm25::from_parts(
            self.params,
            self.analyzer.config().clone(),
            self.docs.clone(),
        )
    }
}

impl TryFrom<Bm25Data> for Bm25 {
    type Error = RagError;
    fn try_from(d: Bm25Data) -> Result<Self> {
        d.params.validate()?;
        Ok(Bm25::from_parts(d.params, d.analyzer, d.docs))
    }
}

impl From<Bm25> for Bm25Data {
    fn from(b: Bm25) -> Self {
        Bm25Data {
            params: b.params,
            analyzer: b.analyzer.config().clone(),
            docs: b.docs,
        }
    }
}

impl Bm25 {
    /// An empty index.
    pub fn new(params: Bm25Params, analyzer: AnalyzerConfig) -> Result<Bm25> {
        params.validate()?;
        Ok(Bm25::from_parts(params, analyzer, Vec::new()))
    }

    fn from_parts(params: Bm25Params, analyzer: AnalyzerConfig, docs: Vec<Doc>) -> Bm25 {
        let mut b = Bm25 {
            params,
            analyzer: Analyzer::new(analyzer),
            docs,
            postings: HashMap::new(),
            idf: HashMap::new(),
            avgdl: 0.0,
        };
        b.rebuild();
        b
    }

    fn rebuild(&mut self) {
        self.postings.clear();
        for (i, d) in self.docs.iter().enumerate() {
            for (t, c) in &d.tf {
                self.postings
                    .entry(t.clone())
                    .or_default()
                    .push((i as u32, *c));
            }
        }
        let n = self.docs.len() as f64;
        let total: u64 = self.docs.iter().map(|d| u64::from(d.len)).sum();
        self.avgdl = if self.docs.is_empty() {
            0.0
        } else {
            total as f64 / n
        };
        let raw = |df: f64| ((n - df + 0.5) / (df + 0.5)).ln();
        self.idf = match self.params.idf {
            Idf::Lucene => self
                .postings
                .iter()
                .map(|(t, p)| {
                    (
                        t.clone(),
                        (1.0 + (n - p.len() as f64 + 0.5) / (p.len() as f64 + 0.5)).ln(),
                    )
                })
                .collect(),
            Idf::Okapi { epsilon } => {
                let mut idf: HashMap<String, f64> = self
                    .postings
                    .iter()
                    .map(|(t, p)| (t.clone(), raw(p.len() as f64)))
                    .collect();
                let mean = if idf.is_empty() {
                    0.0
                } else {
                    idf.values().sum::<f64>() / idf.len() as f64
                };
                for v in idf.values_mut() {
                    if *v < 0.0 {
                        *v = epsilon * mean;
                    }
                }
                idf
            }
        };
    }

    /// The parameters.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// The analyzer.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Adds documents given as already analyzed terms (one rebuild of the statistics for the whole batch).
    pub fn extend_terms<I: IntoIterator<Item = (String, Vec<String>)>>(&mut self, docs: I) {
        for (id, terms) in docs {
            let mut counts: HashMap<String, u32> = HashMap::new();
            for t in &terms {
                *counts.entry(t.clone()).or_default() += 1;
            }
            let mut tf: Vec<(String, u32)> = counts.into_iter().collect();
            tf.sort();
            self.docs.push(Doc {
                id,
                len: terms.len() as u32,
                tf,
            });
        }
        self.rebuild();
    }

    /// Adds documents given as text (analyzed with this index's analyzer).
    pub fn extend<'a, I: IntoIterator<Item = (String, &'a str)>>(&mut self, docs: I) {
        let analyzed: Vec<(String, Vec<String>)> = docs
            .into_iter()
            .map(|(id, text)| (id, self.analyzer.terms(text)))
            .collect();
        self.extend_terms(analyzed);
    }

    /// Keeps only the documents whose id satisfies `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.docs.retain(|d| keep(&d.id));
        self.rebuild();
    }

    /// The IDF of a term (0 for a term no document has).
    pub fn idf(&self, term: &str) -> f64 {
        self.idf.get(term).copied().unwrap_or(0.0)
    }

    /// The score of every document for analyzed query terms, in insertion order.
    pub fn scores_terms(&self, query: &[String]) -> Vec<f64> {
        let mut scores = vec![0.0; self.docs.len()];
        let (k1, b) = (self.params.k1, self.params.b);
        for q in query {
            let Some(post) = self.postings.get(q) else {
                continue;
            };
            let idf = self.idf(q);
            for &(d, f) in post {
                let f = f64::from(f);
                let len = f64::from(self.docs[d as usize].len);
                scores[d as usize] +=
                    idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * len / self.avgdl));
            }
        }
        scores
    }

    /// Document ids in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.docs.iter().map(|d| d.id.as_str())
    }
}

impl Retriever for Bm25 {
    fn retrieve(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let terms = self.analyzer.terms(query);
        let scores = self.scores_terms(&terms);
        // Only documents that share a term with the query are hits.
        let mut matched = vec![false; self.docs.len()];
        for q in &terms {
            for &(d, _) in self.postings.get(q).map(Vec::as_slice).unwrap_or_default() {
                matched[d as usize] = true;
            }
        }
        let mut hits: Vec<Hit> = scores
            .iter()
            .enumerate()
            .filter(|&(i, _)| matched[i])
            .map(|(i, &s)| Hit {
                chunk_id: self.docs[i].id.clone(),
                score: s as f32,
            })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(k);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_the_textbook_formula_and_round_trips_through_json() -> Result<()> {
        let mut b = Bm25::new(Bm25Params::default(), AnalyzerConfig::default())?;
        b.extend([
            ("a".to_string(), "the cat sat on the mat"),
            ("b".to_string(), "dogs and cats and more cats"),
            ("c".to_string(), "a bird"),
        ]);
        let hits = b.retrieve("cats", 10)?;
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        // By hand: N = 3, n(cat) = 2, idf = ln(1 + 1.5/2.5); avgdl = (3 + 4 + 1)/3 (stop words dropped:
        // [cat sat mat], [dog cat more cat], [bird]).
        let idf = (1.0f64 + 1.5 / 2.5).ln();
        let avgdl = 8.0 / 3.0;
        let a = idf * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 3.0 / avgdl));
        assert!(
            (f64::from(hits[1].score) - a).abs() < 1e-5,
            "{} vs {a}",
            hits[1].score
        );
        let json = serde_json::to_string(&b).map_err(|e| RagError::Index(e.to_string()))?;
        let back: Bm25 = serde_json::from_str(&json).map_err(|e| RagError::Index(e.to_string()))?;
        assert_eq!(back.retrieve("cats", 10)?, hits);
        let mut fewer = back.clone();
        fewer.retain(|id| id != "b");
        assert_eq!(fewer.retrieve("cats", 10)?.len(), 1);
        assert!(
            Bm25::new(
                Bm25Params {
                    b: 1.5,
                    ..Bm25Params::default()
                },
                AnalyzerConfig::default()
            )
            .is_err()
        );
        Ok(())
    }
}
