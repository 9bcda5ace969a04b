//! Batched generation with a KV cache: left-padded prompts, greedy or seeded sampling (temperature, top-k,
//! top-p), stop on EOS / stop ids / stop strings, and the log-prob of every sampled token.
//!
//! The log-probs returned here are the ones a trainer recomputes with one full forward over prompt +
//! completion (same positions, same mask): `tests/models.rs` checks they agree within 1e-5, so an
//! on-policy PPO/GRPO importance ratio is exactly 1.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use temper_tensor_ops::{SamplingParams, sample};

use crate::causal_lm::CausalLm;
use crate::error::{ModelError, Result};
use crate::llama::{AttentionInfo, KvCache};
use crate::thin::HotWorkers;

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerationConfig {
    /// Upper bound on new tokens per sequence.
    pub max_new_tokens: usize,
    /// Temperature (0 = greedy), top-k, top-p.
    pub sampling: SamplingParams,
    /// Seed of the sampler's RNG; the same seed gives the same tokens.
    pub seed: u64,
    /// Token ids that end a sequence (EOS); the stop token is kept in the output.
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sequence once the decoded completion contains one (needs a decoder).
    pub stop_strings: Vec<String>,
    /// Id used to left-pad prompts (never attended to).
    pub pad_token_id: u32,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: None,
                top_p: None,
            },
            seed: 0,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            pad_token_id: 0,
        }
    }
}

impl GenerationConfig {
    /// The generator's settings for `params` (sampling, seed, stop strings) with the stop and padding ids of
    /// `ids` ([`temper_tokenizer::Tokenizer::special_ids`], the one eos/pad rule).
    #[cfg(feature = "tokenizer")]
    pub fn new(params: &temper_chat::GenerationParams, ids: temper_tokenizer::SpecialIds) -> Self {
        Self {
            max_new_tokens: params.max_new_tokens,
            sampling: SamplingParams {
                temperature: params.temperature,
                top_k: params.top_k,
                top_p: params.top_p,
            },
            seed: params.seed,
            stop_token_ids: ids.stop_ids(),
            stop_strings: params.stop.clone(),
            pad_token_id: ids.pad,
        }
    }
}

/// Why a sequence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token (EOS) was sampled.
    StopToken,
    /// The decoded text contains a stop string.
    StopString,
    /// `max_new_tokens` was reached.
    Length,
}

/// One generated sequence.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Generation {
    /// The prompt's ids (unpadded).
    pub prompt_ids: Vec<u32>,
    /// New token ids (the stop token included when one ended the sequence).
    pub output_ids: Vec<u32>,
    /// Log-prob of each new token under the distribution actually sampled from (temperature, top-k, top-p).
    pub sampling_logprobs: Vec<f32>,
    /// Log-prob of each new token under the plain model (temperature 1, no filtering).
    pub logprobs: Vec<f32>,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Decodes ids to text, for stop strings and streaming.
pub type Decoder<'a> = &'a dyn Fn(&[u32]) -> String;

/// Generates continuations for a batch of prompts.
///
/// `on_token(row, id)` is called for every sampled token as it is produced (streaming).
pub fn generate<M: CausalLm + ?Sized>(
    model: &M,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    device: &Device,
    decoder: Option<Decoder<'_>>,
    on_token: impl FnMut(usize, u32),
) -> Result<Vec<Generation>> {
    check_inputs(prompts, config, decoder)?;
    let mut out: Vec<Generation> = prompts.iter().map(|p| Generation::empty(p.clone())).collect();
    if prompts.is_empty() || config.max_new_tokens == 0 {
        return Ok(out);
    }
    // Keep a helper core hot for the memory-bound few-row products of decoding (CPU only; see `thin`).
    let _hot = HotWorkers::start(device);
    let state = prefill(model, prompts, config.pad_token_id, device);
    decode(model, state, &mut out, config, device, decoder, on_token);
    Ok(out)
}

/// `n` continuations of one prompt that share one prefill: the prompt runs once at batch 1, its KV cache and
/// last logits are copied to `n` rows, then the `n` rows decode as one batch. Rows are sampled from one seeded
/// RNG in row order, exactly as [`generate`] samples `n` copies of the prompt, so both give the same tokens and
/// log-probs (up to the rounding of a batch-1 against a batch-`n` prefill).
///
/// `on_token(row, id)` is called for every sampled token as it is produced.
pub fn generate_n<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    n: usize,
    config: &GenerationConfig,
    device: &Device,
    decoder: Option<Decoder<'_>>,
    on_token: impl FnMut(usize, u32),
) -> Result<Vec<Generation>> {
    let one = [prompt.to_vec()];
    check_inputs(&one, config, decoder)?;
    let mut out: Vec<Generation> = (0..n).map(|_| Generation::empty(prompt.to_vec())).collect();
    if n == 0 || config.max_new_tokens == 0 {
        return Ok(out);
    }
    let _hot = HotWorkers::start(device);
    let mut state = prefill(model, &one, config.pad_token_id, device);
    // Copy the one prefilled row n times: the cache's keys/values, the last logits, the mask and positions.
    let rows = vec![0usize; n];
    state.cache.select_rows(&rows);
    let idx = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64; n], [n]), device);
    state.last = state.last.select(0, idx); // (n, 1, V)
    state.active = (0..n).collect();
    state.key_mask = vec![state.key_mask[0].clone(); n];
    state.next_pos = vec![state.next_pos[0]; n];
    decode(model, state, &mut out, config, device, decoder, on_token);
    Ok(out)
}

/// The checks every generation call makes first.
fn check_inputs(prompts: &[Vec<u32>], config: &GenerationConfig, decoder: Option<Decoder<'_>>) -> Result<()> {
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Generation("every prompt needs at least one token".into()));
    }
    if !config.stop_strings.is_empty() && decoder.is_none() {
        return Err(ModelError::Generation("stop strings need a decoder".into()));
    }
    Ok(())
}

impl Generation {
    /// A generation of `prompt_ids` with no tokens yet.
    fn empty(prompt_ids: Vec<u32>) -> Generation {
        Generation {
            prompt_ids,
            output_ids: Vec::new(),
            sampling_logprobs: Vec::new(),
            logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        }
    }
}

/// The decoding state after a prefill: which output rows are still active, their key masks and next positions,
/// the KV cache and the last logits `(B, 1, V)`.
struct DecodeState {
    active: Vec<usize>,
    key_mask: Vec<Vec<bool>>,
    next_pos: Vec<i64>,
    cache: KvCache,
    last: Tensor<3>,
}

/// Runs the left-padded prompts through the model once, filling a fresh KV cache (positions count real tokens:
/// HF generate semantics).
fn prefill<M: CausalLm + ?Sized>(model: &M, prompts: &[Vec<u32>], pad: u32, device: &Device) -> DecodeState {
    let max_len = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(prompts.len() * max_len);
    let mut mask_rows = Vec::with_capacity(prompts.len());
    for p in prompts {
        let padding = max_len - p.len();
        ids.extend(std::iter::repeat_n(pad as i64, padding));
        ids.extend(p.iter().map(|&t| t as i64));
        let mut m = vec![0u8; padding];
        m.extend(std::iter::repeat_n(1u8, p.len()));
        mask_rows.push(m);
    }
    let info = AttentionInfo::from_mask(&mask_rows, true);
    let mut cache = KvCache::new();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [prompts.len(), max_len]), device);
    let hidden = model.hidden(input, &info, Some(&mut cache)); // (B, T, H)
    let [b, t, h] = hidden.dims();
    DecodeState {
        active: (0..prompts.len()).collect(),
        key_mask: mask_rows.iter().map(|r| r.iter().map(|&m| m != 0).collect()).collect(),
        next_pos: prompts.iter().map(|p| p.len() as i64).collect(),
        cache,
        last: model.lm_head(hidden.slice([0..b, t - 1..t, 0..h])), // (B, 1, V)
    }
}

/// Samples from `state.last`, appends to `out`, and decodes one token at a time until every row stopped.
fn decode<M: CausalLm + ?Sized>(
    model: &M,
    state: DecodeState,
    out: &mut [Generation],
    config: &GenerationConfig,
    device: &Device,
    decoder: Option<Decoder<'_>>,
    mut on_token: impl FnMut(usize, u32),
) {
    let DecodeState {
        mut active,
        mut key_mask,
        mut next_pos,
        mut cache,
        mut last,
    } = state;
    let mut rng = StdRng::seed_from_u64(config.seed);
    for _step in 0..config.max_new_tokens {
        let [b, _, v] = last.dims();
        let step = sample(last.reshape([b, v]), &config.sampling, &mut rng);
        let mut keep = Vec::with_capacity(b);
        for (r, &row) in active.iter().enumerate() {
            let id = step.ids[r];
            let g = &mut out[row];
            g.output_ids.push(id);
            g.sampling_logprobs.push(step.logprobs[r]);
            g.logprobs.push(step.plain_logprobs[r]);
            on_token(row, id);
            if config.stop_token_ids.contains(&id) {
                g.finish_reason = FinishReason::StopToken;
            } else if let Some(decode) = decoder
                && !config.stop_strings.is_empty()
                && {
                    let text = decode(&g.output_ids);
                    config.stop_strings.iter().any(|s| text.contains(s.as_str()))
                }
            {
                g.finish_reason = FinishReason::StopString;
            } else if g.output_ids.len() < config.max_new_tokens {
                keep.push(r);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() != active.len() {
            cache.select_rows(&keep);
            active = keep.iter().map(|&r| active[r]).collect();
            key_mask = keep.iter().map(|&r| key_mask[r].clone()).collect();
            next_pos = keep.iter().map(|&r| next_pos[r]).collect();
        }
        // Decode one token for every active row.
        let new_ids: Vec<i64> = active
            .iter()
            .map(|&row| out[row].output_ids.last().copied().unwrap_or(config.pad_token_id) as i64)
            .collect();
        for m in &mut key_mask {
            m.push(true);
        }
        let info = AttentionInfo {
            batch: active.len(),
            new_tokens: 1,
            key_mask: key_mask.iter().flatten().copied().collect(),
            positions: next_pos.clone(),
        };
        for p in &mut next_pos {
            *p += 1;
        }
        let input = Tensor::<2, Int>::from_data(TensorData::new(new_ids, [active.len(), 1]), device);
        last = model.forward(input, &info, Some(&mut cache)); // (B, 1, V)
    }
}
