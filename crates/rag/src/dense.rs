//! all-MiniLM-L6-v2 on burn: a BERT encoder (post-LayerNorm, GELU; Devlin et al. 2019,
//! <https://arxiv.org/abs/1810.04805>) followed by sentence-transformers' mean pooling over the attention mask and
//! L2 normalisation (Reimers & Gurevych 2019, <https://arxiv.org/abs/1908.10084>). Weights come from the
//! checkpoint's `model.safetensors` (names as in HF `BertModel`), the vocabulary from its `tokenizer.json`.
//!
//! Shape letters: `B` batch, `T` tokens (padded to the longest text of the batch), `H` hidden (384), `nh` heads
//! (12), `hd` head width (32), `I` intermediate (1536).

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;
use serde::Deserialize;
use temper_models::{HfWeights, WeightSource};

use crate::error::{RagError, Result};
use crate::vectors::Embedder;

/// Score added to padded keys before the softmax (finite, like HF's `finfo.min` it zeroes their weight).
const MASKED: f32 = -1.0e9;

/// The fields of HF `config.json` a BERT encoder needs (other keys are ignored: the file is HF's, not ours).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MiniLmConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width `H`.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Heads per layer.
    pub num_attention_heads: usize,
    /// MLP width `I`.
    pub intermediate_size: usize,
    /// Number of learned positions.
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// The activation; only `gelu` (erf) is supported.
    pub hidden_act: String,
}

struct Layer {
    /// Query, key and value in one product: `[H, 3H]` (the three HF matrices side by side).
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    /// `[H, I]`, without its bias: the bias is added in the GELU pass ([`bias_gelu`]).
    intermediate: Tensor<2>,
    intermediate_bias: Vec<f32>,
    output: Linear,
    out_norm: LayerNorm,
}

struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// The sentence encoder: tokenizer + BERT + mean pooling + L2 norm. An [`Embedder`].
pub struct MiniLm {
    bert: Bert,
    config: MiniLmConfig,
    tokenizer: tokenizers::Tokenizer,
    max_tokens: usize,
    device: Device,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("config", &self.config)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// Reads HF `[out, in]` weights into burn modules, checking names and shapes.
struct Loader<'a> {
    src: &'a HfWeights,
    device: &'a Device,
}

impl Loader<'_> {
    fn tensor(&self, name: &str, expect: &[usize]) -> Result<Vec<f32>> {
        let err = |m: String| {
            RagError::Encoder(format!(
                "{}: tensor `{name}`: {m}",
                self.src.path().display()
            ))
        };
        let (values, shape) = self
            .src
            .get(name)
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err("missing".into()))?;
        if shape != expect {
            return Err(err(format!("shape {shape:?}, expected {expect:?}")));
        }
        Ok(values)
    }

    fn param<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>> {
        let v = self.tensor(name, &shape)?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(v, shape),
            self.device,
        )))
    }

    /// The HF `[out, in]` weights of `prefixes`, transposed and side by side: `[d_in, n·d_out]`, and their biases
    /// one after the other.
    fn linears(
        &self,
        prefixes: &[&str],
        d_in: usize,
        d_out: usize,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let width = prefixes.len() * d_out;
        let mut t = vec![0.0f32; d_in * width];
        let mut bias = Vec::with_capacity(width);
        for (n, prefix) in prefixes.iter().enumerate() {
            let w = self.tensor(&format!("{prefix}.weight"), &[d_out, d_in])?;
            for o in 0..d_out {
                for i in 0..d_in {
                    t[i * width + n * d_out + o] = w[o * d_in + i];
                }
            }
            bias.extend(self.tensor(&format!("{prefix}.bias"), &[d_out])?);
        }
        Ok((t, bias))
    }

    fn linear_of(&self, prefixes: &[&str], d_in: usize, d_out: usize) -> Result<Linear> {
        let (w, b) = self.linears(prefixes, d_in, d_out)?;
        let width = prefixes.len() * d_out;
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [d_in, width]),
                self.device,
            )),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(b, [width]),
                self.device,
            ))),
        })
    }

    fn linear(&self, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        self.linear_of(&[prefix], d_in, d_out)
    }

    fn norm(&self, prefix: &str, d: usize, eps: f64) -> Result<LayerNorm> {
        let mut n = LayerNormConfig::new(d).with_epsilon(eps).init(self.device);
        n.gamma = self.param(&format!("{prefix}.weight"), [d])?;
        n.beta = Some(self.param(&format!("{prefix}.bias"), [d])?);
        Ok(n)
    }

    fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding> {
        let mut e = EmbeddingConfig::new(n, d).init(self.device);
        e.weight = self.param(name, [n, d])?;
        Ok(e)
    }
}

impl MiniLm {
    /// Loads a sentence-transformers folder: `config.json`, `model.safetensors`, `tokenizer.json`, and
    /// `sentence_bert_config.json` for the token limit (256 when absent).
    pub fn load(dir: &Path, device: &Device) -> Result<MiniLm> {
        let read = |name: &str| -> Result<String> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|source| RagError::Io { path: p, source })
        };
        let parse_err = |name: &str, e: serde_json::Error| RagError::Parse {
            path: dir.join(name),
            line: e.line(),
            message: e.to_string(),
        };
        let config: MiniLmConfig =
            serde_json::from_str(&read("config.json")?).map_err(|e| parse_err("config.json", e))?;
        if config.hidden_act != "gelu" {
            return Err(RagError::Encoder(format!(
                "config.json: hidden_act `{}` (only `gelu`)",
                config.hidden_act
            )));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(RagError::Encoder(
                "config.json: hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let max_tokens = match read("sentence_bert_config.json") {
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| parse_err("sentence_bert_config.json", e))?
                .get("max_seq_length")
                .and_then(|v| v.as_u64())
                .map_or(256, |v| v as usize),
            Err(_) => 256,
        }
        .min(config.max_position_embeddings);
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| RagError::Encoder(format!("{}: {e}", tok_path.display())))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| RagError::Encoder(format!("{}: {e}", tok_path.display())))?;
        let src = HfWeights::open(&dir.join("model.safetensors"))
            .map_err(|e| RagError::Encoder(e.to_string()))?;
        let l = Loader { src: &src, device };
        let (h, i, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{n}");
            let qkv = ["query", "key", "value"].map(|m| format!("{p}.attention.self.{m}"));
            let (inter, inter_bias) =
                l.linears(&[format!("{p}.intermediate.dense").as_str()], h, i)?;
            layers.push(Layer {
                qkv: l.linear_of(&qkv.each_ref().map(String::as_str), h, h)?,
                attn_out: l.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: l.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: Tensor::from_data(TensorData::new(inter, [h, i]), device),
                intermediate_bias: inter_bias,
                output: l.linear(&format!("{p}.output.dense"), i, h)?,
                out_norm: l.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let bert = Bert {
            word: l.embedding("embeddings.word_embeddings.weight", config.vocab_size, h)?,
            position: l.embedding(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
            )?,
            token_type: l.embedding(
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size,
                h,
            )?,
            emb_norm: l.norm("embeddings.LayerNorm", h, eps)?,
            layers,
        };
        Ok(MiniLm {
            bert,
            config,
            tokenizer,
            max_tokens,
            device: device.clone(),
        })
    }

    /// The configuration read from `config.json`.
    pub fn config(&self) -> &MiniLmConfig {
        &self.config
    }

    /// The output dimension (`H`).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Normalised embeddings of `texts`, encoded as one batch padded to its longest text.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| RagError::Encoder(format!("tokenizer: {e}")))?;
        let b = texts.len();
        let t = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .clamp(1, self.max_tokens);
        // Texts shorter than the batch's longest get a key bias; a batch of equal lengths needs none.
        let padded = encodings.iter().any(|e| e.get_ids().len() < t);
        let mut ids = vec![0i64; b * t];
        let mut types = vec![0i64; b * t];
        let mut mask = vec![0f32; b * t];
        for (row, e) in encodings.iter().enumerate() {
            for (j, (&id, &ty)) in e.get_ids().iter().zip(e.get_type_ids()).take(t).enumerate() {
                ids[row * t + j] = i64::from(id);
                types[row * t + j] = i64::from(ty);
                mask[row * t + j] = 1.0;
            }
        }
        let dev = &self.device;
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), dev); // (B, T)
        let types = Tensor::<2, Int>::from_data(TensorData::new(types, [b, t]), dev); // (B, T)
        let positions = Tensor::<1, Int>::arange(0..t as i64, dev)
            .reshape([1, t])
            .repeat_dim(0, b); // (B, T)
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), dev); // (B, T)
        // 0 for real keys, MASKED for padding: (B, 1, 1, T).
        let bias = padded.then(|| {
            (mask.clone().neg() + 1.0)
                .mul_scalar(MASKED)
                .reshape([b, 1, 1, t])
        });
        let hidden = self.forward(ids, types, positions, bias)?; // (B, T, H)
        let h = self.dim();
        let m3 = mask.clone().reshape([b, t, 1]); // (B, T, 1)
        let summed = (hidden * m3).sum_dim(1).reshape([b, h]); // (B, H)
        let counts = mask.sum_dim(1).clamp_min(1e-9); // (B, 1)
        let mean = summed / counts; // (B, H)
        let norm = mean
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12); // (B, 1)
        let out = (mean / norm).into_data();
        let flat: Vec<f32> = out
            .try_to_vec::<f32>()
            .map_err(|e| RagError::Encoder(format!("reading embeddings: {e:?}")))?;
        Ok(flat.chunks_exact(h).map(<[f32]>::to_vec).collect())
    }

    /// The last hidden states. The token rows are kept as one `[B·T, H]` matrix, so that every product is a
    /// single large one; only attention sees the batch and head dimensions.
    ///
    /// # Shapes
    /// `ids`, `types`, `positions`: `[B, T]`; `bias` (added to the attention scores of padded keys): `[B, 1, 1, T]`
    /// → `[B, T, H]`.
    fn forward(
        &self,
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        bias: Option<Tensor<4>>,
    ) -> Result<Tensor<3>> {
        let [b, t] = ids.dims();
        let (h, nh) = (self.config.hidden_size, self.config.num_attention_heads);
        let hd = h / nh;
        let bert = &self.bert;
        let x = bert.word.forward(ids)
            + bert.position.forward(positions)
            + bert.token_type.forward(types); // (B, T, H)
        let mut x = bert.emb_norm.forward(x.reshape([b * t, h])); // (B·T, H)
        for layer in &bert.layers {
            let qkv = layer.qkv.forward(x.clone()); // (B·T, 3H)
            let heads = |n: usize| {
                qkv.clone()
                    .narrow(1, n * h, h)
                    .reshape([b, t, nh, hd])
                    .swap_dims(1, 2)
            }; // (B, nh, T, hd)
            // softmax(q·kᵀ/√hd + bias)·v in the backend's fused kernel.
            let ctx = attention(
                heads(0),
                heads(1),
                heads(2),
                None,
                bias.clone(),
                AttentionModuleOptions::default(),
            )
            .swap_dims(1, 2)
            .reshape([b * t, h]); // (B·T, H)
            let attn = layer.attn_norm.forward(layer.attn_out.forward(ctx) + x); // (B·T, H)
            let inner = bias_gelu(
                attn.clone().matmul(layer.intermediate.clone()),
                &layer.intermediate_bias,
            )?; // (B·T, I)
            x = layer.out_norm.forward(layer.output.forward(inner) + attn); // (B·T, H)
        }
        Ok(x.reshape([b, t, h]))
    }
}

/// `erf(x)` for f32: Eigen's rational approximation (`generic_fast_erf_float`, also XLA's), odd polynomial of
/// degree 13 over even of degree 8 on `[-4, 4]` (beyond it erf is ±1 in f32). Branch-free, so a loop over it
/// vectorises; within 4.2e-7 of the exact erf on `[-10, 10]` (test below).
#[inline]
fn erf_f32(x: f32) -> f32 {
    // Plain multiply-adds: `mul_add` without the FMA target feature is a libm call per element.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_6e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329e-3;
    q = x2 * q - 1.426_474e-2;
    x * p / q
}

/// `gelu(x + bias)` with GELU's exact form `0.5·v·(1 + erf(v/√2))` (BERT's `gelu`), `bias` added along the last
/// dimension: one pass over the values, split over rayon's threads (burn's GELU maps libm's `erff` on one thread).
fn bias_gelu(x: Tensor<2>, bias: &[f32]) -> Result<Tensor<2>> {
    let dims = x.dims();
    let device = x.device();
    let mut v: Vec<f32> = x
        .into_data()
        .try_into_vec()
        .map_err(|e| RagError::Encoder(format!("reading the MLP activations: {e:?}")))?;
    let width = bias.len();
    v.par_chunks_mut(width * 16).for_each(|rows| {
        for row in rows.chunks_exact_mut(width) {
            for (x, b) in row.iter_mut().zip(bias) {
                let u = *x + b;
                *x = 0.5 * u * (1.0 + erf_f32(u * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    });
    Ok(Tensor::from_data(TensorData::new(v, dims), &device))
}

impl Embedder for MiniLm {
    /// Encodes in batches of 32 texts of similar length (sorted by length, so that little padding is computed),
    /// returned in the order given.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for group in order.chunks(32) {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            for (&i, v) in group.iter().zip(self.encode_batch(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges on the tested range), an independent reference.
    fn erf_series(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn fast_erf_is_within_5e_7_of_erf() {
        let mut worst = 0.0f64;
        for i in -3500..=3500 {
            let x = f64::from(i) / 1000.0;
            worst = worst.max((f64::from(erf_f32(x as f32)) - erf_series(x)).abs());
        }
        assert!(worst < 5e-7, "max |error| on [-3.5, 3.5]: {worst}");
        for x in [3.6f32, 4.0, 7.5, 1e6] {
            assert!((erf_f32(x) - 1.0).abs() < 1e-6, "{x}");
            assert!((erf_f32(-x) + 1.0).abs() < 1e-6, "-{x}");
        }
        assert_eq!(erf_f32(0.0), 0.0);
    }
}
