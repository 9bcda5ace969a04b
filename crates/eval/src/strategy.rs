//! Test-time strategies behind one enum: greedy, best-of-N, majority vote (self-consistency), reward-weighted
//! vote and verifier-guided step-level beam search, each with a budget in generated tokens. The selection rules
//! are `temper-rewards`' test-time-scaling primitives ([`argmax_score`], [`majority_vote`], [`weighted_vote`],
//! [`search`]).

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use temper_chat::GenerationParams;
use temper_rewards::{Reward, RewardVerifier, SearchConfig, StepProposer, Verifier, search};
use temper_tasks::Problem;

use crate::error::{EvalError, Result};
use crate::policy::{Finish, Policy, Sample};

/// Step-level search settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SearchSettings {
    /// Partial solutions kept after each step (≥ 1).
    pub beam: usize,
    /// Continuations sampled per kept partial (≥ 1).
    pub expand: usize,
    /// Largest number of steps.
    pub max_steps: usize,
    /// What ends a step: the policy stops at this string (default a newline: one line of reasoning per step).
    pub delimiter: char,
}

impl SearchSettings {
    /// The search for a width of `n` samples per step: a beam of `⌊√n⌋` partials, each expanded `n / beam`
    /// times (so about `n` continuations are sampled and verified per step), at most 8 steps, one line a step.
    pub fn for_width(n: usize) -> SearchSettings {
        let beam = (n.max(1) as f64).sqrt().floor().max(1.0) as usize;
        SearchSettings {
            beam,
            expand: (n.max(1) / beam).max(1),
            max_steps: 8,
            delimiter: '\n',
        }
    }
}

/// How the answer of a problem is chosen from the model's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Strategy {
    /// One greedy completion (`n` must be 1).
    Greedy,
    /// `n` samples; the one the scorer rates highest ([`argmax_score`](temper_rewards::argmax_score); ties: the
    /// earliest sample).
    BestOfN,
    /// `n` samples; the most frequent normalised answer ([`majority_vote`](temper_rewards::majority_vote) over
    /// [`canonical_answer`](temper_rewards::canonical_answer)s; ties: the answer that appeared first; samples
    /// without an answer do not vote). Needs no scorer.
    Majority,
    /// `n` samples; the answer with the largest sum of scorer scores
    /// ([`weighted_vote`](temper_rewards::weighted_vote); ties: the answer that appeared first).
    Weighted,
    /// Verifier-guided step-level beam search: the scorer ranks partial solutions after each step.
    Search(SearchSettings),
}

impl Strategy {
    /// The CLI name (`greedy`, `best-of-n`, `majority`, `weighted`, `search`).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Greedy => "greedy",
            Strategy::BestOfN => "best-of-n",
            Strategy::Majority => "majority",
            Strategy::Weighted => "weighted",
            Strategy::Search(_) => "search",
        }
    }

    /// Whether the strategy needs a scorer to choose.
    pub fn needs_scorer(&self) -> bool {
        matches!(
            self,
            Strategy::BestOfN | Strategy::Weighted | Strategy::Search(_)
        )
    }

    /// The most tokens the strategy may generate for one problem with `n` samples of at most `max_new_tokens`:
    /// `n · max_new_tokens` (1 sample for greedy). Search stops proposing once it has spent this much.
    pub fn budget(&self, n: usize, max_new_tokens: usize) -> usize {
        match self {
            Strategy::Greedy => max_new_tokens,
            _ => n.saturating_mul(max_new_tokens),
        }
    }

    /// Checks `n` against the strategy: greedy takes exactly one sample, the others at least one.
    pub fn check_n(&self, n: usize) -> Result<()> {
        match (self, n) {
            (_, 0) => Err(EvalError::Config {
                field: "n",
                message: "must be at least 1".into(),
            }),
            (Strategy::Greedy, n) if n != 1 => Err(EvalError::Config {
                field: "n",
                message: format!(
                    "greedy takes exactly one sample, got n = {n} (use best-of-n, majority or weighted)"
                ),
            }),
            (Strategy::Search(s), _) if s.beam == 0 || s.expand == 0 || s.max_steps == 0 => {
                Err(EvalError::Config {
                    field: "strategy",
                    message: format!(
                        "search needs beam, expand and max_steps >= 1, got {}, {}, {}",
                        s.beam, s.expand, s.max_steps
                    ),
                })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = EvalError;

    /// Parses a CLI name; `search` gets [`SearchSettings::for_width`]`(1)` (set the width with `for_width`).
    fn from_str(s: &str) -> Result<Strategy> {
        Ok(match s {
            "greedy" => Strategy::Greedy,
            "best-of-n" => Strategy::BestOfN,
            "majority" => Strategy::Majority,
            "weighted" => Strategy::Weighted,
            "search" => Strategy::Search(SearchSettings::for_width(1)),
            other => {
                return Err(EvalError::Config {
                    field: "strategy",
                    message: format!(
                        "unknown strategy `{other}` (greedy, best-of-n, majority, weighted, search)"
                    ),
                });
            }
        })
    }
}

/// A partial solution of the step search: the text generated so far (without the prefill), its tokens, and
/// whether it is finished.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Partial {
    pub(crate) text: String,
    pub(crate) tokens: usize,
    pub(crate) done: bool,
}

/// Extends partial solutions by sampling one step (up to the delimiter) from the policy, within a token budget.
struct PolicySteps<'a, P: ?Sized> {
    policy: &'a P,
    problem: &'a Problem,
    params: GenerationParams,
    budget: usize,
    spent: Cell<usize>,
    calls: Cell<u64>,
    error: Cell<Option<EvalError>>,
}

impl<P: Policy + ?Sized> StepProposer for PolicySteps<'_, P> {
    type State = Partial;

    fn propose(&self, state: &Partial, k: usize) -> temper_rewards::Result<Vec<Partial>> {
        if self.spent.get() >= self.budget {
            return Ok(Vec::new());
        }
        let problem = Problem {
            prefill: format!("{}{}", self.problem.prefill, state.text),
            ..self.problem.clone()
        };
        let call = self.calls.get();
        self.calls.set(call + 1);
        let params = GenerationParams {
            seed: self.params.seed.wrapping_add(call.wrapping_mul(0x1_0000)),
            ..self.params.clone()
        };
        let samples = match self.policy.sample(&problem, k, &params) {
            Ok(s) => s,
            Err(e) => {
                // Kept for the caller: the Reward error type cannot carry it.
                let message = e.to_string();
                self.error.set(Some(e));
                return Err(temper_rewards::RewardError::External {
                    context: "policy".into(),
                    message,
                });
            }
        };
        self.spent
            .set(self.spent.get() + samples.iter().map(|s| s.tokens).sum::<usize>());
        Ok(samples
            .into_iter()
            .map(|s: Sample| Partial {
                text: format!("{}{}", state.text, s.completion),
                tokens: state.tokens + s.tokens,
                done: s.finish != Finish::StopString || s.completion.is_empty(),
            })
            .collect())
    }

    fn is_terminal(&self, state: &Partial) -> bool {
        state.done
    }
}

/// Scores partials as `prefill + text` with a [`RewardVerifier`].
struct PartialVerifier<'a> {
    inner: RewardVerifier<&'a dyn Reward>,
    prefill: &'a str,
}

impl Verifier<Partial> for PartialVerifier<'_> {
    fn score(&self, states: &[Partial]) -> temper_rewards::Result<Vec<f64>> {
        let texts: Vec<String> = states
            .iter()
            .map(|s| format!("{}{}", self.prefill, s.text))
            .collect();
        self.inner.score(&texts)
    }
}

/// What a step search returns: the final beam (best first) and the tokens spent on every branch.
pub(crate) struct SearchOutcome {
    pub(crate) beam: Vec<Partial>,
    pub(crate) spent: usize,
}

/// Runs the verifier-guided step search for one problem.
pub(crate) fn step_search<P: Policy + ?Sized>(
    policy: &P,
    problem: &Problem,
    prompt: &str,
    scorer: &dyn Reward,
    settings: &SearchSettings,
    params: &GenerationParams,
    budget: usize,
) -> Result<SearchOutcome> {
    let mut step = params.clone();
    step.stop = vec![settings.delimiter.to_string()];
    let proposer = PolicySteps {
        policy,
        problem,
        params: step,
        budget,
        spent: Cell::new(0),
        calls: Cell::new(0),
        error: Cell::new(None),
    };
    let verifier = PartialVerifier {
        inner: RewardVerifier::new(scorer, prompt, problem.reference.as_deref()),
        prefill: &problem.prefill,
    };
    let config = SearchConfig {
        beam: settings.beam,
        expand: settings.expand,
        max_steps: settings.max_steps,
    };
    let init = Partial {
        text: String::new(),
        tokens: 0,
        done: false,
    };
    let result = search(&proposer, &verifier, init, &config).map_err(|source| {
        match proposer.error.take() {
            Some(e) => e,
            None => EvalError::Reward {
                problem: problem.id.clone(),
                source,
            },
        }
    })?;
    // The chosen state first, then the rest of the final beam.
    let mut beam = vec![result.best.clone()];
    beam.extend(
        result
            .beam
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| *s != result.best),
    );
    // The start state (empty, unfinished) is no sample; a proposed empty completion (EOS at once) is finished.
    beam.retain(|s| s.done || !s.text.is_empty());
    Ok(SearchOutcome {
        beam,
        spent: proposer.spent.get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_n_is_checked() {
        for name in ["greedy", "best-of-n", "majority", "weighted", "search"] {
            assert_eq!(name.parse::<Strategy>().expect(name).name(), name);
        }
        let e = "best_of_n".parse::<Strategy>().expect_err("unknown");
        assert!(
            e.to_string().contains("unknown strategy `best_of_n`"),
            "{e}"
        );
        assert!(Strategy::Greedy.check_n(1).is_ok());
        let e = Strategy::Greedy.check_n(4).expect_err("greedy n=4");
        assert!(
            e.to_string()
                .contains("greedy takes exactly one sample, got n = 4"),
            "{e}"
        );
        assert!(Strategy::Majority.check_n(0).is_err());
        assert_eq!(
            SearchSettings::for_width(16),
            SearchSettings {
                beam: 4,
                expand: 4,
                max_steps: 8,
                delimiter: '\n'
            }
        );
        assert_eq!(SearchSettings::for_width(2).beam, 1);
        assert_eq!(Strategy::BestOfN.budget(4, 32), 128);
        assert_eq!(Strategy::Greedy.budget(1, 32), 32);
    }
}
