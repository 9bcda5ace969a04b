//! The RLOO trainer (REINFORCE Leave-One-Out, [Ahmadian et al. 2024](https://arxiv.org/abs/2402.14740), as TRL's
//! `RLOOTrainer`): `G` completions per prompt, the KL to a frozen reference folded into the reward, leave-one-out
//! baselines, and a sequence-level clipped ratio against the generator's sequence log-probs.
//!
//! Also holds the small helpers the other on-line trainers (PPO, CEM) share: held-out evaluation with logging,
//! column padding of per-token tensors, and host copies of tensors.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_models::Llama;
use temper_rewards::{RewardSpec, WeightedSum, build_weighted_sum};
use temper_rl_objectives::{
    RewardColumn, RlooConfig, RlooInputs, RlooRewardInputs, completion_metrics, rloo_advantages, rloo_loss,
};
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::Tokenizer;

use crate::config::TrainSettings;
use crate::data::Cursor;
use crate::error::{Result, TrainError};
use crate::grpo::default_model;
use crate::rollout::{
    GenerationSettings, Packed, PromptSet, RenderedPrompt, Rollout, TaskSpec, default_rewards, evaluate, rollout,
};
use crate::session::{Metrics, Observer, Session};
use crate::sft::default_device;

/// `temper rloo --config FILE.toml`: every field has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlooRunConfig {
    /// Model to start from (asset name, GGUF file or HF folder).
    #[serde(default = "default_model")]
    pub model: String,
    /// Device: cpu, wgpu, cuda.
    #[serde(default = "default_device")]
    pub device: String,
    /// Prompt source (default: the built-in arithmetic task with the `<answer>` prefill).
    #[serde(default)]
    pub task: TaskSpec,
    /// Rollout sampling.
    #[serde(default)]
    pub generation: GenerationSettings,
    /// Reward functions, summed with their weights.
    #[serde(default = "default_rewards")]
    pub reward: Vec<RewardSpec>,
    /// Loop settings; `batch_size` counts completions (prompts × `rloo.num_generations`), as in TRL.
    #[serde(default)]
    pub train: TrainSettings,
    /// Objective settings (TRL `RLOOConfig` defaults: β = 0.05, ε = 0.2, G = 2).
    #[serde(default)]
    pub rloo: RlooConfig,
}

impl Default for RlooRunConfig {
    fn default() -> Self {
        Self {
            model: default_model(),
            device: default_device(),
            task: TaskSpec::default(),
            generation: GenerationSettings::default(),
            reward: default_rewards(),
            train: TrainSettings::default(),
            rloo: RlooConfig::default(),
        }
    }
}

impl RlooRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[rloo]".into(),
            message,
        };
        self.rloo.validate()?;
        let g = self.rloo.num_generations;
        if g < 2 {
            return Err(err(format!("rloo.num_generations must be >= 2 for a leave-one-out baseline, got {g}")));
        }
        if !self.train.batch_size.is_multiple_of(g) {
            return Err(err(format!(
                "train.batch_size ({}) must be a multiple of rloo.num_generations ({g})",
                self.train.batch_size
            )));
        }
        self.train.validate().map_err(err)?;
        build_weighted_sum(&self.reward).map_err(|e| TrainError::Reward(e.to_string()))?;
        Ok(())
    }
}

/// Pads a `[n, c]` tensor with zero columns to `[n, cols]`.
pub(crate) fn pad_cols(t: Tensor<2>, cols: usize) -> Tensor<2> {
    let [n, c] = t.dims();
    if c >= cols {
        return t;
    }
    let device = t.device();
    Tensor::cat(vec![t, Tensor::zeros([n, cols - c], &device)], 1)
}

/// Host copy of a tensor's values.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// `[n]` tensor from host values.
pub(crate) fn vec1(values: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

/// Greedy held-out evaluation of `policy`, logged as `eval/reward` and `eval/accuracy` at `step`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn eval_and_log(
    policy: &Llama,
    tok: &Tokenizer,
    prompts: &PromptSet,
    rewards: &WeightedSum,
    generation: &GenerationSettings,
    step: usize,
    device: &Device,
    log: &dyn Fn(&serde_json::Value) -> Result<()>,
    observer: &mut dyn Observer,
) -> Result<()> {
    if let Some((reward, acc)) =
        evaluate(policy, tok, &prompts.eval, rewards, generation.max_new_tokens, &generation.stop, device)?
    {
        log(&serde_json::json!({"step": step, "eval/reward": reward, "eval/accuracy": acc}))?;
        observer.on_message(&format!("step {step}: eval/reward {reward:.3} eval/accuracy {acc:.3}"));
    }
    Ok(())
}

/// Whether the generator's log-probs (plain model, temperature 1) are the old policy's exactly.
pub(crate) fn plain_sampling(g: &GenerationSettings) -> bool {
    (g.temperature - 1.0).abs() < 1e-12 && g.top_k.is_none() && g.top_p.is_none()
}

/// Old-policy per-token log-probs of every row, `[n, C]` with `C` the longest completion, plus the mask:
/// the generator's own when sampling was plain, else a no-grad forward of `policy` at `temperature`.
pub(crate) fn old_logps(
    ro: &Rollout,
    policy: &Llama,
    generation: &GenerationSettings,
    chunk: usize,
    pad: u32,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let n = ro.len();
    let c_all = ro.completion_ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut lps, mut masks) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(chunk.max(1)) {
        let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
        let packed = ro.pack(&rows, pad);
        let lp = if plain_sampling(generation) {
            packed.gen_logps(device)
        } else {
            packed.completion_scores(policy, generation.temperature.max(1e-6), EntropyMode::Skip, device).0
        };
        lps.push(pad_cols(lp, c_all));
        masks.push(pad_cols(packed.mask(device), c_all));
    }
    (Tensor::cat(lps, 0), Tensor::cat(masks, 0))
}

/// Per-token log-probs of every row under `model` (no grad), `[n, C]` like [`old_logps`].
pub(crate) fn all_logps(ro: &Rollout, model: &Llama, temperature: f64, chunk: usize, pad: u32, device: &Device) -> Tensor<2> {
    let n = ro.len();
    let c_all = ro.completion_ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let parts: Vec<Tensor<2>> = (0..n)
        .step_by(chunk.max(1))
        .map(|start| {
            let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let packed: Packed = ro.pack(&rows, pad);
            pad_cols(packed.completion_scores(model, temperature, EntropyMode::Skip, device).0, c_all)
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// An RLOO run.
pub struct RlooTrainer<'a> {
    tok: &'a Tokenizer,
    prompts: PromptSet,
    rewards: WeightedSum,
    cursor: Cursor,
    run: RlooRunConfig,
    reference: Option<Llama>,
    last: Option<Rollout>,
}

impl<'a> RlooTrainer<'a> {
    /// Prepares the task's prompts and the configured rewards; keeps a frozen copy of the initial policy as the
    /// reference when `beta != 0`.
    pub fn new(tok: &'a Tokenizer, initial: &Llama, run: RlooRunConfig) -> Result<Self> {
        run.validate()?;
        let prompts = PromptSet::build(&run.task, tok, run.generation.chat, run.train.seed)?;
        let rewards = build_weighted_sum(&run.reward).map_err(|e| TrainError::Reward(e.to_string()))?;
        Self::with_task(tok, initial, run, prompts, rewards)
    }

    /// Like [`RlooTrainer::new`] with given prompts and rewards (`run.task` and `run.reward` are ignored).
    pub fn with_task(
        tok: &'a Tokenizer,
        initial: &Llama,
        run: RlooRunConfig,
        prompts: PromptSet,
        rewards: WeightedSum,
    ) -> Result<Self> {
        run.validate()?;
        if prompts.train.is_empty() {
            return Err(TrainError::Config {
                path: "[task]".into(),
                message: "no training prompts".into(),
            });
        }
        let reference = (run.rloo.beta != 0.0).then(|| initial.valid());
        Ok(Self {
            tok,
            cursor: Cursor::new(prompts.train.len(), run.train.seed),
            prompts,
            rewards,
            run,
            reference,
            last: None,
        })
    }

    /// The rollout of the last step (for inspection).
    pub fn last_rollout(&self) -> Option<&Rollout> {
        self.last.as_ref()
    }

    fn eval(&self, session: &Session, observer: &mut dyn Observer) -> Result<()> {
        let device = session.device.clone().inner();
        eval_and_log(
            &session.merged(),
            self.tok,
            &self.prompts,
            &self.rewards,
            &self.run.generation,
            session.step,
            &device,
            &|v| session.log_value(v),
            observer,
        )
    }

    /// Runs until `train.steps`, evaluating and checkpointing as configured.
    pub fn train(&mut self, session: &mut Session, observer: &mut dyn Observer) -> Result<()> {
        if let Some(state) = session.take_resumed_state("RLOO prompt cursor")? {
            self.cursor = state;
        }
        if session.step == 0 {
            self.eval(session, observer)?;
        }
        let g = self.run.rloo.num_generations;
        let inner = session.device.clone().inner();
        let eos: Vec<u32> = self.tok.eos_id().into_iter().collect();
        let pad = self.tok.pad_id().or(self.tok.eos_id()).unwrap_or(0);
        let temperature = self.run.generation.temperature.max(1e-6);
        while session.running() {
            let n_prompts = session.settings.batch_size / g;
            let picked: Vec<&RenderedPrompt> =
                self.cursor.take(n_prompts).into_iter().map(|i| &self.prompts.train[i]).collect();
            let policy = session.merged();
            let t0 = std::time::Instant::now();
            let ro = rollout(&policy, self.tok, &picked, g, &self.run.generation, session.step_seed(), &inner)?;
            let gen_seconds = t0.elapsed().as_secs_f64();
            let scores = ro.score(&self.rewards)?;
            let columns: Vec<RewardColumn> =
                scores.parts.iter().map(|(name, _, v)| RewardColumn::new(name.clone(), v.clone())).collect();
            let mut cfg = self.run.rloo.clone();
            if cfg.reward_weights.is_none() {
                cfg.reward_weights = Some(scores.parts.iter().map(|(_, w, _)| *w).collect());
            }
            let micro = session.settings.micro_batch();
            // Old policy = the generator: its per-token log-probs give the KL penalty and the ratio's denominator.
            let (old_tok, mask_all) = old_logps(&ro, &policy, &self.run.generation, micro, pad, &inner);
            let old_seq: Vec<f64> = host((old_tok.clone() * mask_all.clone()).sum_dim(1)).into_iter().map(f64::from).collect();
            let ref_tok = self.reference.as_ref().map(|r| all_logps(&ro, r, temperature, micro, pad, &inner));
            let kl_inputs = cfg.beta != 0.0;
            let adv = rloo_advantages(
                &cfg,
                &RlooRewardInputs {
                    rewards: columns,
                    gen_logps: kl_inputs.then_some(old_tok),
                    ref_logps: if kl_inputs { ref_tok } else { None },
                    mask: kl_inputs.then_some(mask_all),
                },
            )?;
            let mut step_metrics = adv.metrics.clone();
            step_metrics.extend(completion_metrics(&ro.completion_ids, &eos, pad));
            step_metrics.insert("timing/generate_s".into(), gen_seconds);
            let n = ro.len();
            let device = session.device.clone();
            let cursor = self.cursor.clone();
            let report = session.step(
                |model, i| {
                    let rows: Vec<usize> = (i * micro..((i + 1) * micro).min(n)).collect();
                    let packed = ro.pack(&rows, pad);
                    let (lp, ent) = packed.completion_scores(model, temperature, EntropyMode::Detached, &device);
                    let old: Vec<f64> = rows.iter().map(|&r| old_seq[r]).collect();
                    let a: Vec<f64> = rows.iter().map(|&r| adv.values[r]).collect();
                    let out = rloo_loss(
                        &cfg,
                        RlooInputs {
                            logps: lp,
                            mask: packed.mask(&device),
                            old_logps: Some(vec1(&old, &device)),
                            advantages: vec1(&a, &device),
                            entropy: ent.map(|e| e.detach()),
                        },
                    )?;
                    // rloo_loss is a mean over sequences: each micro-batch weighs its share of the rows.
                    let share = rows.len() as f64 / n as f64;
                    let m: Metrics = out.metrics;
                    Ok((out.loss * share, m))
                },
                step_metrics,
                || serde_json::to_value(&cursor).unwrap_or_default(),
            )?;
            session.log_value(&serde_json::json!({"step": session.step, "sample": ro.texts.first()}))?;
            observer.on_step(&report);
            self.last = Some(ro);
            if session.eval_due() {
                self.eval(session, observer)?;
            }
            session.checkpoint_if_due(&self.cursor, observer)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    use burn::optim::GradientsParams;
    use temper_models::load_hf_dir;
    use temper_rewards::{FnReward, RewardInput};

    use super::*;
    use crate::session::StepReport;

    pub(crate) fn testdata(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(rel)
    }

    /// The tiny TRL Llama on an autodiff CPU device, with its word-level tokenizer.
    pub(crate) fn tiny() -> (Llama, Tokenizer, Device) {
        let device = Device::flex().autodiff();
        let model = load_hf_dir(&testdata("trl-parity/model"), &device).expect("tiny llama");
        let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
        (model, tok, device)
    }

    /// Plain prompts like "t12 t40 t7" (no chat template), `n_train` for training and `n_eval` held out.
    pub(crate) fn word_prompts(tok: &Tokenizer, n_train: usize, n_eval: usize) -> PromptSet {
        let make = |i: usize| {
            let text = (0..3).map(|j| format!("t{}", 7 + (i * 37 + j * 101) % 300)).collect::<Vec<_>>().join(" ");
            RenderedPrompt {
                ids: tok.encode(&text).expect("encode"),
                text,
                reference: None,
                prefill: String::new(),
            }
        };
        PromptSet {
            train: (0..n_train).map(make).collect(),
            eval: (n_train..n_train + n_eval).map(make).collect(),
        }
    }

    /// Fraction of completion words `tN` with `N < 60`: about 0.17 for the untrained model.
    pub(crate) fn low_ids(x: &RewardInput<'_>) -> f64 {
        let words: Vec<&str> = x.completion.split_whitespace().collect();
        if words.is_empty() {
            return 0.0;
        }
        let low = words
            .iter()
            .filter(|w| w.strip_prefix('t').and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 60))
            .count();
        low as f64 / words.len() as f64
    }

    pub(crate) fn low_id_reward() -> WeightedSum {
        WeightedSum::new(vec![(1.0, Box::new(FnReward::new("low_ids", low_ids)))])
    }

    pub(crate) fn tiny_generation() -> GenerationSettings {
        GenerationSettings {
            max_new_tokens: 6,
            chat: false,
            stop: Vec::new(),
            ..GenerationSettings::default()
        }
    }

    pub(crate) fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("temper-train-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    pub(crate) fn settings(out: &Path, steps: usize, batch: usize, micro: usize, lr: f64) -> TrainSettings {
        TrainSettings {
            output_dir: out.to_path_buf(),
            steps,
            batch_size: batch,
            micro_batch_size: Some(micro),
            learning_rate: lr,
            lr_schedule: crate::schedule::Schedule::Constant,
            save_steps: 0,
            ..TrainSettings::default()
        }
    }

    #[derive(Default)]
    pub(crate) struct Collect(pub Vec<StepReport>);

    impl Observer for Collect {
        fn on_step(&mut self, r: &StepReport) {
            self.0.push(r.clone());
        }
    }

    pub(crate) fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    }

    fn run(
        out: &Path,
        steps: usize,
        micro: usize,
        lr: f64,
        beta: f64,
        seed: u64,
    ) -> (Session, Vec<StepReport>, Option<Rollout>) {
        let (model, tok, device) = tiny();
        let run = RlooRunConfig {
            generation: tiny_generation(),
            train: TrainSettings {
                seed,
                ..settings(out, steps, 16, micro, lr)
            },
            rloo: RlooConfig {
                num_generations: 4,
                beta,
                ..RlooConfig::default()
            },
            ..RlooRunConfig::default()
        };
        let prompts = word_prompts(&tok, 12, 4);
        let mut trainer = RlooTrainer::with_task(&tok, &model, run.clone(), prompts, low_id_reward()).expect("trainer");
        let mut session = Session::start(model, &device, run.train).expect("session");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        let last = trainer.last_rollout().cloned();
        (session, obs.0, last)
    }

    /// Seeds every learning test averages over: one 16-step run of the tiny model rises for most seeds but not for
    /// all (seed 0 went 0.19 -> 0.30 when burn's CPU kernels changed their rounding), so the claim is about the mean.
    pub(crate) const LEARNING_SEEDS: std::ops::Range<u64> = 0..4;

    #[test]
    fn rloo_raises_the_synthetic_reward() {
        let (mut first, mut last, mut runs) = (0.0, 0.0, Vec::new());
        for seed in LEARNING_SEEDS {
            let out = tmp(&format!("rloo-learn-{seed}"));
            let (_, reports, _) = run(&out, 16, 8, 1e-2, 0.05, seed);
            let rewards: Vec<f64> = reports.iter().map(|r| r.metrics["reward"]).collect();
            first += mean(&rewards[..4]) / LEARNING_SEEDS.count() as f64;
            last += mean(&rewards[12..]) / LEARNING_SEEDS.count() as f64;
            runs.push(rewards);
            let all = |k: &str| reports.iter().all(|r| r.metrics.contains_key(k));
            assert!(all("kl") && all("clip_ratio/region_mean"));
            let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
            assert!(log.contains("eval/accuracy"), "held-out eval is logged");
            let _ = std::fs::remove_dir_all(&out);
        }
        assert!(last > first + 0.15, "mean reward over seeds {first:.3} -> {last:.3}: {runs:?}");
    }

    #[test]
    fn first_step_matches_the_objective_computed_directly() {
        // One step: rloo loss is exactly 0 on-policy (LOO advantages sum to 0 per group, ratio 1, no KL yet),
        // and the gradient norm equals that of -mean_i(A_i·exp(S_i - sg(S_i))) computed here from scratch.
        let out = tmp("rloo-golden");
        let (_, reports, ro) = run(&out, 1, 4, 1e-3, 0.05, TrainSettings::default().seed);
        let ro = ro.expect("rollout");
        let (model, tok, device) = tiny();
        let g = 4;
        let r: Vec<f64> = (0..ro.len())
            .map(|i| low_ids(&RewardInput::unreferenced(&ro.prompt_texts[i], &ro.texts[i])))
            .collect();
        let adv: Vec<f64> = (0..ro.len())
            .map(|i| {
                let grp = &r[i / g * g..i / g * g + g];
                r[i] - (grp.iter().sum::<f64>() - r[i]) / (g - 1) as f64
            })
            .collect();
        let pad = tok.pad_id().or(tok.eos_id()).unwrap_or(0);
        let packed = ro.pack(&(0..ro.len()).collect::<Vec<_>>(), pad);
        let (lp, _) = packed.completion_scores(&model, 1.0, EntropyMode::Skip, &device);
        let seq = (lp * packed.mask(&device)).sum_dim(1).squeeze_dim::<1>(1);
        let ratio = (seq.clone() - seq.detach()).exp();
        let loss = (ratio * vec1(&adv, &device)).mean().neg();
        let want_loss = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let want_norm = crate::params::grad_norm(&model, &grads);
        assert!(reports[0].loss.abs() < 1e-6 && want_loss.abs() < 1e-6, "{} vs {want_loss}", reports[0].loss);
        assert!(want_norm > 1e-4, "the synthetic reward gives a real gradient");
        assert!(
            (reports[0].grad_norm - want_norm).abs() <= 1e-3 * want_norm,
            "grad norm {} vs direct {want_norm}",
            reports[0].grad_norm
        );
        assert!((reports[0].metrics["reward"] - mean(&r)).abs() < 1e-9);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn config_defaults_parse_and_bad_group_sizes_are_rejected() {
        let run: RlooRunConfig = crate::config::parse_toml("", Path::new("<defaults>")).expect("defaults");
        assert_eq!((run.rloo.num_generations, run.rloo.beta, run.train.batch_size), (2, 0.05, 8));
        run.validate().expect("defaults are valid");
        let bad: RlooRunConfig =
            crate::config::parse_toml("[train]\nbatch_size = 6\n[rloo]\nnum_generations = 4\n", Path::new("x.toml"))
                .expect("parses");
        let e = bad.validate().expect_err("6 % 4").to_string();
        assert!(e.contains("multiple of rloo.num_generations"), "{e}");
        let typo = crate::config::parse_toml::<RlooRunConfig>("[rloo]\nbeta2 = 1\n", Path::new("x.toml"));
        assert!(typo.is_err());
    }
}
