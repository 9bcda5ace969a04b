//! The RLOO algorithm (REINFORCE Leave-One-Out, [Ahmadian et al. 2024](https://arxiv.org/abs/2402.14740), as
//! TRL's `RLOOTrainer`), plugged into the on-line loop ([`crate::online`]): `G` completions per prompt, the KL to
//! a frozen reference folded into the reward, leave-one-out baselines, and a sequence-level clipped ratio against
//! the generator's sequence log-probs.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use temper_models::Llama;
use temper_rl_objectives::{RewardColumn, RlooConfig, RlooInputs, RlooRewardInputs, rloo_advantages, rloo_loss};
use temper_tensor_ops::EntropyMode;

use crate::config::TrainSettings;
use crate::error::{Result, TrainError};
use crate::online::{online_config_fields, OnlineAlgorithm, OnlineConfig, OnlineTrainer, StepContext, all_logps, host, old_logps, vec1};
use crate::rollout_config::RolloutConfig;
use crate::session::{Metrics, Session, StepReport};

/// `temper rloo --config FILE.toml`: `[rollout]`, `[train]`, `[rloo]`; every field has a default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlooRunConfig {
    /// Model, device, prompts, sampling, rewards.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// Loop settings; `batch_size` counts completions (prompts × `rloo.num_generations`), as in TRL.
    #[serde(default)]
    pub train: TrainSettings,
    /// Objective settings (TRL `RLOOConfig` defaults: β = 0.05, ε = 0.2, G = 2).
    #[serde(default)]
    pub rloo: RlooConfig,
}

impl RlooRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[rloo]".into(),
            message,
        };
        self.rollout.validate()?;
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
        Ok(())
    }
}

impl OnlineConfig for RlooRunConfig {
    type Module = Llama;
    type Algorithm = Rloo;
    online_config_fields!();
    fn build(&self, initial: Llama, _device: &Device) -> Result<(Rloo, Llama)> {
        Ok((Rloo::new(&initial, self.rloo.clone()), initial))
    }
}

/// The RLOO algorithm: its objective settings and the frozen reference (when `beta != 0`).
pub struct Rloo {
    config: RlooConfig,
    reference: Option<Llama>,
}

impl Rloo {
    /// Keeps a frozen copy of `initial` as the reference when `config.beta != 0`.
    pub fn new(initial: &Llama, config: RlooConfig) -> Self {
        let reference = (config.beta != 0.0).then(|| initial.valid());
        Self { config, reference }
    }
}

/// An RLOO run: the on-line loop around [`Rloo`].
pub type RlooTrainer<'a> = OnlineTrainer<'a, Rloo>;

impl OnlineAlgorithm<Llama> for Rloo {
    const NAME: &'static str = "RLOO";

    fn group_size(&self) -> usize {
        self.config.num_generations
    }

    fn step(&mut self, ctx: StepContext<'_>, session: &mut Session) -> Result<StepReport> {
        let sample = ctx.sample(Self::NAME)?;
        let (ro, scores) = (sample.rollout, sample.scores);
        let inner = session.device.clone().inner();
        let pad = ctx.ids.pad;
        let temperature = ctx.generation.temperature.max(1e-6);
        let columns: Vec<RewardColumn> =
            scores.parts.iter().map(|(name, _, v)| RewardColumn::new(name.clone(), v.clone())).collect();
        let mut cfg = self.config.clone();
        if cfg.reward_weights.is_none() {
            cfg.reward_weights = Some(scores.parts.iter().map(|(_, w, _)| *w).collect());
        }
        let micro = session.settings.micro_batch();
        // Old policy = the generator: its per-token log-probs give the KL penalty and the ratio's denominator.
        let (old_tok, mask_all) = old_logps(ro, sample.policy, ctx.generation, micro, pad, &inner);
        let old_seq: Vec<f64> = host((old_tok.clone() * mask_all.clone()).sum_dim(1)).into_iter().map(f64::from).collect();
        let ref_tok = self.reference.as_ref().map(|r| all_logps(ro, r, temperature, micro, pad, &inner));
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
        step_metrics.extend(ctx.metrics.clone());
        let n = ro.len();
        let device = session.device.clone();
        let failure_state = ctx.failure_state.clone();
        session.step(
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
            || failure_state,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::optim::GradientsParams;
    use temper_rewards::RewardInput;

    use super::*;
    use crate::rollout::Rollout;
    use crate::testkit::{LEARNING_SEEDS, Collect, low_id_reward, low_ids, mean, online, settings, tiny, tmp};

    fn run(out: &Path, steps: usize, micro: usize, lr: f64, beta: f64, seed: u64) -> (Session, Vec<StepReport>, Option<Rollout>) {
        let (model, tok, device) = tiny();
        let train = TrainSettings {
            seed,
            ..settings(out, steps, 16, micro, lr)
        };
        let cfg = RlooConfig {
            num_generations: 4,
            beta,
            ..RlooConfig::default()
        };
        let mut trainer = online(&tok, 12, 4, low_id_reward(), Rloo::new(&model, cfg), seed);
        let mut session = Session::start(model, &device, train).expect("session");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        let last = trainer.last_rollout().cloned();
        (session, obs.0, last)
    }

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
        let pad = tok.special_ids(model.config().eos_token_id).pad;
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
