//! `LlamaConfig`: the hyper-parameters of a Llama-family model, read from HF `config.json` or GGUF metadata.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Which checkpoint family a model came from; it decides the GGUF tensor layout and biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Llama / SmolLM2 / Mistral-style: no biases.
    Llama,
    /// Qwen2: biases on the q, k and v projections.
    Qwen2,
}

/// Hyper-parameters of a Llama-family causal LM ([Touvron et al. 2023](https://arxiv.org/abs/2302.13971)).
///
/// Field names follow the HF `config.json` keys so that [`LlamaConfig::to_hf_json`] round-trips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Checkpoint family.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention, [Ainslie et al. 2023](https://arxiv.org/abs/2305.13245)).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base θ ([Su et al. 2021](https://arxiv.org/abs/2104.09864)).
    pub rope_theta: f64,
    /// Whether the LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections have biases (Qwen2).
    pub attention_bias: bool,
    /// Longest supported context.
    pub max_position_embeddings: usize,
    /// Beginning-of-sequence id, when the model has one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id, when the model has one.
    pub eos_token_id: Option<u32>,
    /// Padding id, when the model has one.
    pub pad_token_id: Option<u32>,
}

/// The subset of HF's `config.json` that we read; unknown HF keys are ignored (it is HF's format, not ours).
#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    max_position_embeddings: Option<usize>,
    bos_token_id: Option<serde_json::Value>,
    eos_token_id: Option<serde_json::Value>,
    pad_token_id: Option<serde_json::Value>,
    hidden_act: Option<String>,
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

fn first_id(v: &Option<serde_json::Value>) -> Option<u32> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_u64().map(|x| x as u32),
        serde_json::Value::Array(a) => a.first()?.as_u64().map(|x| x as u32),
        _ => None,
    }
}

impl LlamaConfig {
    /// Reads an HF `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_hf_str(&text, path)
    }

    /// Parses the text of an HF `config.json`; `path` is only used in error messages.
    pub fn from_hf_str(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        let hf: HfConfig = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let architecture = match hf.model_type.as_deref() {
            Some("llama") | Some("mistral") | None => Architecture::Llama,
            Some("qwen2") => Architecture::Qwen2,
            Some(other) => return Err(err(format!("model_type `{other}` is not a Llama-family model"))),
        };
        if let Some(act) = hf.hidden_act.as_deref()
            && act != "silu"
        {
            return Err(err(format!("hidden_act `{act}` is not supported (only silu)")));
        }
        if let Some(p) = &hf.rope_parameters
            && let Some(t) = p.rope_type.as_deref()
            && t != "default"
        {
            return Err(err(format!("rope_parameters.rope_type `{t}` is not supported (only default)")));
        }
        if let Some(s) = &hf.rope_scaling
            && !s.is_null()
        {
            return Err(err("rope_scaling is not supported".into()));
        }
        let need = |v: Option<usize>, name: &str| v.ok_or_else(|| err(format!("missing field `{name}`")));
        let hidden_size = need(hf.hidden_size, "hidden_size")?;
        let num_attention_heads = need(hf.num_attention_heads, "num_attention_heads")?;
        let config = LlamaConfig {
            architecture,
            vocab_size: need(hf.vocab_size, "vocab_size")?,
            hidden_size,
            intermediate_size: need(hf.intermediate_size, "intermediate_size")?,
            num_hidden_layers: need(hf.num_hidden_layers, "num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: hf.num_key_value_heads.unwrap_or(num_attention_heads),
            head_dim: hf.head_dim.unwrap_or(hidden_size / num_attention_heads.max(1)),
            rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: hf
                .rope_parameters
                .as_ref()
                .and_then(|p| p.rope_theta)
                .or(hf.rope_theta)
                .unwrap_or(10_000.0),
            tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(false),
            attention_bias: hf
                .attention_bias
                .unwrap_or(architecture == Architecture::Qwen2),
            max_position_embeddings: hf.max_position_embeddings.unwrap_or(2048),
            bos_token_id: first_id(&hf.bos_token_id),
            eos_token_id: first_id(&hf.eos_token_id),
            pad_token_id: first_id(&hf.pad_token_id),
        };
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Reads the hyper-parameters from GGUF metadata (`llama.*` or `qwen2.*` keys).
    pub fn from_gguf(gguf: &temper_gguf::GgufFile, path: &Path) -> Result<Self> {
        let err = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        let arch_name = gguf.get_str("general.architecture")?.to_string();
        let architecture = match arch_name.as_str() {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            other => return Err(err(format!("general.architecture `{other}` is not supported (llama, qwen2)"))),
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let hidden_size = gguf.get_u64(&key("embedding_length"))? as usize;
        let num_attention_heads = gguf.get_u64(&key("attention.head_count"))? as usize;
        let vocab_size = match gguf.get_u64(&key("vocab_size")) {
            Ok(v) => v as usize,
            Err(_) => match gguf.get("tokenizer.ggml.tokens") {
                Some(temper_gguf::GgufValue::Array(a)) => a.len(),
                _ => return Err(err(format!("missing `{}` and `tokenizer.ggml.tokens`", key("vocab_size")))),
            },
        };
        let opt_id = |k: &str| gguf.get_u64(k).ok().map(|v| v as u32);
        let config = LlamaConfig {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size: gguf.get_u64(&key("feed_forward_length"))? as usize,
            num_hidden_layers: gguf.get_u64(&key("block_count"))? as usize,
            num_attention_heads,
            num_key_value_heads: gguf
                .get_u64(&key("attention.head_count_kv"))
                .map(|v| v as usize)
                .unwrap_or(num_attention_heads),
            head_dim: gguf
                .get_u64(&key("attention.key_length"))
                .map(|v| v as usize)
                .unwrap_or(hidden_size / num_attention_heads.max(1)),
            rms_norm_eps: gguf
                .get_f32(&key("attention.layer_norm_rms_epsilon"))
                .map(f64::from)
                .unwrap_or(1e-5),
            rope_theta: gguf.get_f32(&key("rope.freq_base")).map(f64::from).unwrap_or(10_000.0),
            tie_word_embeddings: gguf.tensor("output.weight").is_none(),
            attention_bias: gguf.tensor("blk.0.attn_q.bias").is_some(),
            max_position_embeddings: gguf
                .get_u64(&key("context_length"))
                .map(|v| v as usize)
                .unwrap_or(2048),
            bos_token_id: opt_id("tokenizer.ggml.bos_token_id"),
            eos_token_id: opt_id("tokenizer.ggml.eos_token_id"),
            pad_token_id: opt_id("tokenizer.ggml.padding_token_id"),
        };
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Cross-field checks: head counts divide, sizes are non-zero.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let nonzero = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ];
        for (name, v) in nonzero {
            if v == 0 {
                return Err(format!("`{name}` must be positive"));
            }
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return Err(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!("head_dim ({}) must be even for RoPE", self.head_dim));
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 || self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return Err("rms_norm_eps and rope_theta must be positive".into());
        }
        Ok(())
    }

    /// The HF `config.json` for this model (what `temper export` writes).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (arch, model_type) = match self.architecture {
            Architecture::Llama => ("LlamaForCausalLM", "llama"),
            Architecture::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        };
        serde_json::json!({
            "architectures": [arch],
            "model_type": model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_theta": self.rope_theta, "rope_type": "default"},
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "silu",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "torch_dtype": "float32",
        })
    }
}
