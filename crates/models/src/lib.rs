//! `temper-models`: a Llama-family causal LM on burn that loads real weights and generates with a KV cache.
//!
//! - [`Llama`]: SmolLM2 / Llama / Qwen2 layouts (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied or
//!   untied head), with [`AttentionInfo`] describing padding and positions and a [`KvCache`].
//! - Loaders: [`load_hf_dir`] (HF `config.json` + safetensors) and [`load_gguf`] (GGUF, dequantized to f32);
//!   [`load_model`] picks one from a path and brings the tokenizer along.
//! - [`generate`]: batched generation returning, for every sampled token, its log-prob under the sampling
//!   distribution and under the plain model.
//! - [`CausalLm`]: the seam trainers and judges use.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use temper_models::{AttentionInfo, CausalLm, LlamaConfig, Architecture};
//!
//! let config = LlamaConfig {
//!     architecture: Architecture::Llama, vocab_size: 32, hidden_size: 16, intermediate_size: 32,
//!     num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4,
//!     rms_norm_eps: 1e-5, rope_theta: 10_000.0, tie_word_embeddings: true, attention_bias: false,
//!     max_position_embeddings: 64, bos_token_id: None, eos_token_id: None, pad_token_id: None,
//! };
//! let device = Device::flex();
//! let model = config.init(&device);
//! let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
//! let logits = model.forward(ids, &AttentionInfo::full(1, 3), None);
//! assert_eq!(logits.dims(), [1, 3, 32]);
//! ```

mod causal_lm;
#[cfg(feature = "chat")]
mod chat;
mod config;
mod device;
mod error;
mod generate;
mod llama;
#[cfg(feature = "tokenizer")]
mod load;
mod loader;
mod memory;
mod thin;

pub use causal_lm::CausalLm;
#[cfg(feature = "chat")]
pub use chat::{LocalChat, render_chat_prompt};
pub use config::{Architecture, LlamaConfig};
pub use device::{available_devices, parse_device};
pub use error::{ModelError, Result};
pub use generate::{Decoder, FinishReason, Generation, GenerationConfig, generate, generate_n};
pub use llama::{Attention, AttentionInfo, DecoderLayer, KvCache, Llama, Mlp};
#[cfg(feature = "tokenizer")]
pub use load::{LoadedModel, load_model};
pub use memory::retain_freed_memory;
pub use loader::{
    GgufWeights, HfWeights, HostTensor, WeightSource, build_llama, gguf_name, load_gguf, load_hf_dir, permute_rows,
};
pub use temper_tensor_ops::SamplingParams;
pub use thin::HotWorkers;
