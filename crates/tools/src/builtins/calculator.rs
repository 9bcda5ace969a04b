//! The calculator tool: exact rational arithmetic on a parsed expression — `+ - * / ^`, parentheses, unary minus,
//! decimals (`0.1` is exactly 1/10) — with no evaluation of code. Division by zero and non-integer or huge powers
//! are tool errors.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Result, ToolError};
use crate::tool::{FnTool, Tool};

/// Longest expression accepted, in bytes.
const MAX_LEN: usize = 1000;
/// Largest power exponent (keeps results bounded).
const MAX_EXPONENT: u32 = 1000;
/// Deepest nesting of parentheses and unary signs.
const MAX_DEPTH: usize = 100;

/// The calculator's arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculatorArgs {
    /// An arithmetic expression with + - * / ^ (power), parentheses and decimal numbers, e.g. "(1.5 + 2) * 3^2".
    pub expression: String,
}

/// The calculator as a [`Tool`] named `calculator`. Its result is `{"value": "<exact fraction or integer>",
/// "decimal": "<rounded to 12 places>"}`.
pub fn calculator() -> impl Tool + Send + Sync + 'static {
    FnTool::new(
        "calculator",
        "Evaluates an arithmetic expression exactly (+ - * / ^, parentheses, decimals).",
        |a: CalculatorArgs| {
            let v = evaluate(&a.expression).map_err(|e| match e {
                ToolError::Failed { message, .. } => message,
                other => other.to_string(),
            })?;
            Ok(json!({"value": display(&v), "decimal": decimal(&v, 12)}))
        },
    )
}

/// The exact value of `expr`.
pub fn evaluate(expr: &str) -> Result<BigRational> {
    if expr.len() > MAX_LEN {
        return Err(fail(format!("expression longer than {MAX_LEN} bytes")));
    }
    let tokens = lex(expr)?;
    let mut p = Parser { tokens, pos: 0 };
    let v = p.sum(0)?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(fail(format!("unexpected {} at byte {}", t.kind, t.at)));
    }
    Ok(v)
}

/// `n` or `n/d` in lowest terms.
pub fn display(v: &BigRational) -> String {
    if v.is_integer() {
        v.numer().to_string()
    } else {
        format!("{}/{}", v.numer(), v.denom())
    }
}

/// `v` rounded half away from zero to `places` decimals, trailing zeros removed.
pub fn decimal(v: &BigRational, places: u32) -> String {
    let scale = BigInt::from(10u32).pow(places);
    let scaled = (v * BigRational::from_integer(scale.clone()))
        .round()
        .to_integer();
    let neg = scaled.is_negative();
    let digits = scaled.abs().to_string();
    let width = places as usize + 1;
    let digits = if digits.len() < width {
        format!("{}{digits}", "0".repeat(width - digits.len()))
    } else {
        digits
    };
    let (int, frac) = digits.split_at(digits.len() - places as usize);
    let frac = frac.trim_end_matches('0');
    let sign = if neg { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn fail(message: String) -> ToolError {
    ToolError::failed("calculator", message)
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num(BigRational),
    Op(char),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Num(n) => write!(f, "number {}", display(n)),
            Kind::Op(c) => write!(f, "`{c}`"),
        }
    }
}

struct Token {
    kind: Kind,
    at: usize,
}

fn lex(s: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            let text: String = s[start..i].chars().filter(|&c| c != '_').collect();
            let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
            if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
                return Err(fail(format!("bad number `{text}` at byte {start}")));
            }
            let digits = format!("{int}{frac}");
            let numer: BigInt = digits
                .parse()
                .map_err(|_| fail(format!("bad number `{text}` at byte {start}")))?;
            let denom = BigInt::from(10u32).pow(frac.len() as u32);
            out.push(Token {
                kind: Kind::Num(BigRational::new(numer, denom)),
                at: start,
            });
        } else {
            let op = match c {
                b'+' | b'-' | b'/' | b'^' | b'(' | b')' => c as char,
                b'*' if b.get(i + 1) == Some(&b'*') => {
                    i += 1;
                    '^'
                }
                b'*' => '*',
                _ => {
                    let ch = s[i..].chars().next().unwrap_or('?');
                    let op = match ch {
                        '×' | '·' => '*',
                        '÷' => '/',
                        '−' => '-',
                        _ => {
                            return Err(fail(format!(
                                "unexpected `{ch}` at byte {i}: only numbers, + - * / ^ and parentheses"
                            )));
                        }
                    };
                    i += ch.len_utf8() - 1;
                    op
                }
            };
            out.push(Token {
                kind: Kind::Op(op),
                at: i,
            });
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some(Token {
                kind: Kind::Op(c), ..
            }) => Some(*c),
            _ => None,
        }
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or_else(|| self.tokens.last().map_or(0, |t| t.at + 1), |t| t.at)
    }

    // sum := product (('+'|'-') product)*
    fn sum(&mut self, depth: usize) -> Result<BigRational> {
        let mut v = self.product(depth)?;
        while let Some(op @ ('+' | '-')) = self.peek_op() {
            self.pos += 1;
            let r = self.product(depth)?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    // product := unary (('*'|'/') unary)*
    fn product(&mut self, depth: usize) -> Result<BigRational> {
        let mut v = self.unary(depth)?;
        while let Some(op @ ('*' | '/')) = self.peek_op() {
            let at = self.at();
            self.pos += 1;
            let r = self.unary(depth)?;
            if op == '*' {
                v *= r;
            } else if r.is_zero() {
                return Err(fail(format!("division by zero at byte {at}")));
            } else {
                v /= r;
            }
        }
        Ok(v)
    }

    // unary := ('-'|'+') unary | power     (so -2^2 = -(2^2), as in maths and Python)
    fn unary(&mut self, depth: usize) -> Result<BigRational> {
        if depth > MAX_DEPTH {
            return Err(fail(format!("nesting deeper than {MAX_DEPTH}")));
        }
        match self.peek_op() {
            Some('-') => {
                self.pos += 1;
                Ok(-self.unary(depth + 1)?)
            }
            Some('+') => {
                self.pos += 1;
                self.unary(depth + 1)
            }
            _ => self.power(depth),
        }
    }

    // power := atom ('^' unary)?     (right-associative: 2^3^2 = 2^9)
    fn power(&mut self, depth: usize) -> Result<BigRational> {
        let base = self.atom(depth)?;
        if self.peek_op() != Some('^') {
            return Ok(base);
        }
        let at = self.at();
        self.pos += 1;
        let exp = self.unary(depth + 1)?;
        if !exp.is_integer() {
            return Err(fail(format!(
                "exponent {} at byte {at} is not an integer (the result would not be exact)",
                display(&exp)
            )));
        }
        let e = exp.to_integer();
        let magnitude = e
            .abs()
            .to_u32()
            .filter(|&m| m <= MAX_EXPONENT)
            .ok_or_else(|| {
                fail(format!(
                    "exponent {e} at byte {at} is larger than {MAX_EXPONENT} in magnitude"
                ))
            })?;
        if base.is_zero() && e.is_negative() {
            return Err(fail(format!(
                "division by zero: 0 to a negative power at byte {at}"
            )));
        }
        let mut out = BigRational::one();
        for _ in 0..magnitude {
            out *= &base;
        }
        Ok(if e.is_negative() { out.recip() } else { out })
    }

    fn atom(&mut self, depth: usize) -> Result<BigRational> {
        let at = self.at();
        match self.tokens.get(self.pos).map(|t| t.kind.clone()) {
            Some(Kind::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Kind::Op('(')) => {
                self.pos += 1;
                let v = self.sum(depth + 1)?;
                if self.peek_op() != Some(')') {
                    return Err(fail(format!("missing `)` for the `(` at byte {at}")));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(k) => Err(fail(format!(
                "expected a number or `(` at byte {at}, found {k}"
            ))),
            None => Err(fail(
                "expected a number or `(`, found the end of the expression".to_string(),
            )),
        }
    }
}

/// The calculator's reply for `expression` (what the tool returns), for tests and callers without a registry.
pub fn calculate(expression: &str) -> Result<Value> {
    calculator().call(json!({ "expression": expression }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(e: &str) -> String {
        match evaluate(e) {
            Ok(v) => display(&v),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn arithmetic_is_exact_and_follows_precedence() {
        for (expr, want) in [
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("0.1 + 0.2", "3/10"),
            ("1/3 + 1/6", "1/2"),
            ("-2^2", "-4"),
            ("(-2)^2", "4"),
            ("2^3^2", "512"),
            ("2^-2", "1/4"),
            ("2 ** 10", "1024"),
            ("--3", "3"),
            ("7 − 2 × 3 ÷ 4", "11/2"),
            (
                "123456789012345678901234567890 * 10",
                "1234567890123456789012345678900",
            ),
            ("1_000 / 8", "125"),
        ] {
            assert_eq!(exact(expr), want, "{expr}");
        }
        assert_eq!(decimal(&evaluate("2/3").expect("ok"), 4), "0.6667");
        assert_eq!(decimal(&evaluate("-1/8").expect("ok"), 2), "-0.13");
        assert_eq!(decimal(&evaluate("5").expect("ok"), 3), "5");
        assert_eq!(decimal(&evaluate("-0.001").expect("ok"), 6), "-0.001");
    }

    #[test]
    fn bad_expressions_are_tool_errors_never_code() {
        for (expr, says) in [
            ("1/0", "division by zero at byte 1"),
            ("1/(2-2)", "division by zero"),
            ("0^-1", "division by zero"),
            ("2^0.5", "not an integer"),
            ("2^100000", "larger than 1000"),
            ("1 +", "end of the expression"),
            ("(1 + 2", "missing `)`"),
            ("1 2", "unexpected number 2"),
            ("__import__('os')", "unexpected `_`"),
            ("1.2.3", "bad number"),
            ("x", "unexpected `x`"),
        ] {
            assert!(exact(expr).contains(says), "{expr}: {}", exact(expr));
        }
        assert!(exact(&"(".repeat(500)).contains("nesting deeper"));
    }

    #[test]
    fn the_tool_replies_with_the_exact_value_and_a_decimal() -> Result<()> {
        assert_eq!(
            calculate("10/4")?,
            json!({"value": "5/2", "decimal": "2.5"})
        );
        let e = calculate("1/0").expect_err("div0");
        assert!(
            matches!(&e, ToolError::Failed { tool, .. } if tool == "calculator"),
            "{e}"
        );
        Ok(())
    }
}
