//! HF-style logit filters for sampling: top-k and nucleus (top-p), writing `-inf` into removed entries.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

/// Keeps, per row, every entry `>=` the k-th largest value (ties with it are kept, like HF's
/// `TopKLogitsWarper`); the rest become `-inf`. `k == 0` or `k >= V` leaves the logits unchanged.
///
/// # Shapes
/// `logits: [B, V]` → `[B, V]`.
pub fn top_k_filter(logits: Tensor<2>, k: usize) -> Tensor<2> {
    let [_, v] = logits.dims();
    if k == 0 || k >= v {
        return logits;
    }
    let kth = logits.clone().topk(k, 1).narrow(1, k - 1, 1); // [B, 1]
    let remove = logits.clone().lower(kth.expand(logits.dims()));
    logits.mask_fill(remove, f32::NEG_INFINITY)
}

/// Nucleus filtering with HF's `TopPLogitsWarper` semantics: sort ascending, drop the tokens whose
/// cumulative probability is `<= 1 - p`, always keep the most probable token. `p >= 1` is a no-op.
///
/// # Shapes
/// `logits: [B, V]` → `[B, V]`.
pub fn top_p_filter(logits: Tensor<2>, p: f64) -> Tensor<2> {
    let [b, v] = logits.dims();
    if p >= 1.0 || v == 0 {
        return logits;
    }
    let (sorted, idx) = logits.clone().sort_with_indices(1); // ascending, [B, V]
    let cum = softmax(sorted, 1).cumsum(1);
    // 1.0 where removed, in sorted order; the last (largest) column is always kept.
    let remove_sorted = cum.lower_equal_elem(1.0 - p).float();
    let remove_sorted = remove_sorted.slice_fill([0..b, v - 1..v], 0.0);
    // Undo the sort: position j in the original order sits at argsort(idx)[j] in the sorted order.
    let inverse = idx.argsort(1);
    let remove = remove_sorted.gather(1, inverse).greater_elem(0.5);
    logits.mask_fill(remove, f32::NEG_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{t2, values};
    use burn::tensor::Device;

    fn kept(v: &[f64]) -> Vec<bool> {
        v.iter().map(|x| x.is_finite()).collect()
    }

    #[test]
    fn top_k_keeps_k_largest_and_ties() {
        let d = Device::default();
        let x = [0.1, 3.0, 2.0, 2.0, -1.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        let got = values(top_k_filter(t2(&x, [2, 5], &d), 2));
        // row 0: 3.0 and the tied 2.0s are kept (kth = 2.0); row 1: 5, 4.
        assert_eq!(
            kept(&got),
            vec![
                false, true, true, true, false, true, true, false, false, false
            ]
        );
        assert_eq!(got[1], 3.0);
        assert_eq!(got[6], 4.0);
        // k = 0 and k >= V are no-ops.
        assert_eq!(
            values(top_k_filter(t2(&x, [2, 5], &d), 0)),
            values(t2(&x, [2, 5], &d))
        );
        assert_eq!(
            values(top_k_filter(t2(&x, [2, 5], &d), 5)),
            values(t2(&x, [2, 5], &d))
        );
    }

    #[test]
    fn top_p_matches_hf_semantics() {
        let d = Device::default();
        // probs [0.5, 0.3, 0.15, 0.05] (as logs). Sorted ascending cum: .05, .20, .50, 1.0
        let probs = [0.5f64, 0.3, 0.15, 0.05];
        let x: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
        // p = 0.75: remove cum <= 0.25 -> {0.05, 0.15}.
        let got = values(top_p_filter(t2(&x, [1, 4], &d), 0.75));
        assert_eq!(kept(&got), vec![true, true, false, false]);
        // p = 0.45: remove cum <= 0.55 -> keep only 0.5.
        let got = values(top_p_filter(t2(&x, [1, 4], &d), 0.45));
        assert_eq!(kept(&got), vec![true, false, false, false]);
        // p tiny: still keeps the single most likely token.
        let got = values(top_p_filter(t2(&x, [1, 4], &d), 1e-9));
        assert_eq!(kept(&got), vec![true, false, false, false]);
        // p = 0.9: remove cum <= 0.1 -> only 0.05.
        let got = values(top_p_filter(t2(&x, [1, 4], &d), 0.9));
        assert_eq!(kept(&got), vec![true, true, true, false]);
        assert_eq!(got[0] as f32, x[0] as f32);
    }

    #[test]
    fn top_p_works_row_by_row_with_unsorted_input() {
        let d = Device::default();
        let r0 = [0.05f64, 0.5, 0.15, 0.3];
        let r1 = [0.25f64, 0.25, 0.25, 0.25];
        let x: Vec<f64> = r0.iter().chain(r1.iter()).map(|p| p.ln()).collect();
        let got = values(top_p_filter(t2(&x, [2, 4], &d), 0.6));
        // row 0: remove cum <= 0.4 -> {0.05, 0.15}; row 1: cum .25,.5,.75,1 -> remove the first sorted one.
        assert_eq!(kept(&got[..4]), vec![false, true, false, true]);
        assert_eq!(kept(&got[4..]).iter().filter(|k| **k).count(), 3);
    }
}
