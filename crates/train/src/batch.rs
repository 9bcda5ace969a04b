//! From text to padded tensors and per-token log-probs: tokenising SFT examples with their loss masks,
//! right-padding batches, and the one forward every trainer uses to score tokens.

use burn::tensor::{Device, Int, Tensor, TensorData};
use temper_models::{AttentionInfo, CausalLm};
use temper_tensor_ops::{EntropyMode, token_logprobs_entropy};
use temper_tokenizer::{Message, Tokenizer};

use crate::data::SftExample;
use crate::error::{Result, TrainError};

/// A tokenised sequence with a per-token loss mask (1 = this token is a training target).
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenized {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Same length as `ids`.
    pub loss_mask: Vec<u8>,
}

fn render(tok: &Tokenizer, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
    let t = tok
        .chat_template()
        .ok_or_else(|| TrainError::Reward("chat data needs a tokenizer with a chat template".into()))?;
    Ok(t.render(messages, add_generation_prompt)?)
}

/// Tokenises an SFT example: completion-only loss for prompt/completion (EOS appended, as TRL does),
/// assistant-only loss for chat messages, full loss for plain text. Truncated to `max_length`.
pub fn tokenize_sft(tok: &Tokenizer, example: &SftExample, eos: u32, max_length: usize) -> Result<Tokenized> {
    let mut out = match example {
        SftExample::PromptCompletion { prompt, completion } => {
            let p = tok.encode(prompt)?;
            let mut c = tok.encode(completion)?;
            c.push(eos);
            let mut loss_mask = vec![0u8; p.len()];
            loss_mask.extend(std::iter::repeat_n(1u8, c.len()));
            Tokenized {
                ids: [p, c].concat(),
                loss_mask,
            }
        }
        SftExample::Text(t) => {
            let mut ids = tok.encode(t)?;
            ids.push(eos);
            let loss_mask = vec![1u8; ids.len()];
            Tokenized { ids, loss_mask }
        }
        SftExample::Messages(messages) => {
            let ids = tok.encode(&render(tok, messages, false)?)?;
            let mut loss_mask = vec![0u8; ids.len()];
            for (k, m) in messages.iter().enumerate() {
                if m.role != temper_tokenizer::Role::Assistant {
                    continue;
                }
                let start = tok.encode(&render(tok, &messages[..k], true)?)?.len();
                let end = tok.encode(&render(tok, &messages[..=k], false)?)?.len().min(ids.len());
                for x in loss_mask.iter_mut().take(end).skip(start) {
                    *x = 1;
                }
            }
            Tokenized { ids, loss_mask }
        }
    };
    out.ids.truncate(max_length);
    out.loss_mask.truncate(max_length);
    Ok(out)
}

/// A right-padded batch on the host.
#[derive(Clone, Debug)]
pub struct PaddedBatch {
    /// `[B, T]` ids, padded with `pad`.
    pub ids: Vec<Vec<u32>>,
    /// `[B, T]` 1 on real tokens.
    pub attention: Vec<Vec<u8>>,
    /// `[B, T]` 1 on trained target tokens.
    pub loss_mask: Vec<Vec<u8>>,
}

impl PaddedBatch {
    /// Right-pads sequences to the longest one.
    pub fn right_padded(seqs: &[Tokenized], pad: u32) -> Self {
        let t = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let mut b = PaddedBatch {
            ids: Vec::new(),
            attention: Vec::new(),
            loss_mask: Vec::new(),
        };
        for s in seqs {
            let n = s.ids.len();
            let mut ids = s.ids.clone();
            ids.resize(t, pad);
            let mut att = vec![1u8; n];
            att.resize(t, 0);
            let mut lm = s.loss_mask.clone();
            lm.resize(t, 0);
            b.ids.push(ids);
            b.attention.push(att);
            b.loss_mask.push(lm);
        }
        b
    }

    /// Number of trained target tokens (`loss_mask[:, 1:]`).
    pub fn target_tokens(&self) -> usize {
        self.loss_mask.iter().map(|r| r.iter().skip(1).map(|&m| m as usize).sum::<usize>()).sum()
    }
}

/// `[B, T]` integer tensor from host rows.
pub fn int_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let (b, t) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [b, t]), device)
}

/// `[B, T]` float tensor from host 0/1 rows.
pub fn mask_tensor(rows: &[Vec<u8>], device: &Device) -> Tensor<2> {
    let (b, t) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| f32::from(x)).collect();
    Tensor::from_data(TensorData::new(flat, [b, t]), device)
}

/// What a scoring forward returns, all `[B, T-1]` aligned to the target token `ids[:, t+1]`.
pub struct TokenScores {
    /// `log softmax(logits/temperature)[target]`.
    pub logps: Tensor<2>,
    /// Entropy of the next-token distribution (only when asked for; see [`EntropyMode`]).
    pub entropy: Option<Tensor<2>>,
}

/// One forward over `ids` (positions per `positions_from_mask`, see [`AttentionInfo::from_mask`]) and the
/// log-prob of every next token. This is the computation the generator's log-probs are tested against.
pub fn token_scores<M: CausalLm + ?Sized>(
    model: &M,
    ids: &[Vec<u32>],
    attention: &[Vec<u8>],
    positions_from_mask: bool,
    temperature: f64,
    entropy: EntropyMode,
    device: &Device,
) -> TokenScores {
    token_scores_from(model, ids, attention, positions_from_mask, 0, temperature, entropy, device)
}

/// [`token_scores`] for the targets `ids[:, from+1..]` only (`[B, T-1-from]`; see [`next_token_logits_from`]).
#[allow(clippy::too_many_arguments)]
pub fn token_scores_from<M: CausalLm + ?Sized>(
    model: &M,
    ids: &[Vec<u32>],
    attention: &[Vec<u8>],
    positions_from_mask: bool,
    from: usize,
    temperature: f64,
    entropy: EntropyMode,
    device: &Device,
) -> TokenScores {
    let logits = next_token_logits_from(model, ids, attention, positions_from_mask, from, device); // (B, T-1-from, V)
    let logits = if (temperature - 1.0).abs() > 0.0 { logits / temperature } else { logits };
    let targets: Vec<Vec<u32>> = ids.iter().map(|r| r[1 + from..].to_vec()).collect();
    let (logps, entropy) = token_logprobs_entropy(logits, int_tensor(&targets, device), entropy);
    TokenScores { logps, entropy }
}

/// Logits of the next token at every position but the last: `[B, T] → [B, T-1, V]`. The last hidden state is
/// dropped before the LM head, so its vocabulary-wide row is never computed and the logits stay contiguous.
pub fn next_token_logits<M: CausalLm + ?Sized>(
    model: &M,
    ids: &[Vec<u32>],
    attention: &[Vec<u8>],
    positions_from_mask: bool,
    device: &Device,
) -> Tensor<3> {
    next_token_logits_from(model, ids, attention, positions_from_mask, 0, device)
}

/// [`next_token_logits`] for the targets `ids[:, from+1..]` only: `[B, T] → [B, T-1-from, V]` (`from < T-1`).
/// The decoder still runs over all `T` positions (the later ones attend to the earlier), but the LM head — a fifth
/// of SmolLM2's matmul work per position, and the vocabulary-wide tensors after it — skips the first `from`.
/// This is TRL's `logits_to_keep`, for losses that never look at the first `from` targets (DPO's prompts).
pub fn next_token_logits_from<M: CausalLm + ?Sized>(
    model: &M,
    ids: &[Vec<u32>],
    attention: &[Vec<u8>],
    positions_from_mask: bool,
    from: usize,
    device: &Device,
) -> Tensor<3> {
    let info = AttentionInfo::from_mask(attention, positions_from_mask);
    let hidden = model.hidden(int_tensor(ids, device), &info, None); // (B, T, H)
    let [b, t, h] = hidden.dims();
    model.lm_head(hidden.slice([0..b, from..t - 1, 0..h]))
}

/// Drops the first column: `[B, T] -> [B, T-1]` (masks aligned to targets).
pub fn shift_mask(rows: &[Vec<u8>]) -> Vec<Vec<u8>> {
    rows.iter().map(|r| r[1..].to_vec()).collect()
}
