//! Masked reductions over the token axis: per-row sum / mean and the whole-batch mean.

use burn::tensor::Tensor;

/// Per-row `Σ_t x·mask`.
///
/// # Shapes
/// `x, mask: [B, T]` → `[B]`.
pub fn masked_sum(x: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    (x * mask).sum_dim(1).squeeze_dim::<1>(1)
}

/// Per-row `Σ_t x·mask / max(Σ_t mask, 1)` (an all-zero mask row gives 0, not NaN).
///
/// # Shapes
/// `x, mask: [B, T]` → `[B]`.
pub fn masked_mean(x: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let denom = mask.clone().sum_dim(1).squeeze_dim::<1>(1).clamp_min(1.0);
    masked_sum(x, mask) / denom
}

/// Whole-batch `Σ x·mask / max(Σ mask, 1)`, returned as a shape-`[1]` tensor.
///
/// # Shapes
/// `x, mask: [B, T]` → `[1]`.
pub fn masked_mean_all(x: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let denom = mask.clone().sum().clamp_min(1.0);
    (x * mask).sum() / denom
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, t2, values};
    use burn::tensor::Device;

    const X: [f64; 8] = [1.0, 2.0, 3.0, 4.0, -1.0, 5.0, 7.0, 9.0];
    const M: [f64; 8] = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];

    #[test]
    fn masked_sum_and_mean_per_row() {
        let d = Device::default();
        let s = values(masked_sum(t2(&X, [2, 4], &d), t2(&M, [2, 4], &d)));
        assert_eq!(s, vec![7.0, 0.0]);
        let m = values(masked_mean(t2(&X, [2, 4], &d), t2(&M, [2, 4], &d)));
        assert_close(m[0], 7.0 / 3.0, 1e-6);
        assert_eq!(m[1], 0.0); // empty row: denominator clamped to 1
    }

    #[test]
    fn masked_mean_all_pools_tokens_not_rows() {
        let d = Device::default();
        let mask = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let got = values(masked_mean_all(t2(&X, [2, 4], &d), t2(&mask, [2, 4], &d)));
        assert_eq!(got.len(), 1);
        assert_close(got[0], (1.0 + 2.0 - 1.0 + 9.0) / 4.0, 1e-6);
        let zero = values(masked_mean_all(
            t2(&X, [2, 4], &d),
            t2(&[0.0; 8], [2, 4], &d),
        ));
        assert_eq!(zero, vec![0.0]);
    }

    #[test]
    fn masked_mean_accepts_fractional_weights() {
        let d = Device::default();
        let w = [0.5, 0.5, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0];
        let got = values(masked_mean(t2(&X, [2, 4], &d), t2(&w, [2, 4], &d)));
        assert_close(got[0], 1.5, 1e-6); // (0.5 + 1) / max(1, 1)
        assert_close(got[1], (-2.0 + 10.0) / 4.0, 1e-6);
    }
}
