//! Supervised fine-tuning loss (TRL `SFTTrainer`): masked token NLL or DFT (<https://huggingface.co/papers/2508.05629>).
//!
//! Completion-only / assistant-only training is expressed by the caller's mask (1 on trained target tokens).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::common::{Metrics, ObjectiveOutput, check_shape, global_masked_mean};
use crate::error::ObjectiveError;

/// Which token loss to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SftLoss {
    /// Negative log-likelihood `-log p` (TRL default `loss_type="nll"`).
    #[default]
    Nll,
    /// Dynamic Fine-Tuning: `-log p · sg(p)` (<https://huggingface.co/papers/2508.05629>).
    Dft,
}

/// SFT objective config (TRL `SFTConfig` loss fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Token loss; default `nll` as in TRL.
    #[serde(default)]
    pub loss_type: SftLoss,
}

/// Per-token inputs of [`sft_loss`], all `[B, T]` and aligned to the target tokens.
#[derive(Clone, Debug)]
pub struct SftInputs {
    /// Policy log-prob of each target token.
    pub logps: Tensor<2>,
    /// 1 on trained target tokens (TRL: `labels[:, 1:] != -100`), 0 elsewhere.
    pub mask: Tensor<2>,
    /// Optional per-token entropy for the `entropy` metric.
    pub entropy: Option<Tensor<2>>,
    /// Optional 1/0 "target is the first argmax" for `mean_token_accuracy`.
    pub is_top1: Option<Tensor<2>>,
}

impl SftInputs {
    /// Inputs without the optional metric tensors.
    pub fn new(logps: Tensor<2>, mask: Tensor<2>) -> Self {
        Self {
            logps,
            mask,
            entropy: None,
            is_top1: None,
        }
    }
}

/// `loss = Σ_valid ℓ / max(n, 1)` with `ℓ = -lp` (NLL) or `-lp·exp(lp).detach()` (DFT), `n = Σ mask`.
///
/// Metrics: `entropy` and `mean_token_accuracy` (each only when its input is given).
///
/// # Shapes
/// every input `[B, T]` → loss `[1]`.
pub fn sft_loss(config: &SftConfig, inputs: SftInputs) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "sft_loss";
    let dims = inputs.logps.dims();
    check_shape(OP, "mask", &inputs.mask, dims)?;
    let mask = inputs.mask;
    let lp = inputs.logps;
    let per_token = match config.loss_type {
        SftLoss::Nll => lp.neg(),
        SftLoss::Dft => lp.clone().neg() * lp.detach().exp(),
    };
    let n = mask.clone().sum().clamp_min(1.0);
    let loss = (per_token * mask.clone()).sum() / n;
    let mut metrics = Metrics::new();
    if let Some(ent) = inputs.entropy {
        check_shape(OP, "entropy", &ent, dims)?;
        metrics.insert("entropy".into(), global_masked_mean(ent, mask.clone()));
    }
    if let Some(top1) = inputs.is_top1 {
        check_shape(OP, "is_top1", &top1, dims)?;
        metrics.insert(
            "mean_token_accuracy".into(),
            global_masked_mean(top1, mask.clone()),
        );
    }
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t2};
    use crate::common::to_vec;
    use burn::tensor::Device;

    #[test]
    fn nll_and_dft_match_hand_values() {
        let d = Device::default();
        let lp = [-0.5, -2.0, -1.0, 0.0, -0.1, -3.0];
        let m = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let nll = sft_loss(
            &SftConfig::default(),
            SftInputs::new(t2(&lp, [2, 3], &d), t2(&m, [2, 3], &d)),
        )
        .map(|o| to_vec(o.loss)[0])
        .unwrap_or(f64::NAN);
        assert!(close(nll, (0.5 + 2.0 + 0.1 + 3.0) / 4.0, 1e-6));
        let cfg = SftConfig {
            loss_type: SftLoss::Dft,
        };
        let dft = sft_loss(
            &cfg,
            SftInputs::new(t2(&lp, [2, 3], &d), t2(&m, [2, 3], &d)),
        )
        .map(|o| to_vec(o.loss)[0])
        .unwrap_or(f64::NAN);
        let want: f64 = [-0.5f64, -2.0, -0.1, -3.0]
            .iter()
            .map(|l| -l * l.exp())
            .sum::<f64>()
            / 4.0;
        assert!(close(dft, want, 1e-6));
    }

    #[test]
    fn dft_gradient_treats_probability_as_constant() {
        let d = Device::default().autodiff();
        let lp = t2(&[-0.7, -1.2], [1, 2], &d).require_grad();
        let out = sft_loss(
            &SftConfig {
                loss_type: SftLoss::Dft,
            },
            SftInputs::new(lp.clone(), t2(&[1.0, 1.0], [1, 2], &d)),
        );
        let grads = out.map(|o| o.loss.backward());
        let g = grads
            .ok()
            .and_then(|g| lp.grad(&g))
            .map(to_vec)
            .unwrap_or_default();
        assert_eq!(g.len(), 2);
        assert!(close(g[0], -(-0.7f64).exp() / 2.0, 1e-5));
        assert!(close(g[1], -(-1.2f64).exp() / 2.0, 1e-5));
    }

    #[test]
    fn shape_mismatch_is_an_error_naming_the_input() {
        let d = Device::default();
        let err = sft_loss(
            &SftConfig::default(),
            SftInputs::new(t2(&[0.0; 4], [2, 2], &d), t2(&[0.0; 3], [1, 3], &d)),
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("sft_loss") && msg.contains("`mask`") && msg.contains("[1, 3]"),
            "{msg}"
        );
    }
}
