//! Toolformer on a model (Schick et al. 2023, "Toolformer: Language Models Can Teach Themselves to Use Tools",
//! §2, <https://arxiv.org/abs/2302.04761>) with the calculator: the model side of `temper-tools`' `toolformer`
//! module (which holds the filter's arithmetic and the call text).
//!
//! For each text `x` of a corpus, [`Annotator::annotate`]:
//! 1. scores every position `i` with `p_i = p([ | P(x), x_{<i})` — the probability of the token that opens a call
//!    after the few-shot prompt `P(x)` (one forward over `P(x) + x`) — and keeps the `top_k` positions with
//!    `p_i > τ_s`;
//! 2. samples `m` calls at each kept position from `P(x), x_{<i}, [` until `]` (one shared prefill per position);
//! 3. runs each distinct `Calculator(…)` call;
//! 4. computes the per-token losses of the five tokens after `i` (the weights `max(0, 1 − 0.2·t)` are zero from
//!    the sixth on) with the call and its result as a prefix of `x` (the paper gives `e(c, r)` as a prefix rather
//!    than inserting it, since the model has not seen calls mid-text), with the call and an empty result, and with
//!    no call — every candidate of the text in one batched forward ([`call_losses`]), not one per token;
//! 5. keeps calls with `L⁻ − L⁺ ≥ τ_f` ([`filter_call`]).
//!
//! [`dataset`] then inserts the kept calls into the texts (`[Calculator(…) -> r]` before the token at `i`), the
//! augmented corpus the paper fine-tunes on, written as `{"text": …}` lines that `temper sft` reads.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_models::{AttentionInfo, CausalLm, GenerationConfig, SamplingParams, generate_n};
use temper_tensor_ops::token_logprobs;
use temper_tokenizer::Tokenizer;
use temper_tools::toolformer::{
    CallLosses, KeptCall, augment, calculator_prompt, filter_call, read_call, render_call,
    run_calculator,
};

use crate::batch::{PaddedBatch, Tokenized, int_tensor};
use crate::error::{Result, TrainError};

/// The number of following tokens with a non-zero weight `max(0, 1 − 0.2·t)`: only these are scored.
pub const WEIGHTED_TOKENS: usize = 5;

/// Sequences per forward when scoring candidates (bounds memory on long texts).
const ROWS_PER_FORWARD: usize = 32;

/// The tool whose calls are sampled and run.
pub const TOOL: &str = "Calculator";

/// Settings of the annotation, with the paper's values as defaults (§2 and §4.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolformerConfig {
    /// Sampling threshold `τ_s`: a position is a candidate when `p_i > τ_s` (paper: 0.05).
    pub tau_s: f64,
    /// At most this many candidate positions per text, the most probable (paper: `k = 5`).
    pub top_k: usize,
    /// Calls sampled per candidate position (paper: `m = 5`).
    pub calls_per_position: usize,
    /// Filtering threshold `τ_f`: keep a call when `L⁻ − L⁺ ≥ τ_f` (paper: 1.0 for the calculator).
    pub tau_f: f64,
    /// Upper bound on the tokens of one sampled call (the `]` that ends it included).
    pub max_call_tokens: usize,
    /// Sampling temperature of the calls (0 = greedy: then the `m` samples coincide).
    pub temperature: f64,
    /// Seed of the sampler (each position gets its own stream derived from it).
    pub seed: u64,
}

impl Default for ToolformerConfig {
    fn default() -> Self {
        Self {
            tau_s: 0.05,
            top_k: 5,
            calls_per_position: 5,
            tau_f: 1.0,
            max_call_tokens: 24,
            temperature: 1.0,
            seed: 0,
        }
    }
}

impl ToolformerConfig {
    /// Checks every field; the message names the field (`tau_s = 1.5 must be in [0, 1]`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.tau_s.is_finite() && (0.0..=1.0).contains(&self.tau_s)) {
            return Err(format!(
                "tau_s = {} must be a probability in [0, 1]",
                self.tau_s
            ));
        }
        if !self.tau_f.is_finite() {
            return Err(format!("tau_f = {} must be finite", self.tau_f));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(format!(
                "temperature = {} must be finite and >= 0",
                self.temperature
            ));
        }
        for (name, v) in [
            ("top_k", self.top_k),
            ("calls_per_position", self.calls_per_position),
            ("max_call_tokens", self.max_call_tokens),
        ] {
            if v == 0 {
                return Err(format!("{name} = 0 must be at least 1"));
            }
        }
        Ok(())
    }
}

/// One distinct call sampled at a candidate position, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    /// Index of the text in the corpus.
    pub text: usize,
    /// Token index `i` in the text before which the call goes.
    pub position: usize,
    /// Byte offset in the text where the call is inserted.
    pub at: usize,
    /// `p_i`, the probability of opening a call there.
    pub p_start: f64,
    /// The sampled call as text, from its `[`.
    pub generated: String,
    /// How many of the `m` samples at this position gave this text.
    pub samples: usize,
    /// The calculator's input, when the sample is a `Calculator(…)` call.
    pub input: Option<String>,
    /// The calculator's result, when the call ran.
    pub result: Option<String>,
    /// Why the sample was not run or failed (not a call, another tool, a calculator error).
    pub error: Option<String>,
    /// Per-token losses of the following tokens under the three prefixes (calls that ran).
    pub losses: Option<CallLosses>,
    /// `L⁺` and `L⁻` (calls that ran).
    pub l_plus: Option<f64>,
    /// `L⁻ = min(L(no call), L(call without result))`.
    pub l_minus: Option<f64>,
}

impl CallRecord {
    /// `L⁻ − L⁺`, for calls that ran.
    pub fn gain(&self) -> Option<f64> {
        Some(self.l_minus? - self.l_plus?)
    }

    /// Whether the filter keeps this call at threshold `tau`.
    pub fn kept(&self, tau: f64) -> bool {
        self.gain().is_some_and(|g| g >= tau)
    }
}

/// Counts of one annotation run (summed over texts with `+=`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolformerStats {
    /// Texts annotated.
    pub texts: usize,
    /// Their tokens.
    pub tokens: usize,
    /// Positions scored for `p_i` (every token but the first, whose text offset is known).
    pub positions_scored: usize,
    /// Positions with `p_i > τ_s`.
    pub above_tau_s: usize,
    /// Positions kept (top `k` per text of those above `τ_s`).
    pub candidate_positions: usize,
    /// Calls sampled (`m` per candidate position).
    pub calls_sampled: usize,
    /// Distinct sampled texts per position.
    pub distinct_calls: usize,
    /// Distinct samples that read as a `Calculator(…)` call.
    pub parsed: usize,
    /// Calls the calculator answered (these are scored).
    pub executed: usize,
}

impl std::ops::AddAssign<&ToolformerStats> for ToolformerStats {
    fn add_assign(&mut self, o: &ToolformerStats) {
        self.texts += o.texts;
        self.tokens += o.tokens;
        self.positions_scored += o.positions_scored;
        self.above_tau_s += o.above_tau_s;
        self.candidate_positions += o.candidate_positions;
        self.calls_sampled += o.calls_sampled;
        self.distinct_calls += o.distinct_calls;
        self.parsed += o.parsed;
        self.executed += o.executed;
    }
}

/// The annotation of one text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextAnnotation {
    /// Its counts.
    pub stats: ToolformerStats,
    /// Every distinct sampled call.
    pub calls: Vec<CallRecord>,
}

/// A scored candidate's two prefixes as token ids (each is put before the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPrefixes {
    /// Token index `i` of the first following token (`1 ≤ i < n`).
    pub position: usize,
    /// `e(c, r)`.
    pub with_result: Vec<u32>,
    /// `e(c, ε)`.
    pub without_result: Vec<u32>,
}

/// Negative log-likelihoods of chosen targets: `rows[r]` is a sequence, and `(r, q)` asks for
/// `−log p(rows[r][q] | rows[r][..q])` (`q ≥ 1`). Rows are right-padded and run `ROWS_PER_FORWARD` at a time; the LM
/// head runs only on the hidden states that predict the asked targets.
fn target_nll<M: CausalLm + ?Sized>(
    model: &M,
    rows: &[Vec<u32>],
    targets: &[(usize, usize)],
    device: &Device,
) -> Vec<f64> {
    let mut out = vec![0.0; targets.len()];
    for start in (0..rows.len()).step_by(ROWS_PER_FORWARD) {
        let end = (start + ROWS_PER_FORWARD).min(rows.len());
        let seqs: Vec<Tokenized> = rows[start..end]
            .iter()
            .map(|ids| Tokenized {
                ids: ids.clone(),
                loss_mask: vec![0; ids.len()],
            })
            .collect();
        let batch = PaddedBatch::right_padded(&seqs, 0);
        let t = batch.ids.first().map_or(0, Vec::len);
        let asked: Vec<(usize, usize, usize)> = targets
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| (start..end).contains(r))
            .map(|(k, &(r, q))| (k, r - start, q))
            .collect();
        if asked.is_empty() || t == 0 {
            continue;
        }
        let info = AttentionInfo::from_mask(&batch.attention, false);
        let hidden = model.hidden(int_tensor(&batch.ids, device), &info, None); // (B, T, H)
        let [b, _, h] = hidden.dims();
        let index: Vec<i64> = asked
            .iter()
            .map(|&(_, r, q)| (r * t + q - 1) as i64)
            .collect();
        let picked = hidden.reshape([b * t, h]).select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(index, [asked.len()]), device),
        ); // (K, H)
        let logits = model.lm_head(picked.reshape([1, asked.len(), h])); // (1, K, V)
        let ids: Vec<u32> = asked.iter().map(|&(_, r, q)| batch.ids[r][q]).collect();
        let logps: Vec<f32> = token_logprobs(logits, int_tensor(&[ids], device))
            .into_data()
            .iter::<f32>()
            .collect();
        for (&(k, _, _), lp) in asked.iter().zip(logps) {
            out[k] = -f64::from(lp);
        }
    }
    out
}

/// The per-token losses of every candidate of text `x` (its token ids): the five tokens `x_i..x_{i+4}` (fewer at
/// the end) after each prefix and with no call. Every sequence is truncated after the last scored token, and all of
/// them (the text once, two per call) run in one batched forward (`ROWS_PER_FORWARD` rows each).
pub fn call_losses<M: CausalLm + ?Sized>(
    model: &M,
    x: &[u32],
    calls: &[CallPrefixes],
    device: &Device,
) -> Result<Vec<CallLosses>> {
    let n = x.len();
    if let Some(c) = calls.iter().find(|c| c.position == 0 || c.position >= n) {
        return Err(TrainError::Toolformer(format!(
            "call position {} is outside 1..{n} (the text has {n} tokens)",
            c.position
        )));
    }
    let end = |i: usize| (i + WEIGHTED_TOKENS).min(n);
    let mut rows = vec![x.to_vec()];
    let mut targets: Vec<(usize, usize)> = (1..n).map(|q| (0, q)).collect();
    for c in calls {
        for prefix in [&c.with_result, &c.without_result] {
            let r = rows.len();
            rows.push([prefix.as_slice(), &x[..end(c.position)]].concat());
            targets.extend((c.position..end(c.position)).map(|j| (r, prefix.len() + j)));
        }
    }
    let nll = target_nll(model, &rows, &targets, device);
    let (plain, mut rest) = nll.split_at(n.saturating_sub(1));
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        let len = end(c.position) - c.position;
        let (with_result, tail) = rest.split_at(len);
        let (without_result, tail) = tail.split_at(len);
        rest = tail;
        out.push(CallLosses {
            with_result: with_result.to_vec(),
            without_call: plain[c.position - 1..end(c.position) - 1].to_vec(),
            without_result: without_result.to_vec(),
        });
    }
    Ok(out)
}

/// `p(s | prompt, x_{<i})` for every position `i` of `x` (`0..n`) and every id `s` of `start_ids`: `[n][S]`, from
/// one forward over `prompt + x` (the LM head only on the `n` positions that predict `x`).
pub fn start_probabilities<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    x: &[u32],
    start_ids: &[u32],
    device: &Device,
) -> Result<Vec<Vec<f64>>> {
    let (p, n) = (prompt.len(), x.len());
    if p == 0 || n == 0 || start_ids.is_empty() {
        return Err(TrainError::Toolformer(format!(
            "scoring positions needs a prompt, a text and a call-start token (got {p}, {n} and {} tokens)",
            start_ids.len()
        )));
    }
    let ids = [prompt, x].concat();
    let hidden = model.hidden(
        int_tensor(&[ids], device),
        &AttentionInfo::full(1, p + n),
        None,
    ); // (1, P+n, H)
    let h = hidden.dims()[2];
    let logits = model.lm_head(hidden.slice([0..1, p - 1..p - 1 + n, 0..h])); // (1, n, V)
    let s = start_ids.len();
    let index: Vec<i64> = start_ids.iter().map(|&i| i64::from(i)).collect();
    let probs: Vec<f32> = log_softmax(logits, 2)
        .select(
            2,
            Tensor::<1, Int>::from_data(TensorData::new(index, [s]), device),
        )
        .exp()
        .into_data()
        .iter::<f32>()
        .collect(); // (1, n, S)
    Ok(probs
        .chunks(s)
        .map(|r| r.iter().map(|&v| f64::from(v)).collect())
        .collect())
}

/// The positions to sample calls at: those in `eligible` with `p > tau_s`, the `k` most probable, in text order.
pub fn select_positions(p: &[f64], eligible: &[bool], tau_s: f64, k: usize) -> (usize, Vec<usize>) {
    let mut above: Vec<usize> = (0..p.len())
        .filter(|&i| eligible[i] && p[i] > tau_s)
        .collect();
    let count = above.len();
    above.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    above.truncate(k);
    above.sort_unstable();
    (count, above)
}

/// Runs Toolformer's sampling, execution and filtering on texts with one model.
pub struct Annotator<'a, M: CausalLm + ?Sized> {
    model: &'a M,
    tok: &'a Tokenizer,
    config: ToolformerConfig,
    start_ids: Vec<u32>,
    stop_ids: Vec<u32>,
    pad: u32,
    device: Device,
}

impl<'a, M: CausalLm + ?Sized> Annotator<'a, M> {
    /// An annotator whose call-start tokens are the first tokens of `[` and ` [` in `tok`; `eos` is the model's
    /// end-of-sequence id, if its config names one.
    pub fn new(
        model: &'a M,
        tok: &'a Tokenizer,
        config: ToolformerConfig,
        eos: Option<u32>,
        device: &Device,
    ) -> Result<Self> {
        config.validate().map_err(TrainError::Toolformer)?;
        let mut start_ids = Vec::new();
        for s in ["[", " ["] {
            if let Some(&id) = tok.encode(s)?.first()
                && !start_ids.contains(&id)
            {
                start_ids.push(id);
            }
        }
        let special = tok.special_ids(eos);
        Ok(Self {
            model,
            tok,
            config,
            start_ids,
            stop_ids: special.stop_ids(),
            pad: special.pad,
            device: device.clone(),
        })
    }

    /// The ids whose probability is `p_i` (summed).
    pub fn start_ids(&self) -> &[u32] {
        &self.start_ids
    }

    /// The byte offset in `text` where a call before token `i` goes, or `None` when the first `i` tokens do not
    /// decode to a prefix of the text (a token boundary inside a character). A space that starts the token stays
    /// before the call: `= [Calculator(…) -> 54] 54`.
    fn offsets(&self, text: &str, x: &[u32]) -> Result<Vec<Option<usize>>> {
        (0..x.len())
            .map(|i| -> Result<Option<usize>> {
                let head = self.tok.decode(&x[..i], false)?;
                Ok(text.starts_with(&head).then(|| {
                    let at = head.len();
                    if text[at..].starts_with(' ') {
                        at + 1
                    } else {
                        at
                    }
                }))
            })
            .collect()
    }

    /// Samples the calls at position `i` (prefix `P(x), x_{<i}` and the likelier start token) and runs them.
    fn sample_calls(
        &self,
        text_index: usize,
        prompt: &[u32],
        x: &[u32],
        i: usize,
        probs: &[f64],
    ) -> Result<Vec<CallRecord>> {
        let best = (0..self.start_ids.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        let start = self.start_ids[best];
        let prefix = [prompt, &x[..i], &[start][..]].concat();
        let config = GenerationConfig {
            max_new_tokens: self.config.max_call_tokens,
            sampling: SamplingParams {
                temperature: self.config.temperature,
                top_k: None,
                top_p: None,
            },
            seed: self.config.seed
                ^ (((text_index as u64) << 24) | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            stop_token_ids: self.stop_ids.clone(),
            stop_strings: vec!["]".into()],
            pad_token_id: self.pad,
        };
        let decode = |ids: &[u32]| self.tok.decode(ids, true).unwrap_or_default();
        let gens = generate_n(
            self.model,
            &prefix,
            self.config.calls_per_position,
            &config,
            &self.device,
            Some(&decode),
            |_, _| {},
        )?;
        let mut out: Vec<CallRecord> = Vec::new();
        for g in gens {
            let text = self
                .tok
                .decode(&[&[start][..], &g.output_ids[..]].concat(), true)?;
            let generated = text.trim_start().to_string();
            if let Some(r) = out.iter_mut().find(|r| r.generated == generated) {
                r.samples += 1;
                continue;
            }
            let mut record = CallRecord {
                text: text_index,
                position: i,
                at: 0,
                p_start: probs.iter().sum(),
                generated: generated.clone(),
                samples: 1,
                input: None,
                result: None,
                error: None,
                losses: None,
                l_plus: None,
                l_minus: None,
            };
            match generated.strip_prefix('[').and_then(read_call) {
                None => record.error = Some("not a `Name(input)]` call".into()),
                Some((name, _)) if name != TOOL => {
                    record.error = Some(format!("unknown tool `{name}`"))
                }
                Some((_, input)) => {
                    match run_calculator(&input) {
                        Ok(r) => record.result = Some(r),
                        Err(e) => record.error = Some(e.to_string()),
                    }
                    record.input = Some(input);
                }
            }
            out.push(record);
        }
        Ok(out)
    }

    /// Steps 1–5 on one text (`index` is its place in the corpus, recorded in each call).
    pub fn annotate(&self, index: usize, text: &str) -> Result<TextAnnotation> {
        let x = self.tok.encode(text)?;
        let mut stats = ToolformerStats {
            texts: 1,
            tokens: x.len(),
            ..ToolformerStats::default()
        };
        if x.len() < 2 {
            return Ok(TextAnnotation {
                stats,
                calls: Vec::new(),
            });
        }
        let offsets = self.offsets(text, &x)?;
        let eligible: Vec<bool> = offsets
            .iter()
            .enumerate()
            .map(|(i, o)| i >= 1 && o.is_some())
            .collect();
        stats.positions_scored = eligible.iter().filter(|&&e| e).count();
        let prompt = self.tok.encode(&calculator_prompt(text))?;
        let probs = start_probabilities(self.model, &prompt, &x, &self.start_ids, &self.device)?;
        let p: Vec<f64> = probs.iter().map(|r| r.iter().sum()).collect();
        let (above, positions) =
            select_positions(&p, &eligible, self.config.tau_s, self.config.top_k);
        stats.above_tau_s = above;
        stats.candidate_positions = positions.len();
        let mut calls = Vec::new();
        for &i in &positions {
            let mut sampled = self.sample_calls(index, &prompt, &x, i, &probs[i])?;
            for c in &mut sampled {
                c.at = offsets[i].unwrap_or_default();
            }
            calls.extend(sampled);
        }
        stats.calls_sampled = positions.len() * self.config.calls_per_position;
        stats.distinct_calls = calls.len();
        stats.parsed = calls.iter().filter(|c| c.input.is_some()).count();
        let ran: Vec<usize> = (0..calls.len())
            .filter(|&k| calls[k].result.is_some())
            .collect();
        stats.executed = ran.len();
        let prefixes = ran
            .iter()
            .map(|&k| -> Result<CallPrefixes> {
                let (c, input) = (&calls[k], calls[k].input.as_deref().unwrap_or_default());
                Ok(CallPrefixes {
                    position: c.position,
                    with_result: self.tok.encode(&format!(
                        "{}\n",
                        render_call(TOOL, input, c.result.as_deref())
                    ))?,
                    without_result: self
                        .tok
                        .encode(&format!("{}\n", render_call(TOOL, input, Some(""))))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let losses = call_losses(self.model, &x, &prefixes, &self.device)?;
        for (&k, l) in ran.iter().zip(losses) {
            let d = filter_call(&l, self.config.tau_f)?;
            let c = &mut calls[k];
            (c.l_plus, c.l_minus, c.losses) = (Some(d.l_plus), Some(d.l_minus), Some(l));
        }
        Ok(TextAnnotation { stats, calls })
    }
}

/// The augmented corpus at threshold `tau`: every text, with the calls kept there inserted (at a position with
/// several kept calls, the one with the largest `L⁻ − L⁺`), and how many calls were inserted.
pub fn dataset(texts: &[String], calls: &[CallRecord], tau: f64) -> Result<(Vec<String>, usize)> {
    let mut inserted = 0;
    let out = texts
        .iter()
        .enumerate()
        .map(|(t, text)| -> Result<String> {
            let mut best: Vec<&CallRecord> = Vec::new();
            for c in calls.iter().filter(|c| c.text == t && c.kept(tau)) {
                match best.iter_mut().find(|b| b.position == c.position) {
                    Some(b) if b.gain() < c.gain() => *b = c,
                    Some(_) => {}
                    None => best.push(c),
                }
            }
            inserted += best.len();
            let kept: Vec<KeptCall> = best
                .iter()
                .map(|c| KeptCall {
                    at: c.at,
                    name: TOOL.into(),
                    input: c.input.clone().unwrap_or_default(),
                    result: c.result.clone().unwrap_or_default(),
                })
                .collect();
            Ok(augment(text, &kept)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out, inserted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::token_scores;
    use crate::data::{SftExample, parse_sft, read_jsonl};
    use crate::testkit::testdata;
    use temper_models::{Llama, load_hf_dir};
    use temper_tensor_ops::EntropyMode;
    use temper_tools::toolformer::weighted_loss;

    fn tiny() -> (Llama, Tokenizer, Device) {
        let device = Device::flex();
        let model = load_hf_dir(&testdata("trl-parity/model"), &device).expect("tiny llama");
        let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json"))
            .expect("tokenizer");
        (model, tok, device)
    }

    /// `−log p` of every token of `ids` after the first, from one plain forward of that sequence alone.
    fn direct_nll(model: &Llama, ids: &[u32], device: &Device) -> Vec<f64> {
        let s = token_scores(
            model,
            &[ids.to_vec()],
            &[vec![1; ids.len()]],
            false,
            1.0,
            EntropyMode::Skip,
            device,
        );
        s.logps
            .into_data()
            .iter::<f32>()
            .map(|v| -f64::from(v))
            .collect()
    }

    fn words(tok: &Tokenizer, text: &str) -> Vec<u32> {
        tok.encode(text).expect("encode")
    }

    #[test]
    fn batched_losses_equal_a_direct_per_candidate_computation() {
        let (model, tok, device) = tiny();
        let x = words(&tok, "t12 t40 t7 t99 t150 t33 t8 t270 t61 t18 t19");
        let calls: Vec<CallPrefixes> = [
            (1, "t50 t60 t70", "t50 t60"),
            (4, "t9", "t200 t201 t202 t203"),
            (9, "t30 t31", "t30"),
        ]
        .iter()
        .map(|&(position, w, wo)| CallPrefixes {
            position,
            with_result: words(&tok, w),
            without_result: words(&tok, wo),
        })
        .collect();
        let got = call_losses(&model, &x, &calls, &device).expect("losses");
        let plain = direct_nll(&model, &x, &device);
        for (c, l) in calls.iter().zip(&got) {
            let i = c.position;
            // The whole following text, from a separate forward per prefix: weights past 5 tokens are zero.
            let full = |prefix: &[u32]| {
                direct_nll(&model, &[prefix, &x[..]].concat(), &device)[prefix.len() + i - 1..]
                    .to_vec()
            };
            for (name, batched, direct) in [
                ("with_result", &l.with_result, full(&c.with_result)),
                ("without_result", &l.without_result, full(&c.without_result)),
                ("without_call", &l.without_call, plain[i - 1..].to_vec()),
            ] {
                assert_eq!(
                    batched.len(),
                    (x.len() - i).min(WEIGHTED_TOKENS),
                    "{name} at {i}"
                );
                for (a, b) in batched.iter().zip(&direct) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{name} at {i}: batched {a} vs direct {b}"
                    );
                }
                assert!(
                    (weighted_loss(batched) - weighted_loss(&direct)).abs() < 1e-4,
                    "{name} at {i}"
                );
            }
        }
        let e = call_losses(
            &model,
            &x,
            &[CallPrefixes {
                position: 0,
                ..calls[0].clone()
            }],
            &device,
        )
        .expect_err("i = 0");
        assert!(e.to_string().contains("outside 1..11"), "{e}");
    }

    #[test]
    fn start_probabilities_are_the_softmax_of_a_direct_forward() {
        let (model, tok, device) = tiny();
        let (prompt, x) = (words(&tok, "t20 t21 t22"), words(&tok, "t12 t40 t7 t99"));
        let starts = [words(&tok, "t50")[0], words(&tok, "t51")[0]];
        let p = start_probabilities(&model, &prompt, &x, &starts, &device).expect("probs");
        assert_eq!(p.len(), x.len());
        for (i, row) in p.iter().enumerate() {
            for (&s, &got) in starts.iter().zip(row) {
                // p(s | prompt, x_{<i}) is the log-prob of s as the next token of that exact sequence.
                let seq = [&prompt[..], &x[..i], &[s][..]].concat();
                let want = (-direct_nll(&model, &seq, &device)
                    .last()
                    .copied()
                    .unwrap_or(f64::NAN))
                .exp();
                assert!(
                    (got - want).abs() < 1e-5,
                    "position {i}, token {s}: {got} vs {want}"
                );
            }
        }
        let (above, picked) = select_positions(
            &[0.0, 0.3, 0.01, 0.2, 0.9, 0.6],
            &[false, true, true, true, true, true],
            0.05,
            3,
        );
        assert_eq!((above, picked), (4, vec![1, 4, 5]));
        let (_, none) = select_positions(&[0.9, 0.9], &[false, false], 0.0, 5);
        assert!(
            none.is_empty(),
            "positions without an offset or at 0 are never picked"
        );
    }

    fn record(
        text: usize,
        position: usize,
        at: usize,
        input: &str,
        l_plus: f64,
        l_minus: f64,
    ) -> CallRecord {
        CallRecord {
            text,
            position,
            at,
            p_start: 0.5,
            generated: format!("[Calculator({input})]"),
            samples: 1,
            input: Some(input.into()),
            result: run_calculator(input).ok(),
            error: None,
            losses: None,
            l_plus: Some(l_plus),
            l_minus: Some(l_minus),
        }
    }

    #[test]
    fn the_filter_keeps_exactly_the_calls_above_tau_and_the_dataset_reads_back() {
        let texts = vec![
            "Out of 1400 people, 400 passed.".to_string(),
            "It took 4 * 30 = 120 minutes.".to_string(),
        ];
        let mut calls = vec![
            record(0, 6, 20, "400 + 0", 2.0, 2.5),     // gain 0.5
            record(0, 6, 20, "1400 - 1000", 1.0, 3.0), // gain 2.0: the better call at this position
            record(1, 7, 17, "4 * 30", 0.5, 1.5),      // gain 1.0
            record(1, 3, 8, "2 + 2", 3.0, 2.0),        // gain -1.0
        ];
        calls.push(CallRecord {
            result: None,
            l_plus: None,
            l_minus: None,
            error: Some("x".into()),
            ..record(1, 2, 3, "1/0", 0.0, 0.0)
        });
        for tau in [0.5, 1.0, 1.5, 2.0, 2.5] {
            let want: Vec<bool> = calls
                .iter()
                .map(|c| c.gain().is_some_and(|g| g >= tau))
                .collect();
            let got: Vec<bool> = calls.iter().map(|c| c.kept(tau)).collect();
            assert_eq!(got, want, "tau {tau}");
        }
        let (augmented, inserted) = dataset(&texts, &calls, 1.0).expect("dataset");
        assert_eq!(inserted, 2);
        assert_eq!(
            augmented[0],
            "Out of 1400 people, [Calculator(1400 - 1000) -> 400] 400 passed."
        );
        assert_eq!(
            augmented[1],
            "It took 4 * 30 = [Calculator(4 * 30) -> 120] 120 minutes."
        );
        let (plain, none) = dataset(&texts, &calls, 2.5).expect("dataset");
        assert_eq!((plain, none), (texts.clone(), 0));
        // Written as `{"text": …}` lines, the SFT loader reads the augmented texts back.
        let dir = std::env::temp_dir().join(format!("temper-toolformer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("train.jsonl");
        let lines: String = augmented
            .iter()
            .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
            .collect();
        crate::write_atomic(&path, lines.as_bytes()).expect("write");
        let read = read_jsonl(&path, parse_sft).expect("the SFT loader reads it");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            read,
            augmented
                .into_iter()
                .map(SftExample::Text)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn annotating_a_text_counts_every_stage() {
        let (model, tok, device) = tiny();
        let config = ToolformerConfig {
            tau_s: 0.0,
            top_k: 3,
            calls_per_position: 4,
            max_call_tokens: 3,
            ..ToolformerConfig::default()
        };
        let annotator = Annotator::new(&model, &tok, config, None, &device).expect("annotator");
        let text = "t12 t40 t7 t99 t150 t33";
        let a = annotator.annotate(2, text).expect("annotate");
        let s = &a.stats;
        assert_eq!((s.texts, s.tokens, s.positions_scored), (1, 6, 5));
        assert_eq!(
            (s.above_tau_s, s.candidate_positions, s.calls_sampled),
            (5, 3, 12)
        );
        assert_eq!(s.distinct_calls, a.calls.len());
        assert!(s.distinct_calls >= 3 && s.distinct_calls <= 12, "{s:?}");
        assert_eq!(a.calls.iter().map(|c| c.samples).sum::<usize>(), 12);
        // The tiny word-level model cannot write `Calculator(…)`: every sample is recorded with its reason.
        assert_eq!((s.parsed, s.executed), (0, 0));
        assert!(
            a.calls
                .iter()
                .all(|c| c.text == 2 && c.error.is_some() && c.losses.is_none())
        );
        assert!(
            a.calls
                .iter()
                .all(|c| text[c.at..].starts_with('t') && c.position >= 1)
        );
        let bad = ToolformerConfig {
            tau_s: 1.5,
            ..ToolformerConfig::default()
        };
        let e = Annotator::new(&model, &tok, bad, None, &device)
            .err()
            .expect("tau_s > 1")
            .to_string();
        assert!(e.contains("tau_s = 1.5"), "{e}");
    }
}
