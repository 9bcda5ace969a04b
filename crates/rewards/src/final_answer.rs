//! The final answer of a real model output, for evaluation: [`extract_final_answer`] reads `<answer>` tags,
//! `\boxed{…}`, GSM8K's `#### N`, "the answer is …" and, as a fallback, the last number, and cleans thousands
//! separators, currency and a trailing period. [`FinalAnswerAccuracy`] is the rule reward built on it.

use std::sync::LazyLock;

use regex::Regex;

use crate::answer::{Number, canonical_answer, extract_answer, last_number, reference_answer};
use crate::error::{Result, RewardError};
use crate::reward::{Reward, RewardInput};

/// "the answer is", "final answer:", "answer =" … followed by the answer on the same line.
static ANSWER_IS: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"(?i)(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*([^\n]+)")
        .expect("constant pattern compiles")
});

/// The final answer of `text`, cleaned (`"1,234"` → `"1234"`, `"$12.50"` → `"12.50"`, `"7."` → `"7"`), or `None`
/// when nothing can be read (which an evaluation counts as wrong).
///
/// Tried in order, the first that yields an answer wins:
/// 1. the last closed `<answer>…</answer>` span ([`extract_answer`]); an unclosed last `<answer>` (a generation
///    cut by the token limit, or a prefill the model never closed) reads a number after it;
/// 2. the last `\boxed{…}` (nested braces allowed);
/// 3. the text after the last `####` on its line;
/// 4. the last "the answer is …" / "final answer: …" / "answer = …" phrase;
///
/// and the content found is reduced to its last number when it holds one (so `<answer>x = 5</answer>` is `5`),
/// else kept as trimmed text (closed tags, `\boxed{}`, `####` only: `<answer>Paris</answer>` is `Paris`, an
/// unclosed `<answer>no idea` is nothing). 5. Failing all of these, the last free-standing number of the text ([`last_number`]).
///
/// ```
/// use temper_rewards::extract_final_answer;
/// assert_eq!(extract_final_answer("She pays 3 * $4 = $12.\n#### 1,234").as_deref(), Some("1234"));
/// assert_eq!(extract_final_answer("So the total is $12.50.").as_deref(), Some("12.50"));
/// assert_eq!(extract_final_answer("I don't know."), None);
/// ```
pub fn extract_final_answer(text: &str) -> Option<String> {
    // (span, whether a non-numeric span counts as an answer)
    let closed = extract_answer(text).map(|a| (a, true));
    let spans = [
        closed.or_else(|| unclosed_tag(text).map(|a| (a, false))),
        boxed(text).map(|a| (a, true)),
        hashes(text).map(|a| (a, true)),
        answer_is(text).map(|a| (a, false)),
    ];
    for (span, text_ok) in spans.into_iter().flatten() {
        if let Some(a) = clean_span(span, text_ok) {
            return Some(a);
        }
    }
    last_number(text).and_then(clean_number)
}

/// The text after an unclosed last `<answer>`, up to the next tag.
fn unclosed_tag(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("<answer>")?;
    let rest = &text[at + "<answer>".len()..];
    // Stop at the next tag the model opened, if any.
    Some(rest.split('<').next().unwrap_or(rest))
}

/// The content of the last `\boxed{…}` with balanced braces.
fn boxed(text: &str) -> Option<&str> {
    let at = text.rfind("\\boxed{")?;
    let start = at + "\\boxed{".len();
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The text after the last `####`, on its line.
fn hashes(text: &str) -> Option<&str> {
    let at = text.rfind("####")?;
    text[at + 4..].lines().next()
}

/// The text after the last "the answer is" phrase, on its line.
fn answer_is(text: &str) -> Option<&str> {
    let caps = ANSWER_IS.captures_iter(text).last()?;
    caps.get(1).map(|m| m.as_str())
}

/// A found span as an answer: the span when it is one number (`\frac{3}{4}`, `$1,000`), else its last number,
/// else (when `text_ok`) its trimmed text without a trailing period (`None` if empty).
fn clean_span(span: &str, text_ok: bool) -> Option<String> {
    let whole = span.trim();
    if Number::parse(whole).is_some() {
        return clean_number(whole);
    }
    if let Some(n) = last_number(span).and_then(clean_number) {
        return Some(n);
    }
    if !text_ok {
        return None;
    }
    let t = span.trim();
    let t = t.strip_suffix('.').unwrap_or(t).trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A number token without currency signs, thousands commas, a trailing period or spaces.
fn clean_number(n: &str) -> Option<String> {
    let cleaned: String = n
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect();
    let cleaned = cleaned.strip_suffix('.').unwrap_or(&cleaned).to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Whether an extracted answer is right: its [`canonical_answer`] equals the reference's (a GSM8K solution's
/// `#### N`, or the bare reference). Numbers compare by value (`12.50` = `12.5`, `1,000` = `1000`).
pub fn answer_matches(answer: &str, reference: &str) -> bool {
    reference_answer(reference).is_some_and(|r| canonical_answer(answer) == canonical_answer(&r))
}

/// 1.0 when [`extract_final_answer`] of the completion [`answer_matches`] the reference, else 0.0 (also when
/// nothing is extracted). The `rule` scorer of `temper eval`; unlike [`AnswerAccuracy`](crate::AnswerAccuracy) it
/// reads free-form outputs (`#### 72`, `\boxed{72}`, `The answer is 72.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FinalAnswerAccuracy;

impl Reward for FinalAnswerAccuracy {
    fn name(&self) -> &str {
        "final_answer_accuracy"
    }
    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        batch
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let reference = item
                    .reference
                    .ok_or_else(|| RewardError::MissingReference {
                        reward: self.name().to_string(),
                        index,
                    })?;
                let hit = extract_final_answer(item.completion)
                    .is_some_and(|a| answer_matches(&a, reference));
                Ok(if hit { 1.0 } else { 0.0 })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_outputs() {
        // Shapes of SmolLM2-135M-Instruct and GSM8K outputs.
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
                Some("72"),
            ),
            ("#### 1,234", Some("1234")),
            ("The total cost is $12.50.", Some("12.50")),
            ("The answer is 7.", Some("7")),
            ("So the answer is: 1,072 apples", Some("1072")),
            (
                "Final Answer: The final answer is $\\boxed{42}$. I hope it is correct.",
                Some("42"),
            ),
            ("\\boxed{\\frac{3}{4}}", Some("\\frac{3}{4}")),
            ("<answer>81</answer>", Some("81")),
            (
                "81</answer>\nQuestion: What is 3 + 4?\nAnswer: <answer>7</answer>",
                Some("7"),
            ),
            ("<answer> 1,015 </answer>", Some("1015")),
            ("<answer>x = 5</answer>", Some("5")),
            ("<answer>1578", Some("1578")),
            ("<answer>Paris</answer>", Some("Paris")),
            ("<answer>no idea", None),
            ("<answer>The answer is 81.", Some("81")),
            ("The answer is unclear.", None),
            ("To find 23 + 58, we add: 23 + 58 = 81", Some("81")),
            ("It costs -5 dollars", Some("-5")),
            (
                "She has 3 apples and 2 pears, 5 fruits in total.",
                Some("5"),
            ),
            ("I'm not sure how to solve this.", None),
            ("", None),
            ("<answer></answer>", None),
        ];
        for (text, want) in cases {
            assert_eq!(extract_final_answer(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn matching_and_the_rule_reward() -> Result<()> {
        assert!(answer_matches("12.50", "12.5"));
        assert!(answer_matches("1234", "Janet pays ... #### 1,234"));
        assert!(!answer_matches("72", "73"));
        assert!(!answer_matches("72", ""));
        let batch = [
            RewardInput::new("q", "48 + 24 = 72.\n#### 72", "72"),
            RewardInput::new("q", "The answer is 70.", "72"),
            RewardInput::new("q", "no idea", "72"),
        ];
        assert_eq!(FinalAnswerAccuracy.score(&batch)?, [1.0, 0.0, 0.0]);
        assert!(
            FinalAnswerAccuracy
                .score(&[RewardInput::unreferenced("q", "1")])
                .is_err()
        );
        Ok(())
    }
}
