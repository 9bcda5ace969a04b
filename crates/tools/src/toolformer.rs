//! Toolformer's filtering rule (Schick et al. 2023, "Toolformer: Language Models Can Teach Themselves to Use
//! Tools", §2, <https://arxiv.org/abs/2302.04761>) as pure arithmetic on per-token losses.
//!
//! For a candidate call `c` with result `r` inserted before position `i`, the loss of the following tokens is
//! weighted by `w_t = w̃_t / Σ_s w̃_s` with `w̃_t = max(0, 1 − 0.2·t)` (`t = 0` is the first following token; the
//! sum runs over the tokens there are): `L(z) = Σ_t w_t · (−log p(x_{i+t} | z, x_{<i+t}))`. With
//! `L⁺ = L(call and result)` and `L⁻ = min(L(no call), L(call without result))`, the call is kept when
//! `L⁻ − L⁺ ≥ τ_f`. Computing the per-token losses needs a model; this module only combines them.
//!
//! The text side needs no model either: calls are written as the paper does in practice, `[` `]` and `->` for
//! `<API>`, `</API>` and `→` ([`render_call`]: `[Calculator(400 / 1400) -> 0.29]`); [`read_call`] reads the call a
//! model generated after a `[`, [`run_calculator`] answers a `Calculator` call (exact, rounded to two decimals as
//! in the paper), [`prefixes`] builds the three prefixes whose losses the filter compares, and [`augment`] inserts
//! the kept calls into the text that becomes an SFT example (`{"text": …}`, which `temper sft` reads).
//! [`calculator_prompt`] is the paper's few-shot prompt `P(x)` for the calculator; [`strip_gsm8k_annotations`] and
//! [`gsm8k_with_calls`] turn GSM8K's `<<48/2=24>>` annotations into a plain corpus or into held-out text with calls.

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

/// A call as Toolformer writes it: `[Name(input)]` without a result, `[Name(input) -> result]` with one (an empty
/// result, `e(c, ε)`, is `[Name(input) -> ]`).
pub fn render_call(name: &str, input: &str, result: Option<&str>) -> String {
    match result {
        None => format!("[{name}({input})]"),
        Some(r) => format!("[{name}({input}) -> {r}]"),
    }
}

/// Reads the call a model generated after an opening `[`: `Name(input)` up to the `)` that closes it (nested
/// parentheses allowed), followed by `]` or `->`. `None` when the text is not such a call.
pub fn read_call(generated: &str) -> Option<(String, String)> {
    let open = generated.find('(')?;
    let name = generated[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in generated[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let end = open + i;
                    let rest = generated[end + 1..].trim_start();
                    return (rest.starts_with(']') || rest.starts_with("->")).then(|| {
                        (
                            name.to_string(),
                            generated[open + 1..end].trim().to_string(),
                        )
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// The result of a `Calculator(expression)` call: the exact value rounded to two decimals, as the paper's
/// calculator returns it.
pub fn run_calculator(input: &str) -> Result<String> {
    Ok(crate::builtins::calculator::decimal(
        &crate::builtins::calculator::evaluate(input)?,
        2,
    ))
}

/// The three prefixes of the filter for a call inserted before byte `at` of `text`, and the continuation whose
/// per-token losses are compared under each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    /// `x[..at] + e(c, r)`, for `L⁺`.
    pub with_result: String,
    /// `x[..at]`, no call.
    pub without_call: String,
    /// `x[..at] + e(c, ε)`, the call with an empty result.
    pub without_result: String,
    /// `x[at..]`, the tokens whose losses are weighted.
    pub continuation: String,
}

fn boundary(text: &str, at: usize) -> Result<()> {
    if text.is_char_boundary(at) {
        Ok(())
    } else {
        Err(ToolError::InvalidInput(format!(
            "position {at} is not a character boundary of a text of {} bytes",
            text.len()
        )))
    }
}

/// The [`Prefixes`] for the call `name(input)` with `result` before byte `at` of `text`.
pub fn prefixes(text: &str, at: usize, name: &str, input: &str, result: &str) -> Result<Prefixes> {
    boundary(text, at)?;
    let (head, tail) = text.split_at(at);
    Ok(Prefixes {
        with_result: format!("{head}{} ", render_call(name, input, Some(result))),
        without_call: head.to_string(),
        without_result: format!("{head}{} ", render_call(name, input, Some(""))),
        continuation: tail.to_string(),
    })
}

/// A kept call: where it goes and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptCall {
    /// Byte offset in the original text.
    pub at: usize,
    /// The tool's name.
    pub name: String,
    /// Its input.
    pub input: String,
    /// Its result.
    pub result: String,
}

/// `text` with the kept calls (with their results, each followed by a space) inserted at their offsets; two calls
/// at one offset keep their order.
pub fn augment(text: &str, calls: &[KeptCall]) -> Result<String> {
    let mut sorted: Vec<&KeptCall> = calls.iter().collect();
    sorted.sort_by_key(|c| c.at);
    let mut out = String::with_capacity(text.len() + 32 * calls.len());
    let mut pos = 0;
    for c in sorted {
        if c.at > text.len() {
            return Err(ToolError::InvalidInput(format!(
                "call `{}` at {} is past the end of a text of {} bytes",
                c.name,
                c.at,
                text.len()
            )));
        }
        boundary(text, c.at)?;
        out.push_str(&text[pos..c.at]);
        out.push_str(&render_call(&c.name, &c.input, Some(&c.result)));
        out.push(' ');
        pos = c.at;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// The few-shot prompt `P(x)` of the paper's calculator (Appendix A.1), with its instruction and examples (the
/// examples use expressions [`run_calculator`] reads: no thousands separators or percent signs). The model is asked
/// to copy `x` with calls inserted, so the probability of a call's opening `[` after `P(x)` and a prefix of `x` is
/// the paper's `p_i`.
pub const CALCULATOR_PROMPT: &str = "Your task is to add calls to a Calculator API to a piece of text. The calls should help you get information required to complete the text. You can call the API by writing \"[Calculator(expression)]\" where \"expression\" is the expression to be computed. Here are some examples of API calls:

Input: The number in the next term is 18 + 12 x 3 = 54.
Output: The number in the next term is 18 + 12 x 3 = [Calculator(18 + 12 * 3)] 54.

Input: A total of 252 qualifying matches were played, and 723 goals were scored (an average of 2.87 per match). This is twenty goals more than the 703 goals last year.
Output: A total of 252 qualifying matches were played, and 723 goals were scored (an average of [Calculator(723 / 252)] 2.87 per match). This is twenty goals more than the [Calculator(723 - 20)] 703 goals last year.

Input: I went to Paris in 1994 and stayed there until 2011, so in total, it was 17 years.
Output: I went to Paris in 1994 and stayed there until 2011, so in total, it was [Calculator(2011 - 1994)] 17 years.

Input: From this, we have 4 * 30 minutes = 120 minutes.
Output: From this, we have 4 * 30 minutes = [Calculator(4 * 30)] 120 minutes.

";

/// `P(x)` up to where the model starts copying `x`: [`CALCULATOR_PROMPT`], `Input: x`, and `Output: ` (the text
/// `x` itself follows, tokenised on its own, so its tokens are the same as without the prompt).
pub fn calculator_prompt(x: &str) -> String {
    format!("{CALCULATOR_PROMPT}Input: {x}\nOutput: ")
}

/// GSM8K's calculator annotations `<<48/2=24>>` in a solution: `(byte range of the annotation, expression,
/// result)`. An annotation without `=` or without its closing `>>` is an error naming its byte offset.
fn gsm8k_annotations(solution: &str) -> Result<Vec<(std::ops::Range<usize>, &str, &str)>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = solution[from..].find("<<").map(|o| from + o) {
        let close = solution[open..]
            .find(">>")
            .map(|c| open + c)
            .ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "GSM8K annotation at byte {open} has no closing `>>`"
                ))
            })?;
        let inner = &solution[open + 2..close];
        let (expr, result) = inner.rsplit_once('=').ok_or_else(|| {
            ToolError::InvalidInput(format!(
                "GSM8K annotation `<<{inner}>>` at byte {open} has no `=`"
            ))
        })?;
        out.push((open..close + 2, expr.trim(), result.trim()));
        from = close + 2;
    }
    Ok(out)
}

/// A GSM8K solution with its `<<…>>` annotations removed: the plain text Toolformer annotates itself.
pub fn strip_gsm8k_annotations(solution: &str) -> Result<String> {
    let mut out = String::with_capacity(solution.len());
    let mut pos = 0;
    for (range, _, _) in gsm8k_annotations(solution)? {
        out.push_str(&solution[pos..range.start]);
        pos = range.end;
    }
    out.push_str(&solution[pos..]);
    Ok(out)
}

/// A GSM8K solution with each annotation `<<48/2=24>>` written as a Toolformer call before the number it
/// computes: `48/2=[Calculator(48/2) -> 24] 24` (the same text [`augment`] writes for a kept call there).
pub fn gsm8k_with_calls(solution: &str) -> Result<String> {
    let mut out = String::with_capacity(solution.len() + 16);
    let mut pos = 0;
    for (range, expr, result) in gsm8k_annotations(solution)? {
        out.push_str(&solution[pos..range.start]);
        out.push_str(&render_call("Calculator", expr, Some(result)));
        out.push(' ');
        pos = range.end;
    }
    out.push_str(&solution[pos..]);
    Ok(out)
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
    fn calls_are_written_read_executed_and_inserted_as_in_the_paper() -> Result<()> {
        assert_eq!(
            render_call("Calculator", "400 / 1400", Some("0.29")),
            "[Calculator(400 / 1400) -> 0.29]"
        );
        assert_eq!(render_call("Calculator", "1+1", None), "[Calculator(1+1)]");
        assert_eq!(run_calculator("400 / 1400")?, "0.29");
        assert_eq!(run_calculator("(2 + 3) * 4")?, "20");
        assert!(run_calculator("1/0").is_err());
        assert_eq!(
            read_call("Calculator((2+3)*4)] of them"),
            Some(("Calculator".into(), "(2+3)*4".into()))
        );
        assert_eq!(
            read_call("Calculator(5) -> 5]"),
            Some(("Calculator".into(), "5".into()))
        );
        for bad in [
            "Calculator(5",
            "(5)]",
            "Calc ulator(5)]",
            "Calculator(5) and",
            "x) y(]",
        ] {
            assert_eq!(read_call(bad), None, "{bad}");
        }
        let text = "Out of 1400 participants, 400 passed the test.";
        let at = text
            .find("400 passed")
            .ok_or(ToolError::InvalidInput("fixture".into()))?;
        let p = prefixes(text, at, "Calculator", "400 / 1400", "0.29")?;
        assert_eq!(
            p.with_result,
            "Out of 1400 participants, [Calculator(400 / 1400) -> 0.29] "
        );
        assert_eq!(
            p.without_result,
            "Out of 1400 participants, [Calculator(400 / 1400) -> ] "
        );
        assert_eq!(
            (p.without_call.as_str(), p.continuation.as_str()),
            ("Out of 1400 participants, ", "400 passed the test.")
        );
        let kept = [
            KeptCall {
                at: text.len(),
                name: "Calculator".into(),
                input: "400/1400".into(),
                result: "0.29".into(),
            },
            KeptCall {
                at,
                name: "Calculator".into(),
                input: "1400-400".into(),
                result: "1000".into(),
            },
        ];
        assert_eq!(
            augment(text, &kept)?,
            "Out of 1400 participants, [Calculator(1400-400) -> 1000] 400 passed the test.[Calculator(400/1400) -> 0.29] "
        );
        assert!(
            augment(
                text,
                &[KeptCall {
                    at: 999,
                    ..kept[0].clone()
                }]
            )
            .is_err()
        );
        assert!(
            prefixes("é", 1, "C", "1", "1")
                .expect_err("mid-char")
                .to_string()
                .contains("not a character boundary")
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

    #[test]
    fn gsm8k_annotations_are_stripped_or_written_as_calls() -> Result<()> {
        let solution = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18";
        assert_eq!(
            strip_gsm8k_annotations(solution)?,
            "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18.\n#### 18"
        );
        assert_eq!(
            gsm8k_with_calls(solution)?,
            "Janet sells 16 - 3 - 4 = [Calculator(16-3-4) -> 9] 9 duck eggs a day.\nShe makes 9 * 2 = $[Calculator(9*2) -> 18] 18.\n#### 18"
        );
        assert_eq!(strip_gsm8k_annotations("no calls")?, "no calls");
        for (bad, says) in [
            ("a <<1+1=2 b", "byte 2 has no closing"),
            ("<<1+1>>", "has no `=`"),
        ] {
            let e = strip_gsm8k_annotations(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{e}");
        }
        let p = calculator_prompt("x = 2");
        assert!(p.starts_with(CALCULATOR_PROMPT) && p.ends_with("Input: x = 2\nOutput: "));
        // Every example call in the prompt is one the calculator answers.
        for line in CALCULATOR_PROMPT
            .lines()
            .filter(|l| l.starts_with("Output:"))
        {
            for part in line.split('[').skip(1) {
                let (name, input) = read_call(part).ok_or(ToolError::InvalidInput(part.into()))?;
                assert_eq!(name, "Calculator");
                run_calculator(&input)?;
            }
        }
        Ok(())
    }
}
