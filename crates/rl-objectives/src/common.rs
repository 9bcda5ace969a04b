//! Shared pieces: the objective output type, reward columns, shape checks and small f64 statistics.

use std::collections::BTreeMap;

use burn::tensor::{Bool, Tensor};

use crate::error::ObjectiveError;

/// Metrics by TRL's names (e.g. `"rewards/chosen"`, `"clip_ratio/low_mean"`), as f64.
pub type Metrics = BTreeMap<String, f64>;

/// What every objective returns: the scalar loss (shape `[1]`, differentiable) and its metrics.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput {
    /// The loss to backpropagate, shape `[1]`.
    pub loss: Tensor<1>,
    /// TRL's logged metrics for this batch.
    pub metrics: Metrics,
}

/// One reward function's scores, one per completion (`NaN` = the function could not score it).
#[derive(Debug, Clone, PartialEq)]
pub struct RewardColumn {
    /// Name used in the `rewards/<name>/mean|std` metrics.
    pub name: String,
    /// One score per completion, in batch order.
    pub values: Vec<f64>,
}

impl RewardColumn {
    /// A named column of scores.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

/// Bessel-corrected (`n - 1`) standard deviation ignoring NaNs, like TRL's `nanstd`; NaN with fewer than 2 values.
pub fn nanstd(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Mean ignoring NaNs (NaN if none).
pub(crate) fn nanmean(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `torch.isclose(x, 0)` with default tolerances (`atol = 1e-8`).
pub(crate) fn is_close_zero(x: f64) -> bool {
    x.abs() <= 1e-8
}

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f32>().map(f64::from).collect()
}

pub(crate) fn bool_vec<const D: usize>(t: Tensor<D, Bool>) -> Vec<bool> {
    t.into_data().iter::<bool>().collect()
}

pub(crate) fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t).first().copied().unwrap_or(f64::NAN)
}

/// `Σ x·mask / max(Σ mask, 1)` over the whole tensor, as f64 (metrics only).
pub(crate) fn global_masked_mean(x: Tensor<2>, mask: Tensor<2>) -> f64 {
    let num = scalar((x * mask.clone()).sum());
    num / scalar(mask.sum()).max(1.0)
}

pub(crate) fn check_shape<const D: usize>(
    op: &'static str,
    input: &'static str,
    t: &Tensor<D>,
    expected: [usize; D],
) -> Result<(), ObjectiveError> {
    let got = t.dims();
    if got != expected {
        return Err(ObjectiveError::Shape {
            op,
            input,
            got: got.to_vec(),
            expected: format!("{expected:?}"),
        });
    }
    Ok(())
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

pub(crate) fn min_max(values: &[f64]) -> (f64, f64) {
    let finite = values.iter().copied().filter(|v| !v.is_nan());
    finite.fold((f64::NAN, f64::NAN), |(lo, hi), v| {
        (
            if lo.is_nan() || v < lo { v } else { lo },
            if hi.is_nan() || v > hi { v } else { hi },
        )
    })
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::{Device, Tensor, TensorData};

    pub(crate) fn t1(v: &[f64], d: &Device) -> Tensor<1> {
        let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), d)
    }

    pub(crate) fn t2(v: &[f64], shape: [usize; 2], d: &Device) -> Tensor<2> {
        let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), d)
    }

    pub(crate) fn close(got: f64, want: f64, rtol: f64) -> bool {
        (got - want).abs() <= rtol * want.abs() + 1e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanstd_is_bessel_corrected_and_skips_nan() {
        assert!((nanstd(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((nanstd(&[1.0, f64::NAN, 3.0]) - 2f64.sqrt()).abs() < 1e-12);
        assert!(nanstd(&[1.0]).is_nan());
        assert_eq!(min_max(&[3.0, f64::NAN, -1.0, 2.0]), (-1.0, 3.0));
        assert!((nanmean(&[1.0, f64::NAN, 3.0]) - 2.0).abs() < 1e-12);
    }
}

#[cfg(test)]
mod serde_tests {
    use crate::{
        DpoConfig, DpoLoss, FDivergence, GrpoConfig, GrpoLoss, PpoConfig, RewardConfig, RlooConfig,
        SftConfig, SftLoss,
    };

    fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_json_gives_trl_defaults() {
        assert_eq!(parse::<DpoConfig>("{}"), Ok(DpoConfig::default()));
        assert_eq!(parse::<GrpoConfig>("{}"), Ok(GrpoConfig::default()));
        assert_eq!(parse::<RlooConfig>("{}"), Ok(RlooConfig::default()));
        assert_eq!(parse::<PpoConfig>("{}"), Ok(PpoConfig::default()));
        assert_eq!(
            parse::<SftConfig>("{}"),
            Ok(SftConfig {
                loss_type: SftLoss::Nll
            })
        );
        assert_eq!(
            parse::<RewardConfig>("{}"),
            Ok(RewardConfig {
                center_rewards_coefficient: None
            })
        );
        let g = GrpoConfig::default();
        assert_eq!(
            (g.epsilon_high(), g.loss_type, g.beta, g.epsilon),
            (0.2, GrpoLoss::Dapo, 0.0, 0.2)
        );
        let d = DpoConfig::default();
        assert_eq!((d.beta, d.losses.len()), (0.1, 1));
    }

    #[test]
    fn variants_carry_their_parameters_and_unknown_fields_are_rejected() {
        let d: Result<DpoConfig, _> = parse(
            r#"{"beta": 0.5, "losses": [{"loss": {"type": "discopop"}}, {"loss": {"type": "exo_pair", "label_smoothing": 0.001}, "weight": 0.2}],
                "f_divergence": {"type": "alpha_divergence", "alpha": 0.3}}"#,
        );
        let d = d.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.losses[0].loss, DpoLoss::DiscoPop { tau: 0.05 });
        assert_eq!(
            d.losses[1].loss,
            DpoLoss::ExoPair {
                label_smoothing: 0.001
            }
        );
        assert_eq!(d.losses[1].weight, 0.2);
        assert_eq!(d.f_divergence, FDivergence::AlphaDivergence { alpha: 0.3 });
        let g: GrpoConfig =
            parse(r#"{"loss_type": {"type": "sapo"}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            g.loss_type,
            GrpoLoss::Sapo {
                temperature_pos: 1.0,
                temperature_neg: 1.05
            }
        );
        let err = parse::<GrpoConfig>(r#"{"epsilon_hi": 0.3}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown field `epsilon_hi`"), "{err}");
        let err = parse::<DpoConfig>(r#"{"losses": [{"loss": {"type": "robust", "tau": 1}}]}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown field"), "{err}");
    }
}
