//! Learning-rate schedules as in HF `transformers`: linear warm-up, then cosine, linear or constant.

use serde::{Deserialize, Serialize};

/// Shape of the learning rate after warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Half a cosine from the peak to 0 ([Loshchilov & Hutter 2016](https://arxiv.org/abs/1608.03983)).
    #[default]
    Cosine,
    /// Linear decay from the peak to 0.
    Linear,
    /// Constant at the peak.
    Constant,
}

/// Learning rate for optimizer step `step` (0-based) of `total`, HF semantics: during warm-up
/// `lr·step/warmup`, then the schedule over the remaining steps.
pub fn lr_at(schedule: Schedule, peak: f64, warmup: usize, step: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * step as f64 / warmup.max(1) as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    match schedule {
        Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        Schedule::Linear => peak * (1.0 - progress),
        Schedule::Constant => peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_hf_formulas() {
        let cases = [
            (Schedule::Cosine, 10, 0, 100, 0.0),
            (Schedule::Cosine, 10, 5, 100, 0.5),
            (Schedule::Cosine, 10, 10, 100, 1.0),
            (Schedule::Cosine, 10, 55, 100, 0.5),
            (Schedule::Cosine, 10, 100, 100, 0.0),
            (Schedule::Linear, 0, 25, 100, 0.75),
            (Schedule::Constant, 2, 1, 100, 0.5),
            (Schedule::Constant, 2, 50, 100, 1.0),
        ];
        for (s, warmup, step, total, want) in cases {
            let got = lr_at(s, 1.0, warmup, step, total);
            assert!((got - want).abs() < 1e-12, "{s:?} warmup {warmup} step {step}: {got} != {want}");
        }
    }
}
