//! Verifier-guided step search: a beam search where a [`StepProposer`] extends partial solutions and a
//! [`Verifier`] (e.g. a process reward model) scores them, keeping the best `beam` partials per step.
//! [`RewardVerifier`] lets any [`Reward`] serve as the verifier.

use crate::error::{Result, RewardError};
use crate::reward::{Reward, RewardInput, score_checked};

/// Proposes continuations of a partial solution (e.g. an LLM sampling K next reasoning steps).
pub trait StepProposer {
    /// A partial solution.
    type State: Clone;

    /// Up to `k` one-step continuations of `state` (fewer, or none, is allowed; extra ones are dropped).
    fn propose(&self, state: &Self::State, k: usize) -> Result<Vec<Self::State>>;

    /// Whether `state` is a finished solution, which is no longer extended.
    fn is_terminal(&self, state: &Self::State) -> bool;
}

/// Scores partial (or finished) solutions; higher is better. NaN scores rank last.
pub trait Verifier<S> {
    /// One score per state, in order.
    fn score(&self, states: &[S]) -> Result<Vec<f64>>;
}

impl<S, F> Verifier<S> for F
where
    F: Fn(&S) -> f64,
{
    fn score(&self, states: &[S]) -> Result<Vec<f64>> {
        Ok(states.iter().map(self).collect())
    }
}

/// Any [`Reward`] as a [`Verifier`] of text states: each state is scored as a completion of one `prompt`
/// (with its optional `reference`), the whole beam in one [`Reward::score`] batch.
///
/// ```
/// use temper_rewards::{AnswerAccuracy, MatchMode, RewardVerifier, Verifier};
/// let verifier = RewardVerifier::new(AnswerAccuracy::new(MatchMode::Numeric), "What is 2 + 2?", Some("4"));
/// let states = ["<answer>5</answer>".to_string(), "<answer>4.0</answer>".to_string()];
/// assert_eq!(verifier.score(&states)?, [0.0, 1.0]);
/// # Ok::<(), temper_rewards::RewardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RewardVerifier<R> {
    /// The reward that scores each state.
    pub reward: R,
    /// The prompt every state answers.
    pub prompt: String,
    /// The reference answer given to the reward.
    pub reference: Option<String>,
}

impl<R: Reward> RewardVerifier<R> {
    /// `reward` scoring completions of `prompt` against `reference`.
    pub fn new(reward: R, prompt: impl Into<String>, reference: Option<&str>) -> RewardVerifier<R> {
        RewardVerifier {
            reward,
            prompt: prompt.into(),
            reference: reference.map(str::to_string),
        }
    }
}

impl<R: Reward, S: AsRef<str>> Verifier<S> for RewardVerifier<R> {
    fn score(&self, states: &[S]) -> Result<Vec<f64>> {
        let batch: Vec<RewardInput<'_>> = states
            .iter()
            .map(|s| RewardInput {
                prompt: &self.prompt,
                completion: s.as_ref(),
                reference: self.reference.as_deref(),
            })
            .collect();
        score_checked(&self.reward, &batch)
    }
}

/// Search budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchConfig {
    /// Partials kept after each step (≥ 1). `beam = 1` is greedy verifier-guided decoding.
    pub beam: usize,
    /// Continuations asked for per kept partial (≥ 1).
    pub expand: usize,
    /// Largest number of expansion steps.
    pub max_steps: usize,
}

/// The outcome of [`search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult<S> {
    /// The best finished state of the final beam, or its best partial when none finished.
    pub best: S,
    /// The verifier's score of `best`.
    pub score: f64,
    /// Whether `best` is terminal.
    pub finished: bool,
    /// Expansion steps run.
    pub steps: usize,
    /// States the verifier scored in total.
    pub scored: usize,
    /// The final beam with scores, best first.
    pub beam: Vec<(S, f64)>,
}

/// Beam search from `init`: each step, the non-terminal partials in the beam share a width of `beam × expand`
/// continuations from [`StepProposer::propose`] — `expand` each when the beam is full of live partials, and
/// ⌈`beam × expand` / live⌉ each when fewer are live (so the first step asks the single start state for
/// `beam × expand`, not `expand`); the new partials and the terminal states already in the beam are ranked by the
/// verifier (stable: ties keep proposal order, NaN last) and the best `beam` are kept. Stops when the whole beam
/// is terminal, no continuation is proposed, or after `max_steps` steps.
pub fn search<P: StepProposer, V: Verifier<P::State>>(
    proposer: &P,
    verifier: &V,
    init: P::State,
    config: &SearchConfig,
) -> Result<SearchResult<P::State>> {
    if config.beam == 0 || config.expand == 0 {
        return Err(RewardError::InvalidInput {
            what: "search",
            message: format!(
                "beam and expand must be >= 1, got beam = {}, expand = {}",
                config.beam, config.expand
            ),
        });
    }
    let init_score = scores_for(verifier, std::slice::from_ref(&init))?[0];
    let mut beam = vec![(init, init_score)];
    let mut scored = 1;
    let mut steps = 0;
    while steps < config.max_steps && beam.iter().any(|(s, _)| !proposer.is_terminal(s)) {
        let live = beam
            .iter()
            .filter(|(s, _)| !proposer.is_terminal(s))
            .count();
        let per_state = (config.beam * config.expand).div_ceil(live);
        let mut carried = Vec::new();
        let mut fresh = Vec::new();
        for (state, score) in &beam {
            if proposer.is_terminal(state) {
                carried.push((state.clone(), *score));
            } else {
                fresh.extend(
                    proposer
                        .propose(state, per_state)?
                        .into_iter()
                        .take(per_state),
                );
            }
        }
        if fresh.is_empty() {
            break;
        }
        steps += 1;
        let scores = scores_for(verifier, &fresh)?;
        scored += fresh.len();
        let mut pool = carried;
        pool.extend(fresh.into_iter().zip(scores));
        // Stable sort, best first, NaN last.
        pool.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
            (false, false) => b.1.total_cmp(&a.1),
            (x, y) => x.cmp(&y),
        });
        pool.truncate(config.beam);
        beam = pool;
    }
    let pick = beam
        .iter()
        .position(|(s, _)| proposer.is_terminal(s))
        .unwrap_or(0);
    let (best, score) = beam[pick].clone();
    Ok(SearchResult {
        finished: proposer.is_terminal(&best),
        best,
        score,
        steps,
        scored,
        beam,
    })
}

/// Scores `states` and checks the count.
fn scores_for<S, V: Verifier<S>>(verifier: &V, states: &[S]) -> Result<Vec<f64>> {
    let scores = verifier.score(states)?;
    if scores.len() != states.len() {
        return Err(RewardError::InvalidInput {
            what: "search",
            message: format!(
                "verifier returned {} scores for {} states",
                scores.len(),
                states.len()
            ),
        });
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a digit string of fixed length; proposes the digits in a fixed scrambled order.
    struct Digits {
        len: usize,
    }

    const ORDER: [char; 10] = ['5', '0', '9', '1', '8', '2', '7', '3', '6', '4'];

    impl StepProposer for Digits {
        type State = String;
        fn propose(&self, state: &String, k: usize) -> Result<Vec<String>> {
            Ok(ORDER
                .iter()
                .take(k)
                .map(|d| format!("{state}{d}"))
                .collect())
        }
        fn is_terminal(&self, state: &String) -> bool {
            state.len() >= self.len
        }
    }

    /// Counts the positions where `s` agrees with `target` (a process reward: partial credit per step).
    fn prefix_score(target: &'static str) -> impl Fn(&String) -> f64 {
        move |s: &String| {
            s.chars()
                .zip(target.chars())
                .filter(|(a, b)| a == b)
                .count() as f64
        }
    }

    #[test]
    fn verifier_steers_toward_the_target() -> Result<()> {
        let proposer = Digits { len: 5 };
        let cfg = SearchConfig {
            beam: 1,
            expand: 10,
            max_steps: 10,
        };
        let guided = search(&proposer, &prefix_score("31415"), String::new(), &cfg)?;
        assert_eq!(guided.best, "31415");
        assert_eq!(guided.score, 5.0);
        assert!(guided.finished);
        assert_eq!(guided.steps, 5);
        assert_eq!(guided.scored, 1 + 5 * 10);
        // A blind verifier keeps the first proposal at every step.
        let blind = search(&proposer, &|_: &String| 0.0, String::new(), &cfg)?;
        assert_eq!(blind.best, "55555");
        Ok(())
    }

    #[test]
    fn beam_needs_enough_expansion() -> Result<()> {
        // The first step asks the start state for the whole width (3 × 4 = 12, all ten digits), so the '3' is
        // found; later steps ask each of the 3 partials for 4 ('5','0','9','1'), so the '4' is out of reach and
        // the best reachable string matches every digit but that one.
        let proposer = Digits { len: 5 };
        let cfg = SearchConfig {
            beam: 3,
            expand: 4,
            max_steps: 10,
        };
        let r = search(&proposer, &prefix_score("31415"), String::new(), &cfg)?;
        assert_eq!(r.score, 4.0);
        assert_eq!(r.best, "31515");
        assert_eq!(r.beam.len(), 3);
        assert!(r.beam.windows(2).all(|w| w[0].1 >= w[1].1));
        // 1 start state + 10 at the first step + 12 at each of the 4 later ones.
        assert_eq!(r.scored, 1 + 10 + 4 * 12);
        Ok(())
    }

    #[test]
    fn the_width_is_shared_by_the_live_partials() -> Result<()> {
        // Counts what each call asked for.
        struct Asked(std::cell::RefCell<Vec<usize>>);
        impl StepProposer for Asked {
            type State = String;
            fn propose(&self, state: &String, k: usize) -> Result<Vec<String>> {
                self.0.borrow_mut().push(k);
                // "x" finishes a partial at once; digits go on.
                Ok((0..k)
                    .map(|i| {
                        if i == 0 {
                            format!("{state}x")
                        } else {
                            format!("{state}{i}")
                        }
                    })
                    .collect())
            }
            fn is_terminal(&self, state: &String) -> bool {
                state.ends_with('x') || state.len() >= 3
            }
        }
        let proposer = Asked(Default::default());
        let cfg = SearchConfig {
            beam: 2,
            expand: 3,
            max_steps: 2,
        };
        // Every state scores the same, so the beam keeps proposal order: "x" (terminal) and "1" (live).
        search(&proposer, &|_: &String| 0.0, String::new(), &cfg)?;
        // Step 1: the start state alone gets 2 × 3 = 6; step 2: "1" is the only live partial and gets all 6.
        assert_eq!(*proposer.0.borrow(), [6, 6]);
        Ok(())
    }

    #[test]
    fn max_steps_stops_early() -> Result<()> {
        let proposer = Digits { len: 5 };
        let cfg = SearchConfig {
            beam: 2,
            expand: 10,
            max_steps: 2,
        };
        let r = search(&proposer, &prefix_score("31415"), String::new(), &cfg)?;
        assert_eq!((r.best.as_str(), r.finished, r.steps), ("31", false, 2));
        assert!(
            search(
                &proposer,
                &prefix_score("1"),
                String::new(),
                &SearchConfig { beam: 0, ..cfg }
            )
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn a_reward_guides_the_search_through_its_verifier_adapter() -> Result<()> {
        // The reward credits digits matching the reference at their position, like `prefix_score`.
        let reward = crate::reward::FnReward::new("digits", |x: &RewardInput<'_>| {
            let target = x.reference.unwrap_or_default();
            x.completion
                .chars()
                .zip(target.chars())
                .filter(|(a, b)| a == b)
                .count() as f64
        });
        let verifier = RewardVerifier::new(reward, "digits of pi", Some("31415"));
        let cfg = SearchConfig {
            beam: 1,
            expand: 10,
            max_steps: 10,
        };
        let via_reward = search(&Digits { len: 5 }, &verifier, String::new(), &cfg)?;
        let via_closure = search(
            &Digits { len: 5 },
            &prefix_score("31415"),
            String::new(),
            &cfg,
        )?;
        assert_eq!(via_reward, via_closure);
        assert_eq!((via_reward.best.as_str(), via_reward.score), ("31415", 5.0));
        // A reward that needs a reference reports the missing one instead of scoring.
        let strict = RewardVerifier::new(
            crate::rules::AnswerAccuracy::new(crate::rules::MatchMode::Numeric),
            "q",
            None,
        );
        assert!(Verifier::<&str>::score(&strict, &["<answer>1</answer>"]).is_err());
        Ok(())
    }

    #[test]
    fn nan_scores_rank_last() -> Result<()> {
        let proposer = Digits { len: 1 };
        let nan_for_five = |s: &String| if s == "5" { f64::NAN } else { 1.0 };
        let r = search(
            &proposer,
            &nan_for_five,
            String::new(),
            &SearchConfig {
                beam: 1,
                expand: 3,
                max_steps: 1,
            },
        )?;
        assert_eq!(r.best, "0");
        Ok(())
    }
}
