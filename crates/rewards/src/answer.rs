//! Answer extraction and numeric normalisation: `<answer>` tags, GSM8K `#### N` references, the last number in a
//! text, and the exact-rational number comparison the accuracy rewards use.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Opening tag: `<answer>`, any case, whitespace allowed inside the brackets.
static OPEN: LazyLock<Regex> = LazyLock::new(|| compile(r"(?i)<\s*answer\s*>"));
/// Closing tag: `</answer>`, any case, whitespace allowed inside the brackets.
static CLOSE: LazyLock<Regex> = LazyLock::new(|| compile(r"(?i)<\s*/\s*answer\s*>"));
/// A number token for [`last_number`]: optional sign and `$`, an integer part with or without valid thousands
/// commas, optional decimals, exponent, `/denominator` and `%`. Word boundaries are checked by hand.
static NUMBER_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"[-+\x{2212}]?\$?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?(?:/\d+(?:\.\d+)?)?(?:\s?%)?",
    )
});

/// Compiles one of this module's constant patterns.
fn compile(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant pattern compiles")
}

/// The content of the last `<answer>…</answer>` span of `text`, trimmed.
///
/// The tags are matched case-insensitively and may contain whitespace (`< Answer >`); the content may span lines.
/// The answer is what lies between the **last** opening tag and the first closing tag after it, so with two
/// answers the last wins and with nested tags the innermost last one wins. If the last opening tag is never
/// closed (a truncated generation) there is no answer — an earlier closed span is not brought back. An empty
/// span is no answer either.
///
/// ```
/// use temper_rewards::extract_answer;
/// assert_eq!(extract_answer("<think>2+2</think> <answer> 4 </answer>"), Some("4"));
/// assert_eq!(extract_answer("<answer>3</answer> no wait <ANSWER>\n5\n</Answer>"), Some("5"));
/// assert_eq!(extract_answer("<answer>3</answer> no wait <answer>5"), None);
/// ```
pub fn extract_answer(text: &str) -> Option<&str> {
    let open = OPEN.find_iter(text).last()?;
    let rest = &text[open.end()..];
    let close = CLOSE.find(rest)?;
    let answer = rest[..close.start()].trim();
    (!answer.is_empty()).then_some(answer)
}

/// The final answer of a GSM8K solution: the text after the last `####`, on that line, without `$`, thousands
/// commas or a trailing `.`. `None` when there is no `####` or nothing after it.
///
/// ```
/// use temper_rewards::gsm8k_final_answer;
/// assert_eq!(gsm8k_final_answer("48/2 = <<48/2=24>>24\n#### 1,072").as_deref(), Some("1072"));
/// ```
pub fn gsm8k_final_answer(solution: &str) -> Option<String> {
    let at = solution.rfind("####")?;
    let line = solution[at + 4..].lines().next().unwrap_or("");
    let cleaned: String = line.chars().filter(|c| *c != ',' && *c != '$').collect();
    let cleaned = cleaned.trim();
    let cleaned = cleaned.strip_suffix('.').unwrap_or(cleaned).trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// The answer a reference stands for: the GSM8K final answer when it contains `####`, else the trimmed text.
/// `None` when a `####` line is empty or the reference is blank.
pub fn reference_answer(reference: &str) -> Option<String> {
    if reference.contains("####") {
        gsm8k_final_answer(reference)
    } else {
        let t = reference.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
}

/// The last number of `text` that stands on its own, as written (`"$1,000"`, `"-3/4"`, `"1e3"`, `"50%"`).
///
/// Numbers glued to letters or digits (`H2O`, `x2`, `3rd`, `abc123def`) are skipped; a sign glued to a
/// preceding digit (`3-5`) is read as an operator, so `3-5` yields `5`. This is the fallback extractor for
/// completions without `<answer>` tags; it is used only by [`LastNumberAccuracy`](crate::LastNumberAccuracy).
pub fn last_number(text: &str) -> Option<&str> {
    let mut last = None;
    for m in NUMBER_TOKEN.find_iter(text) {
        let mut start = m.start();
        let before = text[..start].chars().next_back();
        if before.is_some_and(is_word_char) {
            match text[start..].chars().next() {
                // A sign right after a word character is an operator: drop it and keep the digits.
                Some(c @ ('-' | '+' | '\u{2212}')) => start += c.len_utf8(),
                // A currency sign separates (`US$5`).
                Some('$') => {}
                _ => continue,
            }
        }
        let after = text[m.end()..].chars().next();
        if after.is_some_and(is_word_char) {
            continue;
        }
        last = Some(&text[start..m.end()]);
    }
    last
}

/// Letters, digits and `_`: characters that glue a number into a word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whitespace-normalised text: trimmed, every run of whitespace collapsed to one space. This is what
/// [`MatchMode::Exact`](crate::MatchMode::Exact) compares.
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A parsed number: an exact rational when it fits in `i128`, else an `f64`; and whether it carried a `%`.
#[derive(Debug, Clone, Copy)]
pub struct Number {
    value: Value,
    percent: bool,
}

/// The magnitude of a [`Number`].
#[derive(Debug, Clone, Copy)]
enum Value {
    /// `num / den`, reduced, `den > 0`.
    Exact { num: i128, den: i128 },
    /// Too large or too precise for `i128`; compared with a relative tolerance of `1e-12`.
    Approx(f64),
}

/// Relative tolerance when at least one side is an `f64` approximation.
const APPROX_RTOL: f64 = 1e-12;

impl Number {
    /// Parses a whole string as a number; `None` if anything but the number is there.
    ///
    /// Accepted: surrounding whitespace, a sign (`-`, `+`, the Unicode minus `−`), a `$` before or after the
    /// sign, thousands commas in valid groups of three (`1,000` but not `1,00`), decimals (`0.5`, `.5`), an
    /// exponent (`1e3`), a fraction of two such numbers (`3/4`, `-1.5/2`), LaTeX `\frac{3}{4}` (also `\dfrac`,
    /// `\tfrac`), one trailing `.` and a trailing `%`.
    pub fn parse(text: &str) -> Option<Number> {
        let mut s = text.trim().replace(['\u{2212}', '\u{FF0D}'], "-");
        if let Some(stripped) = s.strip_suffix('.') {
            s = stripped.trim_end().to_string();
        }
        let mut percent = false;
        if let Some(stripped) = s.strip_suffix('%') {
            percent = true;
            s = stripped.trim_end().to_string();
        }
        let mut negative = false;
        let mut rest = s.as_str();
        let mut signed = false;
        let mut dollar = false;
        loop {
            if !signed && let Some(r) = rest.strip_prefix(['-', '+']) {
                negative = rest.starts_with('-');
                signed = true;
                rest = r;
            } else if !dollar && let Some(r) = rest.strip_prefix('$') {
                dollar = true;
                rest = r;
            } else {
                break;
            }
        }
        let value = parse_fraction(rest)?;
        let value = if negative { value.neg() } else { value };
        Some(Number { value, percent })
    }

    /// The value as `f64` (a percent is *not* divided by 100).
    pub fn to_f64(&self) -> f64 {
        self.value.to_f64()
    }

    /// Whether the number was written with `%`.
    pub fn is_percent(&self) -> bool {
        self.percent
    }

    /// Numeric equivalence: both percent or both not, and the same value — exactly for rationals, within a
    /// relative `1e-12` when one side did not fit in `i128`.
    pub fn equivalent(&self, other: &Number) -> bool {
        if self.percent != other.percent {
            return false;
        }
        match (self.value, other.value) {
            (Value::Exact { num: a, den: b }, Value::Exact { num: c, den: d }) => a == c && b == d,
            (x, y) => {
                let (x, y) = (x.to_f64(), y.to_f64());
                (x - y).abs() <= APPROX_RTOL * x.abs().max(y.abs())
            }
        }
    }
}

/// Canonical text: an integer, a terminating decimal (`0.75`), else a reduced fraction (`1/3`); `%` kept.
/// Numerically equivalent numbers print the same, so this is a good key for voting.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Value::Exact { num, den } => match terminating_decimal(num, den) {
                Some(text) => f.write_str(&text)?,
                None => write!(f, "{num}/{den}")?,
            },
            Value::Approx(x) => write!(f, "{x:e}")?,
        }
        if self.percent {
            f.write_str("%")?;
        }
        Ok(())
    }
}

/// Parses `a/b`, `\frac{a}{b}` or a plain decimal (no sign on the denominator).
fn parse_fraction(s: &str) -> Option<Value> {
    for prefix in ["\\frac", "\\dfrac", "\\tfrac"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let rest = rest.trim_start().strip_prefix('{')?;
            let (num, rest) = rest.split_once('}')?;
            let rest = rest.trim_start().strip_prefix('{')?;
            let den = rest.strip_suffix('}')?;
            return parse_decimal(num.trim())?.div(parse_decimal(den.trim())?);
        }
    }
    match s.split_once('/') {
        Some((num, den)) => parse_decimal(num.trim())?.div(parse_decimal(den.trim())?),
        None => parse_decimal(s),
    }
}

/// Parses an unsigned decimal: `123`, `1,234.5`, `.5`, `2.`, `1e3`, `2.5E-2`.
fn parse_decimal(s: &str) -> Option<Value> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => {
            let e = &s[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&s[..i], e.parse::<i32>().ok()?)
        }
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_digits = if int_part.contains(',') {
        let mut groups = int_part.split(',');
        let first = groups.next()?;
        let ok_first = (1..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_digit());
        let ok_rest = groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
        if !(ok_first && ok_rest) {
            return None;
        }
        int_part.replace(',', "")
    } else {
        if !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        int_part.to_string()
    };
    let digits = format!("{int_digits}{frac_part}");
    let exact = (|| {
        let mut num: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut den: i128 = 1;
        let scale = exponent.checked_sub(i32::try_from(frac_part.len()).ok()?)?;
        let pow = 10i128.checked_pow(scale.unsigned_abs())?;
        if scale >= 0 {
            num = num.checked_mul(pow)?;
        } else {
            den = pow;
        }
        Some(Value::exact(num, den))
    })();
    match exact {
        Some(v) => Some(v),
        None => {
            // Too many digits or too large an exponent for i128: read it as f64 (`{digits}e{scale}`).
            let scale = i64::from(exponent) - frac_part.len() as i64;
            let x: f64 = format!("{digits}e{scale}").parse().ok()?;
            x.is_finite().then_some(Value::Approx(x))
        }
    }
}

impl Value {
    /// A reduced rational with a positive denominator (`den != 0`).
    fn exact(num: i128, den: i128) -> Value {
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1);
        // g divides both, and both fit in i128, so the quotients do too.
        let (mut num, mut den) = (num / g as i128, den / g as i128);
        if den < 0 {
            num = -num;
            den = -den;
        }
        Value::Exact { num, den }
    }

    fn to_f64(self) -> f64 {
        match self {
            Value::Exact { num, den } => num as f64 / den as f64,
            Value::Approx(x) => x,
        }
    }

    fn neg(self) -> Value {
        match self {
            Value::Exact { num, den } => Value::Exact { num: -num, den },
            Value::Approx(x) => Value::Approx(-x),
        }
    }

    /// `self / other`; `None` when dividing by zero.
    fn div(self, other: Value) -> Option<Value> {
        match (self, other) {
            (_, Value::Exact { num: 0, .. }) => None,
            (Value::Exact { num: a, den: b }, Value::Exact { num: c, den: d }) => {
                match (a.checked_mul(d), b.checked_mul(c)) {
                    (Some(n), Some(m)) => Some(Value::exact(n, m)),
                    _ => Some(Value::Approx(self.to_f64() / other.to_f64())),
                }
            }
            (x, y) => {
                let q = x.to_f64() / y.to_f64();
                (q.is_finite() && y.to_f64() != 0.0).then_some(Value::Approx(q))
            }
        }
    }
}

/// Greatest common divisor.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num/den` as a finite decimal string when `den` has only the prime factors 2 and 5.
fn terminating_decimal(num: i128, den: i128) -> Option<String> {
    if den == 1 {
        return Some(num.to_string());
    }
    // Smallest k with den | 10^k.
    let mut pow: i128 = 1;
    for k in 1..=38u32 {
        pow = pow.checked_mul(10)?;
        if pow % den == 0 {
            let scaled = num.checked_mul(pow / den)?;
            let digits = scaled.unsigned_abs().to_string();
            let k = k as usize;
            let digits = format!("{digits:0>width$}", width = k + 1);
            let (int, frac) = digits.split_at(digits.len() - k);
            let frac = frac.trim_end_matches('0');
            let sign = if scaled < 0 { "-" } else { "" };
            return Some(if frac.is_empty() {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            });
        }
    }
    None
}

/// Parses `text` with [`Number::parse`].
pub fn parse_number(text: &str) -> Option<Number> {
    Number::parse(text)
}

/// Whether two answers are the same number ([`Number::equivalent`]); `false` if either is not a number.
pub fn numbers_equivalent(a: &str, b: &str) -> bool {
    match (Number::parse(a), Number::parse(b)) {
        (Some(x), Some(y)) => x.equivalent(&y),
        _ => false,
    }
}

/// A voting key for an answer: the canonical number ([`Number`]'s `Display`) when it parses, else the
/// whitespace-normalised text. `"1,000"`, `"1000.0"` and `"1e3"` all give `"1000"`.
pub fn canonical_answer(answer: &str) -> String {
    match Number::parse(answer) {
        Some(n) => n.to_string(),
        None => normalize_text(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_extract(input: &str, expected: Option<&str>) {
        assert_eq!(extract_answer(input), expected, "extract_answer({input:?})");
    }

    #[test]
    fn answer_tags() {
        let cases: &[(&str, Option<&str>)] = &[
            ("<answer>42</answer>", Some("42")),
            ("<think>6*7</think>\n<answer>\n  42\n</answer>", Some("42")),
            ("<ANSWER>42</Answer>", Some("42")),
            ("< answer >42</ answer >", Some("42")),
            ("<answer>1</answer> then <answer>2</answer>", Some("2")),
            ("<answer>a<answer>5</answer></answer>", Some("5")),
            ("<answer>3</answer> no wait <answer>5", None),
            ("<answer>42", None),
            ("42</answer>", None),
            ("no tags at all: 42", None),
            ("<answer>   </answer>", None),
            (
                "<answer>multi\nline answer</answer>",
                Some("multi\nline answer"),
            ),
            ("<answer>−7</answer>", Some("−7")),
            ("<answr>4</answr>", None),
            ("<answer>x</answer>\n", Some("x")),
        ];
        for (input, expected) in cases {
            check_extract(input, *expected);
        }
    }

    #[test]
    fn gsm8k_references() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Natalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
                Some("72"),
            ),
            ("#### 1,000", Some("1000")),
            ("#### $18", Some("18")),
            ("#### 5.", Some("5")),
            ("#### -3", Some("-3")),
            ("#### 0.5", Some("0.5")),
            ("a #### 1\nb #### 2", Some("2")),
            ("####   ", None),
            ("no marker 12", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                gsm8k_final_answer(input).as_deref(),
                *expected,
                "gsm8k_final_answer({input:?})"
            );
        }
    }

    #[test]
    fn numeric_equivalence() {
        // (a, b, equivalent)
        let cases: &[(&str, &str, bool)] = &[
            ("1,000", "1000", true),
            ("1000", "1000.0", true),
            ("1e3", "1000", true),
            ("1E+3", "1,000.00", true),
            ("3/4", "0.75", true),
            ("\\frac{3}{4}", ".75", true),
            ("-3/4", "-0.75", true),
            ("6/8", "3/4", true),
            ("1/3", "0.333333", false),
            ("50%", "50%", true),
            ("50%", "50", false),
            ("50%", "0.5", false),
            ("−5", "-5", true),
            ("-5", "5", false),
            ("+5", "5", true),
            ("$18", "18", true),
            ("-$18", "-18", true),
            ("$-18", "-18", true),
            ("18.", "18", true),
            ("1,00", "100", false),
            ("12,345,678", "12345678", true),
            ("0.1", "1/10", true),
            ("2.5e-2", "0.025", true),
            ("1/0", "1", false),
            ("abc", "abc", false),
            ("5 apples", "5", false),
            ("", "0", false),
            ("100000000000000000000000000000000000000000", "1e41", true),
            ("0", "-0", true),
            ("007", "7", true),
            ("1e-50", "0", false),
            ("1e-50", "0.1e-49", true),
            ("3 / 4", "0.75", true),
            ("1.5.3", "1.5", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                numbers_equivalent(a, b),
                *want,
                "numbers_equivalent({a:?}, {b:?})"
            );
            assert_eq!(
                numbers_equivalent(b, a),
                *want,
                "numbers_equivalent({b:?}, {a:?})"
            );
        }
    }

    #[test]
    fn last_numbers() {
        let cases: &[(&str, Option<&str>)] = &[
            ("The answer is 42.", Some("42")),
            ("So 3 + 4 = 7", Some("7")),
            ("It costs $1,000 in total", Some("$1,000")),
            ("H2O has 3 atoms, H2O", Some("3")),
            ("abc123def", None),
            ("the 3rd one", None),
            ("x = -5", Some("-5")),
            ("3-5", Some("5")),
            ("ratio 3/4", Some("3/4")),
            ("growth of 50%", Some("50%")),
            ("about 1e3 items", Some("1e3")),
            ("list 1,2,3", Some("3")),
            ("temperature −4 degrees", Some("−4")),
            ("no numbers", None),
            ("2.5 then 10", Some("10")),
            ("costs .5 dollars", Some(".5")),
            ("US$5 each", Some("$5")),
            ("version 1.2.3", Some("1.2")),
            ("x_1 and y_2", None),
        ];
        for (input, expected) in cases {
            assert_eq!(last_number(input), *expected, "last_number({input:?})");
        }
    }

    #[test]
    fn canonical_forms() {
        let cases: &[(&str, &str)] = &[
            ("1,000", "1000"),
            ("1000.0", "1000"),
            ("1e3", "1000"),
            ("3/4", "0.75"),
            ("0.750", "0.75"),
            ("1/3", "1/3"),
            ("-2/6", "-1/3"),
            ("-0.05", "-0.05"),
            ("50 %", "50%"),
            ("  Paris   France ", "Paris France"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                canonical_answer(input),
                *expected,
                "canonical_answer({input:?})"
            );
        }
    }

    #[test]
    fn text_normalisation() {
        assert_eq!(normalize_text("  a \n\t b  "), "a b");
        assert_eq!(reference_answer("  Paris ").as_deref(), Some("Paris"));
        assert_eq!(reference_answer("steps\n#### 12").as_deref(), Some("12"));
        assert_eq!(reference_answer("#### "), None);
    }
}
