//! `temper-eval`: evaluation and test-time scaling — one path from a task's problems to a report, used by
//! `temper eval` and by every trainer's periodic held-out evaluation.
//!
//! - **Policies:** the [`Policy`] seam samples N completions of a [`Problem`](temper_tasks::Problem) with a seed,
//!   each with its token count; [`ChatPolicy`] is any `ChatBackend` (the local model through `LocalChat`, an
//!   OpenAI-compatible endpoint). The in-training model is `temper_train::ModelPolicy` (shared prefill).
//! - **Strategies:** [`Strategy`] greedy / best-of-N / majority vote (self-consistency) / reward-weighted vote /
//!   verifier-guided step-level beam search, each with a budget in generated tokens ([`Strategy::budget`]).
//!   Scorers are any `temper_rewards::Reward`: the rule reward, a trained reward model, or an LLM judge through
//!   [`JudgeReward`].
//! - **Metrics:** [`Report`]: accuracy with a seeded 95 % bootstrap CI, unbiased pass@k and maj@k for every
//!   k ≤ N from the same samples, tokens per problem, and every sample's answer.
//!
//! **Invariant:** no burn, no HTTP: models and endpoints come in through the [`Policy`] and `Reward` seams.
//!
//! ```
//! use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};
//! use temper_eval::{ChatPolicy, EvalConfig, Strategy, evaluate};
//! use temper_tasks::Problem;
//!
//! /// Answers 4 for even seeds and 5 for odd ones.
//! struct Coin;
//! impl ChatBackend for Coin {
//!     fn complete(&self, _: &[Message], p: &GenerationParams) -> Result<String, ChatError> {
//!         Ok(format!("The answer is {}.", 4 + p.seed % 2))
//!     }
//! }
//! let problems = [Problem::question("q0", "What is 2 + 2?", Some("4".into()))];
//! let config = EvalConfig::new(Strategy::Majority, 4, GenerationParams::default(), 0);
//! let report = evaluate("demo", &problems, &ChatPolicy::new(Coin), None, &config, |_, _| {})?;
//! assert_eq!(report.problems[0].samples.len(), 4);
//! assert_eq!(report.pass_at_k.len(), 4);
//! # Ok::<(), temper_eval::EvalError>(())
//! ```

mod error;
mod judge_reward;
mod policy;
mod report;
mod run;
mod strategy;

pub use error::{EvalError, Result};
pub use judge_reward::JudgeReward;
pub use policy::{ChatPolicy, Finish, Policy, Sample, problem_seed, sample_each};
pub use report::{Estimate, ProblemRecord, Report, SampleRecord, Tokens};
pub use run::{EvalConfig, evaluate, evaluate_greedy_batched};
pub use strategy::{SearchSettings, Strategy};

#[cfg(test)]
mod tests {
    use temper_chat::GenerationParams;
    use temper_rewards::{FinalAnswerAccuracy, FnReward, RewardInput};
    use temper_tasks::Problem;

    use super::*;

    /// A scripted policy: sample `j` answers `answers[(seed + j) % len]`; with a `\n` stop string it writes one
    /// step (`step k\n`) per call until the prefill holds two steps, then the answer.
    struct Script {
        answers: Vec<&'static str>,
    }

    impl Policy for Script {
        fn sample(
            &self,
            problem: &Problem,
            n: usize,
            params: &GenerationParams,
        ) -> Result<Vec<Sample>> {
            Ok((0..n)
                .map(|j| {
                    let pick =
                        self.answers[(params.seed as usize).wrapping_add(j) % self.answers.len()];
                    let stepping = params.stop.iter().any(|s| s == "\n");
                    if stepping && problem.prefill.matches('\n').count() < 2 {
                        Sample {
                            completion: format!("step {pick}\n"),
                            tokens: 2,
                            finish: Finish::StopString,
                        }
                    } else {
                        Sample {
                            completion: format!("The answer is {pick}."),
                            tokens: 4,
                            finish: Finish::Stop,
                        }
                    }
                })
                .collect())
        }
    }

    fn problems() -> Vec<Problem> {
        (0..3)
            .map(|i| Problem::question(format!("p{i}"), "What is 2 + 2?", Some("4".into())))
            .collect()
    }

    fn run(
        strategy: Strategy,
        n: usize,
        scorer: Option<&dyn temper_rewards::Reward>,
        seed: u64,
    ) -> Result<Report> {
        let script = Script {
            answers: vec!["5", "4", "5", "6"],
        };
        let config = EvalConfig::new(
            strategy,
            n,
            GenerationParams {
                max_new_tokens: 8,
                ..Default::default()
            },
            seed,
        );
        evaluate("script", &problems(), &script, scorer, &config, |_, _| {})
    }

    #[test]
    fn strategies_choose_by_their_rules_and_n_is_applied() -> Result<()> {
        let rule = FinalAnswerAccuracy;
        for n in [1, 4] {
            let r = run(Strategy::Majority, n, None, 3)?;
            assert!(
                r.problems.iter().all(|p| p.samples.len() == n),
                "n = {n} samples per problem"
            );
            assert_eq!(
                r.pass_at_k.keys().copied().collect::<Vec<_>>(),
                (1..=n).collect::<Vec<_>>()
            );
            assert!(r.problems.iter().all(|p| p.tokens == 4 * n));
        }
        // Four samples see all of 5, 4, 5, 6 in some rotation: best-of-n with the rule scorer always finds the 4.
        let best = run(Strategy::BestOfN, 4, Some(&rule), 3)?;
        assert_eq!(best.accuracy.value, 1.0);
        assert!(best.problems.iter().all(
            |p| p.chosen.as_deref() == Some("4") && p.samples.iter().all(|s| s.score.is_some())
        ));
        // Majority: 5 appears twice among the four, so it wins everywhere.
        let maj = run(Strategy::Majority, 4, None, 3)?;
        assert_eq!(maj.accuracy.value, 0.0);
        assert!(
            maj.problems
                .iter()
                .all(|p| p.chosen.as_deref() == Some("5"))
        );
        // Weighted by a reward that likes 4 three times as much as anything else: 4 (3) beats 5 (1 + 1).
        let likes_four = FnReward::new("likes_four", |x: &RewardInput<'_>| {
            if x.completion.contains('4') { 3.0 } else { 1.0 }
        });
        let weighted = run(Strategy::Weighted, 4, Some(&likes_four), 3)?;
        assert_eq!(weighted.accuracy.value, 1.0);
        // pass@k over the same samples: one right answer in four, so pass@1 = 1/4 and pass@4 = 1.
        assert_eq!((maj.pass_at_k[&1], maj.pass_at_k[&4]), (0.25, 1.0));
        // Greedy takes one sample; best-of-n needs a scorer.
        assert!(run(Strategy::Greedy, 2, None, 0).is_err());
        let e = run(Strategy::BestOfN, 2, None, 0).expect_err("no scorer");
        assert!(e.to_string().contains("needs a scorer"), "{e}");
        Ok(())
    }

    #[test]
    fn the_same_seed_gives_the_same_report() -> Result<()> {
        let a = serde_json::to_string(&run(Strategy::Majority, 3, None, 11)?).expect("json");
        let b = serde_json::to_string(&run(Strategy::Majority, 3, None, 11)?).expect("json");
        assert_eq!(a, b);
        let c = serde_json::to_string(&run(Strategy::Majority, 3, None, 12)?).expect("json");
        assert_ne!(a, c, "another seed samples other answers");
        Ok(())
    }

    #[test]
    fn search_steps_are_verified_and_the_budget_counts_every_branch() -> Result<()> {
        let rule = FinalAnswerAccuracy;
        let r = run(
            Strategy::Search(SearchSettings::for_width(4)),
            4,
            Some(&rule),
            0,
        )?;
        for p in &r.problems {
            // Two steps of two tokens and a final answer of four, per branch; beam 2 × expand 2.
            assert!(p.samples.len() <= 2 && !p.samples.is_empty());
            assert!(
                p.samples[0].text.contains("The answer is"),
                "{:?}",
                p.samples[0].text
            );
            assert!(
                p.tokens > p.samples[0].tokens,
                "the explored branches cost more than the chosen path"
            );
            assert!(
                p.tokens <= 4 * 8 + 4 * 4,
                "within the budget plus one last step"
            );
        }
        // The verifier sees the final answers, so whenever a branch reaches 4 it is chosen.
        assert!(
            r.problems
                .iter()
                .all(|p| p.correct == p.samples.iter().any(|s| s.correct))
        );
        Ok(())
    }
}
