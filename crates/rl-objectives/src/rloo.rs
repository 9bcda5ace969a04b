//! REINFORCE Leave-One-Out, exactly as TRL 1.16 `RLOOTrainer`: leave-one-out baselines, first-order KL folded
//! into the reward, sequence-level clipped ratio (<https://huggingface.co/papers/2402.14740>).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::common::{
    Metrics, ObjectiveOutput, RewardColumn, check_shape, is_close_zero, mean, min_max, nanmean,
    nanstd, scalar, to_vec,
};
use crate::error::{ObjectiveError, config_err};
use crate::grpo::{Advantages, check_columns, combine_rewards, reward_metrics};

const CFG: &str = "RlooConfig";

fn d_beta() -> f64 {
    0.05
}
fn d_epsilon() -> f64 {
    0.2
}
fn d_g() -> usize {
    2
}

/// RLOO objective config (TRL `RLOOConfig` loss/advantage fields; defaults are TRL 1.16's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlooConfig {
    /// KL coefficient of the reward penalty `β·Σ_t (log π - log π_ref)`; TRL default 0.05
    /// (<https://huggingface.co/papers/2402.14740>).
    #[serde(default = "d_beta")]
    pub beta: f64,
    /// Lower clip ε; TRL default 0.2 (<https://huggingface.co/papers/1707.06347>).
    #[serde(default = "d_epsilon")]
    pub epsilon: f64,
    /// Upper clip ε; TRL default `None` = `epsilon` (<https://huggingface.co/papers/2503.14476>).
    #[serde(default)]
    pub epsilon_high: Option<f64>,
    /// Whiten advantages over the batch; TRL default false.
    #[serde(default)]
    pub normalize_advantages: bool,
    /// Clamp rewards to `[lo, hi]` before the KL penalty; TRL default `None`.
    #[serde(default)]
    pub reward_clip_range: Option<(f64, f64)>,
    /// Completions per prompt G (>= 2 for a baseline); TRL default 2.
    #[serde(default = "d_g")]
    pub num_generations: usize,
    /// One weight per reward function; TRL default `None` = all 1.0.
    #[serde(default)]
    pub reward_weights: Option<Vec<f64>>,
}

impl Default for RlooConfig {
    fn default() -> Self {
        Self {
            beta: 0.05,
            epsilon: 0.2,
            epsilon_high: None,
            normalize_advantages: false,
            reward_clip_range: None,
            num_generations: 2,
            reward_weights: None,
        }
    }
}

impl RlooConfig {
    /// Validates `self` and returns it.
    pub fn checked(self) -> Result<Self, ObjectiveError> {
        self.validate()?;
        Ok(self)
    }

    /// Upper clip bound (falls back to `epsilon`).
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// Cross-field checks: finite β, ε >= 0, `lo <= hi` for the clip range, `G >= 1`.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !self.beta.is_finite() {
            return Err(config_err(
                CFG,
                "beta",
                format!("must be finite, got {}", self.beta),
            ));
        }
        if !(self.epsilon.is_finite()
            && self.epsilon >= 0.0
            && self.epsilon_high().is_finite()
            && self.epsilon_high() >= 0.0)
        {
            return Err(config_err(
                CFG,
                "epsilon",
                "epsilon and epsilon_high must be finite and >= 0",
            ));
        }
        if let Some((lo, hi)) = self.reward_clip_range
            && (lo.is_nan() || hi.is_nan() || lo > hi)
        {
            return Err(config_err(
                CFG,
                "reward_clip_range",
                format!("needs lo <= hi, got ({lo}, {hi})"),
            ));
        }
        if self.num_generations == 0 {
            return Err(config_err(CFG, "num_generations", "must be >= 1"));
        }
        Ok(())
    }
}

/// What [`rloo_advantages`] needs: rewards, and (for `beta != 0`) the generation-time policy and reference
/// per-token log-probs `[N, T]` with their mask.
#[derive(Clone, Debug)]
pub struct RlooRewardInputs {
    /// One column per reward function (`NaN` = unscorable).
    pub rewards: Vec<RewardColumn>,
    /// Policy log-probs at generation time (never perturbed); required when `beta != 0`.
    pub gen_logps: Option<Tensor<2>>,
    /// Reference log-probs; required when `beta != 0`.
    pub ref_logps: Option<Tensor<2>>,
    /// Completion mask for the KL sums; required when `beta != 0`.
    pub mask: Option<Tensor<2>>,
}

/// RLOO advantages exactly as TRL: clip rewards, subtract `β·Σ_t(lp - ref)`, leave-one-out baseline per
/// group, optional batch whitening. Metrics: `kl` (β ≠ 0), `reward`, `reward_std`, `rewards/<name>/*`
/// (raw rewards) and `frac_reward_zero_std` (fraction of groups whose shaped rewards have ~0 std).
pub fn rloo_advantages(
    config: &RlooConfig,
    inputs: &RlooRewardInputs,
) -> Result<Advantages, ObjectiveError> {
    const OP: &str = "rloo_advantages";
    config.validate()?;
    let n = check_columns(OP, &inputs.rewards)?;
    let g = config.num_generations;
    if !n.is_multiple_of(g) {
        return Err(ObjectiveError::Shape {
            op: OP,
            input: "rewards",
            got: vec![n],
            expected: format!("a multiple of num_generations = {g}"),
        });
    }
    let weights = match &config.reward_weights {
        None => vec![1.0; inputs.rewards.len()],
        Some(w) if w.len() == inputs.rewards.len() => w.clone(),
        Some(w) => {
            return Err(config_err(
                CFG,
                "reward_weights",
                format!(
                    "has {} weights for {} reward functions",
                    w.len(),
                    inputs.rewards.len()
                ),
            ));
        }
    };
    let raw = combine_rewards(&inputs.rewards, &weights, n);
    let mut r: Vec<f64> = match config.reward_clip_range {
        Some((lo, hi)) => raw.iter().map(|x| x.clamp(lo, hi)).collect(),
        None => raw.clone(),
    };
    let mut metrics = Metrics::new();
    if config.beta != 0.0 {
        let missing = |input| ObjectiveError::MissingInput {
            op: OP,
            input,
            reason: "beta != 0 (KL penalty in the reward)",
        };
        let gen_lp = inputs.gen_logps.clone().ok_or(missing("gen_logps"))?;
        let ref_lp = inputs.ref_logps.clone().ok_or(missing("ref_logps"))?;
        let mask = inputs.mask.clone().ok_or(missing("mask"))?;
        let dims = gen_lp.dims();
        if dims[0] != n {
            return Err(ObjectiveError::Shape {
                op: OP,
                input: "gen_logps",
                got: dims.to_vec(),
                expected: format!("[{n}, T]"),
            });
        }
        check_shape(OP, "ref_logps", &ref_lp, dims)?;
        check_shape(OP, "mask", &mask, dims)?;
        let kl_tok = (gen_lp - ref_lp) * mask.clone();
        let kl_seq = to_vec(kl_tok.clone().sum_dim(1));
        for i in 0..n {
            r[i] -= config.beta * kl_seq[i];
        }
        metrics.insert(
            "kl".into(),
            scalar(kl_tok.sum()) / scalar(mask.sum()).max(1.0),
        );
    }
    let mut adv = vec![0.0; n];
    let mut zero_std = Vec::with_capacity(n / g);
    for (gi, chunk) in r.chunks(g).enumerate() {
        let std = if g > 1 { nanstd(chunk) } else { 0.0 };
        zero_std.push(f64::from(u8::from(is_close_zero(std))));
        let count = chunk.iter().filter(|x| !x.is_nan()).count() as f64;
        let sum: f64 = chunk.iter().filter(|x| !x.is_nan()).sum();
        for (j, x) in chunk.iter().enumerate() {
            adv[gi * g + j] = if g > 1 {
                x - (sum - x) / (count - 1.0)
            } else {
                0.0
            };
        }
    }
    if config.normalize_advantages {
        let m = nanmean(&adv);
        let s = nanstd(&adv);
        adv = adv.iter().map(|a| (a - m) / (s + 1e-4)).collect();
    }
    let values = adv
        .into_iter()
        .map(|a| if a.is_nan() { 0.0 } else { a })
        .collect();
    reward_metrics(&inputs.rewards, &raw, &mut metrics);
    metrics.insert("frac_reward_zero_std".into(), mean(&zero_std));
    Ok(Advantages { values, metrics })
}

/// Inputs of [`rloo_loss`]: per-token `[N, T]` tensors and per-sequence `[N]` ones.
#[derive(Clone, Debug)]
pub struct RlooInputs {
    /// Policy per-token log-probs (differentiable).
    pub logps: Tensor<2>,
    /// Completion mask.
    pub mask: Tensor<2>,
    /// Sequence log-prob sums `Σ_t lp·mask` of the generating policy; `None` = on-policy (detached own sums).
    pub old_logps: Option<Tensor<1>>,
    /// One advantage per completion.
    pub advantages: Tensor<1>,
    /// Per-token entropy for the `entropy` metric.
    pub entropy: Option<Tensor<2>>,
}

/// `loss = mean_i(-min(ρ_i A_i, clip(ρ_i, 1-ε, 1+ε_high) A_i))`, `ρ_i = exp(Σ_t lp·mask - old_i)`.
///
/// Metrics: `entropy` (if given), `clip_ratio/{low_mean,low_min,high_mean,high_max,region_mean}` per sequence.
///
/// # Shapes
/// `logps, mask, entropy: [N, T]`; `old_logps, advantages: [N]` → loss `[1]`.
pub fn rloo_loss(
    config: &RlooConfig,
    inputs: RlooInputs,
) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "rloo_loss";
    config.validate()?;
    let dims = inputs.logps.dims();
    let n = dims[0];
    check_shape(OP, "mask", &inputs.mask, dims)?;
    check_shape(OP, "advantages", &inputs.advantages, [n])?;
    let logps = (inputs.logps * inputs.mask.clone())
        .sum_dim(1)
        .squeeze_dim::<1>(1);
    let old = match inputs.old_logps {
        Some(o) => {
            check_shape(OP, "old_logps", &o, [n])?;
            o.detach()
        }
        None => logps.clone().detach(),
    };
    let adv = inputs.advantages.detach();
    let (lo, hi) = (1.0 - config.epsilon, 1.0 + config.epsilon_high());
    let coef_1 = (logps - old).exp();
    let coef_2 = coef_1.clone().clamp(lo, hi);
    let loss = (coef_1.clone() * adv.clone())
        .min_pair(coef_2 * adv.clone())
        .neg()
        .mean();

    let mut metrics = Metrics::new();
    if let Some(e) = inputs.entropy {
        check_shape(OP, "entropy", &e, dims)?;
        let num = scalar((e.detach() * inputs.mask.clone()).sum());
        metrics.insert("entropy".into(), num / scalar(inputs.mask.sum()).max(1.0));
    }
    let ratio = to_vec(coef_1.detach());
    let a = to_vec(adv);
    let low: Vec<f64> = ratio
        .iter()
        .zip(&a)
        .map(|(r, a)| f64::from(u8::from(*r < lo && *a < 0.0)))
        .collect();
    let high: Vec<f64> = ratio
        .iter()
        .zip(&a)
        .map(|(r, a)| f64::from(u8::from(*r > hi && *a > 0.0)))
        .collect();
    let region: Vec<f64> = low.iter().zip(&high).map(|(l, h)| l.max(*h)).collect();
    metrics.insert("clip_ratio/low_mean".into(), mean(&low));
    metrics.insert("clip_ratio/low_min".into(), min_max(&low).0);
    metrics.insert("clip_ratio/high_mean".into(), mean(&high));
    metrics.insert("clip_ratio/high_max".into(), min_max(&high).1);
    metrics.insert("clip_ratio/region_mean".into(), mean(&region));
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t1, t2};
    use burn::tensor::Device;

    #[test]
    fn leave_one_out_baseline_by_hand() {
        let cfg = RlooConfig {
            beta: 0.0,
            num_generations: 3,
            ..RlooConfig::default()
        };
        let inputs = RlooRewardInputs {
            rewards: vec![RewardColumn::new("r", vec![1.0, 2.0, 6.0])],
            gen_logps: None,
            ref_logps: None,
            mask: None,
        };
        let Ok(a) = rloo_advantages(&cfg, &inputs) else {
            panic!("rloo_advantages failed")
        };
        assert_eq!(a.values, vec![1.0 - 4.0, 2.0 - 3.5, 6.0 - 1.5]);
        assert_eq!(a.metrics["frac_reward_zero_std"], 0.0);
    }

    #[test]
    fn kl_penalty_enters_the_reward() {
        let d = Device::default();
        let cfg = RlooConfig {
            beta: 0.5,
            num_generations: 2,
            ..RlooConfig::default()
        };
        let inputs = RlooRewardInputs {
            rewards: vec![RewardColumn::new("r", vec![1.0, 1.0])],
            gen_logps: Some(t2(&[-1.0, -1.0, -2.0, 0.0], [2, 2], &d)),
            ref_logps: Some(t2(&[-2.0, -1.0, -1.0, -5.0], [2, 2], &d)),
            mask: Some(t2(&[1.0, 1.0, 1.0, 0.0], [2, 2], &d)),
        };
        let Ok(a) = rloo_advantages(&cfg, &inputs) else {
            panic!("rloo_advantages failed")
        };
        // KL sums: row0 = 1, row1 = -1 -> shaped rewards 0.5, 1.5
        assert!(close(a.values[0], -1.0, 1e-6) && close(a.values[1], 1.0, 1e-6));
        assert!(close(a.metrics["kl"], 0.0, 1e-9));
    }

    #[test]
    fn sequence_ratio_is_clipped() {
        let d = Device::default();
        let cfg = RlooConfig {
            epsilon_high: Some(0.28),
            ..RlooConfig::default()
        };
        let inputs = RlooInputs {
            logps: t2(&[-1.0, -1.0, -1.0, -1.0], [2, 2], &d),
            mask: t2(&[1.0, 1.0, 1.0, 1.0], [2, 2], &d),
            old_logps: Some(t1(&[-3.0, -2.0], &d)),
            advantages: t1(&[1.0, -1.0], &d),
            entropy: None,
        };
        let Ok(out) = rloo_loss(&cfg, inputs) else {
            panic!("rloo_loss failed")
        };
        // ratios e^1 (A>0, clipped at 1.28) and e^0 = 1 (unclipped).
        assert!(close(to_vec(out.loss)[0], (-1.28 + 1.0) / 2.0, 1e-6));
        assert_eq!(out.metrics["clip_ratio/high_mean"], 0.5);
    }
}
