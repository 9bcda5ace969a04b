//! The GRPO algorithm ([Shao et al. 2024](https://arxiv.org/abs/2402.03300)) with every TRL loss type, plugged
//! into the on-line loop ([`crate::online`]): the generator's log-probs are the old policy's, group-relative
//! advantages from the weighted reward columns, optional k3 KL to a frozen reference, exact gradient
//! accumulation over completion micro-batches.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_models::Llama;
use temper_rl_objectives::{
    GrpoConfig, GrpoInputs, GrpoLoss, RewardColumn, grpo_advantages, grpo_loss, truncated_completions,
};
use temper_tensor_ops::EntropyMode;

use crate::config::TrainSettings;
use crate::error::{Result, TrainError};
use crate::online::{online_config_fields, OnlineAlgorithm, OnlineConfig, OnlineTrainer, StepContext};
use crate::rollout_config::RolloutConfig;
use crate::session::{Metrics, Session, StepReport};

/// `temper grpo --config FILE.toml`: `[rollout]`, `[train]`, `[grpo]`; every field has a default, and the empty
/// file is `temper grpo`'s demo (SmolLM2 on the arithmetic task, 20 steps).
///
/// `grpo.max_completion_length` (Dr. GRPO's normaliser) is derived from `rollout.generation.max_new_tokens`; a
/// `[grpo]` table that sets it to another value is rejected.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "GrpoRunToml")]
pub struct GrpoRunConfig {
    /// Model, device, prompts, sampling, rewards.
    pub rollout: RolloutConfig,
    /// Loop settings; `batch_size` counts completions (prompts × `grpo.num_generations`), as in TRL.
    /// Without a `[train]` table: a 20-step CPU demo (16 completions a step, lr 3e-5 after 2 warm-up steps).
    pub train: TrainSettings,
    /// Objective settings; without a `[grpo]` table: TRL's defaults with 4 generations per prompt.
    pub grpo: GrpoConfig,
}

/// The file as written: `[grpo]` is read after `[rollout]` so that `max_completion_length` can be derived.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrpoRunToml {
    #[serde(default)]
    rollout: RolloutConfig,
    #[serde(default = "demo_train")]
    train: TrainSettings,
    #[serde(default)]
    grpo: Option<toml::Table>,
}

impl TryFrom<GrpoRunToml> for GrpoRunConfig {
    type Error = String;

    fn try_from(raw: GrpoRunToml) -> std::result::Result<Self, String> {
        let max_new = raw.rollout.generation.max_new_tokens;
        let grpo = match raw.grpo {
            None => demo_grpo(max_new),
            Some(mut table) => {
                if let Some(given) = table.get("max_completion_length") {
                    if given.as_integer() != Some(max_new as i64) {
                        return Err(format!(
                            "grpo.max_completion_length = {given} disagrees with rollout.generation.max_new_tokens = \
                             {max_new}: remove it, it is derived from max_new_tokens"
                        ));
                    }
                } else {
                    table.insert("max_completion_length".into(), toml::Value::Integer(max_new as i64));
                }
                GrpoConfig::deserialize(toml::Value::Table(table)).map_err(|e| format!("grpo: {e}"))?
            }
        };
        Ok(Self {
            rollout: raw.rollout,
            train: raw.train,
            grpo,
        })
    }
}

impl Default for GrpoRunConfig {
    fn default() -> Self {
        toml::from_str("").expect("every GrpoRunConfig field has a default")
    }
}

/// The `temper grpo` demo's loop: sized so SmolLM2 trains in minutes on a 2-core CPU.
fn demo_train() -> TrainSettings {
    TrainSettings {
        output_dir: "runs/grpo".into(),
        steps: 20,
        batch_size: 16,
        learning_rate: 3e-5,
        warmup_steps: 2,
        lr_schedule: crate::schedule::Schedule::Constant,
        save_steps: 10,
        eval_steps: 5,
        ..TrainSettings::default()
    }
}

fn demo_grpo(max_completion_length: usize) -> GrpoConfig {
    GrpoConfig {
        num_generations: 4,
        max_completion_length,
        ..GrpoConfig::default()
    }
}

impl GrpoRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[grpo]".into(),
            message,
        };
        self.rollout.validate()?;
        self.grpo.validate()?;
        let g = self.grpo.num_generations;
        if !self.train.batch_size.is_multiple_of(g) {
            return Err(err(format!(
                "train.batch_size ({}) must be a multiple of grpo.num_generations ({g})",
                self.train.batch_size
            )));
        }
        let max_new = self.rollout.generation.max_new_tokens;
        if self.grpo.max_completion_length != max_new {
            return Err(err(format!(
                "grpo.max_completion_length ({}) must equal rollout.generation.max_new_tokens ({max_new})",
                self.grpo.max_completion_length
            )));
        }
        self.train.validate().map_err(err)?;
        Ok(())
    }
}

impl OnlineConfig for GrpoRunConfig {
    type Module = Llama;
    type Algorithm = Grpo;
    online_config_fields!();
    fn build(&self, initial: Llama, _device: &Device) -> Result<(Grpo, Llama)> {
        Ok((Grpo::new(&initial, self.grpo.clone()), initial))
    }
}

/// Rows of a micro-batch's share of the loss, so that Σ micro-losses = the full-batch loss of each type.
fn accumulation_share(loss: &GrpoLoss, rows: usize, total_rows: usize, tokens: f64, total_tokens: f64) -> f64 {
    match loss {
        GrpoLoss::Grpo | GrpoLoss::Sapo { .. } | GrpoLoss::Luspo | GrpoLoss::DrGrpo => rows as f64 / total_rows as f64,
        GrpoLoss::Bnpo => tokens / total_tokens.max(1.0),
        // Normalised by `num_items_in_batch`, which is passed as the whole batch's token count.
        GrpoLoss::Dapo | GrpoLoss::Cispo | GrpoLoss::Vespo { .. } => 1.0,
    }
}

/// The GRPO algorithm: its objective settings and the frozen reference (when `beta != 0`).
pub struct Grpo {
    config: GrpoConfig,
    reference: Option<Llama>,
}

impl Grpo {
    /// Keeps a frozen copy of `initial` as the reference when `config.beta != 0`.
    pub fn new(initial: &Llama, config: GrpoConfig) -> Self {
        let reference = (config.beta != 0.0).then(|| initial.valid());
        Self { config, reference }
    }
}

/// A GRPO run: the on-line loop around [`Grpo`].
pub type GrpoTrainer<'a> = OnlineTrainer<'a, Grpo>;

impl OnlineAlgorithm<Llama> for Grpo {
    const NAME: &'static str = "GRPO";

    fn group_size(&self) -> usize {
        self.config.num_generations
    }

    fn step(&mut self, ctx: StepContext<'_>, session: &mut Session) -> Result<StepReport> {
        let sample = ctx.sample(Self::NAME)?;
        let (ro, scores) = (sample.rollout, sample.scores);
        let columns: Vec<RewardColumn> =
            scores.parts.iter().map(|(name, _, v)| RewardColumn::new(name.clone(), v.clone())).collect();
        let mut grpo = self.config.clone();
        if grpo.reward_weights.is_none() {
            grpo.reward_weights = Some(scores.parts.iter().map(|(_, w, _)| *w).collect());
        }
        let adv = grpo_advantages(&grpo, &columns)?;
        let pad = ctx.ids.pad;
        let truncated = truncated_completions(&ro.completion_ids, &ctx.ids.stop_ids(), pad);
        let mut step_metrics = adv.metrics.clone();
        step_metrics.extend(ctx.metrics.clone());
        let n = ro.len();
        let total_tokens: f64 = (0..n)
            .filter(|&i| !(grpo.mask_truncated_completions && truncated[i]))
            .map(|i| ro.loss_tokens(i) as f64)
            .sum();
        let micro = session.settings.micro_batch();
        let device = session.device.clone();
        let temperature = ctx.generation.temperature.max(1e-6);
        // The generator's log-probs are the old policy's exactly when sampling used the plain distribution.
        let reuse_gen_logps = ctx.generation.is_plain_sampling();
        let reference = self.reference.as_ref();
        let failure_state = ctx.failure_state.clone();
        session.step(
            |model, i| {
                let rows: Vec<usize> = (i * micro..((i + 1) * micro).min(n)).collect();
                let packed = ro.pack(&rows, pad);
                // Always a metric (and top-entropy masking needs only its value); a gradient only for a bonus.
                let entropy = if grpo.entropy_coef != 0.0 { EntropyMode::Differentiable } else { EntropyMode::Detached };
                let (lp, ent) = packed.completion_scores(model, temperature, entropy, &device);
                let mut mask_rows = packed.completion_mask.clone();
                if grpo.mask_truncated_completions {
                    for (r, &row) in rows.iter().enumerate() {
                        if truncated[row] {
                            mask_rows[r].iter_mut().for_each(|m| *m = 0);
                        }
                    }
                }
                let mask = crate::batch::mask_tensor(&mask_rows, &device);
                let tokens: f64 = mask_rows.iter().flatten().map(|&m| f64::from(m)).sum();
                let a: Vec<f32> = rows.iter().map(|&r| adv.values[r] as f32).collect();
                let advantages = Tensor::<1>::from_data(TensorData::new(a, [rows.len()]), &device);
                let mut inputs = GrpoInputs::new(lp.clone(), mask, advantages);
                inputs.entropy = ent;
                inputs.num_items_in_batch = Some(total_tokens);
                if reuse_gen_logps {
                    inputs.old_logps = Some(packed.gen_logps(&device));
                }
                if let Some(r) = reference {
                    let inner = device.clone().inner();
                    let (rl, _) = packed.completion_scores(r, temperature, EntropyMode::Skip, &inner);
                    inputs.ref_logps = Some(Tensor::from_data(rl.into_data(), &device));
                }
                let out = grpo_loss(&grpo, inputs)?;
                let share = accumulation_share(&grpo.loss_type, rows.len(), n, tokens, total_tokens);
                let mut m: Metrics = out.metrics;
                if reuse_gen_logps {
                    // On-policy check: the trainer's log-probs vs the generator's (~1e-6; averaged over micro-batches).
                    let diff: f32 = (lp.detach() - packed.gen_logps(&device)).abs().mul(packed.mask(&device)).max().into_scalar();
                    m.insert("sampling/max_logprob_diff".into(), f64::from(diff));
                }
                Ok((out.loss * share, m))
            },
            step_metrics,
            || failure_state,
        )
    }
}
