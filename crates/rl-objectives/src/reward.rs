//! Reward-model loss (TRL `RewardTrainer`): Bradley–Terry with optional margin and reward centering.
//!
//! Bradley–Terry: <https://doi.org/10.2307/2334029>; margin as in Llama 2 (<https://huggingface.co/papers/2307.09288>);
//! centering as in <https://huggingface.co/papers/2312.09244>.

use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use crate::common::{Metrics, ObjectiveOutput, check_shape, mean, min_max, to_vec};
use crate::error::{ObjectiveError, config_err};

/// Reward objective config (TRL `RewardConfig` loss fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// Coefficient of `mean((r_c + r_r)²)` pushing rewards toward zero mean; TRL default `None`
    /// (<https://huggingface.co/papers/2312.09244>).
    #[serde(default)]
    pub center_rewards_coefficient: Option<f64>,
}

impl RewardConfig {
    /// Checked constructor.
    pub fn new(center_rewards_coefficient: Option<f64>) -> Result<Self, ObjectiveError> {
        let c = Self {
            center_rewards_coefficient,
        };
        c.validate()?;
        Ok(c)
    }

    /// Rejects a negative or non-finite centering coefficient.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if let Some(c) = self.center_rewards_coefficient
            && !(c.is_finite() && c >= 0.0)
        {
            return Err(config_err(
                "RewardConfig",
                "center_rewards_coefficient",
                format!("must be finite and >= 0, got {c}"),
            ));
        }
        Ok(())
    }
}

/// `loss = mean(-logσ(r_c - r_r - margin)) + c·mean((r_c + r_r)²)`.
///
/// Metrics: `min_reward`, `mean_reward`, `max_reward` (over all 2B rewards), `accuracy = mean(r_c > r_r)`,
/// `margin = mean(r_c - r_r)`.
///
/// # Shapes
/// `chosen, rejected, margin: [B]` → loss `[1]`.
pub fn reward_loss(
    config: &RewardConfig,
    chosen: Tensor<1>,
    rejected: Tensor<1>,
    margin: Option<Tensor<1>>,
) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "reward_loss";
    config.validate()?;
    let dims = chosen.dims();
    check_shape(OP, "rejected", &rejected, dims)?;
    let diff = chosen.clone() - rejected.clone();
    let logits = match margin {
        Some(m) => {
            check_shape(OP, "margin", &m, dims)?;
            diff.clone() - m
        }
        None => diff.clone(),
    };
    let mut loss = log_sigmoid(logits).neg().mean();
    if let Some(c) = config.center_rewards_coefficient {
        loss = loss
            + (chosen.clone() + rejected.clone())
                .square()
                .mean()
                .mul_scalar(c);
    }
    let rc = to_vec(chosen.detach());
    let rr = to_vec(rejected.detach());
    let all: Vec<f64> = rc.iter().chain(rr.iter()).copied().collect();
    let (lo, hi) = min_max(&all);
    let d: Vec<f64> = rc.iter().zip(&rr).map(|(c, r)| c - r).collect();
    let mut metrics = Metrics::new();
    metrics.insert("min_reward".into(), lo);
    metrics.insert("mean_reward".into(), mean(&all));
    metrics.insert("max_reward".into(), hi);
    metrics.insert(
        "accuracy".into(),
        mean(
            &d.iter()
                .map(|x| f64::from(u8::from(*x > 0.0)))
                .collect::<Vec<_>>(),
        ),
    );
    metrics.insert("margin".into(), mean(&d));
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t1};
    use burn::tensor::Device;

    fn softplus(x: f64) -> f64 {
        (1.0 + x.exp()).ln()
    }

    #[test]
    fn bradley_terry_with_margin_and_centering() {
        let d = Device::default();
        let (c, r, m) = ([1.0, -0.5], [0.25, 0.5], [0.5, 0.0]);
        let cfg = RewardConfig::new(Some(0.01)).unwrap_or_default();
        let out = reward_loss(&cfg, t1(&c, &d), t1(&r, &d), Some(t1(&m, &d)));
        let Ok(out) = out else {
            panic!("reward_loss failed")
        };
        let want = 0.5 * (softplus(-(1.0 - 0.25 - 0.5)) + softplus(-(-0.5 - 0.5)))
            + 0.01 * 0.5 * ((1.25f64).powi(2) + 0.0);
        assert!(close(to_vec(out.loss)[0], want, 1e-6));
        assert_eq!(out.metrics["accuracy"], 0.5);
        assert!(close(out.metrics["margin"], (0.75 - 1.0) / 2.0, 1e-9));
        assert_eq!(out.metrics["min_reward"], -0.5);
        assert_eq!(out.metrics["max_reward"], 1.0);
    }

    #[test]
    fn negative_centering_is_rejected() {
        let err = RewardConfig::new(Some(-1.0))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("RewardConfig.center_rewards_coefficient"),
            "{err}"
        );
    }
}
