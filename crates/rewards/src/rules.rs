//! Rule rewards: answer accuracy (`<answer>` tag, exact or numeric), last-number accuracy, a whole-completion
//! format regex, and length penalties (linear with a cap, and DAPO's overlong soft penalty).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::answer::{Number, extract_answer, last_number, normalize_text, reference_answer};
use crate::error::{Result, RewardError};
use crate::reward::{Reward, RewardInput};

/// How an extracted answer is compared with the reference answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Whitespace-normalised text equality ([`normalize_text`]), case-sensitive.
    Exact,
    /// Numeric equivalence ([`Number::equivalent`]: `1,000` = `1e3`, `3/4` = `0.75`, `%` only against `%`)
    /// when both sides parse as numbers; otherwise falls back to [`MatchMode::Exact`].
    #[default]
    Numeric,
}

impl MatchMode {
    /// Whether `answer` matches `reference` under this mode.
    pub fn matches(self, answer: &str, reference: &str) -> bool {
        if self == MatchMode::Numeric
            && let (Some(a), Some(r)) = (Number::parse(answer), Number::parse(reference))
        {
            return a.equivalent(&r);
        }
        normalize_text(answer) == normalize_text(reference)
    }
}

/// The reference answer of `item`, or the error naming the reward and the item.
fn reference_of(reward: &str, index: usize, item: &RewardInput<'_>) -> Result<String> {
    let reference = item
        .reference
        .ok_or_else(|| RewardError::MissingReference {
            reward: reward.to_string(),
            index,
        })?;
    reference_answer(reference).ok_or_else(|| RewardError::BadReference {
        reward: reward.to_string(),
        index,
        reference: reference.to_string(),
    })
}

/// 1.0 when the last `<answer>…</answer>` span ([`extract_answer`]) matches the reference, else 0.0 (also when
/// there is no answer). The reference may be a GSM8K solution (`… #### 72`) or the bare answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnswerAccuracy {
    /// How answers are compared.
    pub mode: MatchMode,
}

impl AnswerAccuracy {
    /// Accuracy under `mode`.
    pub fn new(mode: MatchMode) -> AnswerAccuracy {
        AnswerAccuracy { mode }
    }
}

impl Reward for AnswerAccuracy {
    fn name(&self) -> &str {
        "answer_accuracy"
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        batch
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let reference = reference_of(self.name(), i, item)?;
                let hit = extract_answer(item.completion)
                    .is_some_and(|a| self.mode.matches(a, &reference));
                Ok(if hit { 1.0 } else { 0.0 })
            })
            .collect()
    }
}

/// 1.0 when the last free-standing number of the completion ([`last_number`]) is numerically equivalent to the
/// reference, else 0.0. The fallback for completions without `<answer>` tags; never mixed into
/// [`AnswerAccuracy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LastNumberAccuracy;

impl Reward for LastNumberAccuracy {
    fn name(&self) -> &str {
        "last_number_accuracy"
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        batch
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let reference = reference_of(self.name(), i, item)?;
                let hit = last_number(item.completion)
                    .is_some_and(|a| MatchMode::Numeric.matches(a, &reference));
                Ok(if hit { 1.0 } else { 0.0 })
            })
            .collect()
    }
}

/// 1.0 when the **whole** completion matches a regex, else 0.0.
///
/// The pattern is anchored at both ends (`\A(?:pattern)\z`), and by default `.` matches newlines (dot-all), so
/// the seed's `^<think>.*?</think>\s*<answer>.*?</answer>$` works as written. Unlike Python's `$`, nothing lets a
/// trailing newline through.
#[derive(Debug, Clone)]
pub struct FormatReward {
    pattern: String,
    regex: Regex,
}

/// The seed's format: a `<think>` block then an `<answer>` block, nothing else.
pub const THINK_ANSWER_FORMAT: &str = r"^<think>.*?</think>\s*<answer>.*?</answer>$";

impl FormatReward {
    /// A dot-all format reward for `pattern`; an invalid pattern is an error naming the field `regex`.
    pub fn new(pattern: &str) -> Result<FormatReward> {
        FormatReward::with_options(pattern, true, "regex")
    }

    /// A format reward with explicit dot-all; `field` names the config field in errors.
    pub fn with_options(pattern: &str, dot_all: bool, field: &str) -> Result<FormatReward> {
        let regex = RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
            .dot_matches_new_line(dot_all)
            .build()
            .map_err(|e| RewardError::InvalidRegex {
                field: field.to_string(),
                pattern: pattern.to_string(),
                message: e.to_string(),
            })?;
        Ok(FormatReward {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl Reward for FormatReward {
    fn name(&self) -> &str {
        "format"
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        Ok(batch
            .iter()
            .map(|x| {
                if self.regex.is_match(x.completion) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect())
    }
}

/// What a length is counted in. Token counts need the tokenizer, so the trainers that have them can wrap
/// [`LengthPenalty::penalty`] in a [`FnReward`](crate::FnReward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Unicode scalar values (`str::chars`).
    #[default]
    Chars,
    /// Whitespace-separated words (`str::split_whitespace`).
    Words,
}

impl LengthUnit {
    /// The length of `text` in this unit.
    pub fn measure(self, text: &str) -> usize {
        match self {
            LengthUnit::Chars => text.chars().count(),
            LengthUnit::Words => text.split_whitespace().count(),
        }
    }
}

/// A length penalty (a score ≤ 0) on the completion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthPenalty {
    /// `-min(cap, per_unit · max(0, L - target))`: free up to `target`, then linear, never below `-cap`.
    Linear {
        /// The unit `L` is counted in.
        unit: LengthUnit,
        /// Free length.
        target: usize,
        /// Penalty per unit past `target` (≥ 0).
        per_unit: f64,
        /// Largest penalty (≥ 0).
        cap: f64,
    },
    /// DAPO's overlong soft punishment (Yu et al. 2025, eq. 13, <https://arxiv.org/abs/2503.14476>):
    /// 0 for `L ≤ max_len - cache_len`, `(max_len - cache_len - L) / cache_len` up to `max_len`, -1 beyond.
    Overlong {
        /// The unit `L` is counted in (DAPO counts tokens).
        unit: LengthUnit,
        /// `L_max`, the generation budget.
        max_len: usize,
        /// `L_cache`, the soft band before `L_max` (`≤ max_len`; 0 makes it a hard step at `max_len`).
        cache_len: usize,
    },
}

impl LengthPenalty {
    /// Checks the parameters; `prefix` is put before field names in errors (e.g. `reward[2].`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let bad = |field: &str, message: String| RewardError::InvalidConfig {
            field: format!("{prefix}{field}"),
            message,
        };
        match *self {
            LengthPenalty::Linear { per_unit, cap, .. } => {
                if !(per_unit.is_finite() && per_unit >= 0.0) {
                    return Err(bad(
                        "per_unit",
                        format!("must be finite and >= 0, got {per_unit}"),
                    ));
                }
                if !(cap.is_finite() && cap >= 0.0) {
                    return Err(bad("cap", format!("must be finite and >= 0, got {cap}")));
                }
            }
            LengthPenalty::Overlong {
                max_len, cache_len, ..
            } => {
                if cache_len > max_len {
                    return Err(bad(
                        "cache_len",
                        format!("must be <= max_len ({max_len}), got {cache_len}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The penalty for a completion of length `len` (already counted in the right unit).
    pub fn penalty(&self, len: usize) -> f64 {
        match *self {
            LengthPenalty::Linear {
                target,
                per_unit,
                cap,
                ..
            } => {
                // `0.0 - x` rather than `-x` so that no penalty is +0.0, not -0.0.
                0.0 - (per_unit * len.saturating_sub(target) as f64).min(cap)
            }
            LengthPenalty::Overlong {
                max_len, cache_len, ..
            } => {
                let free = max_len - cache_len.min(max_len);
                if len <= free {
                    0.0
                } else if len <= max_len {
                    (free as f64 - len as f64) / cache_len as f64
                } else {
                    -1.0
                }
            }
        }
    }

    /// The unit lengths are counted in.
    pub fn unit(&self) -> LengthUnit {
        match *self {
            LengthPenalty::Linear { unit, .. } | LengthPenalty::Overlong { unit, .. } => unit,
        }
    }
}

impl Reward for LengthPenalty {
    fn name(&self) -> &str {
        match self {
            LengthPenalty::Linear { .. } => "length_penalty",
            LengthPenalty::Overlong { .. } => "overlong_penalty",
        }
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        self.validate("")?;
        Ok(batch
            .iter()
            .map(|x| self.penalty(self.unit().measure(x.completion)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_one(reward: &dyn Reward, completion: &str, reference: Option<&str>) -> Result<f64> {
        let item = RewardInput {
            prompt: "p",
            completion,
            reference,
        };
        Ok(reward.score(&[item])?[0])
    }

    #[test]
    fn accuracy_table() -> Result<()> {
        let numeric = AnswerAccuracy::new(MatchMode::Numeric);
        let exact = AnswerAccuracy::new(MatchMode::Exact);
        // (completion, reference, numeric, exact)
        let cases: &[(&str, &str, f64, f64)] = &[
            ("<answer>72</answer>", "Natalia...\n#### 72", 1.0, 1.0),
            ("<answer>72.0</answer>", "#### 72", 1.0, 0.0),
            ("<answer>1,000</answer>", "#### 1,000", 1.0, 0.0),
            ("<answer>$18</answer>", "18", 1.0, 0.0),
            ("<answer>0.75</answer>", "3/4", 1.0, 0.0),
            ("<answer>71</answer>", "#### 72", 0.0, 0.0),
            ("The answer is 72", "#### 72", 0.0, 0.0),
            ("<answer>72", "#### 72", 0.0, 0.0),
            ("<answer>5</answer><answer>72</answer>", "72", 1.0, 1.0),
            ("<answer> Paris </answer>", "Paris", 1.0, 1.0),
            ("<answer>paris</answer>", "Paris", 0.0, 0.0),
            ("<answer>50%</answer>", "50", 0.0, 0.0),
        ];
        for (completion, reference, want_numeric, want_exact) in cases {
            assert_eq!(
                score_one(&numeric, completion, Some(reference))?,
                *want_numeric,
                "numeric {completion:?}"
            );
            assert_eq!(
                score_one(&exact, completion, Some(reference))?,
                *want_exact,
                "exact {completion:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn last_number_accuracy_table() -> Result<()> {
        let cases: &[(&str, &str, f64)] = &[
            ("48 + 24 = 72", "#### 72", 1.0),
            ("So she sold 72 clips.", "72", 1.0),
            ("<answer>72</answer> and 3 more", "72", 0.0),
            ("it is 72x", "72", 0.0),
            ("total: $1,000", "1000", 1.0),
        ];
        for (completion, reference, want) in cases {
            assert_eq!(
                score_one(&LastNumberAccuracy, completion, Some(reference))?,
                *want,
                "{completion:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn missing_or_bad_reference_is_an_error() {
        let err = score_one(&AnswerAccuracy::default(), "<answer>1</answer>", None)
            .expect_err("no reference");
        assert_eq!(
            err.to_string(),
            "reward `answer_accuracy`: batch item 0 has no reference answer"
        );
        let err = score_one(&LastNumberAccuracy, "1", Some("#### ")).expect_err("empty #### line");
        assert!(err.to_string().contains("unusable reference"), "{err}");
    }

    #[test]
    fn format_table() -> Result<()> {
        let seed = FormatReward::new(THINK_ANSWER_FORMAT)?;
        let cases: &[(&str, f64)] = &[
            ("<think>2+2=4</think><answer>4</answer>", 1.0),
            (
                "<think>line one\nline two</think>\n\n<answer>4</answer>",
                1.0,
            ),
            ("<answer>4</answer>", 0.0),
            ("<think>x</think><answer>4</answer> trailing", 0.0),
            ("preamble <think>x</think><answer>4</answer>", 0.0),
            ("<think>x</think><answer>4</answer>\n", 0.0),
            ("<think>x</think>", 0.0),
        ];
        for (completion, want) in cases {
            assert_eq!(score_one(&seed, completion, None)?, *want, "{completion:?}");
        }
        // Without dot-all a multi-line think block does not match; the pattern is matched whole even without ^$.
        let strict =
            FormatReward::with_options(r"<think>.*</think><answer>\d+</answer>", false, "regex")?;
        assert_eq!(
            score_one(&strict, "<think>a\nb</think><answer>4</answer>", None)?,
            0.0
        );
        assert_eq!(
            score_one(&strict, "<think>ab</think><answer>4</answer>", None)?,
            1.0
        );
        assert_eq!(
            score_one(&strict, "<think>ab</think><answer>4</answer>!", None)?,
            0.0
        );
        Ok(())
    }

    #[test]
    fn invalid_regex_names_the_field() {
        let err = FormatReward::with_options("<answer>(.*", true, "reward[1].regex")
            .expect_err("unclosed group");
        let msg = err.to_string();
        assert!(
            msg.starts_with("field `reward[1].regex`: invalid regex \"<answer>(.*\""),
            "{msg}"
        );
    }

    #[test]
    fn linear_length_penalty_table() -> Result<()> {
        let chars = LengthPenalty::Linear {
            unit: LengthUnit::Chars,
            target: 5,
            per_unit: 0.1,
            cap: 0.5,
        };
        let words = LengthPenalty::Linear {
            unit: LengthUnit::Words,
            target: 2,
            per_unit: 0.25,
            cap: 1.0,
        };
        // (reward, completion, expected)
        let cases: &[(&LengthPenalty, &str, f64)] = &[
            (&chars, "", 0.0),
            (&chars, "abcde", 0.0),
            (&chars, "abcdef", -0.1),
            (&chars, "abcdefgh", -0.30000000000000004),
            (&chars, "ééééééé", -0.2),
            (&chars, "abcdefghijklmnop", -0.5),
            (&words, "one two", 0.0),
            (&words, "one  two\nthree", -0.25),
            (&words, "a b c d e f g h", -1.0),
        ];
        for (reward, completion, want) in cases {
            assert_eq!(
                score_one(*reward, completion, None)?,
                *want,
                "{reward:?} on {completion:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn dapo_overlong_penalty_table() {
        // L_max = 20, L_cache = 4: free up to 16, then -1/4 per unit, -1 beyond 20.
        let p = LengthPenalty::Overlong {
            unit: LengthUnit::Chars,
            max_len: 20,
            cache_len: 4,
        };
        let cases: &[(usize, f64)] = &[
            (0, 0.0),
            (16, 0.0),
            (17, -0.25),
            (18, -0.5),
            (19, -0.75),
            (20, -1.0),
            (21, -1.0),
            (100, -1.0),
        ];
        for (len, want) in cases {
            assert_eq!(p.penalty(*len), *want, "L = {len}");
        }
        let step = LengthPenalty::Overlong {
            unit: LengthUnit::Words,
            max_len: 3,
            cache_len: 0,
        };
        assert_eq!([2, 3, 4].map(|l| step.penalty(l)), [0.0, 0.0, -1.0]);
    }

    #[test]
    fn invalid_length_parameters() {
        let p = LengthPenalty::Overlong {
            unit: LengthUnit::Chars,
            max_len: 4,
            cache_len: 8,
        };
        let err = p.validate("reward[0].").expect_err("cache > max");
        assert_eq!(
            err.to_string(),
            "field `reward[0].cache_len`: must be <= max_len (4), got 8"
        );
        let p = LengthPenalty::Linear {
            unit: LengthUnit::Chars,
            target: 1,
            per_unit: -1.0,
            cap: 1.0,
        };
        assert!(score_one(&p, "abc", None).is_err());
    }
}
