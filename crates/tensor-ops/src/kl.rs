//! Schulman's per-token estimators of `KL(π || π_ref)` from log-probs (<http://joschu.net/blog/kl-approx.html>).

use burn::tensor::Tensor;

/// Which estimator of `KL(π || π_ref)` to use, with `r = π_ref / π` evaluated at tokens sampled from `π`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KlEstimator {
    /// `k1 = log π - log π_ref` (unbiased, high variance, can be negative).
    K1,
    /// `k2 = ½ (log π - log π_ref)²` (biased, low variance, non-negative).
    K2,
    /// `k3 = r - 1 - log r` with `log r = log π_ref - log π` (unbiased, non-negative; TRL's GRPO KL).
    K3,
}

/// Per-token KL estimate.
///
/// # Shapes
/// `logp, ref_logp: [N, T]` → `[N, T]`.
pub fn kl_estimate(logp: Tensor<2>, ref_logp: Tensor<2>, est: KlEstimator) -> Tensor<2> {
    match est {
        KlEstimator::K1 => logp - ref_logp,
        KlEstimator::K2 => (logp - ref_logp).square().mul_scalar(0.5),
        KlEstimator::K3 => {
            let log_r = ref_logp - logp;
            log_r.clone().exp() - log_r - 1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, t2, values};
    use burn::tensor::Device;

    #[test]
    fn estimators_match_formulas() {
        let d = Device::default();
        let lp = [-1.0, -2.5, -0.1, -3.0];
        let rf = [-1.5, -2.0, -0.1, -0.5];
        for (est, f) in [
            (
                KlEstimator::K1,
                (|a: f64, b: f64| a - b) as fn(f64, f64) -> f64,
            ),
            (KlEstimator::K2, |a, b| 0.5 * (a - b) * (a - b)),
            (KlEstimator::K3, |a, b| (b - a).exp() - (b - a) - 1.0),
        ] {
            let got = values(kl_estimate(t2(&lp, [2, 2], &d), t2(&rf, [2, 2], &d), est));
            for i in 0..4 {
                assert_close(got[i], f(lp[i], rf[i]), 1e-6);
            }
        }
    }

    #[test]
    fn k3_mean_is_close_to_true_kl_for_a_known_pair() {
        // π = [0.5, 0.5], π_ref = [0.9, 0.1]: E_π[k1] = E_π[k3] = KL(π||π_ref) exactly.
        let d = Device::default();
        let lp = [0.5f64.ln(), 0.5f64.ln()];
        let rf = [0.9f64.ln(), 0.1f64.ln()];
        let true_kl = 0.5 * (0.5f64 / 0.9).ln() + 0.5 * (0.5f64 / 0.1).ln();
        for est in [KlEstimator::K1, KlEstimator::K3] {
            let got = values(kl_estimate(t2(&lp, [1, 2], &d), t2(&rf, [1, 2], &d), est));
            assert_close(0.5 * (got[0] + got[1]), true_kl, 1e-6);
        }
    }
}
