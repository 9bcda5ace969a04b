//! The PPO algorithm for LMs ([Schulman et al. 2017](https://arxiv.org/abs/1707.06347), RLHF setup of
//! [Ouyang et al. 2022](https://arxiv.org/abs/2203.02155), TRL's classic `PPOTrainer` arithmetic), plugged into the
//! on-line loop ([`crate::online`]): a policy with a scalar value head on its final hidden states, per-token
//! rewards (the sequence score on the last completion token, the KL to a frozen reference in the reward or in
//! the loss), GAE(γ, λ), whitened advantages, and several epochs of shuffled mini-batch updates of the clipped
//! policy + clipped value loss per rollout batch.
//!
//! [`PolicyWithValue`] is trained by the shared [`Session`] loop: AdamW, warm-up + schedule (over optimizer
//! updates: [`Session::update`] per mini-batch, [`Session::finish_step`] per rollout batch), exact gradient
//! accumulation, global-norm clipping, `metrics.jsonl`, atomic checkpoints (policy as HF safetensors, the value
//! head in `value_head.safetensors`, optimizer, prompt cursor) resumed exactly, and LoRA (value head in full).

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use temper_models::{AttentionInfo, Llama, load_hf_dir};
use temper_rl_objectives::{KlPenalty, PpoConfig, PpoInputs, gae, ppo_loss, ppo_token_rewards};
use temper_tensor_ops::EntropyMode;

use crate::atomic::write_atomic;
use crate::batch::int_tensor;
use crate::config::TrainSettings;
use crate::error::{Result, TrainError};
use crate::export::{export_hf, hf_tensors, read_f32_safetensors, safetensors_bytes};
use crate::online::{online_config_fields, 
    OnlineAlgorithm, OnlineConfig, OnlineTrainer, PolicyModule, StepContext, all_logps, host, pad_cols, reward_metrics,
    vec1,
};
use crate::rollout::{Packed, Rollout};
use crate::rollout_config::RolloutConfig;
use crate::session::{Metrics, Session, StepReport, Trainable, Update};

fn d_epochs() -> usize {
    4
}
fn d_one() -> usize {
    1
}

/// `temper ppo --config FILE.toml`: `ppo_epochs`, `num_mini_batches`, `[rollout]`, `[train]`, `[ppo]`; every field
/// has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoRunConfig {
    /// Passes over each rollout batch; TRL `num_ppo_epochs` default 4.
    #[serde(default = "d_epochs")]
    pub ppo_epochs: usize,
    /// Shuffled mini-batches per pass, one optimizer update each; TRL `num_mini_batches` default 1.
    #[serde(default = "d_one")]
    pub num_mini_batches: usize,
    /// Model, device, prompts, sampling (one completion per prompt), rewards (summed into each sequence's score).
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// Loop settings: `steps` counts rollout batches, `batch_size` prompts per rollout batch; the learning-rate
    /// schedule runs over optimizer updates (`steps × ppo_epochs × num_mini_batches`).
    #[serde(default)]
    pub train: TrainSettings,
    /// Objective settings (TRL `PPOConfig` defaults).
    #[serde(default)]
    pub ppo: PpoConfig,
}

impl Default for PpoRunConfig {
    fn default() -> Self {
        Self {
            ppo_epochs: d_epochs(),
            num_mini_batches: d_one(),
            rollout: RolloutConfig::default(),
            train: TrainSettings::default(),
            ppo: PpoConfig::default(),
        }
    }
}

impl PpoRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[ppo]".into(),
            message,
        };
        self.rollout.validate()?;
        self.ppo.validate()?;
        self.train.validate().map_err(err)?;
        if self.ppo_epochs == 0 || self.num_mini_batches == 0 {
            return Err(err("ppo_epochs and num_mini_batches must be at least 1".into()));
        }
        if !self.train.batch_size.is_multiple_of(self.num_mini_batches) {
            return Err(err(format!(
                "train.batch_size ({}) must be a multiple of num_mini_batches ({})",
                self.train.batch_size, self.num_mini_batches
            )));
        }
        let mini = self.train.batch_size / self.num_mini_batches;
        if !mini.is_multiple_of(self.train.micro_batch()) {
            return Err(err(format!(
                "the mini-batch (train.batch_size / num_mini_batches = {mini}) must be a multiple of train.micro_batch_size ({})",
                self.train.micro_batch()
            )));
        }
        Ok(())
    }
}

impl OnlineConfig for PpoRunConfig {
    type Module = PolicyWithValue;
    type Algorithm = Ppo;
    online_config_fields!();
    /// The frozen reference is the initial model, taken before any adapter is attached; the value head starts at 0.
    fn build(&self, initial: Llama, device: &Device) -> Result<(Ppo, PolicyWithValue)> {
        let ppo = Ppo::new(&initial, self);
        Ok((ppo, PolicyWithValue::new(initial.fork(device), device)))
    }
}

/// A policy and its value head `Linear(H -> 1)` on the policy's final-normed hidden states.
#[derive(Module, Debug)]
pub struct PolicyWithValue {
    /// The language model.
    pub policy: Llama,
    /// Scalar value of each position's state.
    pub value_head: Linear,
}

impl PolicyWithValue {
    /// Wraps `policy` with a zero-initialised value head (so the first values are 0) on `device`.
    pub fn new(policy: Llama, device: &Device) -> Self {
        let h = policy.config().hidden_size;
        let value_head = LinearConfig::new(h, 1).with_initializer(Initializer::Zeros).init(device);
        Self { policy, value_head }
    }

    /// Completion-token log-probs (at `temperature`), optional entropy, and the values of the states before
    /// each completion token, from one forward of the packed rows.
    ///
    /// # Shapes
    /// `packed`: `n` rows of `P + C` tokens → log-probs, entropy, values: `[n, C]`.
    pub fn score(
        &self,
        packed: &Packed,
        temperature: f64,
        entropy: EntropyMode,
        device: &Device,
    ) -> (Tensor<2>, Option<Tensor<2>>, Tensor<2>) {
        let info = AttentionInfo::from_mask(&packed.attention, true);
        let hidden = self.policy.forward_hidden(int_tensor(&packed.ids, device), &info, None); // (n, P+C, H)
        let [n, _, h] = hidden.dims();
        let (p, c) = (packed.prompt_len, packed.completion_len);
        let states = hidden.slice([0..n, p - 1..p - 1 + c, 0..h]); // (n, C, H): state before each completion token
        let values = self.value_head.forward(states.clone()).reshape([n, c]); // (n, C)
        let logits = self.policy.logits(states); // (n, C, V)
        let logits = if (temperature - 1.0).abs() > 0.0 { logits / temperature } else { logits };
        let targets: Vec<Vec<u32>> = packed.ids.iter().map(|r| r[p..p + c].to_vec()).collect();
        let (logps, entropy) = temper_tensor_ops::token_logprobs_entropy(logits, int_tensor(&targets, device), entropy);
        (logps, entropy, values)
    }
}

impl Trainable for PolicyWithValue {
    /// The policy as HF `model.safetensors`, the value head in `value_head.safetensors`.
    fn save_weights(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("model.safetensors"), &safetensors_bytes(&hf_tensors(&self.policy)?)?)?;
        let f32_bytes = |t: TensorData| -> Result<(Vec<usize>, Vec<u8>)> {
            let shape = t.shape().to_vec();
            let v = t.convert::<f32>().try_to_vec::<f32>().map_err(|e| TrainError::Export(format!("value head: {e:?}")))?;
            Ok((shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        };
        let mut head = std::collections::BTreeMap::new();
        head.insert("value_head.weight".to_string(), f32_bytes(self.value_head.weight.val().into_data())?);
        if let Some(b) = &self.value_head.bias {
            head.insert("value_head.bias".to_string(), f32_bytes(b.val().into_data())?);
        }
        write_atomic(&dir.join("value_head.safetensors"), &safetensors_bytes(&head)?)
    }

    fn config_json(&self) -> serde_json::Value {
        self.policy.config().to_hf_json()
    }

    fn load_weights(dir: &Path, device: &Device) -> Result<Self> {
        let bad = |message: String| TrainError::Checkpoint {
            path: dir.join("value_head.safetensors"),
            message,
        };
        let policy = load_hf_dir(dir, device)?;
        let head = read_f32_safetensors(&dir.join("value_head.safetensors"))?;
        let h = policy.config().hidden_size;
        let (wshape, w) = head.get("value_head.weight").ok_or_else(|| bad("no value_head.weight".into()))?;
        if wshape.as_slice() != [h, 1] {
            return Err(bad(format!("value_head.weight has shape {wshape:?}, expected [{h}, 1]")));
        }
        let weight = Tensor::<2>::from_data(TensorData::new(w.clone(), [h, 1]), device);
        let bias = match head.get("value_head.bias") {
            Some((shape, b)) if shape.as_slice() == [1] => {
                Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b.clone(), [1]), device)))
            }
            Some((shape, _)) => return Err(bad(format!("value_head.bias has shape {shape:?}, expected [1]"))),
            None => None,
        };
        Ok(PolicyWithValue {
            policy,
            value_head: Linear {
                weight: Param::from_tensor(weight),
                bias,
            },
        })
    }

    /// `final/` holds the policy alone, a plain causal LM (the value head stays in the checkpoints).
    fn write_export(&self, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
        export_hf(&self.policy, dir, extra)
    }

    /// The value head is new: it is trained in full under LoRA.
    fn trained_in_full(path: &str) -> bool {
        path.starts_with("value_head.")
    }
}

/// Rows `rows` (first `c` columns) of a host `[_, c_all]` matrix as a tensor.
fn gather(h: &[f32], c_all: usize, rows: &[usize], c: usize, device: &Device) -> Tensor<2> {
    let mut v = Vec::with_capacity(rows.len() * c);
    for &r in rows {
        v.extend_from_slice(&h[r * c_all..r * c_all + c]);
    }
    Tensor::from_data(TensorData::new(v, [rows.len(), c]), device)
}

/// What a rollout batch fixes for all its updates, on the host (`[n, C]` row-major).
struct Batch {
    old_logps: Vec<f32>,
    ref_logps: Vec<f32>,
    old_values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
    mask: Vec<f32>,
    cols: usize,
}


impl PolicyModule for PolicyWithValue {
    type Policy = Llama;
    fn policy(&self) -> &Llama {
        &self.policy
    }
    fn eos_token_id(&self) -> Option<u32> {
        self.policy.config().eos_token_id
    }
}

/// The PPO algorithm: objective settings, epochs × mini-batches per rollout batch, the frozen reference.
pub struct Ppo {
    config: PpoConfig,
    epochs: usize,
    mini_batches: usize,
    reference: Option<Llama>,
}

/// A PPO run: the on-line loop around [`Ppo`], training a [`PolicyWithValue`].
pub type PpoTrainer<'a> = OnlineTrainer<'a, Ppo>;

impl Ppo {
    /// Keeps a frozen copy of `initial` as the reference when `ppo.kl_coef != 0`.
    pub fn new(initial: &Llama, run: &PpoRunConfig) -> Self {
        Self {
            config: run.ppo.clone(),
            epochs: run.ppo_epochs,
            mini_batches: run.num_mini_batches,
            reference: (run.ppo.kl_coef != 0.0).then(|| initial.valid()),
        }
    }

    fn updates_per_step(&self) -> usize {
        self.epochs * self.mini_batches
    }

    /// Old log-probs, reference log-probs, values, shaped rewards and GAE of one rollout batch (no gradients).
    fn prepare(
        &self,
        session: &Session<PolicyWithValue>,
        ro: &Rollout,
        scores: &[f64],
        (pad, temperature): (u32, f64),
        metrics: &mut Metrics,
    ) -> Result<Batch> {
        let inner = session.device.clone().inner();
        let valid = session.model.valid();
        let n = ro.len();
        let chunk = session.settings.micro_batch();
        let cols = ro.completion_ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let (mut lps, mut vals, mut masks) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(chunk) {
            let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let packed = ro.pack(&rows, pad);
            let (lp, _, v) = valid.score(&packed, temperature, EntropyMode::Skip, &inner);
            lps.push(pad_cols(lp, cols));
            vals.push(pad_cols(v, cols));
            masks.push(pad_cols(packed.mask(&inner), cols));
        }
        let (old, values, mask) = (Tensor::cat(lps, 0), Tensor::cat(vals, 0), Tensor::cat(masks, 0));
        let reference = match &self.reference {
            Some(r) => all_logps(ro, r, temperature, chunk, pad, &inner),
            None => old.clone(),
        };
        let cfg = &self.config;
        let shaped = ppo_token_rewards(cfg, vec1(scores, &inner), old.clone(), reference.clone(), mask.clone())?;
        let kl_seq = host(((old.clone() - reference.clone()) * mask.clone()).sum_dim(1));
        let mean_kl = kl_seq.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        let mean_score = scores.iter().sum::<f64>() / n as f64;
        let non_score = match cfg.kl_penalty {
            KlPenalty::InReward { .. } => {
                let total: f32 = shaped.clone().sum().into_scalar();
                f64::from(total) / n as f64 - mean_score
            }
            KlPenalty::InLoss { .. } => 0.0,
        };
        metrics.insert("objective/kl".into(), mean_kl);
        metrics.insert("objective/scores".into(), mean_score);
        metrics.insert("objective/non_score_reward".into(), non_score);
        metrics.insert("objective/rlhf_reward".into(), mean_score + non_score);
        let (adv, ret) = gae(cfg, shaped, values.clone(), mask.clone())?;
        Ok(Batch {
            old_logps: host(old),
            ref_logps: host(reference),
            old_values: host(values),
            advantages: host(adv),
            returns: host(ret),
            mask: host(mask),
            cols,
        })
    }

    /// One optimizer update on the rows `mini` (micro-batched; each micro-loss weighted by its share of the
    /// mini-batch's completion tokens, so the accumulated gradient is the mini-batch loss's). `failure_state` is
    /// saved if the loss turns non-finite.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        session: &mut Session<PolicyWithValue>,
        ro: &Rollout,
        b: &Batch,
        mini: &[usize],
        update_index: usize,
        (pad, temperature): (u32, f64),
        failure_state: &serde_json::Value,
    ) -> Result<Update> {
        let device = session.device.clone();
        let tokens_of = |rows: &[usize]| -> f64 {
            rows.iter().map(|&r| b.mask[r * b.cols..(r + 1) * b.cols].iter().map(|&m| f64::from(m)).sum::<f64>()).sum()
        };
        let total_tokens = tokens_of(mini).max(1.0);
        let chunks: Vec<&[usize]> = mini.chunks(session.settings.micro_batch()).collect();
        let total_updates = session.settings.steps * self.updates_per_step();
        let cfg = &self.config;
        session.update(
            chunks.len(),
            |model, i| {
                let rows = chunks[i];
                let packed = ro.pack(rows, pad);
                let c = packed.completion_len;
                let (lp, _, v) = model.score(&packed, temperature, EntropyMode::Skip, &device);
                let g = |h: &[f32]| gather(h, b.cols, rows, c, &device);
                let inputs = PpoInputs {
                    logps: lp,
                    old_logps: g(&b.old_logps),
                    ref_logps: Some(g(&b.ref_logps)),
                    values: v,
                    old_values: g(&b.old_values),
                    advantages: g(&b.advantages),
                    returns: g(&b.returns),
                    mask: packed.mask(&device),
                };
                let out = ppo_loss(cfg, inputs)?;
                let share = tokens_of(rows) / total_tokens;
                let metrics = out
                    .metrics
                    .into_iter()
                    .map(|(k, v)| (if k == "objective/kl" { "loss/kl_avg".to_string() } else { k }, v * share))
                    .collect();
                Ok((out.loss * share, metrics))
            },
            (update_index, total_updates),
            || failure_state.clone(),
        )
    }
}

impl OnlineAlgorithm<PolicyWithValue> for Ppo {
    const NAME: &'static str = "PPO";

    /// One completion per prompt.
    fn group_size(&self) -> usize {
        1
    }

    fn step(&mut self, ctx: StepContext<'_>, session: &mut Session<PolicyWithValue>) -> Result<StepReport> {
        let sample = ctx.sample(Self::NAME)?;
        let ro = sample.rollout;
        let sampling = (ctx.ids.pad, ctx.generation.temperature.max(1e-6));
        let mut metrics = reward_metrics(sample.scores);
        let scores: Vec<f64> = sample.scores.total.iter().map(|s| if s.is_nan() { 0.0 } else { *s }).collect();
        metrics.extend(ctx.metrics.clone());
        let batch = self.prepare(session, ro, &scores, sampling, &mut metrics)?;
        let n = ro.len();
        let mini = n / self.mini_batches;
        let updates = self.updates_per_step();
        let (mut loss, mut norm, mut lr) = (0.0, 0.0, 0.0);
        let mut loss_metrics = Metrics::new();
        for epoch in 0..self.epochs {
            let mut order: Vec<usize> = (0..n).collect();
            let seed = session.step_seed() ^ (epoch as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            for (k, rows) in order.chunks(mini).enumerate() {
                let index = session.step * updates + epoch * self.mini_batches + k;
                let u = self.update(session, ro, &batch, rows, index, sampling, &ctx.failure_state)?;
                loss += u.loss / updates as f64;
                norm += u.grad_norm / updates as f64;
                lr = u.learning_rate;
                for (key, v) in u.metrics {
                    *loss_metrics.entry(key).or_insert(0.0) += v / updates as f64;
                }
            }
        }
        metrics.extend(loss_metrics);
        session.finish_step(loss, norm, lr, metrics, ctx.started)
    }
}

#[cfg(test)]
mod tests {
    use temper_rewards::{FnReward, RewardInput, WeightedSum};

    use super::*;
    use crate::testkit::{LEARNING_SEEDS, Collect, low_ids, mean, online, settings, tiny, tmp};

    /// 1 + the low-id fraction: the constant part gives the value head something to learn from step 1.
    fn offset_reward() -> WeightedSum {
        WeightedSum::new(vec![
            (1.0, Box::new(FnReward::new("one", |_: &RewardInput<'_>| 1.0))),
            (1.0, Box::new(FnReward::new("low_ids", low_ids))),
        ])
    }

    fn run_ppo(out: &Path, steps: usize, epochs: usize, minis: usize, lr: f64) -> (Vec<StepReport>, Option<Rollout>) {
        run_ppo_micro(out, steps, epochs, minis, lr, 4)
    }

    fn run_ppo_micro(
        out: &Path,
        steps: usize,
        epochs: usize,
        minis: usize,
        lr: f64,
        micro: usize,
    ) -> (Vec<StepReport>, Option<Rollout>) {
        let (reports, ro, _) = run_ppo_with(out, steps, epochs, minis, lr, micro, |_| {});
        (reports, ro)
    }

    fn run_ppo_with(
        out: &Path,
        steps: usize,
        epochs: usize,
        minis: usize,
        lr: f64,
        micro: usize,
        adjust: impl FnOnce(&mut TrainSettings),
    ) -> (Vec<StepReport>, Option<Rollout>, PolicyWithValue) {
        let (model, tok, device) = tiny();
        let mut train = settings(out, steps, 16, micro, lr);
        train.save_steps = 2;
        adjust(&mut train);
        let run = PpoRunConfig {
            train,
            ppo_epochs: epochs,
            num_mini_batches: minis,
            ..PpoRunConfig::default()
        };
        run.validate().expect("valid");
        let (ppo, module) = run.build(model, &device).expect("build");
        let mut t = online(&tok, 16, 4, offset_reward(), ppo, run.train.seed);
        let mut session = Session::start(module, &device, run.train.clone()).expect("session");
        let mut obs = Collect::default();
        t.train(&mut session, &mut obs).expect("train");
        (obs.0, t.last_rollout().cloned(), session.model.clone())
    }

    #[test]
    fn ppo_raises_the_reward_and_fits_the_values() {
        let (mut first, mut last, mut runs) = (0.0, 0.0, Vec::new());
        let n = LEARNING_SEEDS.count() as f64;
        for seed in LEARNING_SEEDS {
            let out = tmp(&format!("ppo-learn-{seed}"));
            let (reports, _, _) = run_ppo_with(&out, 16, 2, 2, 5e-3, 4, |t| t.seed = seed);
            let low: Vec<f64> = reports.iter().map(|r| r.metrics["rewards/low_ids/mean"]).collect();
            let vf: Vec<f64> = reports.iter().map(|r| r.metrics["loss/value_avg"]).collect();
            // The zero-initialised head starts at ½·mean(R²); it fits, though the shared backbone keeps moving.
            assert!(mean(&vf[8..]) < 0.6 * vf[0], "seed {seed}: value loss {vf:?}");
            first += mean(&low[..4]) / n;
            last += mean(&low[12..]) / n;
            runs.push(low);
            let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
            assert!(log.contains("eval/accuracy") && log.contains("policy/clipfrac_avg"));
            let _ = std::fs::remove_dir_all(&out);
        }
        assert!(last > first + 0.1, "mean reward over seeds {first:.3} -> {last:.3}: {runs:?}");
    }

    #[test]
    fn first_update_loss_is_the_value_loss_of_discounted_scores() {
        // Step 1, one epoch, one mini-batch: the policy equals the reference (no KL), the value head is 0 and
        // the ratio is 1, so pg_loss = -mean(whitened A) = 0 and the loss is
        // vf_coef · ½ · mean_t (λ^(L-1-t) · score)² over every completion token (γ = 1).
        let out = tmp("ppo-golden");
        let (reports, ro) = run_ppo(&out, 1, 1, 1, 1e-3);
        let ro = ro.expect("rollout");
        let cfg = PpoConfig::default();
        let (mut sq, mut count) = (0.0, 0.0);
        for i in 0..ro.len() {
            let score = 1.0 + low_ids(&RewardInput::unreferenced(&ro.prompt_texts[i], &ro.texts[i]));
            let l = ro.completion_ids[i].len();
            for t in 0..l {
                let r = cfg.lam.powi((l - 1 - t) as i32) * score;
                sq += r * r;
                count += 1.0;
            }
        }
        let want = cfg.vf_coef * 0.5 * sq / count;
        assert!((reports[0].loss - want).abs() < 1e-5, "loss {} vs {want}", reports[0].loss);
        assert!(reports[0].metrics["loss/policy_avg"].abs() < 1e-5);
        assert!(reports[0].metrics["objective/kl"].abs() < 1e-6);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn micro_batching_does_not_change_the_updates() {
        // Mini-batches of 8 rows as 1×8 or 4×2 micro-batches: token-share weighting makes the sums exact.
        let (a_dir, b_dir) = (tmp("ppo-micro-a"), tmp("ppo-micro-b"));
        let (a, _) = run_ppo_micro(&a_dir, 2, 2, 2, 3e-3, 8);
        let (b, _) = run_ppo_micro(&b_dir, 2, 2, 2, 3e-3, 2);
        for (x, y) in a.iter().zip(&b) {
            assert!((x.loss - y.loss).abs() < 1e-5, "step {}: {} vs {}", x.step, x.loss, y.loss);
            assert!((x.grad_norm - y.grad_norm).abs() < 1e-4 * x.grad_norm.max(1.0));
            assert!((x.metrics["loss/value_avg"] - y.metrics["loss/value_avg"]).abs() < 1e-5);
        }
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&b_dir);
    }

    #[test]
    fn resuming_gives_the_same_next_losses_as_never_stopping() {
        let straight = tmp("ppo-straight");
        let (full, _) = run_ppo(&straight, 3, 2, 2, 3e-3);
        let split = tmp("ppo-split");
        let (first, _) = run_ppo(&split, 2, 2, 2, 3e-3);
        assert_eq!(first.len(), 2);
        assert!(split.join("checkpoint-2/value_head.safetensors").is_file());
        let (second, _) = run_ppo(&split, 3, 2, 2, 3e-3);
        assert_eq!(second.iter().map(|r| r.step).collect::<Vec<_>>(), vec![3]);
        assert!((full[2].loss - second[0].loss).abs() < 1e-5, "{} vs resumed {}", full[2].loss, second[0].loss);
        assert!((full[2].metrics["reward"] - second[0].metrics["reward"]).abs() < 1e-9);
        let _ = std::fs::remove_dir_all(&straight);
        let _ = std::fs::remove_dir_all(&split);
    }

    #[test]
    fn lora_policy_with_a_fully_trained_value_head_resumes_exactly() {
        let lora = || {
            Some(crate::lora::LoraSettings {
                rank: 2,
                alpha: 4.0,
                dropout: 0.0,
                targets: vec!["q_proj".into(), "v_proj".into(), "up_proj".into()],
            })
        };
        let (straight, split) = (tmp("ppo-lora-straight"), tmp("ppo-lora-split"));
        let (full, _, model) = run_ppo_with(&straight, 3, 2, 2, 3e-3, 4, |t| t.lora = lora());
        let trained: Vec<String> = crate::lora::trainable_tensors(&model).into_iter().map(|(n, _)| n).collect();
        assert!(trained.iter().any(|n| n == "value_head.weight"), "{trained:?}");
        assert!(trained.iter().all(|n| n.starts_with("value_head.") || n.contains(".lora.")), "{trained:?}");
        let head: Vec<f32> = model.value_head.weight.val().into_data().try_to_vec().expect("head");
        assert!(head.iter().any(|v| v.abs() > 1e-6), "the zero-initialised value head is trained");
        let (first, _, _) = run_ppo_with(&split, 2, 2, 2, 3e-3, 4, |t| t.lora = lora());
        assert_eq!(first.len(), 2);
        assert!(split.join("checkpoint-2/adapter_model.safetensors").is_file());
        let (second, _, _) = run_ppo_with(&split, 3, 2, 2, 3e-3, 4, |t| t.lora = lora());
        assert_eq!(second.iter().map(|r| r.step).collect::<Vec<_>>(), vec![3]);
        assert!((full[2].loss - second[0].loss).abs() < 1e-6, "{} vs resumed {}", full[2].loss, second[0].loss);
        assert!((full[2].metrics["reward"] - second[0].metrics["reward"]).abs() < 1e-9);
        let _ = std::fs::remove_dir_all(&straight);
        let _ = std::fs::remove_dir_all(&split);
    }
}
