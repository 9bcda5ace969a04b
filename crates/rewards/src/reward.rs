//! The [`Reward`] seam (a batch of prompt, completion, reference → one score each), its blanket impls, the
//! closure adapter [`FnReward`] and the [`WeightedSum`] combinator.

use std::fmt;
use std::sync::Arc;

use crate::error::{Result, RewardError};

/// One item to score: the prompt, the decoded completion and, for verifiable tasks, the reference answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardInput<'a> {
    /// The prompt the completion answers (plain text or a rendered chat template).
    pub prompt: &'a str,
    /// The decoded completion, without the prompt.
    pub completion: &'a str,
    /// The reference answer or solution (a GSM8K solution ending in `#### N`, or just `N`).
    pub reference: Option<&'a str>,
}

impl<'a> RewardInput<'a> {
    /// An item with a reference.
    pub fn new(prompt: &'a str, completion: &'a str, reference: &'a str) -> RewardInput<'a> {
        RewardInput {
            prompt,
            completion,
            reference: Some(reference),
        }
    }

    /// An item without a reference.
    pub fn unreferenced(prompt: &'a str, completion: &'a str) -> RewardInput<'a> {
        RewardInput {
            prompt,
            completion,
            reference: None,
        }
    }
}

/// A reward: scores a batch of completions, one `f64` per item, in order.
///
/// Implementations must return exactly `batch.len()` scores. Rule rewards live in this crate; the neural reward
/// model lives in the train crate on this same trait.
pub trait Reward: Send + Sync {
    /// A short name for logs and errors (`answer_accuracy`, `format`...).
    fn name(&self) -> &str;

    /// One score per item of `batch`.
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>>;

    /// The named, weighted parts behind the score, for logging each reward separately (a trainer's reward
    /// columns). Default: one part, this reward with weight 1; [`WeightedSum`] lists its parts.
    fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        let scores = score_checked(self, batch)?;
        Ok(ScoreBreakdown {
            parts: vec![(self.name().to_string(), 1.0, scores.clone())],
            total: scores,
        })
    }
}

impl<T: Reward + ?Sized> Reward for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        (**self).score(batch)
    }
    fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        (**self).score_parts(batch)
    }
}

impl<T: Reward + ?Sized> Reward for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        (**self).score(batch)
    }
    fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        (**self).score_parts(batch)
    }
}

impl<T: Reward + ?Sized> Reward for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        (**self).score(batch)
    }
    fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        (**self).score_parts(batch)
    }
}

/// Scores `batch` with `reward` and checks that it returned one score per item.
pub fn score_checked<R: Reward + ?Sized>(
    reward: &R,
    batch: &[RewardInput<'_>],
) -> Result<Vec<f64>> {
    let scores = reward.score(batch)?;
    if scores.len() != batch.len() {
        return Err(RewardError::BatchSize {
            reward: reward.name().to_string(),
            expected: batch.len(),
            got: scores.len(),
        });
    }
    Ok(scores)
}

/// A reward from a per-item closure.
///
/// ```
/// use temper_rewards::{FnReward, Reward, RewardInput};
/// let short = FnReward::new("short", |x: &RewardInput<'_>| if x.completion.len() < 10 { 1.0 } else { 0.0 });
/// let batch = [RewardInput::unreferenced("q", "ok"), RewardInput::unreferenced("q", "far too long")];
/// assert_eq!(short.score(&batch)?, vec![1.0, 0.0]);
/// # Ok::<(), temper_rewards::RewardError>(())
/// ```
pub struct FnReward<F> {
    name: String,
    f: F,
}

impl<F> FnReward<F>
where
    F: Fn(&RewardInput<'_>) -> f64 + Send + Sync,
{
    /// Wraps `f` under `name`.
    pub fn new(name: impl Into<String>, f: F) -> FnReward<F> {
        FnReward {
            name: name.into(),
            f,
        }
    }
}

impl<F> fmt::Debug for FnReward<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnReward")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> Reward for FnReward<F>
where
    F: Fn(&RewardInput<'_>) -> f64 + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        Ok(batch.iter().map(&self.f).collect())
    }
}

/// `Σ wᵢ · rᵢ` over its parts, item by item.
///
/// ```
/// use temper_rewards::{AnswerAccuracy, FormatReward, MatchMode, Reward, RewardInput, WeightedSum};
/// let sum = WeightedSum::new(vec![
///     (1.0, Box::new(AnswerAccuracy::new(MatchMode::Numeric)) as Box<dyn Reward>),
///     (0.5, Box::new(FormatReward::new(r"<answer>.*</answer>")?)),
/// ]);
/// let batch = [RewardInput::new("2+2?", "<answer>4.0</answer>", "#### 4")];
/// assert_eq!(sum.score(&batch)?, vec![1.5]);
/// # Ok::<(), temper_rewards::RewardError>(())
/// ```
pub struct WeightedSum {
    /// `(weight, reward)` pairs.
    pub parts: Vec<(f64, Box<dyn Reward>)>,
}

/// The per-part scores behind a [`WeightedSum`], for logging each reward separately.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreBreakdown {
    /// `(name, weight, unweighted scores)` of each part, in order.
    pub parts: Vec<(String, f64, Vec<f64>)>,
    /// The weighted sum per item.
    pub total: Vec<f64>,
}

impl WeightedSum {
    /// A sum of `parts`.
    pub fn new(parts: Vec<(f64, Box<dyn Reward>)>) -> WeightedSum {
        WeightedSum { parts }
    }

    /// Scores every part and returns the unweighted scores of each next to the weighted total.
    pub fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        let mut total = vec![0.0; batch.len()];
        let mut parts = Vec::with_capacity(self.parts.len());
        for (weight, reward) in &self.parts {
            let scores = score_checked(reward, batch)?;
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += weight * s;
            }
            parts.push((reward.name().to_string(), *weight, scores));
        }
        Ok(ScoreBreakdown { parts, total })
    }
}

impl fmt::Debug for WeightedSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<(f64, &str)> = self.parts.iter().map(|(w, r)| (*w, r.name())).collect();
        f.debug_struct("WeightedSum")
            .field("parts", &parts)
            .finish()
    }
}

impl Reward for WeightedSum {
    fn name(&self) -> &str {
        "weighted_sum"
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        Ok(WeightedSum::score_parts(self, batch)?.total)
    }
    fn score_parts(&self, batch: &[RewardInput<'_>]) -> Result<ScoreBreakdown> {
        WeightedSum::score_parts(self, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reward returning a fixed score list, whatever the batch.
    struct Fixed(Vec<f64>);
    impl Reward for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn score(&self, _: &[RewardInput<'_>]) -> Result<Vec<f64>> {
            Ok(self.0.clone())
        }
    }

    fn batch3() -> [RewardInput<'static>; 3] {
        [
            RewardInput::unreferenced("p", "a"),
            RewardInput::unreferenced("p", "bb"),
            RewardInput::unreferenced("p", "ccc"),
        ]
    }

    #[test]
    fn weighted_sums() -> Result<()> {
        // (weighted parts, expected totals)
        type Case = (Vec<(f64, Vec<f64>)>, Vec<f64>);
        let cases: Vec<Case> = vec![
            (vec![], vec![0.0, 0.0, 0.0]),
            (vec![(1.0, vec![1.0, 0.0, 1.0])], vec![1.0, 0.0, 1.0]),
            (
                vec![(2.0, vec![1.0, 0.0, 1.0]), (0.5, vec![1.0, 1.0, 0.0])],
                vec![2.5, 0.5, 2.0],
            ),
            (
                vec![(1.0, vec![1.0, 1.0, 1.0]), (-0.25, vec![0.0, 2.0, 4.0])],
                vec![1.0, 0.5, 0.0],
            ),
            (
                vec![(0.0, vec![5.0, 5.0, 5.0]), (3.0, vec![-1.0, 0.0, 1.0])],
                vec![-3.0, 0.0, 3.0],
            ),
        ];
        for (parts, want) in cases {
            let sum = WeightedSum::new(
                parts
                    .iter()
                    .map(|(w, s)| (*w, Box::new(Fixed(s.clone())) as Box<dyn Reward>))
                    .collect(),
            );
            assert_eq!(sum.score(&batch3())?, want, "{sum:?}");
        }
        Ok(())
    }

    #[test]
    fn breakdown_keeps_unweighted_scores() -> Result<()> {
        let len = FnReward::new("len", |x: &RewardInput<'_>| x.completion.len() as f64);
        let sum = WeightedSum::new(vec![
            (2.0, Box::new(len)),
            (1.0, Box::new(Fixed(vec![0.5, 0.5, 0.5]))),
        ]);
        let b = sum.score_parts(&batch3())?;
        assert_eq!(b.parts[0], ("len".to_string(), 2.0, vec![1.0, 2.0, 3.0]));
        assert_eq!(b.parts[1].0, "fixed");
        assert_eq!(b.total, vec![2.5, 4.5, 6.5]);
        Ok(())
    }

    #[test]
    fn a_dyn_reward_gives_its_parts() -> Result<()> {
        let sum = WeightedSum::new(vec![(2.0, Box::new(Fixed(vec![1.0, 2.0, 3.0])))]);
        let as_dyn: &dyn Reward = &sum;
        assert_eq!(as_dyn.score_parts(&batch3())?.parts, vec![("fixed".to_string(), 2.0, vec![1.0, 2.0, 3.0])]);
        let single: Box<dyn Reward> = Box::new(Fixed(vec![0.5; 3]));
        let b = single.score_parts(&batch3())?;
        assert_eq!((b.parts[0].0.as_str(), b.parts[0].1, b.total.clone()), ("fixed", 1.0, vec![0.5; 3]));
        Ok(())
    }

    #[test]
    fn wrong_batch_size_is_an_error() {
        let sum = WeightedSum::new(vec![(1.0, Box::new(Fixed(vec![1.0])))]);
        let err = sum.score(&batch3()).expect_err("one score for three items");
        assert_eq!(
            err.to_string(),
            "reward `fixed` returned 1 scores for a batch of 3 items"
        );
    }

    #[test]
    fn blanket_impls_forward() -> Result<()> {
        let f = FnReward::new("one", |_: &RewardInput<'_>| 1.0);
        let arc: Arc<dyn Reward> = Arc::new(FnReward::new("arc", |_: &RewardInput<'_>| 2.0));
        let by_ref: &dyn Reward = &f;
        assert_eq!(by_ref.score(&batch3())?, vec![1.0; 3]);
        assert_eq!(Reward::name(&&*arc), "arc");
        assert_eq!(score_checked(&arc, &batch3())?, vec![2.0; 3]);
        let boxed: Box<dyn Reward> = Box::new(arc);
        assert_eq!(boxed.score(&batch3()[..1])?, vec![2.0]);
        Ok(())
    }
}
