//! Log-prob gathering, entropy, per-token statistics (TRL's fused-LM-head outputs) and a stable `logsumexp`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// `log Σ exp(x)` along `dim`, keeping `dim` with size 1; stable for large and `-inf` entries.
///
/// The row maximum is subtracted first (as a detached constant, so gradients are exactly `softmax(x)`).
/// A slice that is entirely `-inf` yields `-inf`.
///
/// # Shapes
/// `x: [.., N, ..]` → `[.., 1, ..]` (size 1 at `dim`).
pub fn logsumexp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.clone().detach().max_dim(dim);
    // A slice of only -inf (or a +inf) would give NaN in `x - max`: shift by 0 there instead.
    let finite = max.clone().is_finite();
    let shift = max.mask_fill(finite.bool_not(), 0.0);
    let dims = x.dims();
    let sum = (x - shift.clone().expand(dims)).exp().sum_dim(dim);
    sum.log() + shift
}

/// `log_softmax(logits)[targets]`: log-prob of each target token.
///
/// Computed as `logits[target] - logsumexp(logits)`, so the only full-vocabulary temporaries are the ones
/// `logsumexp` needs (no full `log_softmax` copy is kept).
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` (ids in `0..V`) → `[B, T]`.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let lse = logsumexp(logits.clone(), 2); // [B, T, 1]
    let picked = logits.gather(2, targets.unsqueeze_dim::<3>(2)); // [B, T, 1]
    (picked - lse).squeeze_dim::<2>(2)
}

/// Entropy `-Σ_v p_v log p_v` of `softmax(logits)` over the vocabulary (entries at `-inf` contribute 0).
///
/// # Shapes
/// `logits: [B, T, V]` → `[B, T]`.
pub fn entropy(logits: Tensor<3>) -> Tensor<2> {
    let logp = log_softmax(logits, 2);
    let finite = logp.clone().is_finite();
    let logp = logp.mask_fill(finite.bool_not(), 0.0);
    let p = logp.clone().exp();
    // p is exp(0) = 1 where logp was -inf: zero those out through the product with logp = 0.
    (p * logp).sum_dim(2).squeeze_dim::<2>(2).neg()
}

/// Everything TRL's fused LM head reports per position, for one `[B, T, V]` logits tensor and its targets.
#[derive(Clone, Debug)]
pub struct TokenStats {
    /// `log_softmax(logits)[target]` (differentiable), `[B, T]`.
    pub logps: Tensor<2>,
    /// `-Σ_v p_v log p_v` (differentiable), `[B, T]`.
    pub entropy: Tensor<2>,
    /// `mean_v logits` (differentiable), `[B, T]`.
    pub mean_logits: Tensor<2>,
    /// 1.0 where the target is the **first** argmax of the logits (torch semantics), else 0.0; detached, `[B, T]`.
    pub is_top1: Tensor<2>,
    /// `log Σ_v p_v²` (for WPO weighting; differentiable), `[B, T]`.
    pub log_sum_sq_probs: Tensor<2>,
}

/// Per-position statistics of `softmax(logits)` for the given targets (divide `logits` by the sampling
/// temperature first if needed).
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` → every field `[B, T]`.
pub fn token_stats(logits: Tensor<3>, targets: Tensor<2, Int>) -> TokenStats {
    let [b, t, v] = logits.dims();
    let device = logits.device();
    let lse = logsumexp(logits.clone(), 2); // [B, T, 1]
    let logp = logits.clone() - lse.expand([b, t, v]); // [B, T, V]
    let logps = logp
        .clone()
        .gather(2, targets.clone().unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2);
    let finite = logp.clone().is_finite();
    let safe = logp.clone().mask_fill(finite.bool_not(), 0.0);
    let entropy = (safe.clone().exp() * safe)
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .neg();
    let log_sum_sq_probs = logsumexp(logp.mul_scalar(2.0), 2).squeeze_dim::<2>(2);
    let mean_logits = logits.clone().mean_dim(2).squeeze_dim::<2>(2);
    // First argmax: smallest index among the positions equal to the row maximum.
    let detached = logits.detach();
    let max = detached.clone().max_dim(2).expand([b, t, v]);
    let is_max = detached.equal(max);
    let idx = Tensor::<1, Int>::arange(0..v as i64, &device)
        .float()
        .reshape([1, 1, v])
        .expand([b, t, v]);
    let first = idx
        .mask_fill(is_max.bool_not(), v as f32)
        .min_dim(2)
        .squeeze_dim::<2>(2);
    let is_top1 = first.equal(targets.float()).float();
    TokenStats {
        logps,
        entropy,
        mean_logits,
        is_top1,
        log_sum_sq_probs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, f64_entropy, f64_log_softmax, t2i, t3, values};
    use burn::tensor::Device;

    const LOGITS: [[f64; 4]; 3] = [
        [1.0, 2.0, 3.0, 4.0],
        [-1.5, 0.25, 0.25, 7.0],
        [100.0, 100.0, -100.0, 50.0],
    ];

    #[test]
    fn logsumexp_matches_f64_and_is_stable() {
        let d = Device::default();
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        let x = t3(&flat, [1, 3, 4], &d);
        let got = values(logsumexp(x, 2));
        for (r, row) in LOGITS.iter().enumerate() {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let want = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            assert_close(got[r], want, 1e-5);
        }
        // row 2 would overflow a naive exp(100) in f32; it equals 100 + ln 2.
        assert_close(got[2], 100.0 + 2f64.ln(), 1e-5);
    }

    #[test]
    fn logsumexp_of_all_neg_inf_is_neg_inf_and_dim0_works() {
        let d = Device::default();
        let x = t3(
            &[f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0, 1.0],
            [2, 1, 2],
            &d,
        );
        let got = values(logsumexp(x.clone(), 2));
        assert!(got[0].is_infinite() && got[0] < 0.0);
        assert_close(got[1], (1.0f64 + 1f64.exp()).ln(), 1e-6);
        let got0 = values(logsumexp(x, 0)); // over the batch dim: [-inf,0] and [-inf,1]
        assert_close(got0[0], 0.0, 1e-6);
        assert_close(got0[1], 1.0, 1e-6);
    }

    #[test]
    fn token_logprobs_matches_log_softmax_gather() {
        let d = Device::default();
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        let targets = [3i64, 0, 1];
        let got = values(token_logprobs(
            t3(&flat, [1, 3, 4], &d),
            t2i(&targets, [1, 3], &d),
        ));
        for (r, row) in LOGITS.iter().enumerate() {
            let want = f64_log_softmax(row)[targets[r] as usize];
            assert_close(got[r], want, 1e-5);
        }
    }

    #[test]
    fn entropy_matches_f64_and_handles_neg_inf() {
        let d = Device::default();
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        let got = values(entropy(t3(&flat, [3, 1, 4], &d)));
        for (r, row) in LOGITS.iter().enumerate() {
            assert_close(got[r], f64_entropy(row), 1e-5);
        }
        // Two equal survivors and two -inf entries: entropy = ln 2.
        let x = t3(
            &[f64::NEG_INFINITY, 3.0, 3.0, f64::NEG_INFINITY],
            [1, 1, 4],
            &d,
        );
        assert_close(values(entropy(x))[0], 2f64.ln(), 1e-6);
    }

    #[test]
    fn token_stats_match_f64_and_pick_the_first_argmax() {
        let d = Device::default();
        let flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        // row 2 has a tie between ids 0 and 1: only target 0 counts as top-1.
        for (targets, top1) in [
            ([3i64, 3, 0], [1.0, 1.0, 1.0]),
            ([2, 0, 1], [0.0, 0.0, 0.0]),
        ] {
            let s = token_stats(t3(&flat, [1, 3, 4], &d), t2i(&targets, [1, 3], &d));
            let (lp, ent, ml, t1, lsq) = (
                values(s.logps),
                values(s.entropy),
                values(s.mean_logits),
                values(s.is_top1),
                values(s.log_sum_sq_probs),
            );
            for (r, row) in LOGITS.iter().enumerate() {
                let ls = f64_log_softmax(row);
                assert_close(lp[r], ls[targets[r] as usize], 1e-5);
                assert_close(ent[r], f64_entropy(row), 1e-5);
                assert_close(ml[r], row.iter().sum::<f64>() / 4.0, 1e-6);
                assert_close(
                    lsq[r],
                    ls.iter().map(|l| (2.0 * l).exp()).sum::<f64>().ln(),
                    1e-5,
                );
                assert_eq!(t1[r], top1[r], "row {r} target {}", targets[r]);
            }
        }
    }

    #[test]
    fn token_logprobs_gradient_is_onehot_minus_softmax() {
        let d = Device::default().autodiff();
        let row = LOGITS[1];
        let x = t3(&row, [1, 1, 4], &d).require_grad();
        let lp = token_logprobs(x.clone(), t2i(&[2], [1, 1], &d));
        let grads = lp.sum().backward();
        let g = x.grad(&grads).map(values).unwrap_or_default();
        let p: Vec<f64> = f64_log_softmax(&row).iter().map(|v| v.exp()).collect();
        assert_eq!(g.len(), 4);
        for v in 0..4 {
            let want = if v == 2 { 1.0 } else { 0.0 } - p[v];
            assert_close(g[v], want, 1e-5);
        }
    }
}
