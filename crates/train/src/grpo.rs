//! The GRPO trainer ([Shao et al. 2024](https://arxiv.org/abs/2402.03300)) with every TRL loss type: rollouts
//! from the generator (its log-probs are the old policy's), group-relative advantages from weighted rewards,
//! optional k3 KL to a frozen reference, exact gradient accumulation over completion micro-batches.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_models::Llama;
use temper_rewards::{RewardSpec, WeightedSum, build_weighted_sum};
use temper_rl_objectives::{
    GrpoConfig, GrpoInputs, GrpoLoss, RewardColumn, completion_metrics, grpo_advantages, grpo_loss, truncated_completions,
};
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::Tokenizer;

use crate::config::TrainSettings;
use crate::data::Cursor;
use crate::error::{Result, TrainError};
use crate::rollout::{GenerationSettings, PromptSet, RenderedPrompt, TaskSpec, default_rewards, evaluate, rollout};
use crate::session::{Metrics, Observer, Session};
use crate::sft::default_device;

/// `temper grpo --config FILE.toml`: every field has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoRunConfig {
    /// Model to start from (asset name, GGUF file or HF folder).
    #[serde(default = "default_model")]
    pub model: String,
    /// Device: cpu, wgpu, cuda.
    #[serde(default = "default_device")]
    pub device: String,
    /// Prompt source.
    #[serde(default)]
    pub task: TaskSpec,
    /// Rollout sampling.
    #[serde(default)]
    pub generation: GenerationSettings,
    /// Reward functions, summed with their weights.
    #[serde(default = "default_rewards")]
    pub reward: Vec<RewardSpec>,
    /// Loop settings; `batch_size` counts completions (prompts × `grpo.num_generations`), as in TRL.
    /// Without a `[train]` table: a 20-step CPU demo (16 completions a step, lr 3e-5 after 2 warm-up steps).
    #[serde(default = "demo_train")]
    pub train: TrainSettings,
    /// Objective settings; without a `[grpo]` table: TRL's defaults with 4 generations per prompt.
    #[serde(default = "demo_grpo")]
    pub grpo: GrpoConfig,
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

fn demo_grpo() -> GrpoConfig {
    GrpoConfig {
        num_generations: 4,
        max_completion_length: 16,
        ..GrpoConfig::default()
    }
}

pub(crate) fn default_model() -> String {
    "smollm2".into()
}

impl GrpoRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[grpo]".into(),
            message,
        };
        self.grpo.validate()?;
        let g = self.grpo.num_generations;
        if !self.train.batch_size.is_multiple_of(g) {
            return Err(err(format!(
                "train.batch_size ({}) must be a multiple of grpo.num_generations ({g})",
                self.train.batch_size
            )));
        }
        self.train.validate().map_err(err)?;
        build_weighted_sum(&self.reward).map_err(|e| TrainError::Reward(e.to_string()))?;
        Ok(())
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

/// A GRPO run.
pub struct GrpoTrainer<'a> {
    tok: &'a Tokenizer,
    prompts: PromptSet,
    rewards: WeightedSum,
    cursor: Cursor,
    run: GrpoRunConfig,
    reference: Option<Llama>,
}

impl<'a> GrpoTrainer<'a> {
    /// Prepares prompts and rewards; keeps a frozen copy of the initial policy as the reference when `beta != 0`.
    pub fn new(tok: &'a Tokenizer, initial: &Llama, run: GrpoRunConfig) -> Result<Self> {
        run.validate()?;
        let prompts = PromptSet::build(&run.task, tok, run.generation.chat, run.train.seed)?;
        if prompts.train.is_empty() {
            return Err(TrainError::Config {
                path: "[task]".into(),
                message: "no training prompts".into(),
            });
        }
        let rewards = build_weighted_sum(&run.reward).map_err(|e| TrainError::Reward(e.to_string()))?;
        let reference = (run.grpo.beta != 0.0).then(|| initial.valid());
        Ok(Self {
            tok,
            cursor: Cursor::new(prompts.train.len(), run.train.seed),
            prompts,
            rewards,
            run,
            reference,
        })
    }

    fn eval(&self, session: &Session, observer: &mut dyn Observer) -> Result<()> {
        let policy = session.merged();
        let device = session.device.clone().inner();
        if let Some((reward, acc)) = evaluate(
            &policy,
            self.tok,
            &self.prompts.eval,
            &self.rewards,
            self.run.generation.max_new_tokens,
            &self.run.generation.stop,
            &device,
        )? {
            session.log_value(&serde_json::json!({"step": session.step, "eval/reward": reward, "eval/accuracy": acc}))?;
            observer.on_message(&format!("step {}: eval/reward {reward:.3} eval/accuracy {acc:.3}", session.step));
        }
        Ok(())
    }

    /// Runs until `train.steps`.
    pub fn train(&mut self, session: &mut Session, observer: &mut dyn Observer) -> Result<()> {
        if let Some(state) = session.take_resumed_state("GRPO prompt cursor")? {
            self.cursor = state;
        }
        if session.step == 0 {
            self.eval(session, observer)?;
        }
        let g = self.run.grpo.num_generations;
        let gen_device = session.device.clone().inner();
        let eos: Vec<u32> = self.tok.eos_id().into_iter().collect();
        let pad = self.tok.pad_id().or(self.tok.eos_id()).unwrap_or(0);
        while session.running() {
            let n_prompts = session.settings.batch_size / g;
            let picked: Vec<&RenderedPrompt> = self.cursor.take(n_prompts).into_iter().map(|i| &self.prompts.train[i]).collect();
            let policy = session.merged();
            let t0 = std::time::Instant::now();
            let ro = rollout(&policy, self.tok, &picked, g, &self.run.generation, session.step_seed(), &gen_device)?;
            let gen_seconds = t0.elapsed().as_secs_f64();
            let scores = ro.score(&self.rewards)?;
            let columns: Vec<RewardColumn> = scores
                .parts
                .iter()
                .map(|(name, _, v)| RewardColumn::new(name.clone(), v.clone()))
                .collect();
            let mut grpo = self.run.grpo.clone();
            if grpo.reward_weights.is_none() {
                grpo.reward_weights = Some(scores.parts.iter().map(|(_, w, _)| *w).collect());
            }
            let adv = grpo_advantages(&grpo, &columns)?;
            let truncated = truncated_completions(&ro.completion_ids, &eos, pad);
            let mut step_metrics = adv.metrics.clone();
            step_metrics.extend(completion_metrics(&ro.completion_ids, &eos, pad));
            step_metrics.insert("timing/generate_s".into(), gen_seconds);
            let n = ro.len();
            let total_tokens: f64 = (0..n)
                .filter(|&i| !(grpo.mask_truncated_completions && truncated[i]))
                .map(|i| ro.completion_ids[i].len() as f64)
                .sum();
            let micro = session.settings.micro_batch();
            let device = session.device.clone();
            let temperature = self.run.generation.temperature.max(1e-6);
            // The generator's log-probs are the old policy's exactly when sampling used the plain distribution.
            let reuse_gen_logps = (self.run.generation.temperature - 1.0).abs() < 1e-12
                && self.run.generation.top_k.is_none()
                && self.run.generation.top_p.is_none();
            let reference = self.reference.as_ref();
            let cursor = self.cursor.clone();
            let report = session.step(
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
                || serde_json::to_value(&cursor).unwrap_or_default(),
            )?;
            session.log_value(&serde_json::json!({"step": session.step, "sample": ro.texts.first()}))?;
            observer.on_step(&report);
            if session.eval_due() {
                self.eval(session, observer)?;
            }
            session.checkpoint_if_due(&self.cursor, observer)?;
        }
        Ok(())
    }
}
