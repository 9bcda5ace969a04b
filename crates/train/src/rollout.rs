//! On-line RL plumbing shared by GRPO, RLOO, PPO and CEM: batched rollouts from the generator (its log-probs
//! kept as the old policy's), reward scoring, and the scoring forward over `left-padded prompt + right-padded
//! completion`. Prompts (the `[task]` table, arithmetic / JSONL / GSM8K, the one renderer) come from
//! `temper-tasks` and are re-exported here.

use burn::tensor::{Device, Tensor, TensorData};
use temper_chat::GenerationParams;
use temper_eval::{EvalConfig, Strategy, evaluate_greedy_batched};
use temper_models::{AttentionInfo, CausalLm, GenerationConfig, generate};
use temper_rewards::{Reward, RewardInput, RewardSpec};
use temper_tasks::Problem;
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::{SpecialIds, Tokenizer};

use crate::batch::int_tensor;
use crate::error::{Result, TrainError};
use crate::eval_policy::{ModelPolicy, ToolPolicy};
use crate::tool_rollout::ToolSetup;

/// Prompts come from `temper-tasks`: the `[task]` table, the one renderer and the rendered prompt sets.
pub use temper_tasks::{ARITHMETIC_INSTRUCTION, PromptSet, RenderedPrompt, TaskSpec};

/// The seed's GRPO-zero rewards: strict answer accuracy (the `<answer>` tag holds the right number), partial
/// credit when the last number written is right (a dense signal for a small model that writes `3 + 4 = 7`), and
/// a small format bonus. The first reward is what evaluation reports as accuracy.
pub fn default_rewards() -> Vec<RewardSpec> {
    vec![
        RewardSpec::AnswerAccuracy {
            weight: 1.0,
            mode: Default::default(),
        },
        RewardSpec::LastNumberAccuracy { weight: 0.5 },
        RewardSpec::Format {
            weight: 0.2,
            regex: r"^\s*<answer>\s*-?[0-9][0-9,\.]*\s*</answer>\s*$".into(),
            dot_all: true,
        },
    ]
}

/// Completions of a batch of prompts, `G` per prompt (rows `i·G..(i+1)·G` share prompt `i`).
#[derive(Clone, Debug, Default)]
pub struct Rollout {
    /// Prompt ids per row.
    pub prompt_ids: Vec<Vec<u32>>,
    /// Completion ids per row (EOS included when sampled).
    pub completion_ids: Vec<Vec<u32>>,
    /// The generator's log-prob of each completion token under the plain model (temperature 1); 0 on tokens the
    /// model did not sample (tool responses).
    pub gen_logps: Vec<Vec<f32>>,
    /// Per completion token: 1 when the model sampled it, 0 when an environment inserted it (a tool's response,
    /// see [`crate::tool_rollout`]). Losses and KL terms see only the 1s.
    pub loss_mask: Vec<Vec<u8>>,
    /// Decoded completions (special tokens skipped).
    pub texts: Vec<String>,
    /// Prompt texts per row.
    pub prompt_texts: Vec<String>,
    /// References per row.
    pub references: Vec<Option<String>>,
    /// Tool calls per row, when the rollout ran tools ([`crate::tool_rollout`]); empty otherwise.
    pub tool_stats: Vec<crate::tool_rollout::ToolStats>,
}

/// What a rollout needs besides the policy: the tokenizer (prompts are decoded with it, stop strings checked on
/// its decoding), its eos/pad ids ([`Tokenizer::special_ids`]) and the sampling parameters.
#[derive(Clone, Copy, Debug)]
pub struct Sampler<'a> {
    /// Decodes completions.
    pub tok: &'a Tokenizer,
    /// End-of-sequence (stops a completion) and padding ids.
    pub ids: SpecialIds,
    /// Sampling parameters; their `seed` is replaced by each call's.
    pub params: &'a GenerationParams,
}

/// Generates `g` completions for each prompt with the (non-autodiff) policy, seeded by `seed`.
pub fn rollout<M: CausalLm + ?Sized>(
    policy: &M,
    sampler: Sampler<'_>,
    prompts: &[&RenderedPrompt],
    g: usize,
    seed: u64,
    device: &Device,
) -> Result<Rollout> {
    let tok = sampler.tok;
    let mut config = GenerationConfig::new(sampler.params, sampler.ids);
    config.seed = seed;
    let rows: Vec<&RenderedPrompt> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(*p, g))
        .collect();
    let ids: Vec<Vec<u32>> = rows.iter().map(|p| p.ids.clone()).collect();
    let decode = |ids: &[u32]| tok.decode(ids, true).unwrap_or_default();
    let decoder: Option<temper_models::Decoder<'_>> = if config.stop_strings.is_empty() {
        None
    } else {
        Some(&decode)
    };
    let gens = generate(policy, &ids, &config, device, decoder, |_, _| {})?;
    let mut r = Rollout::default();
    for (done, p) in gens.into_iter().zip(rows) {
        let mask = vec![1; done.output_ids.len()];
        r.push(tok, p, done.output_ids, done.logprobs, mask)?;
    }
    Ok(r)
}

impl Rollout {
    /// Number of completions.
    pub fn len(&self) -> usize {
        self.completion_ids.len()
    }

    /// True when there are no completions.
    pub fn is_empty(&self) -> bool {
        self.completion_ids.is_empty()
    }

    /// Scores every completion: `(name, weight, scores)` per part of `reward` ([`Reward::score_parts`]: a
    /// weighted sum's parts, or the reward itself), and the weighted total.
    pub fn score(&self, reward: &dyn Reward) -> Result<temper_rewards::ScoreBreakdown> {
        let inputs: Vec<RewardInput<'_>> = (0..self.len())
            .map(|i| RewardInput {
                prompt: &self.prompt_texts[i],
                completion: &self.texts[i],
                reference: self.references[i].as_deref(),
            })
            .collect();
        reward
            .score_parts(&inputs)
            .map_err(|e| TrainError::Reward(e.to_string()))
    }

    /// Appends one row: `prompt`'s ids, text and reference, and a completion (decoded after the prompt's prefill)
    /// with its generator log-probs and loss mask.
    pub fn push(
        &mut self,
        tok: &Tokenizer,
        prompt: &RenderedPrompt,
        completion: Vec<u32>,
        gen_logps: Vec<f32>,
        loss_mask: Vec<u8>,
    ) -> Result<()> {
        self.texts.push(format!(
            "{}{}",
            prompt.prefill,
            tok.decode(&completion, true)?
        ));
        self.prompt_ids.push(prompt.ids.clone());
        self.completion_ids.push(completion);
        self.gen_logps.push(gen_logps);
        self.loss_mask.push(loss_mask);
        self.prompt_texts.push(prompt.text.clone());
        self.references.push(prompt.reference.clone());
        Ok(())
    }

    /// Completion tokens of row `i` that the losses see (the model's own; not tool responses).
    pub fn loss_tokens(&self, i: usize) -> usize {
        self.loss_mask[i].iter().filter(|&&m| m != 0).count()
    }

    /// Host tensors of rows `rows`: left-padded prompts + right-padded completions; the completion mask is
    /// [`Rollout::loss_mask`] (0 on padding and on tool responses).
    pub fn pack(&self, rows: &[usize], pad: u32) -> Packed {
        let p = rows
            .iter()
            .map(|&i| self.prompt_ids[i].len())
            .max()
            .unwrap_or(0);
        let c = rows
            .iter()
            .map(|&i| self.completion_ids[i].len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut packed = Packed {
            ids: Vec::new(),
            attention: Vec::new(),
            completion_mask: Vec::new(),
            gen_logps: Vec::new(),
            prompt_len: p,
            completion_len: c,
        };
        for &i in rows {
            let (pi, ci) = (&self.prompt_ids[i], &self.completion_ids[i]);
            let mut ids = vec![pad; p - pi.len()];
            ids.extend(pi);
            ids.extend(ci);
            ids.resize(p + c, pad);
            let mut att = vec![0u8; p - pi.len()];
            att.resize(p + ci.len(), 1);
            att.resize(p + c, 0);
            let mut cm = self.loss_mask[i].clone();
            cm.resize(c, 0);
            let mut lp = self.gen_logps[i].clone();
            lp.resize(c, 0.0);
            packed.ids.push(ids);
            packed.attention.push(att);
            packed.completion_mask.push(cm);
            packed.gen_logps.push(lp);
        }
        packed
    }
}

/// A packed slice of a rollout.
pub struct Packed {
    /// `[n, P + C]` token ids.
    pub ids: Vec<Vec<u32>>,
    /// `[n, P + C]` attention mask.
    pub attention: Vec<Vec<u8>>,
    /// `[n, C]` 1 on completion tokens the model sampled (0 on padding and tool responses).
    pub completion_mask: Vec<Vec<u8>>,
    /// `[n, C]` generator log-probs (0 on padding).
    pub gen_logps: Vec<Vec<f32>>,
    /// `P`.
    pub prompt_len: usize,
    /// `C`.
    pub completion_len: usize,
}

impl Packed {
    /// Per-token log-probs (and entropy) of the completion tokens: `[n, C]`. Positions follow the attention
    /// mask, exactly as during generation, so on-policy ratios are 1.
    pub fn completion_scores<M: CausalLm + ?Sized>(
        &self,
        model: &M,
        temperature: f64,
        entropy: EntropyMode,
        device: &Device,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        let n = self.ids.len();
        let (p, c) = (self.prompt_len, self.completion_len);
        let info = AttentionInfo::from_mask(&self.attention, true);
        let hidden = model.hidden(int_tensor(&self.ids, device), &info, None); // (n, P+C, H)
        let h = hidden.dims()[2];
        // Only completion positions need the (vocabulary-wide) LM head: P-1 .. P+C-1 predict the completion.
        let hidden = hidden.slice([0..n, p - 1..p - 1 + c, 0..h]); // (n, C, H)
        let mut logits = model.lm_head(hidden); // (n, C, V)
        if temperature != 1.0 {
            logits = logits / temperature;
        }
        let targets: Vec<Vec<u32>> = self.ids.iter().map(|r| r[p..p + c].to_vec()).collect();
        temper_tensor_ops::token_logprobs_entropy(logits, int_tensor(&targets, device), entropy)
    }

    /// `[n, C]` tensor of the completion mask.
    pub fn mask(&self, device: &Device) -> Tensor<2> {
        crate::batch::mask_tensor(&self.completion_mask, device)
    }

    /// `[n, C]` tensor of the generator's log-probs.
    pub fn gen_logps(&self, device: &Device) -> Tensor<2> {
        let n = self.gen_logps.len();
        let flat: Vec<f32> = self.gen_logps.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [n, self.completion_len]), device)
    }
}

/// Greedy held-out evaluation through the one evaluation path (`temper_eval`, with [`ModelPolicy`] over
/// `policy`, or [`ToolPolicy`] when the run has `tools`): `problems` rendered as `chat` says, at most
/// `sampler.params.max_new_tokens` tokens with its stop strings, scored by `reward`. Returns the mean total reward
/// and the mean of the first reward part (accuracy by convention), or `None` without problems.
pub fn evaluate<M: CausalLm + ?Sized>(
    policy: &M,
    sampler: Sampler<'_>,
    problems: &[Problem],
    chat: bool,
    reward: &dyn Reward,
    tools: Option<&ToolSetup>,
    device: &Device,
) -> Result<Option<(f64, f64)>> {
    if problems.is_empty() {
        return Ok(None);
    }
    let config = EvalConfig::new(Strategy::Greedy, 1, sampler.params.clone(), 0);
    let report = match tools {
        Some(setup) => {
            let model = ToolPolicy::new(
                policy,
                sampler.tok,
                sampler.ids,
                chat,
                setup,
                device.clone(),
            );
            evaluate_greedy_batched("held_out", problems, &model, Some(reward), &config)?
        }
        None => {
            let model = ModelPolicy::new(policy, sampler.tok, sampler.ids, chat, device.clone());
            evaluate_greedy_batched("held_out", problems, &model, Some(reward), &config)?
        }
    };
    Ok(Some((
        report.mean_chosen_score().unwrap_or(0.0),
        report.mean_chosen_part(0).unwrap_or(0.0),
    )))
}
