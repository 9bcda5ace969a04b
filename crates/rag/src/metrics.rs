//! Retrieval metrics of one ranked list against graded relevance judgments, as `trec_eval` computes them:
//! recall@k, precision@k (divided by k even when fewer were retrieved), reciprocal rank, nDCG@k with linear gain
//! (`gain = grade`, discount `log2(rank + 1)`). A document is relevant when its grade is > 0. Ties in scores are
//! broken like `trec_eval`: by document id, in decreasing order ([`rank_run`]).

use std::collections::HashMap;

/// Graded judgments of one query: document id → grade (0 = judged not relevant).
pub type Qrels = HashMap<String, i32>;

/// Orders a run (document, score) as `trec_eval` does: score descending, ties by id descending.
pub fn rank_run(run: &[(String, f64)]) -> Vec<String> {
    let mut v: Vec<&(String, f64)> = run.iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    v.into_iter().map(|(d, _)| d.clone()).collect()
}

fn relevant(qrels: &Qrels, doc: &str) -> bool {
    qrels.get(doc).is_some_and(|&g| g > 0)
}

/// Fraction of the relevant documents found in the first `k` (0 when none is relevant).
pub fn recall_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    let total = qrels.values().filter(|&&g| g > 0).count();
    if total == 0 {
        return 0.0;
    }
    ranked.iter().take(k).filter(|d| relevant(qrels, d)).count() as f64 / total as f64
}

/// Relevant documents among the first `k`, divided by `k`.
pub fn precision_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    ranked.iter().take(k).filter(|d| relevant(qrels, d)).count() as f64 / k as f64
}

/// 1 / rank of the first relevant document, 0 if none is retrieved.
pub fn reciprocal_rank(ranked: &[String], qrels: &Qrels) -> f64 {
    ranked
        .iter()
        .position(|d| relevant(qrels, d))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// nDCG@k with linear gains: DCG of the first `k` over the DCG of the ideal ordering of all judged grades.
pub fn ndcg_at(ranked: &[String], qrels: &Qrels, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| {
            f64::from(qrels.get(d).copied().unwrap_or(0).max(0)) / ((i + 2) as f64).log2()
        })
        .sum();
    let mut grades: Vec<i32> = qrels.values().copied().filter(|&g| g > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    let ideal: f64 = grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / ((i + 2) as f64).log2())
        .sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// The usual summary of one query.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct QueryMetrics {
    /// recall@1.
    pub recall_1: f64,
    /// recall@5.
    pub recall_5: f64,
    /// recall@10.
    pub recall_10: f64,
    /// precision@5.
    pub precision_5: f64,
    /// Reciprocal rank.
    pub mrr: f64,
    /// nDCG@10.
    pub ndcg_10: f64,
}

impl QueryMetrics {
    /// All metrics of one ranked list.
    pub fn of(ranked: &[String], qrels: &Qrels) -> QueryMetrics {
        QueryMetrics {
            recall_1: recall_at(ranked, qrels, 1),
            recall_5: recall_at(ranked, qrels, 5),
            recall_10: recall_at(ranked, qrels, 10),
            precision_5: precision_at(ranked, qrels, 5),
            mrr: reciprocal_rank(ranked, qrels),
            ndcg_10: ndcg_at(ranked, qrels, 10),
        }
    }

    /// The mean over queries (all zeros for none).
    pub fn mean(all: &[QueryMetrics]) -> QueryMetrics {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&QueryMetrics) -> f64| all.iter().map(f).sum::<f64>() / n;
        QueryMetrics {
            recall_1: sum(|m| m.recall_1),
            recall_5: sum(|m| m.recall_5),
            recall_10: sum(|m| m.recall_10),
            precision_5: sum(|m| m.precision_5),
            mrr: sum(|m| m.mrr),
            ndcg_10: sum(|m| m.ndcg_10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        let qrels: Qrels = [("a", 2), ("b", 1), ("c", 0), ("z", 3)]
            .into_iter()
            .map(|(d, g)| (d.to_string(), g))
            .collect();
        let ranked: Vec<String> = ["c", "a", "x", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(recall_at(&ranked, &qrels, 2), 1.0 / 3.0);
        assert_eq!(precision_at(&ranked, &qrels, 4), 0.5);
        assert_eq!(precision_at(&ranked, &qrels, 10), 0.2);
        assert_eq!(reciprocal_rank(&ranked, &qrels), 0.5);
        // DCG@4 = 2/log2(3) + 1/log2(5); ideal = 3/1 + 2/log2(3) + 1/2.
        let want = (2.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (3.0 + 2.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at(&ranked, &qrels, 4) - want).abs() < 1e-12);
        let tied = rank_run(&[("d1".into(), 1.0), ("d3".into(), 1.0), ("d2".into(), 2.0)]);
        assert_eq!(tied, ["d2", "d3", "d1"]);
    }
}
