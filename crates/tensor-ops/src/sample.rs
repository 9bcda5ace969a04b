//! One seeded sampling step over last-position logits: temperature, top-k, top-p, greedy (first argmax).

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use rand::Rng;
use rand::rngs::StdRng;

use crate::filter::{top_k_filter, top_p_filter};

/// How to pick the next token. `temperature <= 0` (or NaN) means greedy decoding.
#[derive(Clone, Debug)]
pub struct SamplingParams {
    /// Logits are divided by this before filtering; `0` = greedy (HF `do_sample=False`).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (ties with the k-th kept), applied after the temperature.
    pub top_k: Option<usize>,
    /// Nucleus filtering threshold in `(0, 1]`, applied after top-k (HF warper order).
    pub top_p: Option<f64>,
}

impl Default for SamplingParams {
    /// Plain ancestral sampling at temperature 1, no filtering.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

/// Result of one [`sample`] step, one entry per batch row.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    /// Chosen token ids.
    pub ids: Vec<u32>,
    /// Log-prob of the chosen id under the distribution actually sampled from (0.0 when greedy).
    pub logprobs: Vec<f32>,
    /// Log-prob of the chosen id under `log_softmax(logits)` at temperature 1, no filtering.
    pub plain_logprobs: Vec<f32>,
}

/// One sampling step for a batch of last-position logits.
///
/// Order of operations follows HF `generate`: temperature, then top-k, then top-p, then a categorical draw
/// using one `rng.random::<f64>()` per row (rows in order), so the same rng state gives the same ids.
/// Greedy picks the first argmax, like `torch.argmax`.
///
/// # Shapes
/// `logits: [B, V]`.
pub fn sample(logits: Tensor<2>, params: &SamplingParams, rng: &mut StdRng) -> Sampled {
    let [b, v] = logits.dims();
    let plain: Vec<f32> = log_softmax(logits.clone(), 1)
        .into_data()
        .iter::<f32>()
        .collect();
    let greedy = params.temperature.is_nan() || params.temperature <= 0.0;
    let mut out = Sampled {
        ids: Vec::with_capacity(b),
        logprobs: Vec::with_capacity(b),
        plain_logprobs: Vec::with_capacity(b),
    };
    if greedy {
        let raw: Vec<f32> = logits.into_data().iter::<f32>().collect();
        for r in 0..b {
            let id = first_argmax(&raw[r * v..(r + 1) * v]);
            out.ids.push(id as u32);
            out.logprobs.push(0.0);
            out.plain_logprobs.push(plain[r * v + id]);
        }
        return out;
    }
    let mut x = logits.div_scalar(params.temperature);
    if let Some(k) = params.top_k {
        x = top_k_filter(x, k);
    }
    if let Some(p) = params.top_p {
        x = top_p_filter(x, p);
    }
    let lp: Vec<f32> = log_softmax(x, 1).into_data().iter::<f32>().collect();
    for r in 0..b {
        let row = &lp[r * v..(r + 1) * v];
        let u: f64 = rng.random();
        let id = draw(row, u);
        out.ids.push(id as u32);
        out.logprobs.push(row[id]);
        out.plain_logprobs.push(plain[r * v + id]);
    }
    out
}

/// Index of the first maximum (NaNs never win; an all-NaN row gives 0).
fn first_argmax(row: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &x) in row.iter().enumerate() {
        if x > best_v {
            best_v = x;
            best = i;
        }
    }
    best
}

/// Inverse-CDF draw from a row of log-probs with `u ∈ [0, 1)`; zero-probability entries are never chosen.
fn draw(logp: &[f32], u: f64) -> usize {
    let probs: Vec<f64> = logp
        .iter()
        .map(|l| {
            if l.is_finite() {
                f64::from(*l).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = probs.iter().sum();
    if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return first_argmax(logp);
    }
    let target = u * total;
    let mut acc = 0.0;
    let mut last_positive = 0;
    for (i, p) in probs.iter().enumerate() {
        if *p > 0.0 {
            acc += p;
            last_positive = i;
            if target < acc {
                return i;
            }
        }
    }
    last_positive
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{f64_log_softmax, t2};
    use burn::tensor::Device;
    use rand::SeedableRng;

    const ROWS: [[f64; 5]; 2] = [[1.0, 3.0, 3.0, 0.5, -2.0], [0.0, 0.1, 0.2, 0.3, 0.4]];

    fn logits(d: &Device) -> Tensor<2> {
        let flat: Vec<f64> = ROWS.iter().flatten().copied().collect();
        t2(&flat, [2, 5], d)
    }

    #[test]
    fn greedy_picks_first_argmax_with_plain_logprobs() {
        let d = Device::default();
        let mut rng = StdRng::seed_from_u64(0);
        let p = SamplingParams {
            temperature: 0.0,
            top_k: Some(1),
            top_p: Some(0.5),
        };
        let s = sample(logits(&d), &p, &mut rng);
        assert_eq!(s.ids, vec![1, 4]);
        assert_eq!(s.logprobs, vec![0.0, 0.0]);
        for (r, row) in ROWS.iter().enumerate() {
            let want = f64_log_softmax(row)[s.ids[r] as usize];
            assert!((f64::from(s.plain_logprobs[r]) - want).abs() < 1e-5);
        }
    }

    #[test]
    fn same_seed_same_ids_and_logprobs_are_consistent() {
        let d = Device::default();
        let p = SamplingParams {
            temperature: 0.7,
            top_k: Some(3),
            top_p: None,
        };
        let a = sample(logits(&d), &p, &mut StdRng::seed_from_u64(42));
        let b = sample(logits(&d), &p, &mut StdRng::seed_from_u64(42));
        assert_eq!(a, b);
        for (r, row) in ROWS.iter().enumerate() {
            let id = a.ids[r] as usize;
            // Reference: temperature, then keep the 3 largest (row 0 keeps 3,3,1; row 1 keeps .2,.3,.4).
            let scaled: Vec<f64> = row.iter().map(|x| x / 0.7).collect();
            let mut sorted = scaled.clone();
            sorted.sort_by(|x, y| y.total_cmp(x));
            let kth = sorted[2];
            let filt: Vec<f64> = scaled
                .iter()
                .map(|x| if *x >= kth { *x } else { f64::NEG_INFINITY })
                .collect();
            let want = f64_log_softmax(&filt)[id];
            assert!(want.is_finite(), "sampled a filtered token {id} in row {r}");
            assert!((f64::from(a.logprobs[r]) - want).abs() < 1e-5);
            assert!((f64::from(a.plain_logprobs[r]) - f64_log_softmax(row)[id]).abs() < 1e-5);
        }
    }

    #[test]
    fn empirical_frequencies_follow_the_filtered_distribution() {
        let d = Device::default();
        let p = SamplingParams {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.9),
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0usize; 5];
        let n = 4000;
        let row = [[0.0f64, 1.0, 2.0, -5.0, 0.5]];
        let flat: Vec<f64> = row.iter().flatten().copied().collect();
        for _ in 0..n {
            let s = sample(t2(&flat, [1, 5], &d), &p, &mut rng);
            counts[s.ids[0] as usize] += 1;
        }
        // HF top-p 0.9 on these logits: sorted-ascending cum probs are .0008,.069,.182,.300,1 -> drop cum<=0.1.
        let probs: Vec<f64> = f64_log_softmax(&row[0]).iter().map(|l| l.exp()).collect();
        assert!(probs[3] + probs[0] <= 0.1);
        assert_eq!(counts[3] + counts[0], 0);
        let kept = probs[1] + probs[2] + probs[4];
        for i in [1, 2, 4] {
            let f = counts[i] as f64 / n as f64;
            assert!(
                (f - probs[i] / kept).abs() < 0.03,
                "token {i}: freq {f} vs {}",
                probs[i] / kept
            );
        }
    }

    #[test]
    fn draw_inverse_cdf_edges() {
        let lp = [f32::NEG_INFINITY, 0.25f32.ln(), 0.75f32.ln()];
        assert_eq!(draw(&lp, 0.0), 1);
        assert_eq!(draw(&lp, 0.2499), 1);
        assert_eq!(draw(&lp, 0.2501), 2);
        assert_eq!(draw(&lp, 0.999_999_9), 2);
        assert_eq!(first_argmax(&[1.0, f32::NAN, 2.0, 2.0]), 2);
    }
}
