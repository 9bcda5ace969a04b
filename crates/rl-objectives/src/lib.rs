//! Crate root of `temper-rl-objectives`: TRL 1.16-equivalent alignment losses as pure, differentiable burn math.
//!
//! One algorithm per module: [`sft_loss`] (masked NLL / DFT), [`reward_loss`] (Bradley–Terry),
//! [`dpo_loss`] (15 DPO loss families, f-divergences, WPO, LD-DPO, multi-loss), [`grpo_loss`] (GRPO, BNPO,
//! Dr. GRPO, DAPO, CISPO, SAPO, LUSPO, VESPO) with [`grpo_advantages`], [`rloo_loss`] with
//! [`rloo_advantages`], [`ppo_loss`] with [`gae`], and [`CemState`] for best-of-N / cross-entropy-method
//! selection.
//!
//! **Architecture invariant:** pure math on tensors — no I/O, no tokenizer, no model. Inputs are per-token
//! log-probs `[N, T]` (already aligned to their target tokens and 0 on masked positions is not required:
//! every loss multiplies by the mask), masks, advantages and a config; outputs are an [`ObjectiveOutput`]
//! with the loss tensor (backpropagate it) and TRL's metrics by TRL's names.
//!
//! Every config deserializes with serde (`deny_unknown_fields`), defaults to TRL's defaults, and is checked
//! by one `validate` (called by its constructor and by the loss) returning [`ObjectiveError`].
//!
//! ```
//! use burn::tensor::{Device, Tensor, TensorData};
//! use temper_rl_objectives::{SftConfig, SftInputs, SftLoss, sft_loss};
//!
//! let device = Device::default();
//! let logps = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, -3.0, 0.0], [1, 3]), &device);
//! let mask = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0], [1, 3]), &device);
//! let out = sft_loss(&SftConfig { loss_type: SftLoss::Nll }, SftInputs::new(logps, mask)).unwrap();
//! let loss: f32 = out.loss.into_scalar();
//! assert!((loss - 2.0).abs() < 1e-6); // mean of 1 and 3
//! ```

mod cem;
mod common;
mod dpo;
mod error;
mod grpo;
mod ppo;
mod reward;
mod rloo;
mod sft;

pub use cem::{CemConfig, CemIteration, CemState, EliteScope, best_of_n, select_elites};
pub use common::{Metrics, ObjectiveOutput, RewardColumn, nanstd};
pub use dpo::{DpoConfig, DpoInputs, DpoLoss, FDivergence, WeightedDpoLoss, dpo_loss};
pub use error::ObjectiveError;
pub use grpo::{
    Advantages, GrpoConfig, GrpoInputs, GrpoLoss, ImportanceSampling, MultiObjectiveAggregation,
    ScaleRewards, completion_metrics, grpo_advantages, grpo_loss, mask_truncated,
    truncated_completions,
};
pub use ppo::{KlPenalty, PpoConfig, PpoInputs, gae, masked_whiten, ppo_loss, ppo_token_rewards};
pub use reward::{RewardConfig, reward_loss};
pub use rloo::{RlooConfig, RlooInputs, RlooRewardInputs, rloo_advantages, rloo_loss};
pub use sft::{SftConfig, SftInputs, SftLoss, sft_loss};
