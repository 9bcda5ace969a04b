//! Test-time scaling over N sampled candidates of one prompt: best-of-N ([`argmax_score`]), majority and weighted
//! vote, and the pass@k (Chen et al. 2021, <https://arxiv.org/abs/2107.03374>) and maj@k accuracy estimators.

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::{Result, RewardError};

/// Best-of-N over one prompt's candidates: the index of the best one, the first maximum of `scores`. NaN never
/// wins; `+inf` may. Errors when `scores` is empty or all NaN. (Not to be confused with
/// `temper_rl_objectives::cem::best_of_n`, CEM's per-group elite selection.)
pub fn argmax_score(scores: &[f64]) -> Result<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
        .ok_or_else(|| RewardError::InvalidInput {
            what: "argmax_score",
            message: if scores.is_empty() {
                "no candidates".to_string()
            } else {
                format!("all {} scores are NaN", scores.len())
            },
        })
}

/// The most frequent answer and its count; ties go to the answer seen first. `None` answers (nothing
/// extracted) are ignored; `None` when no candidate has an answer.
///
/// Vote over normalised keys (e.g. [`canonical_answer`](crate::canonical_answer)) so `1,000` and `1000` agree.
pub fn majority_vote<T: Eq + Hash + Clone>(answers: &[Option<T>]) -> Option<(T, usize)> {
    let mut order: Vec<(&T, usize)> = Vec::new();
    let mut index: HashMap<&T, usize> = HashMap::new();
    for a in answers.iter().flatten() {
        match index.get(a) {
            Some(&i) => order[i].1 += 1,
            None => {
                index.insert(a, order.len());
                order.push((a, 1));
            }
        }
    }
    // Strictly greater keeps the first occurrence on ties.
    let mut best: Option<(&T, usize)> = None;
    for (a, n) in order {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((a, n));
        }
    }
    best.map(|(a, n)| (a.clone(), n))
}

/// The answer with the largest total weight (e.g. reward-model scores or verifier probabilities) and that total;
/// ties go to the answer seen first, `None` answers are ignored. Errors when the lengths differ or a weight of a
/// voting candidate is not finite.
pub fn weighted_vote<T: Eq + Hash + Clone>(
    answers: &[Option<T>],
    weights: &[f64],
) -> Result<Option<(T, f64)>> {
    if answers.len() != weights.len() {
        return Err(RewardError::InvalidInput {
            what: "weighted_vote",
            message: format!("{} answers but {} weights", answers.len(), weights.len()),
        });
    }
    let mut order: Vec<(&T, f64)> = Vec::new();
    let mut index: HashMap<&T, usize> = HashMap::new();
    for (i, (a, &w)) in answers.iter().zip(weights).enumerate() {
        let Some(a) = a else { continue };
        if !w.is_finite() {
            return Err(RewardError::InvalidInput {
                what: "weighted_vote",
                message: format!("weight {i} is {w}, expected a finite number"),
            });
        }
        match index.get(a) {
            Some(&j) => order[j].1 += w,
            None => {
                index.insert(a, order.len());
                order.push((a, w));
            }
        }
    }
    let mut best: Option<(&T, f64)> = None;
    for (a, w) in order {
        if best.is_none_or(|(_, b)| w > b) {
            best = Some((a, w));
        }
    }
    Ok(best.map(|(a, w)| (a.clone(), w)))
}

/// The unbiased pass@k estimate from `n` samples of which `c` are correct:
/// `1 - C(n-c, k) / C(n, k)`, computed as the stable product `1 - Π_{i=n-c+1}^{n} (1 - k/i)` of Chen et al.
/// (2021), fig. 3. Errors unless `1 ≤ k ≤ n` and `c ≤ n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Result<f64> {
    if k == 0 || k > n || c > n {
        return Err(RewardError::InvalidInput {
            what: "pass_at_k",
            message: format!("need 1 <= k <= n and c <= n, got n = {n}, c = {c}, k = {k}"),
        });
    }
    if n - c < k {
        return Ok(1.0);
    }
    let prod: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Ok(1.0 - prod)
}

/// The mean of [`pass_at_k`] over problems given as `(n, c)` pairs.
pub fn mean_pass_at_k(counts: &[(usize, usize)], k: usize) -> Result<f64> {
    if counts.is_empty() {
        return Err(RewardError::InvalidInput {
            what: "mean_pass_at_k",
            message: "no problems".to_string(),
        });
    }
    let total = counts
        .iter()
        .map(|&(n, c)| pass_at_k(n, c, k))
        .sum::<Result<f64>>()?;
    Ok(total / counts.len() as f64)
}

/// maj@k: the fraction of problems whose [`majority_vote`] over their first `k` sampled answers equals the
/// reference (no answer counts as wrong). Errors when the lengths differ, `k == 0`, or a problem has fewer than
/// `k` samples.
pub fn maj_at_k<T: Eq + Hash + Clone>(
    samples: &[Vec<Option<T>>],
    references: &[T],
    k: usize,
) -> Result<f64> {
    if samples.len() != references.len() || samples.is_empty() || k == 0 {
        return Err(RewardError::InvalidInput {
            what: "maj_at_k",
            message: format!(
                "need as many problems as references (got {} and {}), at least one, and k >= 1 (got {k})",
                samples.len(),
                references.len()
            ),
        });
    }
    let mut correct = 0usize;
    for (i, (s, r)) in samples.iter().zip(references).enumerate() {
        if s.len() < k {
            return Err(RewardError::InvalidInput {
                what: "maj_at_k",
                message: format!("problem {i} has {} samples, fewer than k = {k}", s.len()),
            });
        }
        if majority_vote(&s[..k]).is_some_and(|(a, _)| &a == r) {
            correct += 1;
        }
    }
    Ok(correct as f64 / samples.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_score_table() {
        let nan = f64::NAN;
        let cases: &[(&[f64], Option<usize>)] = &[
            (&[0.1, 0.9, 0.5], Some(1)),
            (&[0.9, 0.9, 0.1], Some(0)),
            (&[nan, 0.2, nan], Some(1)),
            (&[nan, -5.0], Some(1)),
            (&[1.0, f64::INFINITY, nan], Some(1)),
            (&[f64::NEG_INFINITY], Some(0)),
            (&[nan, nan], None),
            (&[], None),
        ];
        for (scores, want) in cases {
            assert_eq!(argmax_score(scores).ok(), *want, "{scores:?}");
        }
        let err = argmax_score(&[nan, nan]).expect_err("all NaN");
        assert_eq!(err.to_string(), "argmax_score: all 2 scores are NaN");
    }

    #[test]
    fn majority_vote_table() {
        type Case<'a> = (&'a [Option<&'a str>], Option<(&'a str, usize)>);
        let cases: &[Case<'_>] = &[
            (&[Some("4"), Some("5"), Some("4")], Some(("4", 2))),
            (
                &[Some("5"), Some("4"), Some("4"), Some("5")],
                Some(("5", 2)),
            ),
            (&[None, None, Some("7")], Some(("7", 1))),
            (
                &[None, Some("1"), None, Some("2"), Some("2")],
                Some(("2", 2)),
            ),
            (&[None, None], None),
            (&[], None),
        ];
        for (answers, want) in cases {
            assert_eq!(majority_vote(answers), *want, "{answers:?}");
        }
        // With canonical keys, different spellings of one number pool their votes.
        let raw = ["1,000", "999", "1000.0", "1e3", "999"];
        let keys: Vec<Option<String>> = raw
            .iter()
            .map(|a| Some(crate::canonical_answer(a)))
            .collect();
        assert_eq!(majority_vote(&keys), Some(("1000".to_string(), 3)));
    }

    #[test]
    fn weighted_vote_table() -> Result<()> {
        type Case<'a> = (&'a [Option<&'a str>], &'a [f64], Option<(&'a str, f64)>);
        let cases: &[Case<'_>] = &[
            (
                &[Some("a"), Some("b"), Some("b")],
                &[0.9, 0.3, 0.4],
                Some(("a", 0.9)),
            ),
            (
                &[Some("a"), Some("b"), Some("b")],
                &[0.5, 0.3, 0.4],
                Some(("b", 0.7)),
            ),
            (&[Some("a"), Some("b")], &[0.5, 0.5], Some(("a", 0.5))),
            (&[None, Some("b")], &[f64::NAN, 0.1], Some(("b", 0.1))),
            (&[None], &[1.0], None),
        ];
        for (answers, weights, want) in cases {
            let got = weighted_vote(answers, weights)?;
            match (got, want) {
                (Some((a, w)), Some((wa, ww))) => {
                    assert_eq!(a, *wa, "{answers:?}");
                    assert!((w - ww).abs() < 1e-12, "{answers:?}: {w} vs {ww}");
                }
                (got, want) => assert_eq!(got.is_none(), want.is_none(), "{answers:?}"),
            }
        }
        assert!(weighted_vote(&[Some("a")], &[1.0, 2.0]).is_err());
        let err =
            weighted_vote(&[Some("a"), Some("b")], &[1.0, f64::INFINITY]).expect_err("inf weight");
        assert_eq!(
            err.to_string(),
            "weighted_vote: weight 1 is inf, expected a finite number"
        );
        Ok(())
    }

    #[test]
    fn pass_at_k_edges() -> Result<()> {
        assert_eq!(pass_at_k(10, 0, 1)?, 0.0);
        assert_eq!(pass_at_k(10, 10, 5)?, 1.0);
        assert_eq!(pass_at_k(10, 6, 5)?, 1.0); // n - c = 4 < k: every k-subset holds a correct sample
        assert!((pass_at_k(10, 3, 1)? - 0.3).abs() < 1e-12); // pass@1 = c / n
        assert!(pass_at_k(3, 1, 4).is_err());
        assert!(pass_at_k(3, 4, 1).is_err());
        assert!(pass_at_k(3, 1, 0).is_err());
        assert!((mean_pass_at_k(&[(4, 1), (4, 3)], 1)? - 0.5).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn maj_at_k_table() -> Result<()> {
        let samples = vec![
            vec![Some(1), Some(2), Some(2), Some(1), Some(1)],
            vec![Some(3), None, None, Some(3), Some(4)],
            vec![None, None, None, None, None],
        ];
        let refs = [1, 3, 0];
        // (k, maj@k): k=1 → [1 ✓, 3 ✓, none ✗]; k=3 → [2 ✗, 3 ✓, ✗]; k=5 → [1 ✓, 3 ✓, ✗].
        for (k, want) in [(1, 2.0 / 3.0), (3, 1.0 / 3.0), (5, 2.0 / 3.0)] {
            assert!(
                (maj_at_k(&samples, &refs, k)? - want).abs() < 1e-12,
                "k = {k}"
            );
        }
        assert!(maj_at_k(&samples, &refs, 6).is_err());
        assert!(maj_at_k(&samples, &refs[..2], 1).is_err());
        Ok(())
    }
}
