//! PPO for LMs (TRL's classic `PPOTrainer` arithmetic): per-token KL-shaped rewards, GAE(γ, λ), advantage
//! whitening, clipped policy loss and clipped value loss (<https://huggingface.co/papers/1707.06347>,
//! GAE <https://huggingface.co/papers/1506.02438>, RLHF setup <https://huggingface.co/papers/2203.02155>).

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_tensor_ops::{KlEstimator, kl_estimate};

use crate::common::{Metrics, ObjectiveOutput, check_shape, scalar, to_vec};
use crate::error::{ObjectiveError, config_err};

const CFG: &str = "PpoConfig";

/// Where the KL to the reference policy is applied, and with which estimator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KlPenalty {
    /// `-kl_coef · k(logπ, logπ_ref)` added to every token's reward (TRL PPO, `kl_estimator="k1"` default).
    InReward {
        /// Estimator; TRL default k1.
        estimator: KlEstimatorName,
    },
    /// `+kl_coef · masked_mean(k(logπ, logπ_ref))` added to the loss (GRPO-style, differentiable).
    InLoss {
        /// Estimator, typically k3.
        estimator: KlEstimatorName,
    },
}

/// Serializable name of a [`KlEstimator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimatorName {
    /// `log π - log π_ref`.
    K1,
    /// `½ (log π - log π_ref)²`.
    K2,
    /// `r - 1 - log r`, `r = π_ref / π`.
    K3,
}

impl From<KlEstimatorName> for KlEstimator {
    fn from(k: KlEstimatorName) -> Self {
        match k {
            KlEstimatorName::K1 => KlEstimator::K1,
            KlEstimatorName::K2 => KlEstimator::K2,
            KlEstimatorName::K3 => KlEstimator::K3,
        }
    }
}

fn d_gamma() -> f64 {
    1.0
}
fn d_lam() -> f64 {
    0.95
}
fn d_clip() -> f64 {
    0.2
}
fn d_vf() -> f64 {
    0.1
}
fn d_kl() -> f64 {
    0.05
}
fn d_penalty() -> KlPenalty {
    KlPenalty::InReward {
        estimator: KlEstimatorName::K1,
    }
}
fn d_true() -> bool {
    true
}

/// PPO config (defaults are TRL's `PPOConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Discount γ; TRL default 1.0 (<https://huggingface.co/papers/1506.02438>).
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    /// GAE λ; TRL default 0.95 (<https://huggingface.co/papers/1506.02438>).
    #[serde(default = "d_lam")]
    pub lam: f64,
    /// Policy ratio clip ε; TRL default 0.2 (<https://huggingface.co/papers/1707.06347>).
    #[serde(default = "d_clip")]
    pub cliprange: f64,
    /// Value clip around the old values; TRL default 0.2 (<https://huggingface.co/papers/1707.06347>).
    #[serde(default = "d_clip")]
    pub cliprange_value: f64,
    /// Value-loss coefficient; TRL default 0.1.
    #[serde(default = "d_vf")]
    pub vf_coef: f64,
    /// KL coefficient; TRL default 0.05 (<https://huggingface.co/papers/2203.02155>).
    #[serde(default = "d_kl")]
    pub kl_coef: f64,
    /// KL placement and estimator; TRL default: k1 in the reward (<http://joschu.net/blog/kl-approx.html>).
    #[serde(default = "d_penalty")]
    pub kl_penalty: KlPenalty,
    /// Whiten advantages over the batch's valid tokens; TRL always does.
    #[serde(default = "d_true")]
    pub whiten_advantages: bool,
    /// Whiten the shaped rewards before GAE; TRL default false.
    #[serde(default)]
    pub whiten_rewards: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            lam: 0.95,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 0.1,
            kl_coef: 0.05,
            kl_penalty: d_penalty(),
            whiten_advantages: true,
            whiten_rewards: false,
        }
    }
}

impl PpoConfig {
    /// Validates `self` and returns it.
    pub fn checked(self) -> Result<Self, ObjectiveError> {
        self.validate()?;
        Ok(self)
    }

    /// Checks: γ, λ in [0, 1]; clip ranges, `vf_coef`, `kl_coef` finite and >= 0.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        for (field, v) in [("gamma", self.gamma), ("lam", self.lam)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(config_err(
                    CFG,
                    field,
                    format!("must be in [0, 1], got {v}"),
                ));
            }
        }
        for (field, v) in [
            ("cliprange", self.cliprange),
            ("cliprange_value", self.cliprange_value),
            ("vf_coef", self.vf_coef),
            ("kl_coef", self.kl_coef),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(config_err(
                    CFG,
                    field,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Per-token shaped rewards: `-kl_coef·k(lp, ref)` on valid tokens (only with [`KlPenalty::InReward`]) plus each
/// sequence's score on its last valid token. Detached.
///
/// # Shapes
/// `scores: [N]`, `logps, ref_logps, mask: [N, T]` → `[N, T]`.
pub fn ppo_token_rewards(
    config: &PpoConfig,
    scores: Tensor<1>,
    logps: Tensor<2>,
    ref_logps: Tensor<2>,
    mask: Tensor<2>,
) -> Result<Tensor<2>, ObjectiveError> {
    const OP: &str = "ppo_token_rewards";
    config.validate()?;
    let dims = logps.dims();
    let [n, t] = dims;
    check_shape(OP, "ref_logps", &ref_logps, dims)?;
    check_shape(OP, "mask", &mask, dims)?;
    check_shape(OP, "scores", &scores, [n])?;
    let device = logps.device();
    let kl = match config.kl_penalty {
        KlPenalty::InReward { estimator } => {
            kl_estimate(logps.detach(), ref_logps.detach(), estimator.into())
                .mul_scalar(-config.kl_coef)
        }
        KlPenalty::InLoss { .. } => Tensor::zeros([n, t], &device),
    };
    let mut r = to_vec(kl * mask.clone());
    let m = to_vec(mask);
    let s = to_vec(scores.detach());
    for i in 0..n {
        if let Some(last) = (0..t).rev().find(|j| m[i * t + j] != 0.0) {
            r[i * t + last] += s[i];
        }
    }
    let r: Vec<f32> = r.into_iter().map(|x| x as f32).collect();
    Ok(Tensor::from_data(TensorData::new(r, [n, t]), &device))
}

/// `(x - mean) / sqrt(var + 1e-8)` over the valid tokens with the unbiased (`n-1`) variance, like TRL's
/// `masked_whiten`; `shift_mean = false` adds the mean back. Masked positions are returned as 0.
pub fn masked_whiten(x: Tensor<2>, mask: Tensor<2>, shift_mean: bool) -> Tensor<2> {
    let n = scalar(mask.clone().sum());
    let mean = scalar((x.clone() * mask.clone()).sum()) / n.max(1.0);
    let centered = x.clone().sub_scalar(mean);
    let var = scalar((centered.clone().square() * mask.clone()).sum()) / n.max(1.0);
    let var = if n > 1.0 { var * n / (n - 1.0) } else { var };
    let mut w = centered.div_scalar((var + 1e-8).sqrt());
    if !shift_mean {
        w = w.add_scalar(mean);
    }
    w * mask
}

/// Generalized advantage estimation over each row (rewards and values are masked to 0 outside `mask`):
/// `δ_t = r_t + γ V_{t+1} - V_t`, `A_t = δ_t + γλ A_{t+1}`, returns `R = A + V`. Detached; advantages are
/// whitened over valid tokens when `config.whiten_advantages` (returns use the raw advantages), and 0 outside
/// `mask`.
///
/// # Shapes
/// `rewards, values, mask: [N, T]` → `(advantages, returns)`, both `[N, T]`.
pub fn gae(
    config: &PpoConfig,
    rewards: Tensor<2>,
    values: Tensor<2>,
    mask: Tensor<2>,
) -> Result<(Tensor<2>, Tensor<2>), ObjectiveError> {
    const OP: &str = "gae";
    config.validate()?;
    let dims = rewards.dims();
    let [n, t] = dims;
    check_shape(OP, "values", &values, dims)?;
    check_shape(OP, "mask", &mask, dims)?;
    let device = rewards.device();
    let rewards = rewards.detach() * mask.clone();
    let rewards = if config.whiten_rewards {
        masked_whiten(rewards, mask.clone(), false)
    } else {
        rewards
    };
    let r = to_vec(rewards);
    let v = to_vec(values.detach() * mask.clone());
    let mut adv = vec![0.0f64; n * t];
    for i in 0..n {
        let mut last = 0.0;
        for j in (0..t).rev() {
            let next_v = if j + 1 < t { v[i * t + j + 1] } else { 0.0 };
            let delta = r[i * t + j] + config.gamma * next_v - v[i * t + j];
            last = delta + config.gamma * config.lam * last;
            adv[i * t + j] = last;
        }
    }
    let ret: Vec<f32> = adv.iter().zip(&v).map(|(a, v)| (a + v) as f32).collect();
    let adv_t = Tensor::<2>::from_data(
        TensorData::new(adv.iter().map(|a| *a as f32).collect::<Vec<_>>(), [n, t]),
        &device,
    );
    let adv_t = if config.whiten_advantages {
        masked_whiten(adv_t, mask.clone(), true)
    } else {
        adv_t * mask
    };
    Ok((
        adv_t,
        Tensor::from_data(TensorData::new(ret, [n, t]), &device),
    ))
}

/// Inputs of [`ppo_loss`], all `[N, T]` over response tokens.
#[derive(Clone, Debug)]
pub struct PpoInputs {
    /// New policy log-probs (differentiable).
    pub logps: Tensor<2>,
    /// Rollout-time policy log-probs.
    pub old_logps: Tensor<2>,
    /// Reference log-probs; required with [`KlPenalty::InLoss`].
    pub ref_logps: Option<Tensor<2>>,
    /// New value predictions (differentiable).
    pub values: Tensor<2>,
    /// Rollout-time value predictions.
    pub old_values: Tensor<2>,
    /// Advantages from [`gae`].
    pub advantages: Tensor<2>,
    /// Returns from [`gae`].
    pub returns: Tensor<2>,
    /// Response mask.
    pub mask: Tensor<2>,
}

/// `loss = pg_loss + vf_coef·vf_loss (+ kl_coef·masked_mean(k) with KlPenalty::InLoss)` where, with masked means
/// over all valid tokens, `pg_loss = mean(max(-A·ρ, -A·clip(ρ, 1±ε)))` and
/// `vf_loss = ½ mean(max((V - R)², (clip(V, V_old ± ε_v) - R)²))`.
///
/// Metrics (TRL names): `loss/policy_avg`, `loss/value_avg`, `policy/clipfrac_avg`, `val/clipfrac_avg`,
/// `policy/approxkl_avg` (`½ mean((log ρ)²)`), `val/ratio` (mean ρ), and `objective/kl` with `InLoss`.
///
/// # Shapes
/// every input `[N, T]` → loss `[1]`.
pub fn ppo_loss(config: &PpoConfig, inputs: PpoInputs) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "ppo_loss";
    config.validate()?;
    let dims = inputs.logps.dims();
    for (name, t) in [
        ("old_logps", &inputs.old_logps),
        ("values", &inputs.values),
        ("old_values", &inputs.old_values),
        ("advantages", &inputs.advantages),
        ("returns", &inputs.returns),
        ("mask", &inputs.mask),
    ] {
        check_shape(OP, name, t, dims)?;
    }
    let mask = inputs.mask.clone();
    let denom = mask.clone().sum().clamp_min(1.0);
    let mmean = |x: Tensor<2>| (x * mask.clone()).sum() / denom.clone();
    let adv = inputs.advantages.detach();
    let ret = inputs.returns.detach();
    let old_v = inputs.old_values.detach();

    let v = inputs.values;
    let v_clipped = v
        .clone()
        .max_pair(old_v.clone().sub_scalar(config.cliprange_value))
        .min_pair(old_v.add_scalar(config.cliprange_value));
    let vf1 = (v - ret.clone()).square();
    let vf2 = (v_clipped - ret).square();
    let vf_loss = mmean(vf1.clone().max_pair(vf2.clone())).mul_scalar(0.5);
    let vf_clipfrac = mmean(vf2.greater(vf1).float());

    let log_ratio = inputs.logps.clone() - inputs.old_logps.detach();
    let ratio = log_ratio.clone().exp();
    let pg1 = adv.clone().neg() * ratio.clone();
    let pg2 = adv.neg()
        * ratio
            .clone()
            .clamp(1.0 - config.cliprange, 1.0 + config.cliprange);
    let pg_loss = mmean(pg1.clone().max_pair(pg2.clone()));
    let pg_clipfrac = mmean(pg2.greater(pg1).float());
    let approx_kl = mmean(log_ratio.detach().square()).mul_scalar(0.5);

    let mut loss = pg_loss.clone() + vf_loss.clone().mul_scalar(config.vf_coef);
    let mut metrics = Metrics::new();
    if let KlPenalty::InLoss { estimator } = config.kl_penalty {
        let r = inputs.ref_logps.ok_or(ObjectiveError::MissingInput {
            op: OP,
            input: "ref_logps",
            reason: "kl_penalty is in_loss",
        })?;
        check_shape(OP, "ref_logps", &r, dims)?;
        let kl = mmean(kl_estimate(inputs.logps, r.detach(), estimator.into()));
        metrics.insert("objective/kl".into(), scalar(kl.clone().detach()));
        loss = loss + kl.mul_scalar(config.kl_coef);
    }
    metrics.insert("loss/policy_avg".into(), scalar(pg_loss.detach()));
    metrics.insert("loss/value_avg".into(), scalar(vf_loss.detach()));
    metrics.insert("policy/clipfrac_avg".into(), scalar(pg_clipfrac));
    metrics.insert("val/clipfrac_avg".into(), scalar(vf_clipfrac));
    metrics.insert("policy/approxkl_avg".into(), scalar(approx_kl));
    metrics.insert("val/ratio".into(), scalar(mmean(ratio.detach())));
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t1, t2};
    use burn::tensor::Device;

    #[test]
    fn gae_matches_hand_recursion() {
        let d = Device::default();
        let cfg = PpoConfig {
            gamma: 0.9,
            lam: 0.8,
            whiten_advantages: false,
            ..PpoConfig::default()
        };
        let r = [0.0, 0.5, 1.0, 2.0, 0.0, 9.0];
        let v = [0.2, 0.4, 0.6, 1.0, -1.0, 7.0];
        let m = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let Ok((a, ret)) = gae(
            &cfg,
            t2(&r, [2, 3], &d),
            t2(&v, [2, 3], &d),
            t2(&m, [2, 3], &d),
        ) else {
            panic!("gae failed")
        };
        let (a, ret) = (to_vec(a), to_vec(ret));
        // row 0
        let d2 = 1.0 - 0.6;
        let d1 = 0.5 + 0.9 * 0.6 - 0.4;
        let d0 = 0.0 + 0.9 * 0.4 - 0.2;
        let a2 = d2;
        let a1 = d1 + 0.72 * a2;
        let a0 = d0 + 0.72 * a1;
        for (got, want) in a[..3].iter().zip([a0, a1, a2]) {
            assert!(close(*got, want, 1e-6), "{got} vs {want}");
        }
        assert!(close(ret[0], a0 + 0.2, 1e-6));
        // row 1: third token masked (reward 9 and value 7 ignored)
        let e1 = 0.0 - (-1.0);
        let e0 = 2.0 - 0.9 - 1.0;
        assert!(close(a[4], e1, 1e-6) && close(a[3], e0 + 0.72 * e1, 1e-6));
        assert_eq!(a[5], 0.0);
    }

    #[test]
    fn whitening_gives_zero_mean_unit_unbiased_std() {
        let d = Device::default();
        let x = t2(&[1.0, 2.0, 3.0, 100.0], [2, 2], &d);
        let m = t2(&[1.0, 1.0, 1.0, 0.0], [2, 2], &d);
        let w = to_vec(masked_whiten(x, m, true));
        assert!(close(w[0], -1.0, 1e-4) && close(w[1], 0.0, 1e-6) && close(w[2], 1.0, 1e-4));
        assert_eq!(w[3], 0.0);
    }

    #[test]
    fn token_rewards_put_score_on_last_valid_token() {
        let d = Device::default();
        let cfg = PpoConfig {
            kl_coef: 0.1,
            ..PpoConfig::default()
        };
        let lp = t2(&[-1.0, -2.0, -1.0, -1.0], [2, 2], &d);
        let rf = t2(&[-1.5, -1.0, -1.0, -1.0], [2, 2], &d);
        let m = t2(&[1.0, 1.0, 1.0, 0.0], [2, 2], &d);
        let Ok(r) = ppo_token_rewards(&cfg, t1(&[3.0, -2.0], &d), lp, rf, m) else {
            panic!("rewards failed")
        };
        let r = to_vec(r);
        assert!(close(r[0], -0.05, 1e-6) && close(r[1], 0.1 + 3.0, 1e-6));
        assert!(close(r[2], -2.0, 1e-6) && r[3] == 0.0);
    }

    fn loss_of(
        cfg: &PpoConfig,
        lp: &[f64],
        v: &[f64],
        d: &Device,
    ) -> Result<ObjectiveOutput, ObjectiveError> {
        let shape = [2, 2];
        ppo_loss(
            cfg,
            PpoInputs {
                logps: t2(lp, shape, d),
                old_logps: t2(&[-1.0, -1.2, -0.8, -2.0], shape, d),
                ref_logps: Some(t2(&[-1.1, -1.0, -0.9, -1.5], shape, d)),
                values: t2(v, shape, d),
                old_values: t2(&[0.5, 0.1, -0.3, 0.0], shape, d),
                advantages: t2(&[1.0, -0.5, 0.7, 2.0], shape, d),
                returns: t2(&[1.0, 0.0, 0.2, 0.4], shape, d),
                mask: t2(&[1.0, 1.0, 1.0, 0.0], shape, d),
            },
        )
    }

    #[test]
    fn clipped_losses_by_hand() {
        let d = Device::default();
        let cfg = PpoConfig::default();
        // ratios: e^0.5 (A=1 -> clipped at 1.2), e^-0.5 (A=-0.5 -> clipped at 0.8), 1 (A=0.7); 4th masked.
        let lp = [-0.5, -1.7, -0.8, -2.0];
        let v = [0.9, 0.0, 0.0, 5.0]; // value 0.9 clipped to 0.7; 0.0 within 0.1±0.2; 0.0 within -0.3±0.2? no -> -0.1
        let Ok(out) = loss_of(&cfg, &lp, &v, &d) else {
            panic!("ppo_loss failed")
        };
        let pg = [-1.2f64, 0.5 * 0.8, -0.7];
        let pg_loss = (pg[0] + pg[1] + pg[2]) / 3.0;
        let vf = [
            (0.9f64 - 1.0).powi(2).max((0.7f64 - 1.0).powi(2)),
            0.0,
            (0.0f64 - 0.2).powi(2).max((-0.1f64 - 0.2).powi(2)),
        ];
        let vf_loss = 0.5 * (vf[0] + vf[1] + vf[2]) / 3.0;
        assert!(close(out.metrics["loss/policy_avg"], pg_loss, 1e-5));
        assert!(close(out.metrics["loss/value_avg"], vf_loss, 1e-5));
        assert!(close(to_vec(out.loss)[0], pg_loss + 0.1 * vf_loss, 1e-5));
        assert!(close(out.metrics["policy/clipfrac_avg"], 2.0 / 3.0, 1e-6));
        assert!(close(out.metrics["val/clipfrac_avg"], 2.0 / 3.0, 1e-6));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let cfg = PpoConfig {
            kl_penalty: KlPenalty::InLoss {
                estimator: KlEstimatorName::K3,
            },
            ..PpoConfig::default()
        };
        // Points away from every clip kink so the loss is smooth around them.
        let lp = [-0.95, -1.25, -0.7, -2.0];
        let v = [0.45, 0.05, -0.2, 0.0];
        let ad = Device::default().autodiff();
        let lp_t = t2(&lp, [2, 2], &ad).require_grad();
        let v_t = t2(&v, [2, 2], &ad).require_grad();
        let shape = [2, 2];
        let out = ppo_loss(
            &cfg,
            PpoInputs {
                logps: lp_t.clone(),
                old_logps: t2(&[-1.0, -1.2, -0.8, -2.0], shape, &ad),
                ref_logps: Some(t2(&[-1.1, -1.0, -0.9, -1.5], shape, &ad)),
                values: v_t.clone(),
                old_values: t2(&[0.5, 0.1, -0.3, 0.0], shape, &ad),
                advantages: t2(&[1.0, -0.5, 0.7, 2.0], shape, &ad),
                returns: t2(&[1.0, 0.0, 0.2, 0.4], shape, &ad),
                mask: t2(&[1.0, 1.0, 1.0, 0.0], shape, &ad),
            },
        );
        let Ok(out) = out else {
            panic!("ppo_loss failed")
        };
        let grads = out.loss.backward();
        let g_lp = lp_t.grad(&grads).map(to_vec).unwrap_or_default();
        let g_v = v_t.grad(&grads).map(to_vec).unwrap_or_default();
        assert_eq!((g_lp.len(), g_v.len()), (4, 4));
        let d = Device::default();
        let f = |lp: &[f64], v: &[f64]| {
            loss_of(&cfg, lp, v, &d)
                .map(|o| to_vec(o.loss)[0])
                .unwrap_or(f64::NAN)
        };
        let h = 1e-3;
        for i in 0..4 {
            let (mut up, mut dn) = (lp, lp);
            up[i] += h;
            dn[i] -= h;
            let fd = (f(&up, &v) - f(&dn, &v)) / (2.0 * h);
            assert!(
                (fd - g_lp[i]).abs() < 2e-3,
                "d/dlogp[{i}]: fd {fd} vs autodiff {}",
                g_lp[i]
            );
            let (mut up, mut dn) = (v, v);
            up[i] += h;
            dn[i] -= h;
            let fd = (f(&lp, &up) - f(&lp, &dn)) / (2.0 * h);
            assert!(
                (fd - g_v[i]).abs() < 2e-3,
                "d/dvalue[{i}]: fd {fd} vs autodiff {}",
                g_v[i]
            );
        }
        // the masked token has no gradient, and the first token's ratio is unclipped so its gradient is non-zero
        assert_eq!(g_lp[3], 0.0);
        assert!(g_lp[0].abs() > 1e-3);
    }
}
