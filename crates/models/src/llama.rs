//! The Llama-family decoder (SmolLM2, Llama, Qwen2 layouts) in one file: RMSNorm, RoPE, grouped-query attention,
//! SwiGLU MLP, tied or untied LM head, and a KV cache.
//!
//! Papers: Llama ([Touvron et al. 2023](https://arxiv.org/abs/2302.13971)), RoPE
//! ([Su et al. 2021](https://arxiv.org/abs/2104.09864)), GQA ([Ainslie et al. 2023](https://arxiv.org/abs/2305.13245)),
//! SwiGLU ([Shazeer 2020](https://arxiv.org/abs/2002.05202)).
//!
//! Shape letters: `B` batch, `T` new tokens, `S` keys (cache + new), `H` hidden, `nh`/`nkv` query/KV heads,
//! `hd` head width, `V` vocabulary.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::LlamaConfig;
use crate::thin;

/// Large negative score for masked keys: finite, so a fully masked (left-padding) query row stays finite.
const MASKED: f32 = -1.0e30;

/// What the attention may see, kept on the host: which keys are real and at which position each query sits.
///
/// `key_mask` covers every key position the layer will see (cached ones first, then the new tokens), row-major
/// `[B, S]`; `positions` gives the RoPE position of each new token, row-major `[B, T]`. A query at sequence index
/// `S - T + t` may attend key `s` iff `s <= S - T + t` and `key_mask[b, s]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionInfo {
    /// Batch size.
    pub batch: usize,
    /// Number of new tokens `T`.
    pub new_tokens: usize,
    /// `[B, S]`, true on real (non-padding) tokens.
    pub key_mask: Vec<bool>,
    /// `[B, T]` RoPE positions of the new tokens.
    pub positions: Vec<i64>,
}

impl AttentionInfo {
    /// No padding, no cache: positions `0..T`.
    pub fn full(batch: usize, len: usize) -> Self {
        Self {
            batch,
            new_tokens: len,
            key_mask: vec![true; batch * len],
            positions: (0..batch).flat_map(|_| 0..len as i64).collect(),
        }
    }

    /// A padded batch without cache. `mask` is `[B, T]` (1 = real token). With `positions_from_mask` the RoPE
    /// position of a token is the number of real tokens before it (what HF `generate` does for left padding);
    /// otherwise it is its index `0..T` (what HF's plain forward, and so TRL's trainers, do).
    pub fn from_mask(mask: &[Vec<u8>], positions_from_mask: bool) -> Self {
        let batch = mask.len();
        let len = mask.first().map_or(0, Vec::len);
        let key_mask = mask.iter().flat_map(|r| r.iter().map(|&m| m != 0)).collect();
        let positions = mask
            .iter()
            .flat_map(|row| {
                let mut seen = 0i64;
                row.iter()
                    .enumerate()
                    .map(move |(t, &m)| {
                        if !positions_from_mask {
                            return t as i64;
                        }
                        let p = seen.max(0);
                        if m != 0 {
                            seen += 1;
                        }
                        p
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            batch,
            new_tokens: len,
            key_mask,
            positions,
        }
    }

    /// Number of key positions `S`.
    pub fn keys(&self) -> usize {
        self.key_mask.len().checked_div(self.batch).unwrap_or(0)
    }

    /// Additive attention bias `[B, 1, T, S]`: 0 where allowed, a large negative number elsewhere.
    fn bias(&self, device: &Device) -> Tensor<4> {
        let (b, t, s) = (self.batch, self.new_tokens, self.keys());
        let past = s - t;
        let mut out = vec![MASKED; b * t * s];
        for bi in 0..b {
            for ti in 0..t {
                let row = &mut out[(bi * t + ti) * s..(bi * t + ti + 1) * s];
                for (si, v) in row.iter_mut().enumerate().take(past + ti + 1) {
                    if self.key_mask[bi * s + si] {
                        *v = 0.0;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(out, [b, 1, t, s]), device)
    }
}

/// Keys and values of every layer for the tokens seen so far.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// Per layer: keys `[B, nkv, S, hd]` and values `[B, nkv, S, hd]` (keys already rotated).
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dims()[2])
    }

    /// True when nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the given batch rows (used when finished sequences leave a batch).
    pub fn select_rows(&mut self, rows: &[usize]) {
        for (k, v) in self.layers.iter_mut().flatten() {
            let device = k.device();
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]),
                &device,
            );
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx);
        }
    }

    fn append(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        let (k, v) = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }
}

/// Self-attention with grouped-query heads and rotary positions.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection `H -> nh·hd`.
    pub q_proj: Linear,
    /// Key projection `H -> nkv·hd`.
    pub k_proj: Linear,
    /// Value projection `H -> nkv·hd`.
    pub v_proj: Linear,
    /// Output projection `nh·hd -> H`.
    pub o_proj: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Gate projection `H -> I`.
    pub gate_proj: Linear,
    /// Up projection `H -> I`.
    pub up_proj: Linear,
    /// Down projection `I -> H`.
    pub down_proj: Linear,
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Attention block.
    pub self_attn: Attention,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// MLP block.
    pub mlp: Mlp,
}

/// A Llama-family causal language model.
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embedding `[V, H]`.
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Untied LM head `H -> V`; `None` when tied to the embedding.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: LlamaConfig,
    /// `[hd/2]` RoPE inverse frequencies, computed in f32 exactly like HF.
    #[module(skip)]
    inv_freq: Vec<f32>,
}

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

fn rms(d: usize, eps: f64, device: &Device) -> RmsNorm {
    RmsNormConfig::new(d).with_epsilon(eps).init(device)
}

/// HF's `1 / theta^(arange(0, hd, 2) / hd)`, computed in f32 as torch does.
fn rope_inv_freq(head_dim: usize, theta: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|j| {
            let exponent = (2 * j) as f32 / head_dim as f32;
            1.0f32 / (theta as f32).powf(exponent)
        })
        .collect()
}

impl LlamaConfig {
    /// A randomly initialised model (tests, benchmarks); real weights come from the loaders.
    pub fn init(&self, device: &Device) -> Llama {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let (nh, nkv, hd) = (self.num_attention_heads, self.num_key_value_heads, self.head_dim);
        let layers = (0..self.num_hidden_layers)
            .map(|_| DecoderLayer {
                input_layernorm: rms(h, self.rms_norm_eps, device),
                self_attn: Attention {
                    q_proj: linear(h, nh * hd, self.attention_bias, device),
                    k_proj: linear(h, nkv * hd, self.attention_bias, device),
                    v_proj: linear(h, nkv * hd, self.attention_bias, device),
                    o_proj: linear(nh * hd, h, false, device),
                    n_heads: nh,
                    n_kv_heads: nkv,
                    head_dim: hd,
                },
                post_attention_layernorm: rms(h, self.rms_norm_eps, device),
                mlp: Mlp {
                    gate_proj: linear(h, i, false, device),
                    up_proj: linear(h, i, false, device),
                    down_proj: linear(i, h, false, device),
                },
            })
            .collect();
        Llama {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, h).init(device),
            layers,
            norm: rms(h, self.rms_norm_eps, device),
            lm_head: (!self.tie_word_embeddings).then(|| linear(h, self.vocab_size, false, device)),
            inv_freq: rope_inv_freq(hd, self.rope_theta),
            config: self.clone(),
        }
    }
}

/// `concat(-x[..., hd/2:], x[..., :hd/2])`.
fn rotate_half(x: Tensor<4>) -> Tensor<4> {
    let [b, n, t, hd] = x.dims();
    let x1 = x.clone().slice([0..b, 0..n, 0..t, 0..hd / 2]);
    let x2 = x.slice([0..b, 0..n, 0..t, hd / 2..hd]);
    Tensor::cat(vec![x2.neg(), x1], 3)
}

impl Attention {
    pub(crate) fn from_linears(q_proj: Linear, k_proj: Linear, v_proj: Linear, o_proj: Linear, c: &LlamaConfig) -> Self {
        Attention {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            n_heads: c.num_attention_heads,
            n_kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
        }
    }

    /// # Shapes
    /// - `x`: `[B, T, H]`, `cos`/`sin`: `[B, 1, T, hd]`, `bias`: `[B, 1, T, S]`
    /// - output: `[B, T, H]`
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        bias: &Tensor<4>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (nh, nkv, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let group = nh / nkv;
        let q = thin::linear(&self.q_proj, x.clone()).reshape([b, t, nh, hd]).swap_dims(1, 2); // (B, nh, T, hd)
        let k = thin::linear(&self.k_proj, x.clone()).reshape([b, t, nkv, hd]).swap_dims(1, 2); // (B, nkv, T, hd)
        let v = thin::linear(&self.v_proj, x).reshape([b, t, nkv, hd]).swap_dims(1, 2); // (B, nkv, T, hd)
        let q = q.clone() * cos.clone() + rotate_half(q) * sin.clone();
        let k = k.clone() * cos.clone() + rotate_half(k) * sin.clone();
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v), // (B, nkv, S, hd)
            None => (k, v),
        };
        let s = k.dims()[2];
        // Grouped-query attention without copying K/V: query heads of one KV head share a matmul.
        let q = q.reshape([b, nkv, group * t, hd]); // (B, nkv, g·T, hd)
        let scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt(); // (B, nkv, g·T, S)
        let scores = scores.reshape([b, nh, t, s]) + bias.clone(); // (B, nh, T, S)
        let probs = softmax(scores, 3).reshape([b, nkv, group * t, s]);
        let out = probs.matmul(v); // (B, nkv, g·T, hd)
        let out = out.reshape([b, nh, t, hd]).swap_dims(1, 2).reshape([b, t, nh * hd]); // (B, T, nh·hd)
        thin::linear(&self.o_proj, out)
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(thin::linear(&self.gate_proj, x.clone()));
        thin::linear(&self.down_proj, gate * thin::linear(&self.up_proj, x))
    }
}

impl Llama {
    /// The hyper-parameters this model was built with.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub(crate) fn from_parts(
        config: LlamaConfig,
        embed_tokens: Embedding,
        layers: Vec<DecoderLayer>,
        norm: RmsNorm,
        lm_head: Option<Linear>,
    ) -> Self {
        Llama {
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq: rope_inv_freq(config.head_dim, config.rope_theta),
            config,
        }
    }

    /// `cos`, `sin` of shape `[B, 1, T, hd]` for the given positions (computed on the host like HF: f32 angles).
    fn rope(&self, info: &AttentionInfo, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let hd = self.config.head_dim;
        let half = hd / 2;
        let n = info.positions.len();
        let mut cos = Vec::with_capacity(n * hd);
        let mut sin = Vec::with_capacity(n * hd);
        for &p in &info.positions {
            let start = cos.len();
            for &f in self.inv_freq.iter() {
                let ang = p as f32 * f;
                cos.push(ang.cos());
                sin.push(ang.sin());
            }
            cos.extend_from_within(start..start + half);
            sin.extend_from_within(start..start + half);
        }
        let shape = [info.batch, 1, info.new_tokens, hd];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }

    /// Final-normed hidden states.
    ///
    /// # Shapes
    /// - `input_ids`: `[B, T]`; `info` describes `B`, `T` and the keys (see [`AttentionInfo`]).
    /// - output: `[B, T, H]`
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<2, Int>,
        info: &AttentionInfo,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let device = input_ids.device();
        let (cos, sin) = self.rope(info, &device);
        let bias = info.bias(&device);
        let mut x = self.embed_tokens.forward(input_ids); // (B, T, H)
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(x.clone());
            let c = cache.as_deref_mut().map(|c| (c, i));
            x = x + layer.self_attn.forward(h, &cos, &sin, &bias, c);
            let h = layer.post_attention_layernorm.forward(x.clone());
            x = x + layer.mlp.forward(h);
        }
        self.norm.forward(x)
    }

    /// LM head on hidden states: `[B, T, H] -> [B, T, V]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => thin::linear(head, hidden),
            None => {
                let [b, t, h] = hidden.dims();
                let w = self.embed_tokens.weight.val(); // (V, H)
                let v = w.dims()[0];
                let hidden = hidden.reshape([b * t, h]);
                if hidden.device().is_autodiff() {
                    // Training: `W · hiddenᵀ`, transposed back. The weight's gradient then comes out of the product
                    // in the weight's own `[V, H]` layout; as `hidden · Wᵀ` it would arrive as a transposed view,
                    // and adding it to the embedding's gradient (same parameter) walks one operand with a stride of
                    // `V` elements: ≈ 0.5 s of a 4 × 128-token SmolLM2 step, against ≈ 0.05 s for the one tiled
                    // transpose of the logits this costs.
                    w.matmul(hidden.transpose()).transpose().reshape([b, t, v])
                } else {
                    thin::matmul_cols(hidden, w.transpose()).reshape([b, t, v])
                }
            }
        }
    }

    /// Full forward: logits for every new position.
    ///
    /// # Shapes
    /// - `input_ids`: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3> {
        let hidden = self.forward_hidden(input_ids, info, cache);
        self.logits(hidden)
    }

    /// Number of scalar parameters.
    pub fn num_parameters(&self) -> usize {
        self.num_params()
    }

    /// Replaces the embedding weight (loader use).
    pub(crate) fn embedding_from(weight: Tensor<2>) -> Embedding {
        Embedding {
            weight: Param::from_tensor(weight),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::tensor::{Distribution, Int, Tensor};

    use super::*;
    use crate::LlamaConfig;

    /// The tied LM head computes `W · hᵀ` when training: same logits as the inference path, and the same
    /// embedding gradient as `h · Wᵀ` (the formulation it replaces), embedding lookup included.
    #[test]
    fn tied_head_training_layout_gives_the_same_logits_and_gradient() {
        let json = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":97,"hidden_size":32,"intermediate_size":64,
            "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-5,
            "rope_theta":10000.0,"tie_word_embeddings":true,"max_position_embeddings":64}"#;
        let config = LlamaConfig::from_hf_str(json, Path::new("config.json")).expect("config");
        let device = Device::flex().autodiff();
        let model = config.init(&device);
        let ids = Tensor::<2, Int>::random([2, 5], Distribution::Uniform(0.0, 97.0), &device);
        let info = AttentionInfo::full(2, 5);
        let weights = Tensor::<3>::random([2, 5, 97], Distribution::Normal(0.0, 1.0), &device);

        // Burn's tape is consumed by a backward pass: each formulation gets its own forward.
        let trained = || model.logits(model.forward_hidden(ids.clone(), &info, None));
        let plain = || {
            let hidden = model.forward_hidden(ids.clone(), &info, None).reshape([10, 32]);
            hidden.matmul(model.embed_tokens.weight.val().transpose()).reshape([2, 5, 97])
        };
        let diff: f32 = (trained().inner() - plain().inner()).abs().max().into_scalar();
        assert!(diff < 1e-5, "logits differ by {diff}");
        let inference = model.valid().forward(ids.clone().inner(), &info, None);
        let diff: f32 = (trained().inner() - inference).abs().max().into_scalar();
        assert!(diff < 1e-5, "training and inference logits differ by {diff}");

        let grad = |logits: Tensor<3>| {
            let grads = (logits * weights.clone()).sum().backward();
            model.embed_tokens.weight.grad(&grads).expect("embedding gradient")
        };
        // The two differ only in f32 summation order (≈ 1e-6 relative here); a transposed or dropped term
        // would be off by the size of the gradient itself.
        let (a, b) = (grad(trained()), grad(plain()));
        let scale: f32 = b.clone().abs().max().into_scalar();
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(scale > 0.0 && diff <= 1e-4 * scale, "embedding gradients differ by {diff} (scale {scale})");
    }
}
