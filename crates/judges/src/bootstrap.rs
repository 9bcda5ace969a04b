//! Seeded percentile-bootstrap confidence intervals that resample items (Efron & Tibshirani 1993).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{JudgeError, Result};

/// How to bootstrap a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Number of resamples B (default 1000).
    pub resamples: usize,
    /// Two-sided confidence level (default 0.95).
    pub level: f64,
    /// Seed of the `StdRng` that draws the resamples (default 0).
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    /// Checks `resamples >= 1` and `0 < level < 1`.
    pub fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(JudgeError::Config(
                "bootstrap resamples must be >= 1".into(),
            ));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(JudgeError::Config(format!(
                "bootstrap level must be in (0, 1), got {}",
                self.level
            )));
        }
        Ok(())
    }
}

/// A percentile-bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfidenceInterval {
    /// Lower bound (the `(1 - level)/2` percentile of the resampled statistic).
    pub lo: f64,
    /// Upper bound (the `(1 + level)/2` percentile).
    pub hi: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    /// Resamples on which the statistic was defined (degenerate resamples, where the statistic is
    /// `None`, are dropped; if this is much lower than B, read the interval with care).
    pub valid_resamples: usize,
}

/// Linear-interpolation percentile of sorted data (numpy's default, "type 7"); `q` in [0, 1].
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Percentile-bootstrap CI of `stat` over `n_items` items: each resample draws `n_items` item
/// indices with replacement (seeded) and calls `stat(&indices)`. Resamples where `stat` returns
/// `None` are skipped. Returns `None` when `n_items == 0` or no resample was valid.
pub fn bootstrap_ci<F>(
    n_items: usize,
    config: &BootstrapConfig,
    mut stat: F,
) -> Option<ConfidenceInterval>
where
    F: FnMut(&[usize]) -> Option<f64>,
{
    if n_items == 0 || config.resamples == 0 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut idx = vec![0usize; n_items];
    let mut values = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        for slot in idx.iter_mut() {
            *slot = rng.random_range(0..n_items);
        }
        if let Some(v) = stat(&idx).filter(|v| v.is_finite()) {
            values.push(v);
        }
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - config.level) / 2.0;
    Some(ConfidenceInterval {
        lo: percentile(&values, alpha)?,
        hi: percentile(&values, 1.0 - alpha)?,
        level: config.level,
        valid_resamples: values.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [2.5, 50, 97.5]) == [1.1, 3.0, 9.4]
        let s = [1.0, 2.0, 3.0, 4.0, 10.0];
        let got: Vec<f64> = [0.025, 0.5, 0.975]
            .iter()
            .filter_map(|&q| percentile(&s, q))
            .collect();
        for (g, want) in got.iter().zip([1.1, 3.0, 9.4]) {
            assert!((g - want).abs() < 1e-12, "{g} vs {want}");
        }
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn bootstrap_of_mean_is_seeded_and_brackets_the_mean() {
        let data: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let mean = |ix: &[usize]| Some(ix.iter().map(|&i| data[i]).sum::<f64>() / ix.len() as f64);
        let cfg = BootstrapConfig {
            resamples: 500,
            level: 0.95,
            seed: 7,
        };
        let a = bootstrap_ci(data.len(), &cfg, mean).expect("ci");
        let b = bootstrap_ci(data.len(), &cfg, mean).expect("ci");
        assert_eq!(a, b);
        let full = data.iter().sum::<f64>() / 50.0;
        assert!(a.lo < full && full < a.hi, "{a:?} vs {full}");
        // Standard error of the mean is about sd/sqrt(n) = 2/7.07 = 0.28, so the CI is ~1.1 wide.
        assert!((a.hi - a.lo) > 0.6 && (a.hi - a.lo) < 1.6, "{a:?}");
        assert_eq!(a.valid_resamples, 500);
        let other =
            bootstrap_ci(data.len(), &BootstrapConfig { seed: 8, ..cfg }, mean).expect("ci");
        assert_ne!(a, other);
    }

    #[test]
    fn degenerate_resamples_are_dropped_and_all_degenerate_gives_none() {
        let cfg = BootstrapConfig::default();
        assert_eq!(bootstrap_ci(10, &cfg, |_| None), None);
        assert_eq!(bootstrap_ci(0, &cfg, |_| Some(1.0)), None);
        let ci = bootstrap_ci(10, &cfg, |ix| (ix[0] % 2 == 0).then_some(1.0)).expect("ci");
        assert!(
            ci.valid_resamples > 300 && ci.valid_resamples < 700,
            "{ci:?}"
        );
        assert_eq!((ci.lo, ci.hi), (1.0, 1.0));
        assert!(
            BootstrapConfig {
                resamples: 0,
                ..cfg
            }
            .validate()
            .is_err()
        );
        assert!(BootstrapConfig { level: 1.0, ..cfg }.validate().is_err());
    }
}
