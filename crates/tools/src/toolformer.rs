//! Toolformer's filtering rule (Schick et al. 2023, "Toolformer: Language Models Can Teach Themselves to Use
//! Tools", §2, <https://arxiv.org/abs/2302.04761>) as pure arithmetic on per-token losses.
//!
//! For a candidate call `c` with result `r` inserted before position `i`, the loss of the following tokens is
//! weighted by `w_t = w̃_t / Σ_s w̃_s` with `w̃_t = max(0, 1 − 0.2·t)` (`t = 0` is the first following token; the
//! sum runs over the tokens there are): `L(z) = Σ_t w_t · (−log p(x_{i+t} | z, x_{<i+t}))`. With
//! `L⁺ = L(call and result)` and `L⁻ = min(L(no call), L(call without result))`, the call is kept when
//! `L⁻ − L⁺ ≥ τ_f`. Computing the per-token losses needs a model; this module only combines them.

use serde::{Deserialize, Serialize};

use crate::error::{Result, ToolError};

/// `w̃_t · 5 = max(0, 5 − t)`: the weights in fifths, exact in floating point.
fn fifths(t: usize) -> f64 {
    5usize.saturating_sub(t) as f64
}

/// The weights `w_t` for `n` following tokens: `max(0, 1 − 0.2·t)` normalised to sum to 1 (empty for `n = 0`).
pub fn toolformer_weights(n: usize) -> Vec<f64> {
    let sum: f64 = (0..n).map(fifths).sum();
    (0..n).map(|t| fifths(t) / sum).collect()
}

/// `Σ_t w_t · nll_t` over the following tokens' negative log-likelihoods (computed as `Σ w̃_t·nll_t / Σ w̃_t` with
/// the weights in fifths, so equal losses give exactly their value).
pub fn weighted_loss(nll: &[f64]) -> f64 {
    let sum: f64 = (0..nll.len()).map(fifths).sum();
    if sum == 0.0 {
        return 0.0;
    }
    nll.iter()
        .enumerate()
        .map(|(t, l)| fifths(t) * l)
        .sum::<f64>()
        / sum
}

/// The per-token negative log-likelihoods of the same following tokens under the three prefixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallLosses {
    /// With the call and its result, `e(c, r)`.
    pub with_result: Vec<f64>,
    /// With no call at all.
    pub without_call: Vec<f64>,
    /// With the call but an empty result, `e(c, ε)`.
    pub without_result: Vec<f64>,
}

/// The filter's numbers for one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FilterDecision {
    /// `L⁺`.
    pub l_plus: f64,
    /// `L⁻ = min(L(no call), L(call without result))`.
    pub l_minus: f64,
    /// `L⁻ − L⁺ ≥ τ_f`.
    pub keep: bool,
}

/// Applies the filter with threshold `tau` to one candidate. The three loss lists must be equally long, not
/// empty, and hold finite non-negative values (they are negative log-likelihoods).
pub fn filter_call(losses: &CallLosses, tau: f64) -> Result<FilterDecision> {
    let n = losses.with_result.len();
    for (name, l) in [
        ("with_result", &losses.with_result),
        ("without_call", &losses.without_call),
        ("without_result", &losses.without_result),
    ] {
        if l.len() != n || n == 0 {
            return Err(ToolError::InvalidInput(format!(
                "toolformer losses: `{name}` has {} token(s); all three lists need the same, non-zero length (with_result has {n})",
                l.len()
            )));
        }
        if let Some((t, v)) = l
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(ToolError::InvalidInput(format!(
                "toolformer losses: `{name}`[{t}] = {v} is not a finite non-negative loss"
            )));
        }
    }
    if !tau.is_finite() {
        return Err(ToolError::InvalidInput(format!(
            "toolformer threshold τ_f = {tau} is not finite"
        )));
    }
    let l_plus = weighted_loss(&losses.with_result);
    let l_minus = weighted_loss(&losses.without_call).min(weighted_loss(&losses.without_result));
    Ok(FilterDecision {
        l_plus,
        l_minus,
        keep: l_minus - l_plus >= tau,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn weights_decay_by_a_fifth_and_are_normalised() {
        // n = 3: w̃ = 1, 0.8, 0.6 (sum 2.4).
        let w = toolformer_weights(3);
        for (got, want) in w.iter().zip([1.0 / 2.4, 0.8 / 2.4, 0.6 / 2.4]) {
            assert!(close(*got, want), "{w:?}");
        }
        // n = 7: w̃ = 1, .8, .6, .4, .2, 0, 0 (sum 3): tokens from t = 5 on do not count.
        let w = toolformer_weights(7);
        assert!(
            close(w[0], 1.0 / 3.0) && close(w[4], 0.2 / 3.0) && w[5] == 0.0 && w[6] == 0.0,
            "{w:?}"
        );
        assert!(close(w.iter().sum::<f64>(), 1.0));
        assert!(toolformer_weights(0).is_empty());
    }

    #[test]
    fn the_filter_keeps_calls_that_lower_the_loss_by_tau() -> Result<()> {
        // L⁺ = (1·1 + 0.8·2 + 0.6·3) / 2.4 = 4.4 / 2.4 = 11/6.
        // L(no call) = (3 + 0.8·3 + 0.6·3) / 2.4 = 7.2 / 2.4 = 3; L(call, no result) = (2 + 1.6 + 2.4) / 2.4 = 2.5.
        // L⁻ = min(3, 2.5) = 2.5; L⁻ − L⁺ = 2.5 − 11/6 = 2/3.
        let losses = CallLosses {
            with_result: vec![1.0, 2.0, 3.0],
            without_call: vec![3.0, 3.0, 3.0],
            without_result: vec![2.0, 2.0, 4.0],
        };
        let d = filter_call(&losses, 0.5)?;
        assert!(
            close(d.l_plus, 11.0 / 6.0) && close(d.l_minus, 2.5),
            "{d:?}"
        );
        assert!(d.keep);
        assert!(!filter_call(&losses, 1.0)?.keep);
        assert!(filter_call(&losses, 2.0 / 3.0 - 1e-9)?.keep);
        // Tokens past t = 4 have weight 0: a huge loss there changes nothing.
        let far = CallLosses {
            with_result: vec![0.0, 0.0, 0.0, 0.0, 0.0, 100.0],
            without_call: vec![1.0; 6],
            without_result: vec![2.0; 6],
        };
        let d = filter_call(&far, 1.0)?;
        assert!(
            close(d.l_plus, 0.0) && close(d.l_minus, 1.0) && d.keep,
            "{d:?}"
        );
        Ok(())
    }

    #[test]
    fn malformed_losses_are_errors_naming_the_list() {
        let ok = vec![1.0, 1.0];
        for (losses, says) in [
            (
                CallLosses {
                    with_result: ok.clone(),
                    without_call: vec![1.0],
                    without_result: ok.clone(),
                },
                "`without_call` has 1 token(s)",
            ),
            (
                CallLosses {
                    with_result: vec![],
                    without_call: vec![],
                    without_result: vec![],
                },
                "non-zero length",
            ),
            (
                CallLosses {
                    with_result: ok.clone(),
                    without_call: ok.clone(),
                    without_result: vec![1.0, f64::NAN],
                },
                "`without_result`[1] = NaN",
            ),
            (
                CallLosses {
                    with_result: vec![-0.5, 1.0],
                    without_call: ok.clone(),
                    without_result: ok.clone(),
                },
                "`with_result`[0] = -0.5",
            ),
        ] {
            let e = filter_call(&losses, 1.0).expect_err(says).to_string();
            assert!(e.contains(says), "{e}");
        }
        let good = CallLosses {
            with_result: ok.clone(),
            without_call: ok.clone(),
            without_result: ok,
        };
        assert!(filter_call(&good, f64::NAN).is_err());
    }
}
