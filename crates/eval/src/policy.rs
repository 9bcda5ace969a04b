//! The [`Policy`] seam (N sampled completions of one problem, each with its token count) and [`ChatPolicy`],
//! any [`ChatBackend`] as a policy (a local Temper model through `LocalChat`, an OpenAI-compatible endpoint).

use temper_chat::{ChatBackend, GenerationParams, Message};
use temper_tasks::{Problem, plain_prompt};

use crate::error::{EvalError, Result};

/// Why a sampled completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model ended it (EOS), or the back end does not say.
    Stop,
    /// A stop string of the request ended it (a step of a step-level search).
    StopString,
    /// It hit `max_new_tokens`.
    Length,
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The generated text, without the problem's prefill.
    pub completion: String,
    /// Tokens generated (0 when the back end does not count them).
    pub tokens: usize,
    /// Why it ended.
    pub finish: Finish,
}

/// A model to evaluate: samples completions of a [`Problem`] (its messages, continued from its prefill).
/// One required method.
pub trait Policy {
    /// `n` completions of `problem` with `params`; `params.seed` seeds them, so the same seed gives the same
    /// samples. Greedy params with `n > 1` may return `n` equal samples.
    fn sample(&self, problem: &Problem, n: usize, params: &GenerationParams)
    -> Result<Vec<Sample>>;

    /// `n` completions of each problem, as [`sample_each`] draws them (problem `i` with seed
    /// [`problem_seed`]`(params.seed, i)`). A policy may override this to batch problems, as long as the result is
    /// the same for a given seed.
    fn sample_many(
        &self,
        problems: &[Problem],
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Vec<Sample>>> {
        sample_each(self, problems, n, params)
    }

    /// The prompt text a reward sees for `problem` (its [`RewardInput::prompt`](temper_rewards::RewardInput)).
    /// Default: the plain `Question: … / Answer: ` text and the prefill; a local model gives its rendered prompt.
    fn prompt_text(&self, problem: &Problem) -> Result<String> {
        Ok(plain_prompt(&problem.messages)? + &problem.prefill)
    }
}

impl<P: Policy + ?Sized> Policy for &P {
    fn sample(
        &self,
        problem: &Problem,
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Sample>> {
        (**self).sample(problem, n, params)
    }
    fn sample_many(
        &self,
        problems: &[Problem],
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Vec<Sample>>> {
        (**self).sample_many(problems, n, params)
    }
    fn prompt_text(&self, problem: &Problem) -> Result<String> {
        (**self).prompt_text(problem)
    }
}

/// `n` completions of each problem, one [`Policy::sample`] call per problem; problem `i` is sampled with seed
/// [`problem_seed`]`(params.seed, i)`.
pub fn sample_each<P: Policy + ?Sized>(
    policy: &P,
    problems: &[Problem],
    n: usize,
    params: &GenerationParams,
) -> Result<Vec<Vec<Sample>>> {
    problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let seeded = GenerationParams {
                seed: problem_seed(params.seed, i),
                ..params.clone()
            };
            policy.sample(p, n, &seeded)
        })
        .collect()
}

/// The seed of problem `index` of an evaluation seeded with `seed` (SplitMix64 of both), so each problem's
/// samples depend on the run's seed and the problem's position only.
pub fn problem_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed
        ^ (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Any [`ChatBackend`] as a [`Policy`]: sample `j` of `n` is one request with seed `params.seed + j`; the prefill
/// is sent as a trailing assistant message (which `LocalChat` continues). Token counts come from
/// [`ChatBackend::reply`] (0 when the back end does not report them). A reply that ends with one of the
/// request's stop strings ended at it; one with `max_new_tokens` tokens hit the limit.
#[derive(Debug, Clone)]
pub struct ChatPolicy<B> {
    backend: B,
}

impl<B: ChatBackend> ChatPolicy<B> {
    /// A policy over `backend`.
    pub fn new(backend: B) -> ChatPolicy<B> {
        ChatPolicy { backend }
    }
}

impl<B: ChatBackend> Policy for ChatPolicy<B> {
    fn sample(
        &self,
        problem: &Problem,
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Sample>> {
        let mut messages = problem.messages.clone();
        if !problem.prefill.is_empty() {
            messages.push(Message::assistant(problem.prefill.clone()));
        }
        (0..n)
            .map(|j| {
                let p = GenerationParams {
                    seed: params.seed.wrapping_add(j as u64),
                    ..params.clone()
                };
                let reply = self
                    .backend
                    .reply(&messages, &p)
                    .map_err(|e| EvalError::Policy {
                        problem: problem.id.clone(),
                        message: e.to_string(),
                    })?;
                let tokens = reply.completion_tokens.unwrap_or(0);
                let finish = if params.stop.iter().any(|s| reply.text.ends_with(s.as_str())) {
                    Finish::StopString
                } else if tokens >= params.max_new_tokens {
                    Finish::Length
                } else {
                    Finish::Stop
                };
                Ok(Sample {
                    completion: reply.text,
                    tokens,
                    finish,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use temper_chat::{ChatError, Reply};

    use super::*;

    /// Replies with the seed and the last message, counting words as tokens.
    struct Echo;
    impl ChatBackend for Echo {
        fn complete(
            &self,
            messages: &[Message],
            params: &GenerationParams,
        ) -> Result<String, ChatError> {
            Ok(format!(
                "{} seed {}",
                messages.last().map(|m| m.content.as_str()).unwrap_or(""),
                params.seed
            ))
        }
        fn reply(
            &self,
            messages: &[Message],
            params: &GenerationParams,
        ) -> Result<Reply, ChatError> {
            let text = self.complete(messages, params)?;
            Ok(Reply {
                completion_tokens: Some(text.split_whitespace().count()),
                text,
                prompt_tokens: None,
            })
        }
    }

    #[test]
    fn chat_policy_seeds_each_sample_and_sends_the_prefill() -> Result<()> {
        let problem = Problem {
            prefill: "<answer>".into(),
            ..Problem::question("q/0", "What is 2 + 2?", Some("4".into()))
        };
        let samples = ChatPolicy::new(Echo).sample(
            &problem,
            3,
            &GenerationParams {
                seed: 5,
                ..Default::default()
            },
        )?;
        let texts: Vec<&str> = samples.iter().map(|s| s.completion.as_str()).collect();
        assert_eq!(
            texts,
            ["<answer> seed 5", "<answer> seed 6", "<answer> seed 7"]
        );
        assert!(
            samples
                .iter()
                .all(|s| s.tokens == 3 && s.finish == Finish::Stop)
        );
        let many = ChatPolicy::new(Echo).sample_many(
            &[problem.clone(), problem],
            1,
            &GenerationParams::greedy(8),
        )?;
        assert_ne!(many[0], many[1], "each problem has its own seed");
        Ok(())
    }

    #[test]
    fn problem_seeds_differ_by_index_and_seed() {
        assert_eq!(problem_seed(1, 2), problem_seed(1, 2));
        assert_ne!(problem_seed(1, 2), problem_seed(1, 3));
        assert_ne!(problem_seed(1, 2), problem_seed(2, 2));
    }
}
