//! `temper-train`: trainers that run Temper's objectives end to end on a Llama-family model.
//!
//! Every trainer shares [`Session`], generic over the [`Trainable`] module it trains (a [`Llama`](temper_models::Llama),
//! a [`RewardModel`], a [`PolicyWithValue`]): AdamW with warm-up and a schedule, exact gradient accumulation,
//! global-norm clipping, non-finite checks, metrics as JSONL, and checkpoints (HF safetensors weights,
//! optimizer state, data position) written atomically and resumed exactly; `[train] lora` trains LoRA adapters
//! ([`LoraSettings`]) instead of every weight. [`export_hf`] writes a (merged) model that Temper and
//! transformers reload.
//!
//! The on-line algorithms (GRPO, RLOO, PPO, CEM) are [`OnlineAlgorithm`]s plugged into one loop,
//! [`OnlineTrainer`] (rollout → reward → loss → step → eval → checkpoint), configured by one shared `[rollout]`
//! table ([`RolloutConfig`]).

mod adamw;
mod atomic;
mod batch;
mod cem;
mod config;
mod data;
mod dpo;
mod error;
mod eval_policy;
mod export;
mod faults;
mod gguf_export;
mod grpo;
mod lora;
mod model_card;
mod online;
mod pair_cache;
mod params;
mod peft;
mod ppo;
mod rloo;
mod rm;
mod rollout;
mod rollout_config;
mod schedule;
mod session;
mod sft;
mod task_eval;
mod toolformer;
#[cfg(test)]
mod testkit;
pub mod tool_rollout;

pub use adamw::FusedAdamW;
pub use atomic::{atomic_dir, recover_interrupted_writes, write_atomic};
pub use batch::{
    PaddedBatch, TokenScores, Tokenized, int_tensor, mask_tensor, next_token_logits, shift_mask,
    token_scores, tokenize_sft,
};
pub use cem::{Cem, CemRunConfig, CemSettings, CemTrainer};
pub use config::{TrainSettings, default_device, default_model, load_toml, parse_toml};
pub use data::{
    Cursor, PreferencePair, PromptExample, SftExample, parse_preference, parse_prompt, parse_sft,
    read_jsonl,
};
pub use dpo::{
    DpoBatch, DpoEval, DpoRunConfig, DpoTrainer, EncodedDpoPair, PairStats, PairsConfig,
    dpo_inputs, dpo_micro_loss, encode_dpo_pairs, make_pairs, write_pairs_jsonl,
};
pub use error::{Result, TrainError};
pub use eval_policy::{ModelPolicy, ToolPolicy};
pub use export::{export_hf, hf_tensors};
pub use faults::set_write_budget;
pub use gguf_export::{GgufQuant, TensorQuantError, export_gguf};
pub use grpo::{Grpo, GrpoRunConfig, GrpoTrainer};
pub use lora::{LORA_TARGETS, LoraSettings, trainable_count, trainable_tensors};
pub use model_card::{ModelCard, generation_config, hf_folder_files};
pub use online::{
    MAX_REFUSED_ROLLOUTS, OnlineAlgorithm, OnlineConfig, OnlineRun, OnlineTrainer, PolicyModule,
    Sample, StepContext, reward_metrics, start_online,
};
pub use pair_cache::{Pairs, cached_pairs};
pub use params::{clip_grad_norm, grad_norm, named_tensors, stable_param_ids};
pub use peft::peft_adapter_files;
pub use ppo::{PolicyWithValue, Ppo, PpoRunConfig, PpoTrainer};
pub use rloo::{Rloo, RlooRunConfig, RlooTrainer};
pub use rm::{
    EncodedRmPair, NeuralReward, RewardModel, RmEval, RmRunConfig, RmTrainer, encode_rm_pairs,
    pad_right, pair_rewards, pooled_index, rewards_with_model, rm_batch,
};
pub use rollout::{
    ARITHMETIC_INSTRUCTION, Packed, PromptSet, RenderedPrompt, Rollout, Sampler, TaskSpec,
    default_rewards, evaluate, rollout,
};
pub use rollout_config::{
    MAX_TOOL_CALLS, ModelReward, RewardEntry, RolloutConfig, ToolsConfig, build_reward,
    rollout_generation,
};
pub use schedule::{Schedule, lr_at};
pub use session::{
    Metrics, Observer, Quiet, Session, StepReport, Trainable, TrainerState, Update,
    latest_checkpoint,
};
pub use sft::{SftRunConfig, SftTrainer, sft_inputs};
pub use task_eval::{TaskEval, TaskEvalConfig};
pub use toolformer::{
    Annotator, CallPrefixes, CallRecord, TOOL, TextAnnotation, ToolformerConfig, ToolformerStats,
    WEIGHTED_TOKENS, call_losses, dataset, select_positions, start_probabilities,
};
pub use temper_tensor_ops::EntropyMode;
