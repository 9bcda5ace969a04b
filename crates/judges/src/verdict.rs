//! Strict verdict parsing of judge replies: `[[A]]`/`[[B]]`/`[[C]]`, score pairs `[[8 6]]`/`[[8, 6]]`,
//! Arena-Hard's five levels `[[A>>B]]`…`[[B>>A]]`, and single ratings `Rating: [[7]]`.
//!
//! Every `[[…]]` token in the reply is read; tokens that are not a verdict of the requested kind
//! are ignored. Exactly one distinct verdict parses; none, or two different ones (a reply that
//! names both `[[A]]` and `[[B]]`), is [`Unparseable`] — never silently read as A, which is the
//! FastChat bug this module exists to avoid.

use serde::{Deserialize, Serialize};

/// Who won a pairwise comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Winner {
    /// Answer A is better.
    A,
    /// Answer B is better.
    B,
    /// Neither (`[[C]]`, equal scores, `[[A=B]]`). Serialized as `"tie"`.
    #[serde(rename = "tie")]
    Tie,
}

impl Winner {
    /// The label used in agreement files: `"A"`, `"B"` or `"tie"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::A => "A",
            Winner::B => "B",
            Winner::Tie => "tie",
        }
    }

    /// The same preference with the two slots exchanged (A ↔ B).
    pub fn swapped(self) -> Self {
        match self {
            Winner::A => Winner::B,
            Winner::B => Winner::A,
            Winner::Tie => Winner::Tie,
        }
    }
}

/// Arena-Hard's five-level pairwise verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArenaLevel {
    /// `[[A>>B]]`: A is significantly better.
    AMuchBetter,
    /// `[[A>B]]`: A is slightly better.
    ABetter,
    /// `[[A=B]]`: tie.
    Tie,
    /// `[[B>A]]`: B is slightly better.
    BBetter,
    /// `[[B>>A]]`: B is significantly better.
    BMuchBetter,
}

impl ArenaLevel {
    fn swapped(self) -> Self {
        match self {
            ArenaLevel::AMuchBetter => ArenaLevel::BMuchBetter,
            ArenaLevel::ABetter => ArenaLevel::BBetter,
            ArenaLevel::Tie => ArenaLevel::Tie,
            ArenaLevel::BBetter => ArenaLevel::ABetter,
            ArenaLevel::BMuchBetter => ArenaLevel::AMuchBetter,
        }
    }
}

/// A parsed pairwise verdict, in the form the judge wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// `[[A]]`, `[[B]]`, or `[[C]]` (tie).
    Choice(Winner),
    /// `[[8 6]]` or `[[8, 6]]`: a score for each answer (the seed prompt's format).
    Scores {
        /// Score of answer A.
        a: f64,
        /// Score of answer B.
        b: f64,
    },
    /// Arena-Hard's `[[A>>B]]` … `[[B>>A]]`.
    Arena(ArenaLevel),
}

impl Verdict {
    /// The winner this verdict implies (equal scores are a tie).
    pub fn winner(&self) -> Winner {
        match *self {
            Verdict::Choice(w) => w,
            Verdict::Scores { a, b } if a > b => Winner::A,
            Verdict::Scores { a, b } if b > a => Winner::B,
            Verdict::Scores { .. } => Winner::Tie,
            Verdict::Arena(ArenaLevel::AMuchBetter | ArenaLevel::ABetter) => Winner::A,
            Verdict::Arena(ArenaLevel::Tie) => Winner::Tie,
            Verdict::Arena(ArenaLevel::BBetter | ArenaLevel::BMuchBetter) => Winner::B,
        }
    }

    /// The verdict with the slots exchanged: what a verdict on (B, A) means for (A, B).
    pub fn swapped(&self) -> Self {
        match *self {
            Verdict::Choice(w) => Verdict::Choice(w.swapped()),
            Verdict::Scores { a, b } => Verdict::Scores { a: b, b: a },
            Verdict::Arena(l) => Verdict::Arena(l.swapped()),
        }
    }
}

/// Why a reply has no usable verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unparseable {
    /// No `[[…]]` token of the expected kind.
    NoVerdict,
    /// Two or more different verdicts (the tokens as written, e.g. `["[[A]]", "[[B]]"]`).
    Conflicting(Vec<String>),
}

impl std::fmt::Display for Unparseable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unparseable::NoVerdict => f.write_str("no verdict in reply"),
            Unparseable::Conflicting(t) => write!(f, "conflicting verdicts {}", t.join(", ")),
        }
    }
}

/// Every `[[…]]` token's inner text, in order (no nesting; an unclosed `[[` ends the scan).
fn bracket_tokens(reply: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = reply;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let inner = &after[..end];
        // `[[[A]]` style: step past extra opening brackets.
        out.push(inner.trim_start_matches('[').trim());
        rest = &after[end + 2..];
    }
    out
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn interpret_pair(token: &str) -> Option<Verdict> {
    // Letters are matched case-insensitively (`[[a]]` is as unambiguous as `[[A]]`).
    let compact: String = token
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match compact.as_str() {
        "A" => return Some(Verdict::Choice(Winner::A)),
        "B" => return Some(Verdict::Choice(Winner::B)),
        "C" | "TIE" => return Some(Verdict::Choice(Winner::Tie)),
        _ => {}
    }
    let arena = match compact.as_str() {
        "A>>B" | "B<<A" => Some(ArenaLevel::AMuchBetter),
        "A>B" | "B<A" => Some(ArenaLevel::ABetter),
        "A=B" | "B=A" => Some(ArenaLevel::Tie),
        "B>A" | "A<B" => Some(ArenaLevel::BBetter),
        "B>>A" | "A<<B" => Some(ArenaLevel::BMuchBetter),
        _ => None,
    };
    if let Some(l) = arena {
        return Some(Verdict::Arena(l));
    }
    // Two scores separated by a comma and/or whitespace.
    let parts: Vec<&str> = token
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    if let [a, b] = parts.as_slice() {
        return Some(Verdict::Scores {
            a: parse_number(a)?,
            b: parse_number(b)?,
        });
    }
    None
}

fn unique<T: PartialEq + Copy>(found: Vec<(T, &str)>) -> Result<T, Unparseable> {
    let Some(&(first, _)) = found.first() else {
        return Err(Unparseable::NoVerdict);
    };
    if found.iter().all(|(v, _)| *v == first) {
        Ok(first)
    } else {
        Err(Unparseable::Conflicting(
            found.iter().map(|(_, t)| format!("[[{t}]]")).collect(),
        ))
    }
}

/// Parses a pairwise verdict from a judge reply. See the module doc for the accepted forms.
pub fn parse_pair_verdict(reply: &str) -> Result<Verdict, Unparseable> {
    unique(
        bracket_tokens(reply)
            .into_iter()
            .filter_map(|t| interpret_pair(t).map(|v| (v, t)))
            .collect(),
    )
}

/// Parses a single-answer rating (`Rating: [[7]]`, `[[8.5]]`) from a judge reply.
pub fn parse_rating(reply: &str) -> Result<f64, Unparseable> {
    unique(
        bracket_tokens(reply)
            .into_iter()
            .filter_map(|t| parse_number(t).map(|v| (v, t)))
            .collect(),
    )
}

/// Parses a strict `[[YES]]` / `[[NO]]` reply (CHAMP's "does this solution contain an error?"): exactly one
/// kind of token (case and spaces inside the brackets ignored) must appear; `Ok(true)` means YES.
pub fn parse_yes_no(reply: &str) -> Result<bool, Unparseable> {
    unique(
        bracket_tokens(reply)
            .into_iter()
            .filter_map(|t| match t.to_ascii_uppercase().as_str() {
                "YES" => Some((true, t)),
                "NO" => Some((false, t)),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_parsing_is_strict() {
        let cases: [(&str, std::result::Result<bool, Unparseable>); 8] = [
            ("[[YES]]", Ok(true)),
            ("[[No]]\n\nThe solution is right.", Ok(false)),
            ("Verdict: [[ yes ]] and again [[YES]]", Ok(true)),
            (
                "[[YES]\n\nThe solution contains",
                Err(Unparseable::NoVerdict),
            ),
            (
                "The solution contains an error.",
                Err(Unparseable::NoVerdict),
            ),
            ("[[MAYBE]]", Err(Unparseable::NoVerdict)),
            (
                "[[YES]] or [[NO]]",
                Err(Unparseable::Conflicting(vec![
                    "[[YES]]".into(),
                    "[[NO]]".into(),
                ])),
            ),
            ("[[[NO]]", Ok(false)),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_yes_no(reply), want, "reply {reply:?}");
        }
    }

    #[test]
    fn pairwise_forms() {
        use ArenaLevel::*;
        let cases: &[(&str, Verdict)] = &[
            (
                "Assistant A is more detailed. [[A]]",
                Verdict::Choice(Winner::A),
            ),
            ("Final verdict: [[B]]", Verdict::Choice(Winner::B)),
            ("It's a tie: [[C]]", Verdict::Choice(Winner::Tie)),
            ("[[8 6]]", Verdict::Scores { a: 8.0, b: 6.0 }),
            ("Scores: [[8, 6]]", Verdict::Scores { a: 8.0, b: 6.0 }),
            ("[[ 7.5,9 ]]", Verdict::Scores { a: 7.5, b: 9.0 }),
            ("My final verdict is: [[A>>B]]", Verdict::Arena(AMuchBetter)),
            ("[[A>B]]", Verdict::Arena(ABetter)),
            ("[[A=B]]", Verdict::Arena(Tie)),
            ("[[B > A]]", Verdict::Arena(BBetter)),
            ("[[B>>A]]", Verdict::Arena(BMuchBetter)),
            ("[[A]] and again [[A]]", Verdict::Choice(Winner::A)),
            ("noise [[rating]] then [[B]]", Verdict::Choice(Winner::B)),
            ("**[[ b ]]**", Verdict::Choice(Winner::B)),
            ("[[Tie]]", Verdict::Choice(Winner::Tie)),
            ("[[a>>b]]", Verdict::Arena(AMuchBetter)),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_pair_verdict(reply).as_ref(), Ok(want), "{reply}");
        }
        let winners: Vec<Winner> = cases.iter().map(|(_, v)| v.winner()).collect();
        use Winner::{A, B, Tie as T};
        assert_eq!(winners, [A, B, T, A, A, B, A, A, T, B, B, A, B, B, T, A]);
    }

    #[test]
    fn both_or_none_is_unparseable_never_a() {
        assert_eq!(
            parse_pair_verdict("Output \"[[A]]\" if A is better, \"[[B]]\" if B is better"),
            Err(Unparseable::Conflicting(vec![
                "[[A]]".into(),
                "[[B]]".into()
            ]))
        );
        assert_eq!(
            parse_pair_verdict("[[8 6]] ... [[7 6]]"),
            Err(Unparseable::Conflicting(vec![
                "[[8 6]]".into(),
                "[[7 6]]".into()
            ]))
        );
        for reply in [
            "",
            "A is better",
            "[A]",
            "[[D]]",
            "[[A]",
            "[[7]]",
            "[[8 6 5]]",
            "[[-1 3]]",
            "[[A>>C]]",
            "[[AB]]",
        ] {
            assert_eq!(
                parse_pair_verdict(reply),
                Err(Unparseable::NoVerdict),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn ratings() {
        assert_eq!(parse_rating("Rating: [[7]]"), Ok(7.0));
        assert_eq!(parse_rating("[[8.5]]"), Ok(8.5));
        assert_eq!(
            parse_rating("format \"[[rating]]\" → Rating: [[3]]"),
            Ok(3.0)
        );
        assert_eq!(
            parse_rating("Rating: [[5]] no wait [[6]]"),
            Err(Unparseable::Conflicting(vec![
                "[[5]]".into(),
                "[[6]]".into()
            ]))
        );
        assert_eq!(parse_rating("Rating: 7"), Err(Unparseable::NoVerdict));
        assert_eq!(parse_rating("[[A]]"), Err(Unparseable::NoVerdict));
    }

    #[test]
    fn swapping_mirrors_every_form() {
        assert_eq!(
            Verdict::Choice(Winner::A).swapped(),
            Verdict::Choice(Winner::B)
        );
        assert_eq!(
            Verdict::Scores { a: 8.0, b: 6.0 }.swapped(),
            Verdict::Scores { a: 6.0, b: 8.0 }
        );
        assert_eq!(
            Verdict::Arena(ArenaLevel::AMuchBetter).swapped(),
            Verdict::Arena(ArenaLevel::BMuchBetter)
        );
        assert_eq!(
            Verdict::Arena(ArenaLevel::Tie).swapped().winner(),
            Winner::Tie
        );
    }
}
