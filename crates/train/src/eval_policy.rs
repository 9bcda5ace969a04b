//! [`ModelPolicy`]: a Temper model (the one being trained, or any loaded checkpoint) as a `temper_eval::Policy`,
//! so trainers' held-out evaluation and `temper eval` share one path. The N samples of a problem share one
//! prefill ([`generate_n`]).

use burn::tensor::Device;
use temper_chat::GenerationParams;
use temper_eval::{EvalError, Finish, Policy, Sample, sample_each};
use temper_models::{
    CausalLm, Decoder, FinishReason, Generation, GenerationConfig, generate, generate_n,
};
use temper_tasks::{Problem, RenderedPrompt, render};
use temper_tokenizer::{SpecialIds, Tokenizer};

use crate::rollout::Sampler;
use crate::tool_rollout::{ToolSetup, tool_rollout};

/// Problems decoded together in one batch by greedy [`Policy::sample_many`].
const GREEDY_BATCH: usize = 16;

/// [`Policy::sample_many`] for a policy that decodes a batch of problems greedily in one call: greedy single samples
/// go [`GREEDY_BATCH`] problems at a time through `batch` (one sample per problem, in order); anything else is
/// [`sample_each`].
fn greedy_in_batches<P: Policy + ?Sized>(
    policy: &P,
    problems: &[Problem],
    n: usize,
    params: &GenerationParams,
    mut batch: impl FnMut(&[Problem]) -> Result<Vec<Sample>, EvalError>,
) -> Result<Vec<Vec<Sample>>, EvalError> {
    if n != 1 || !params.is_greedy() {
        return sample_each(policy, problems, n, params);
    }
    let mut out = Vec::with_capacity(problems.len());
    for chunk in problems.chunks(GREEDY_BATCH) {
        out.extend(batch(chunk)?.into_iter().map(|s| vec![s]));
    }
    Ok(out)
}

/// A model on this machine as a [`Policy`]: problems are rendered by the one renderer (`chat`: the model's chat
/// template, else plain text), sampled with [`generate_n`] (one prefill shared by the N samples), and decoded
/// with the tokenizer; stop strings are checked on the decoding.
pub struct ModelPolicy<'a, M: ?Sized> {
    model: &'a M,
    tok: &'a Tokenizer,
    ids: SpecialIds,
    chat: bool,
    device: Device,
}

impl<'a, M: CausalLm + ?Sized> ModelPolicy<'a, M> {
    /// `model` with tokenizer `tok`, its eos/pad `ids` ([`Tokenizer::special_ids`]), rendering with the chat
    /// template when `chat`, on `device`.
    pub fn new(
        model: &'a M,
        tok: &'a Tokenizer,
        ids: SpecialIds,
        chat: bool,
        device: Device,
    ) -> Self {
        ModelPolicy {
            model,
            tok,
            ids,
            chat,
            device,
        }
    }

    fn render(&self, problem: &Problem) -> Result<RenderedPrompt, EvalError> {
        Ok(render(self.tok, problem, self.chat)?)
    }

    /// Calls `f` with the generator settings of `params` and, when they have stop strings, a decoder.
    fn with_generator<T>(
        &self,
        params: &GenerationParams,
        f: impl FnOnce(&GenerationConfig, Option<Decoder<'_>>) -> T,
    ) -> T {
        let config = GenerationConfig::new(params, self.ids);
        let decode = |ids: &[u32]| self.tok.decode(ids, true).unwrap_or_default();
        let decoder: Option<Decoder<'_>> = if config.stop_strings.is_empty() {
            None
        } else {
            Some(&decode)
        };
        f(&config, decoder)
    }

    fn failed(problem: &Problem, e: impl std::fmt::Display) -> EvalError {
        EvalError::Policy {
            problem: problem.id.clone(),
            message: e.to_string(),
        }
    }

    fn sample_of(&self, problem: &Problem, g: &Generation) -> Result<Sample, EvalError> {
        Ok(Sample {
            completion: self
                .tok
                .decode(&g.output_ids, true)
                .map_err(|e| Self::failed(problem, e))?,
            tokens: g.output_ids.len(),
            finish: match g.finish_reason {
                FinishReason::StopToken => Finish::Stop,
                FinishReason::StopString => Finish::StopString,
                FinishReason::Length => Finish::Length,
            },
        })
    }
}

impl<M: CausalLm + ?Sized> Policy for ModelPolicy<'_, M> {
    fn sample(
        &self,
        problem: &Problem,
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Sample>, EvalError> {
        let prompt = self.render(problem)?;
        let gens = self
            .with_generator(params, |config, decoder| {
                generate_n(
                    self.model,
                    &prompt.ids,
                    n,
                    config,
                    &self.device,
                    decoder,
                    |_, _| {},
                )
            })
            .map_err(|e| Self::failed(problem, e))?;
        gens.iter().map(|g| self.sample_of(problem, g)).collect()
    }

    /// Greedy single samples run [`GREEDY_BATCH`] problems per `generate` call (greedy decoding needs no seed,
    /// so this equals one call per problem up to batch rounding); anything else is [`sample_each`].
    fn sample_many(
        &self,
        problems: &[Problem],
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Vec<Sample>>, EvalError> {
        greedy_in_batches(self, problems, n, params, |chunk| {
            let ids = chunk
                .iter()
                .map(|p| Ok(self.render(p)?.ids))
                .collect::<Result<Vec<_>, EvalError>>()?;
            let gens = self
                .with_generator(params, |config, decoder| {
                    generate(self.model, &ids, config, &self.device, decoder, |_, _| {})
                })
                .map_err(|e| Self::failed(&chunk[0], e))?;
            chunk.iter().zip(&gens).map(|(p, g)| self.sample_of(p, g)).collect()
        })
    }

    fn prompt_text(&self, problem: &Problem) -> Result<String, EvalError> {
        Ok(self.render(problem)?.text)
    }
}

/// A model that may call tools, as a [`Policy`]: each problem is rendered with the tools described
/// ([`ToolSetup::render`]) and sampled by the same multi-turn [`tool_rollout`] the on-line loop trains with, so
/// held-out evaluation measures the model with its tools. A sample's completion is everything after the prompt:
/// the model's text with the tools' responses in it.
pub struct ToolPolicy<'a, M: ?Sized> {
    /// The model, tokenizer, ids, chat flag and device, as a [`ModelPolicy`] holds them.
    base: ModelPolicy<'a, M>,
    setup: &'a ToolSetup,
}

impl<'a, M: CausalLm + ?Sized> ToolPolicy<'a, M> {
    /// Like [`ModelPolicy::new`], with the tools of `setup`.
    pub fn new(
        model: &'a M,
        tok: &'a Tokenizer,
        ids: SpecialIds,
        chat: bool,
        setup: &'a ToolSetup,
        device: Device,
    ) -> Self {
        ToolPolicy {
            base: ModelPolicy::new(model, tok, ids, chat, device),
            setup,
        }
    }

    fn render(&self, problem: &Problem) -> Result<RenderedPrompt, EvalError> {
        Ok(self.setup.render(self.base.tok, problem, self.base.chat)?)
    }

    /// `g` samples of each of `problems` (rows of a problem adjacent), one batched tool rollout.
    fn run(
        &self,
        problems: &[Problem],
        g: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Sample>, EvalError> {
        let prompts = problems
            .iter()
            .map(|p| self.render(p))
            .collect::<Result<Vec<_>, EvalError>>()?;
        let refs: Vec<&RenderedPrompt> = prompts.iter().collect();
        let sampler = Sampler {
            tok: self.base.tok,
            ids: self.base.ids,
            params,
        };
        let ro = tool_rollout(
            self.base.model,
            sampler,
            &refs,
            g,
            params.seed,
            self.setup.environment(),
            &self.base.device,
        )
        .map_err(|e| ModelPolicy::<M>::failed(&problems[0], e))?;
        let stops = self.base.ids.stop_ids();
        (0..ro.len())
            .map(|i| {
                let ids = &ro.completion_ids[i];
                let finish = match ids.last() {
                    Some(last) if stops.contains(last) => Finish::Stop,
                    _ if ids.len() >= params.max_new_tokens => Finish::Length,
                    _ => Finish::StopString,
                };
                let problem = &problems[i / g.max(1)];
                Ok(Sample {
                    completion: self
                        .base
                        .tok
                        .decode(ids, true)
                        .map_err(|e| ModelPolicy::<M>::failed(problem, e))?,
                    tokens: ro.loss_tokens(i),
                    finish,
                })
            })
            .collect()
    }
}

impl<M: CausalLm + ?Sized> Policy for ToolPolicy<'_, M> {
    fn sample(
        &self,
        problem: &Problem,
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Sample>, EvalError> {
        self.run(std::slice::from_ref(problem), n, params)
    }

    /// Greedy single samples run [`GREEDY_BATCH`] problems per tool rollout, like [`ModelPolicy`].
    fn sample_many(
        &self,
        problems: &[Problem],
        n: usize,
        params: &GenerationParams,
    ) -> Result<Vec<Vec<Sample>>, EvalError> {
        greedy_in_batches(self, problems, n, params, |chunk| self.run(chunk, 1, params))
    }

    fn prompt_text(&self, problem: &Problem) -> Result<String, EvalError> {
        Ok(self.render(problem)?.text)
    }
}

#[cfg(test)]
mod tests {
    use temper_tasks::Problem;

    use super::*;
    use crate::testkit::tiny;

    fn problems() -> Vec<Problem> {
        ["t12 t40 t7", "t9 t100", "t33 t34 t35 t36"]
            .iter()
            .enumerate()
            .map(|(i, q)| Problem::question(format!("p{i}"), *q, None))
            .collect()
    }

    #[test]
    fn samples_counts_and_the_batched_greedy_path_agree_with_one_problem_at_a_time() {
        let (model, tok, device) = tiny();
        let device = device.inner();
        let policy = ModelPolicy::new(
            &model,
            &tok,
            tok.special_ids(model.config().eos_token_id),
            false,
            device,
        );
        let hot = GenerationParams {
            max_new_tokens: 5,
            seed: 3,
            ..GenerationParams::default()
        };
        let p = &problems()[0];
        let samples = policy.sample(p, 4, &hot).expect("sample");
        assert_eq!(samples.len(), 4);
        for s in &samples {
            assert!((1..=5).contains(&s.tokens), "{s:?}");
            assert_eq!(s.finish == Finish::Length, s.tokens == 5, "{s:?}");
        }
        assert_eq!(
            policy.sample(p, 4, &hot).expect("again"),
            samples,
            "same seed, same samples"
        );
        assert_eq!(policy.prompt_text(p).expect("prompt"), "t12 t40 t7");
        // Greedy single samples are decoded 16 problems per batch; they equal one problem at a time.
        let greedy = GenerationParams::greedy(5);
        let batched = policy
            .sample_many(&problems(), 1, &greedy)
            .expect("batched");
        for (p, b) in problems().iter().zip(&batched) {
            assert_eq!(b, &policy.sample(p, 1, &greedy).expect("one"), "{}", p.id);
        }
    }
}
