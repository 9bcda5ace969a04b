//! The evaluation [`Report`] (the JSON `temper eval --json` prints) and its metrics: accuracy with a seeded 95 %
//! bootstrap CI (`temper-judges`' [`bootstrap_ci`]), unbiased pass@k and maj@k for every k up to the sample
//! count ([`mean_pass_at_k`], [`maj_at_k`]), tokens per problem.

use std::collections::BTreeMap;

use serde::Serialize;
use temper_judges::bootstrap_ci;
use temper_rewards::{canonical_answer, maj_at_k, mean_pass_at_k, reference_answer};

use crate::error::{EvalError, Result};
use crate::run::EvalConfig;

/// One sample of a problem as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRecord {
    /// The extracted final answer ([`extract_final_answer`](temper_rewards::extract_final_answer)); `null` when
    /// nothing could be read.
    pub answer: Option<String>,
    /// Whether `answer` matches the reference.
    pub correct: bool,
    /// Tokens generated for this sample.
    pub tokens: usize,
    /// The scorer's total score, when a scorer ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The completion as the reward saw it (prefill + generated text).
    pub text: String,
    /// The scorer's parts (`Reward::score_parts`), for logging each separately.
    #[serde(skip)]
    pub parts: Vec<f64>,
}

/// One problem as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProblemRecord {
    /// The problem id.
    pub id: String,
    /// The reference answer (`null` for a problem without one).
    pub reference: Option<String>,
    /// Every sample the strategy kept (for search: the final beam, the chosen one first).
    pub samples: Vec<SampleRecord>,
    /// The chosen answer (`null`: none).
    pub chosen: Option<String>,
    /// The index of the chosen sample in `samples`.
    pub chosen_sample: Option<usize>,
    /// Whether the chosen answer is right.
    pub correct: bool,
    /// Tokens generated for this problem in total (every sample; for search every explored branch).
    pub tokens: usize,
}

/// A value with its bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The value on the evaluated problems.
    pub value: f64,
    /// Lower bound of the 95 % percentile-bootstrap CI over problems.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
}

/// Tokens spent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tokens {
    /// Over all problems.
    pub total: usize,
    /// Mean per problem.
    pub per_problem: f64,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The task name.
    pub task: String,
    /// The strategy (`greedy`, `best-of-n`...).
    pub strategy: String,
    /// Samples per problem asked for.
    pub n: usize,
    /// The scorer's name (`null`: none).
    pub scorer: Option<String>,
    /// The run's seed.
    pub seed: u64,
    /// Accuracy of the chosen answers with its CI.
    pub accuracy: Estimate,
    /// Unbiased pass@k (Chen et al. 2021) of the samples, for k = 1..=K.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// maj@k: majority vote over the first k samples, for k = 1..=K.
    pub maj_at_k: BTreeMap<usize, f64>,
    /// Tokens generated.
    pub tokens: Tokens,
    /// Every problem.
    pub problems: Vec<ProblemRecord>,
}

impl Report {
    /// Builds the report of `problems` evaluated with `config`: accuracy with a bootstrap CI
    /// (`config.bootstrap`), pass@k and maj@k for `k = 1..=config.max_k()` (capped by the fewest samples any
    /// problem has), tokens.
    pub fn new(
        task: &str,
        config: &EvalConfig,
        scorer: Option<&str>,
        problems: Vec<ProblemRecord>,
    ) -> Result<Report> {
        let (strategy, n, seed, max_k, bootstrap) = (
            &config.strategy,
            config.n,
            config.seed,
            config.max_k(),
            &config.bootstrap,
        );
        if problems.is_empty() {
            return Err(EvalError::Config {
                field: "limit",
                message: "no problems to evaluate".into(),
            });
        }
        let correct: Vec<f64> = problems
            .iter()
            .map(|p| f64::from(u8::from(p.correct)))
            .collect();
        let value = correct.iter().sum::<f64>() / correct.len() as f64;
        let ci = bootstrap_ci(correct.len(), bootstrap, |idx| {
            Some(idx.iter().map(|&i| correct[i]).sum::<f64>() / idx.len() as f64)
        });
        let (ci_low, ci_high) = ci.map_or((value, value), |c| (c.lo, c.hi));
        let k_cap = problems
            .iter()
            .map(|p| p.samples.len())
            .min()
            .unwrap_or(0)
            .min(max_k);
        let counts: Vec<(usize, usize)> = problems
            .iter()
            .map(|p| {
                (
                    p.samples.len(),
                    p.samples.iter().filter(|s| s.correct).count(),
                )
            })
            .collect();
        let keys: Vec<Vec<Option<String>>> = problems
            .iter()
            .map(|p| {
                p.samples
                    .iter()
                    .map(|s| s.answer.as_deref().map(canonical_answer))
                    .collect()
            })
            .collect();
        // A problem without a reference matches no answer: its key is one no sample can have.
        let refs: Vec<String> = problems
            .iter()
            .map(|p| {
                p.reference
                    .as_deref()
                    .and_then(reference_answer)
                    .map_or_else(|| "\u{0}none".into(), |r| canonical_answer(&r))
            })
            .collect();
        let mut pass_at_k = BTreeMap::new();
        let mut maj = BTreeMap::new();
        let metric = |source: temper_rewards::RewardError| EvalError::Config {
            field: "k",
            message: source.to_string(),
        };
        for k in 1..=k_cap {
            pass_at_k.insert(k, mean_pass_at_k(&counts, k).map_err(metric)?);
            maj.insert(k, maj_at_k(&keys, &refs, k).map_err(metric)?);
        }
        let total: usize = problems.iter().map(|p| p.tokens).sum();
        Ok(Report {
            task: task.to_string(),
            strategy: strategy.name().to_string(),
            n,
            scorer: scorer.map(str::to_string),
            seed,
            accuracy: Estimate {
                value,
                ci_low,
                ci_high,
            },
            pass_at_k,
            maj_at_k: maj,
            tokens: Tokens {
                total,
                per_problem: total as f64 / problems.len() as f64,
            },
            problems,
        })
    }

    /// Mean over problems of the chosen sample's total score (`None` without a scorer).
    pub fn mean_chosen_score(&self) -> Option<f64> {
        self.mean_chosen(|s| s.score)
    }

    /// Mean over problems of part `i` of the chosen sample's score (`None` without a scorer or such a part).
    pub fn mean_chosen_part(&self, i: usize) -> Option<f64> {
        self.mean_chosen(|s| s.parts.get(i).copied())
    }

    fn mean_chosen(&self, f: impl Fn(&SampleRecord) -> Option<f64>) -> Option<f64> {
        let values: Option<Vec<f64>> = self
            .problems
            .iter()
            .map(|p| p.chosen_sample.and_then(|i| p.samples.get(i)).and_then(&f))
            .collect();
        values
            .filter(|v| !v.is_empty())
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use temper_judges::BootstrapConfig;

    use super::*;
    use crate::strategy::Strategy;

    fn config(strategy: Strategy, n: usize, k: usize) -> EvalConfig {
        EvalConfig {
            k: Some(k),
            ..EvalConfig::new(strategy, n, temper_chat::GenerationParams::default(), 7)
        }
    }

    fn sample(answer: Option<&str>, correct: bool) -> SampleRecord {
        SampleRecord {
            answer: answer.map(str::to_string),
            correct,
            tokens: 3,
            score: None,
            text: String::new(),
            parts: Vec::new(),
        }
    }

    #[test]
    fn metrics_from_the_samples() -> Result<()> {
        // Problem a: 1 of 3 right, majority wrong; problem b: 2 of 3 right (1,000 = 1000), majority right.
        let problems = vec![
            ProblemRecord {
                id: "a".into(),
                reference: Some("4".into()),
                samples: vec![
                    sample(Some("5"), false),
                    sample(Some("4"), true),
                    sample(Some("5"), false),
                ],
                chosen: Some("5".into()),
                chosen_sample: Some(0),
                correct: false,
                tokens: 9,
            },
            ProblemRecord {
                id: "b".into(),
                reference: Some("1000".into()),
                samples: vec![
                    sample(None, false),
                    sample(Some("1,000"), true),
                    sample(Some("1000"), true),
                ],
                chosen: Some("1000".into()),
                chosen_sample: Some(1),
                correct: true,
                tokens: 9,
            },
        ];
        let r = Report::new("t", &config(Strategy::Majority, 3, 2), None, problems)?;
        assert_eq!(BootstrapConfig::default().level, 0.95);
        assert_eq!(r.accuracy.value, 0.5);
        assert!(r.accuracy.ci_low <= 0.5 && r.accuracy.ci_high >= 0.5 && r.accuracy.ci_low >= 0.0);
        // pass@1 = mean(1/3, 2/3); pass@2 = mean(1 - C(2,2)/C(3,2), 1 - 0) = mean(2/3, 1).
        assert!((r.pass_at_k[&1] - 0.5).abs() < 1e-12);
        assert!((r.pass_at_k[&2] - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(r.pass_at_k.len(), 2, "k stops at max_k");
        // maj@1: [5 ✗, none ✗]; maj@2: [5 (tie 5/4, first) ✗, 1000 ✓].
        assert_eq!((r.maj_at_k[&1], r.maj_at_k[&2]), (0.0, 0.5));
        assert_eq!((r.tokens.total, r.tokens.per_problem), (18, 9.0));
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(json["pass_at_k"]["2"].as_f64(), Some(r.pass_at_k[&2]));
        assert!(Report::new("t", &config(Strategy::Greedy, 1, 1), None, vec![]).is_err());
        Ok(())
    }
}
