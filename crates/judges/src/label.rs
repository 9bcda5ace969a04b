//! [`Label`]: one rating, a string or a number, totally ordered so it can index categories.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One rating given by a rater: a category name (`"A"`, `"tie"`) or a number (`7`, `0.5`).
///
/// Labels are totally ordered: all numbers (by value) come before all strings (lexicographic).
/// `7` and `7.0` are the same label. Nominal metrics only use equality; ordinal metrics and
/// weighted κ use this order; interval metrics need every label to be a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    /// A numeric rating, e.g. a 1–10 score.
    Num(f64),
    /// A categorical rating, e.g. `"A"`, `"B"`, `"tie"`.
    Str(String),
}

impl Label {
    /// The numeric value, if this label is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Label::Num(x) => Some(*x),
            Label::Str(_) => None,
        }
    }

    fn norm(x: f64) -> f64 {
        // -0.0 and 0.0 are one label.
        if x == 0.0 { 0.0 } else { x }
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label::Str(s.to_string())
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label::Str(s)
    }
}

impl From<f64> for Label {
    fn from(x: f64) -> Self {
        Label::Num(x)
    }
}

impl From<i64> for Label {
    fn from(x: i64) -> Self {
        Label::Num(x as f64)
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Label::Num(a), Label::Num(b)) => Label::norm(*a).total_cmp(&Label::norm(*b)),
            (Label::Num(_), Label::Str(_)) => Ordering::Less,
            (Label::Str(_), Label::Num(_)) => Ordering::Greater,
            (Label::Str(a), Label::Str(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Label {}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Num(x) => write!(f, "{x}"),
            Label::Str(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_before_strings_and_int_equals_float() {
        let mut v: Vec<Label> =
            serde_json::from_str(r#"["tie", 10, "A", 2.5, 7, -0.0]"#).expect("json");
        v.sort();
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["-0", "2.5", "7", "10", "A", "tie"]);
        assert_eq!(Label::from(7i64), Label::from(7.0));
        assert_eq!(Label::from(0.0), Label::from(-0.0));
        assert_ne!(Label::from("7"), Label::from(7.0));
    }
}
