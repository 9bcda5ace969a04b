//! [`RewardSpec`]: the serde config of one weighted reward (`[[reward]] kind = "answer_accuracy" ...`), and
//! [`build_weighted_sum`] which turns a list of them into a [`WeightedSum`].

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::reward::{Reward, WeightedSum};
use crate::rules::{
    AnswerAccuracy, FormatReward, LastNumberAccuracy, LengthPenalty, LengthUnit, MatchMode,
};

/// Default weight of a reward: 1.
fn one() -> f64 {
    1.0
}

/// Default for `dot_all`: `.` matches newlines, as the seed's format pattern expects.
fn yes() -> bool {
    true
}

/// One reward of a config, tagged by `kind`, with its weight.
///
/// ```toml
/// [[reward]]
/// kind = "answer_accuracy"
/// weight = 1.0
/// mode = "numeric"
///
/// [[reward]]
/// kind = "format"
/// weight = 0.2
/// regex = '^<think>.*?</think>\s*<answer>.*?</answer>$'
///
/// [[reward]]
/// kind = "overlong_penalty"
/// max_len = 1024
/// cache_len = 256
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewardSpec {
    /// [`AnswerAccuracy`]: 1 when the `<answer>` tag matches the reference.
    AnswerAccuracy {
        /// Weight in the sum (default 1).
        #[serde(default = "one")]
        weight: f64,
        /// `numeric` (default) or `exact`.
        #[serde(default)]
        mode: MatchMode,
    },
    /// [`LastNumberAccuracy`]: 1 when the last number of the completion equals the reference.
    LastNumberAccuracy {
        /// Weight in the sum (default 1).
        #[serde(default = "one")]
        weight: f64,
    },
    /// [`FormatReward`]: 1 when the whole completion matches `regex`.
    Format {
        /// Weight in the sum (default 1).
        #[serde(default = "one")]
        weight: f64,
        /// The pattern, matched against the whole completion.
        regex: String,
        /// Whether `.` matches newlines (default true).
        #[serde(default = "yes")]
        dot_all: bool,
    },
    /// [`LengthPenalty::Linear`]: `-min(cap, per_unit · max(0, L - target))`.
    LengthPenalty {
        /// Weight in the sum (default 1).
        #[serde(default = "one")]
        weight: f64,
        /// `chars` (default) or `words`.
        #[serde(default)]
        unit: LengthUnit,
        /// Free length.
        target: usize,
        /// Penalty per unit past `target`.
        per_unit: f64,
        /// Largest penalty.
        cap: f64,
    },
    /// [`LengthPenalty::Overlong`], DAPO's soft overlong penalty (<https://arxiv.org/abs/2503.14476>).
    OverlongPenalty {
        /// Weight in the sum (default 1).
        #[serde(default = "one")]
        weight: f64,
        /// `chars` (default) or `words`.
        #[serde(default)]
        unit: LengthUnit,
        /// `L_max`.
        max_len: usize,
        /// `L_cache`.
        cache_len: usize,
    },
}

impl RewardSpec {
    /// The weight of this reward in a sum.
    pub fn weight(&self) -> f64 {
        match *self {
            RewardSpec::AnswerAccuracy { weight, .. }
            | RewardSpec::LastNumberAccuracy { weight }
            | RewardSpec::Format { weight, .. }
            | RewardSpec::LengthPenalty { weight, .. }
            | RewardSpec::OverlongPenalty { weight, .. } => weight,
        }
    }

    /// Builds the (unweighted) reward; `field_prefix` goes before field names in errors (e.g. `reward[1].`).
    pub fn build(&self, field_prefix: &str) -> Result<Box<dyn Reward>> {
        let weight = self.weight();
        if !weight.is_finite() {
            return Err(crate::RewardError::InvalidConfig {
                field: format!("{field_prefix}weight"),
                message: format!("must be finite, got {weight}"),
            });
        }
        Ok(match self {
            RewardSpec::AnswerAccuracy { mode, .. } => Box::new(AnswerAccuracy::new(*mode)),
            RewardSpec::LastNumberAccuracy { .. } => Box::new(LastNumberAccuracy),
            RewardSpec::Format { regex, dot_all, .. } => Box::new(FormatReward::with_options(
                regex,
                *dot_all,
                &format!("{field_prefix}regex"),
            )?),
            RewardSpec::LengthPenalty {
                unit,
                target,
                per_unit,
                cap,
                ..
            } => {
                let p = LengthPenalty::Linear {
                    unit: *unit,
                    target: *target,
                    per_unit: *per_unit,
                    cap: *cap,
                };
                p.validate(field_prefix)?;
                Box::new(p)
            }
            RewardSpec::OverlongPenalty {
                unit,
                max_len,
                cache_len,
                ..
            } => {
                let p = LengthPenalty::Overlong {
                    unit: *unit,
                    max_len: *max_len,
                    cache_len: *cache_len,
                };
                p.validate(field_prefix)?;
                Box::new(p)
            }
        })
    }
}

/// Builds the weighted sum of `specs`; errors name the field as `reward[i].field`.
pub fn build_weighted_sum(specs: &[RewardSpec]) -> Result<WeightedSum> {
    let parts = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Ok((spec.weight(), spec.build(&format!("reward[{i}]."))?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(WeightedSum::new(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RewardInput;

    #[test]
    fn specs_from_json() -> Result<()> {
        // (json, expected spec)
        let cases: Vec<(&str, RewardSpec)> = vec![
            (
                r#"{"kind":"answer_accuracy"}"#,
                RewardSpec::AnswerAccuracy {
                    weight: 1.0,
                    mode: MatchMode::Numeric,
                },
            ),
            (
                r#"{"kind":"answer_accuracy","mode":"exact","weight":2}"#,
                RewardSpec::AnswerAccuracy {
                    weight: 2.0,
                    mode: MatchMode::Exact,
                },
            ),
            (
                r#"{"kind":"last_number_accuracy","weight":0.5}"#,
                RewardSpec::LastNumberAccuracy { weight: 0.5 },
            ),
            (
                r#"{"kind":"format","regex":"a.b"}"#,
                RewardSpec::Format {
                    weight: 1.0,
                    regex: "a.b".into(),
                    dot_all: true,
                },
            ),
        ];
        for (json, want) in cases {
            let got: RewardSpec =
                serde_json::from_str(json).map_err(|e| crate::RewardError::InvalidConfig {
                    field: json.to_string(),
                    message: e.to_string(),
                })?;
            assert_eq!(got, want, "{json}");
            let back: RewardSpec = serde_json::to_string(&got)
                .and_then(|s| serde_json::from_str(&s))
                .map_err(|e| crate::RewardError::InvalidConfig {
                    field: json.into(),
                    message: e.to_string(),
                })?;
            assert_eq!(back, want, "round trip of {json}");
        }
        Ok(())
    }

    #[test]
    fn build_and_score() -> Result<()> {
        let specs = vec![
            RewardSpec::AnswerAccuracy {
                weight: 1.0,
                mode: MatchMode::Numeric,
            },
            RewardSpec::Format {
                weight: 0.5,
                regex: crate::THINK_ANSWER_FORMAT.into(),
                dot_all: true,
            },
            RewardSpec::OverlongPenalty {
                weight: 1.0,
                unit: LengthUnit::Chars,
                max_len: 40,
                cache_len: 10,
            },
        ];
        let sum = build_weighted_sum(&specs)?;
        let good = "<think>6*7</think><answer>42</answer>"; // 37 chars: -7/10 overlong
        let batch = [
            RewardInput::new("q", good, "#### 42"),
            RewardInput::new("q", "<answer>41</answer>", "42"),
        ];
        let got = sum.score(&batch)?;
        assert!((got[0] - (1.0 + 0.5 - 0.7)).abs() < 1e-12, "{got:?}");
        assert_eq!(got[1], 0.0);
        Ok(())
    }

    #[test]
    fn build_errors_name_the_field() {
        let specs = vec![
            RewardSpec::LastNumberAccuracy { weight: 1.0 },
            RewardSpec::Format {
                weight: 1.0,
                regex: "(".into(),
                dot_all: true,
            },
        ];
        let err = build_weighted_sum(&specs).expect_err("bad regex");
        assert!(
            err.to_string()
                .starts_with("field `reward[1].regex`: invalid regex \"(\""),
            "{err}"
        );
        let specs = vec![RewardSpec::AnswerAccuracy {
            weight: f64::NAN,
            mode: MatchMode::Exact,
        }];
        let err = build_weighted_sum(&specs).expect_err("NaN weight");
        assert_eq!(
            err.to_string(),
            "field `reward[0].weight`: must be finite, got NaN"
        );
    }
}
