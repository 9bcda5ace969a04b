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
    let shift = stable_shift(&x, dim);
    let dims = x.dims();
    let sum = (x - shift.clone().expand(dims)).exp().sum_dim(dim);
    sum.log() + shift
}

/// The detached maximum along `dim` (size 1 there), with 0 where it is not finite: a slice of only `-inf`
/// (or a `+inf`) would give NaN in `x - max`.
fn stable_shift<const D: usize>(x: &Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.clone().detach().max_dim(dim);
    let finite = max.clone().is_finite();
    max.mask_fill(finite.bool_not(), 0.0)
}

/// `log_softmax(logits)[targets]`: log-prob of each target token.
///
/// Computed as `logits[target] - logsumexp(logits)`, so the only full-vocabulary temporaries are the ones the
/// `logsumexp` needs (no full `log_softmax` copy is kept); [`token_logprobs_entropy`] without the entropy.
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` (ids in `0..V`) → `[B, T]`.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    token_logprobs_entropy(logits, targets, EntropyMode::Skip).0
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

/// How [`token_logprobs_entropy`] and [`token_stats`] compute the entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyMode {
    /// No entropy.
    Skip,
    /// The value only (no autodiff graph): a metric, a mask, or a detached input.
    Detached,
    /// Differentiable (an entropy bonus in the loss).
    Differentiable,
}

/// The shared pieces of a row-wise softmax over the vocabulary: `z = logits - max` (max detached, 0 on rows
/// that are all `-inf`), `e = exp(z)`, `sum = Σ e` and `lse = log(sum) + max`. One `exp` pass serves the
/// log-probs, the entropy and the WPO statistic.
struct Softmax {
    z: Tensor<3>,
    e: Tensor<3>,
    sum: Tensor<3>,
    lse: Tensor<3>,
}

impl Softmax {
    fn new(logits: Tensor<3>) -> Self {
        let dims = logits.dims();
        let shift = stable_shift(&logits, 2);
        let z = logits - shift.clone().expand(dims);
        let e = z.clone().exp();
        let sum = e.clone().sum_dim(2);
        let lse = sum.clone().log() + shift;
        Softmax { z, e, sum, lse }
    }

    /// `-Σ p log p = log(sum) - Σ e·z / sum`; entries at `-inf` have `e = 0` and contribute 0 (`z` is clamped to
    /// the lowest finite value first, so no `0 · -inf`).
    fn entropy(&self, mode: EntropyMode) -> Option<Tensor<2>> {
        let (z, e, sum) = match mode {
            EntropyMode::Skip => return None,
            EntropyMode::Detached => (self.z.clone().detach(), self.e.clone().detach(), self.sum.clone().detach()),
            EntropyMode::Differentiable => (self.z.clone(), self.e.clone(), self.sum.clone()),
        };
        let ez = (e * z.clamp_min(f32::MIN)).sum_dim(2);
        Some((sum.clone().log() - ez / sum).squeeze_dim::<2>(2))
    }
}

/// Log-probs of the targets (differentiable) and, if asked, the entropy — from one `exp` pass over the
/// vocabulary instead of one for each. Equal to [`token_logprobs`] and [`entropy`].
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` → `[B, T]` each.
pub fn token_logprobs_entropy(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    mode: EntropyMode,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let picked = logits.clone().gather(2, targets.unsqueeze_dim::<3>(2)); // [B, T, 1]
    let sm = Softmax::new(logits);
    let entropy = sm.entropy(mode);
    ((picked - sm.lse).squeeze_dim::<2>(2), entropy)
}

/// Everything TRL's fused LM head reports per position, for one `[B, T, V]` logits tensor and its targets.
#[derive(Clone, Debug)]
pub struct TokenStats {
    /// `log_softmax(logits)[target]` (differentiable), `[B, T]`.
    pub logps: Tensor<2>,
    /// `-Σ_v p_v log p_v` (no gradient), `[B, T]`.
    pub entropy: Tensor<2>,
    /// `mean_v logits` (no gradient), `[B, T]`.
    pub mean_logits: Tensor<2>,
    /// 1.0 where the target is the **first** argmax of the logits (torch semantics), else 0.0; no gradient, `[B, T]`.
    pub is_top1: Tensor<2>,
    /// `log Σ_v p_v²` (WPO's weighting; no gradient, as in TRL), `[B, T]`, when asked for.
    pub log_sum_sq_probs: Option<Tensor<2>>,
}

/// Per-position statistics of `softmax(logits)` for the given targets (divide `logits` by the sampling
/// temperature first if needed). `with_log_sum_sq`: also `log Σ p²` (one more pass over the vocabulary).
///
/// Only the log-probs carry gradients: TRL computes the other statistics as metrics (and WPO's weights under
/// `no_grad`), and keeping them off the autodiff graph saves several vocabulary-wide tensors per step.
///
/// # Shapes
/// `logits: [B, T, V]`, `targets: [B, T]` → every field `[B, T]`.
pub fn token_stats(logits: Tensor<3>, targets: Tensor<2, Int>, with_log_sum_sq: bool) -> TokenStats {
    let detached = logits.clone().detach();
    let mean_logits = detached.clone().mean_dim(2).squeeze_dim::<2>(2);
    // burn's argmax returns the first index of the maximum, like torch.
    let is_top1 = detached
        .argmax(2)
        .squeeze_dim::<2>(2)
        .equal(targets.clone())
        .float();
    let picked = logits.clone().gather(2, targets.unsqueeze_dim::<3>(2));
    let sm = Softmax::new(logits);
    let entropy = sm.entropy(EntropyMode::Detached).expect("entropy was asked for");
    let log_sum_sq_probs = with_log_sum_sq.then(|| {
        // log Σ p² = log Σ e² - 2 log Σ e.
        let (e, sum) = (sm.e.clone().detach(), sm.sum.clone().detach());
        ((e.clone() * e).sum_dim(2).log() - sum.log().mul_scalar(2.0)).squeeze_dim::<2>(2)
    });
    TokenStats {
        logps: (picked - sm.lse).squeeze_dim::<2>(2),
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
            let s = token_stats(t3(&flat, [1, 3, 4], &d), t2i(&targets, [1, 3], &d), true);
            let (lp, ent, ml, t1, lsq) = (
                values(s.logps),
                values(s.entropy),
                values(s.mean_logits),
                values(s.is_top1),
                values(s.log_sum_sq_probs.expect("asked for")),
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

    /// `logits[target] - logsumexp(logits)`, composed from the public pieces (not through `Softmax`).
    fn gather_minus_logsumexp(x: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
        (x.clone().gather(2, targets.unsqueeze_dim::<3>(2)) - logsumexp(x, 2)).squeeze_dim::<2>(2)
    }

    #[test]
    fn fused_logprobs_and_entropy_equal_the_separate_ones_with_gradients() {
        let d = Device::default().autodiff();
        // Row 2 overflows a naive exp; a row with -inf entries (a top-k-filtered distribution) is included.
        let mut flat: Vec<f64> = LOGITS.iter().flatten().copied().collect();
        flat.extend([f64::NEG_INFINITY, 3.0, 3.0, f64::NEG_INFINITY]);
        let targets = t2i(&[3, 0, 1, 2], [1, 4], &d);
        let x = t3(&flat, [1, 4, 4], &d).require_grad();
        let (lp, ent) = token_logprobs_entropy(x.clone(), targets.clone(), EntropyMode::Differentiable);
        let ent = ent.expect("entropy");
        assert_eq!(values(lp.clone()), values(gather_minus_logsumexp(x.clone(), targets.clone())));
        for (got, want) in values(ent.clone()).iter().zip(values(entropy(x.clone().detach()))) {
            assert_close(*got, want, 1e-6);
        }
        // Gradients of Σ logp + Σ H equal those of the separate functions (finite rows only: -inf has none).
        let finite = t3(&flat[..12], [1, 3, 4], &d).require_grad();
        let t3ids = t2i(&[3, 0, 1], [1, 3], &d);
        let (lp, ent) = token_logprobs_entropy(finite.clone(), t3ids.clone(), EntropyMode::Differentiable);
        let g1 = finite.grad(&(lp.sum() + ent.expect("entropy").sum()).backward()).map(values).unwrap_or_default();
        let y = finite.clone().detach().require_grad();
        let g2 = y
            .grad(&(gather_minus_logsumexp(y.clone(), t3ids).sum() + entropy(y.clone()).sum()).backward())
            .map(values)
            .unwrap_or_default();
        assert_eq!(g1.len(), 12);
        for (a, b) in g1.iter().zip(&g2) {
            assert_close(*a, *b, 1e-5);
        }
        // Detached: the same value, off the graph.
        let (_, det) = token_logprobs_entropy(finite.clone(), t2i(&[3, 0, 1], [1, 3], &d), EntropyMode::Detached);
        let det = det.expect("entropy");
        assert!(!det.is_require_grad());
        for (got, want) in values(det).iter().zip(values(entropy(finite.clone().detach()))) {
            assert_close(*got, want, 1e-6);
        }
        let (lp, skip) = token_logprobs_entropy(finite, t2i(&[3, 0, 1], [1, 3], &d), EntropyMode::Skip);
        assert!(skip.is_none());
        assert_eq!(lp.dims(), [1, 3]);
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
