//! Crate root of `temper-tensor-ops`: backend-agnostic tensor helpers shared by Temper's objectives and generator.
//!
//! Everything here is pure math on burn 0.22 tensors (`Tensor<D>` plus a `Device` value, no backend type
//! parameter): log-prob gathering, entropy, TRL's per-token statistics ([`token_stats`]), a numerically
//! stable `logsumexp`, masked reductions, HF-style top-k / nucleus filtering, one seeded sampling step and
//! Schulman's KL estimators.
//!
//! **Invariant:** no I/O, no tokenizer, no model. All functions are differentiable where that makes sense
//! (`token_logprobs`, `entropy`, `logsumexp`, the masked reductions and `kl_estimate`).
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use temper_tensor_ops::{masked_mean, token_logprobs};
//!
//! let device = Device::default();
//! // logits [B=1, T=2, V=2]: uniform at t=0, so log p = ln(1/2).
//! let logits = Tensor::<3>::from_data(TensorData::new(vec![0.0f32, 0.0, 2.0, 0.0], [1, 2, 2]), &device);
//! let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0], [1, 2]), &device);
//! let lp = token_logprobs(logits, targets);
//! let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &device);
//! let mean: Vec<f32> = masked_mean(lp, mask).into_data().iter::<f32>().collect();
//! assert!((mean[0] - 0.5f32.ln()).abs() < 1e-6);
//! ```

mod filter;
mod kl;
mod logprobs;
mod masked;
mod sample;

pub use filter::{top_k_filter, top_p_filter};
pub use kl::{KlEstimator, kl_estimate};
pub use logprobs::{EntropyMode, TokenStats, entropy, logsumexp, token_logprobs, token_logprobs_entropy, token_stats};
pub use masked::{masked_mean, masked_mean_all, masked_sum};
pub use sample::{Sampled, SamplingParams, sample};

#[cfg(test)]
mod backend;
#[cfg(test)]
mod test_util;
