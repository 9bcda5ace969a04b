//! The one evaluation path, used by `temper eval` and by every trainer's periodic evaluation: problems →
//! sampling ([`Policy`]) → answer extraction → strategy → scores ([`Reward`]) → [`Report`].

use temper_chat::GenerationParams;
use temper_judges::BootstrapConfig;
use temper_rewards::{
    Reward, RewardInput, ScoreBreakdown, answer_matches, argmax_score, canonical_answer,
    extract_final_answer, majority_vote, weighted_vote,
};
use temper_tasks::Problem;

use crate::error::{EvalError, Result};
use crate::policy::{Policy, Sample, problem_seed};
use crate::report::{ProblemRecord, Report, SampleRecord};
use crate::strategy::{Strategy, step_search};

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// How the answer is chosen.
    pub strategy: Strategy,
    /// Samples per problem (the search's width per step).
    pub n: usize,
    /// Largest k of pass@k and maj@k (default `n`).
    pub k: Option<usize>,
    /// Sampling parameters (greedy forces temperature 0); their seed is replaced by [`seed`](Self::seed)'s
    /// per-problem seeds.
    pub params: GenerationParams,
    /// The run's seed: samples and the bootstrap depend on it alone.
    pub seed: u64,
    /// The accuracy CI (95 %, 1000 resamples; seeded by `seed`).
    pub bootstrap: BootstrapConfig,
}

impl EvalConfig {
    /// `n` samples per problem with `strategy` and `params`, seeded by `seed`; k up to `n`, a 95 % CI.
    pub fn new(strategy: Strategy, n: usize, params: GenerationParams, seed: u64) -> EvalConfig {
        EvalConfig {
            strategy,
            n,
            k: None,
            params,
            seed,
            bootstrap: BootstrapConfig {
                seed,
                ..BootstrapConfig::default()
            },
        }
    }

    /// The largest k reported.
    pub fn max_k(&self) -> usize {
        self.k.unwrap_or(self.n)
    }

    /// Checks `n`, `k`, the parameters and that a strategy that needs a scorer has one.
    pub fn validate(&self, has_scorer: bool) -> Result<()> {
        self.strategy.check_n(self.n)?;
        if let Some(k) = self.k
            && !(1..=self.n).contains(&k)
        {
            return Err(EvalError::Config {
                field: "k",
                message: format!("must be in 1..=n (n = {}), got {k}", self.n),
            });
        }
        self.params
            .validate()
            .map_err(|message| EvalError::Config {
                field: "params",
                message,
            })?;
        if self.strategy.needs_scorer() && !has_scorer {
            return Err(EvalError::Config {
                field: "scorer",
                message: format!(
                    "strategy {} ranks samples and needs a scorer",
                    self.strategy
                ),
            });
        }
        Ok(())
    }

    /// The sampling parameters of the strategy: greedy decodes at temperature 0.
    fn sampling(&self) -> GenerationParams {
        match self.strategy {
            Strategy::Greedy => GenerationParams {
                temperature: 0.0,
                top_k: None,
                top_p: None,
                ..self.params.clone()
            },
            _ => self.params.clone(),
        }
    }
}

/// Evaluates `policy` on `problems` of task `task` with `config`; `scorer` ranks samples (best-of-N, weighted
/// vote, search) and, when given, every kept sample's score is reported. `on_problem(done, record)` is called
/// after each problem (a progress bar). Deterministic for a fixed `config.seed` and a deterministic policy.
pub fn evaluate<P: Policy + ?Sized>(
    task: &str,
    problems: &[Problem],
    policy: &P,
    scorer: Option<&dyn Reward>,
    config: &EvalConfig,
    mut on_problem: impl FnMut(usize, &ProblemRecord),
) -> Result<Report> {
    config.validate(scorer.is_some())?;
    let params = GenerationParams {
        seed: config.seed,
        ..config.sampling()
    };
    let budget = config.strategy.budget(config.n, params.max_new_tokens);
    let mut records = Vec::with_capacity(problems.len());
    if let Strategy::Search(settings) = &config.strategy {
        let scorer = scorer.ok_or_else(|| EvalError::Config {
            field: "scorer",
            message: "search needs a scorer".into(),
        })?;
        for (i, problem) in problems.iter().enumerate() {
            let prompt = policy.prompt_text(problem)?;
            let seeded = GenerationParams {
                seed: problem_seed(config.seed, i),
                ..params.clone()
            };
            let outcome = step_search(policy, problem, &prompt, scorer, settings, &seeded, budget)?;
            let samples: Vec<Sample> = outcome
                .beam
                .iter()
                .map(|s| Sample {
                    completion: s.text.clone(),
                    tokens: s.tokens,
                    finish: crate::policy::Finish::Stop,
                })
                .collect();
            let mut record = record(problem, &prompt, &samples, Some(scorer))?;
            // The search chose the first state of its beam.
            record.chosen_sample = (!record.samples.is_empty()).then_some(0);
            record.chosen = record.samples.first().and_then(|s| s.answer.clone());
            record.correct = record.samples.first().is_some_and(|s| s.correct);
            record.tokens = outcome.spent;
            on_problem(i + 1, &record);
            records.push(record);
        }
    } else {
        // One problem at a time, so the progress bar moves and a long run can be watched.
        for (i, problem) in problems.iter().enumerate() {
            let prompt = policy.prompt_text(problem)?;
            let seeded = GenerationParams {
                seed: problem_seed(config.seed, i),
                ..params.clone()
            };
            let samples = policy.sample(problem, config.n, &seeded)?;
            let record = choose(
                &config.strategy,
                record(problem, &prompt, &samples, scorer)?,
            )?;
            on_problem(i + 1, &record);
            records.push(record);
        }
    }
    Report::new(task, config, scorer.map(|s| s.name()), records)
}

/// Greedy evaluation of many problems at once through [`Policy::sample_many`] (a trainer's held-out evaluation:
/// one batched call), with the same records and report as [`evaluate`] with [`Strategy::Greedy`].
pub fn evaluate_greedy_batched<P: Policy + ?Sized>(
    task: &str,
    problems: &[Problem],
    policy: &P,
    scorer: Option<&dyn Reward>,
    config: &EvalConfig,
) -> Result<Report> {
    if config.strategy != Strategy::Greedy {
        return Err(EvalError::Config {
            field: "strategy",
            message: format!("batched evaluation is greedy only, got {}", config.strategy),
        });
    }
    config.validate(scorer.is_some())?;
    let params = GenerationParams {
        seed: config.seed,
        ..config.sampling()
    };
    let samples = policy.sample_many(problems, 1, &params)?;
    let records = problems
        .iter()
        .zip(&samples)
        .map(|(problem, s)| {
            let prompt = policy.prompt_text(problem)?;
            choose(&Strategy::Greedy, record(problem, &prompt, s, scorer)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Report::new(task, config, scorer.map(|s| s.name()), records)
}

/// The records of a problem's samples: extracted answers, correctness, tokens and (with a scorer) scores.
fn record(
    problem: &Problem,
    prompt: &str,
    samples: &[Sample],
    scorer: Option<&dyn Reward>,
) -> Result<ProblemRecord> {
    let texts: Vec<String> = samples
        .iter()
        .map(|s| format!("{}{}", problem.prefill, s.completion))
        .collect();
    let scores: Option<ScoreBreakdown> = match scorer {
        Some(r) if !texts.is_empty() => {
            let batch: Vec<RewardInput<'_>> = texts
                .iter()
                .map(|t| RewardInput {
                    prompt,
                    completion: t,
                    reference: problem.reference.as_deref(),
                })
                .collect();
            Some(r.score_parts(&batch).map_err(|source| EvalError::Reward {
                problem: problem.id.clone(),
                source,
            })?)
        }
        _ => None,
    };
    let records = samples
        .iter()
        .zip(texts)
        .enumerate()
        .map(|(j, (s, text))| {
            let answer = extract_final_answer(&text);
            let correct = match (&answer, &problem.reference) {
                (Some(a), Some(r)) => answer_matches(a, r),
                _ => false,
            };
            SampleRecord {
                answer,
                correct,
                tokens: s.tokens,
                score: scores.as_ref().map(|b| b.total[j]),
                text,
                parts: scores
                    .as_ref()
                    .map(|b| b.parts.iter().map(|(_, _, v)| v[j]).collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    Ok(ProblemRecord {
        id: problem.id.clone(),
        reference: problem.reference.clone(),
        samples: records,
        chosen: None,
        chosen_sample: None,
        correct: false,
        tokens: samples.iter().map(|s| s.tokens).sum(),
    })
}

/// Applies a sampling strategy's selection rule to a problem's records.
fn choose(strategy: &Strategy, mut record: ProblemRecord) -> Result<ProblemRecord> {
    let keys: Vec<Option<String>> = record
        .samples
        .iter()
        .map(|s| s.answer.as_deref().map(canonical_answer))
        .collect();
    let first_with = |key: &str| keys.iter().position(|k| k.as_deref() == Some(key));
    let picked = match strategy {
        Strategy::Greedy => (!record.samples.is_empty()).then_some(0),
        Strategy::BestOfN => {
            let scores: Vec<f64> = record
                .samples
                .iter()
                .map(|s| s.score.unwrap_or(f64::NAN))
                .collect();
            // All-NaN (or no) scores choose nothing: the problem counts as wrong.
            argmax_score(&scores).ok()
        }
        Strategy::Majority => majority_vote(&keys).and_then(|(key, _)| first_with(&key)),
        Strategy::Weighted => {
            let weights: Vec<f64> = record
                .samples
                .iter()
                .map(|s| s.score.unwrap_or(0.0))
                .collect();
            weighted_vote(&keys, &weights)
                .map_err(|source| EvalError::Reward {
                    problem: record.id.clone(),
                    source,
                })?
                .and_then(|(key, _)| first_with(&key))
        }
        Strategy::Search(_) => {
            return Err(EvalError::Config {
                field: "strategy",
                message: "search chooses during the search, not from samples".into(),
            });
        }
    };
    record.chosen_sample = picked;
    let chosen = picked.and_then(|i| record.samples.get(i));
    record.chosen = chosen.and_then(|s| s.answer.clone());
    record.correct = chosen.is_some_and(|s| s.correct);
    Ok(record)
}
