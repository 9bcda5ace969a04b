//! Judge prompt templates: the built-in seed pairwise prompt (two 1–10 scores, `[[8 6]]`) and the
//! eight official MT-bench prompts loaded from FastChat's `judge_prompts.jsonl`.
//!
//! Templates use Python `str.format` placeholders (`{question}`, `{answer_a}`, `{ref_answer_1}`,
//! …); `{{` and `}}` are literal braces. A placeholder the item cannot fill is an error, never an
//! empty string.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{JudgeError, Result};
use temper_chat::Message;

/// Whether a template compares two answers or grades one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    /// Compares answers A and B; verdict `[[A]]`/`[[B]]`/`[[C]]` or scores.
    Pairwise,
    /// Grades one answer; verdict `[[rating]]`.
    Single,
}

/// One judge prompt, in the format of FastChat's `judge_prompts.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplate {
    /// Name, e.g. `pair-v2`, `single-math-v1-multi-turn`, `seed-pair`.
    pub name: String,
    /// Pairwise or single.
    #[serde(rename = "type")]
    pub kind: PromptKind,
    /// System message.
    pub system_prompt: String,
    /// User message with `{placeholders}`.
    pub prompt_template: String,
    /// The verdict format the prompt asks for, e.g. `[[A]]`, `[[rating]]`.
    pub output_format: String,
    /// Free text ("Prompt for general questions").
    #[serde(default)]
    pub description: String,
    /// FastChat's category (`general`, `math`).
    #[serde(default)]
    pub category: String,
}

const SEED_SYSTEM: &str = "Please act as an impartial judge and evaluate the responses of two AI assistants, \
Assistant A and Assistant B, to the user question shown below. Consider helpfulness, relevance, accuracy, depth \
and clarity. Do not let the order in which the responses are presented, their length, or the assistants' names \
influence your judgement. First write a short explanation comparing the two responses. Then score each response \
on a scale of 1 to 10, where 10 is best, and give the two scores on the last line in exactly this format: \
\"[[A_score B_score]]\", for example \"[[8 6]]\". Equal scores mean a tie.";

const SEED_TEMPLATE: &str = "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n\
[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]";

impl PromptTemplate {
    /// Temper's own pairwise prompt: two 1–10 scores, verdict `[[A_score B_score]]`.
    pub fn seed_pairwise() -> Self {
        Self {
            name: "seed-pair".into(),
            kind: PromptKind::Pairwise,
            system_prompt: SEED_SYSTEM.into(),
            prompt_template: SEED_TEMPLATE.into(),
            output_format: "[[A_score B_score]]".into(),
            description: "Temper's pairwise prompt: a 1-10 score for each answer".into(),
            category: "general".into(),
        }
    }

    /// The placeholder names in the user template, in order of first appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for piece in split_format(&self.prompt_template) {
            if let Piece::Field(f) = piece
                && !out.iter().any(|o| o == f)
            {
                out.push(f.to_string());
            }
        }
        out
    }

    /// Renders `[system, user]` messages, filling each placeholder with `field(name)`.
    /// `id` only labels the error when a field is missing.
    pub fn render<'a>(
        &self,
        id: &str,
        field: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Vec<Message>> {
        let mut user = String::with_capacity(self.prompt_template.len() + 256);
        for piece in split_format(&self.prompt_template) {
            match piece {
                Piece::Text(t) => user.push_str(t),
                Piece::Field(f) => {
                    user.push_str(field(f).ok_or_else(|| JudgeError::MissingField {
                        template: self.name.clone(),
                        field: f.to_string(),
                        id: id.to_string(),
                    })?)
                }
            }
        }
        Ok(vec![
            Message::system(self.system_prompt.clone()),
            Message::user(user),
        ])
    }
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits a Python format string into literal text and `{field}`s (`{{`/`}}` are literal braces;
/// an unmatched brace stays literal).
fn split_format(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push(Piece::Text(&s[start..=i]));
                i += 2;
                start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push(Piece::Text(&s[start..=i]));
                i += 2;
                start = i;
            }
            b'{' => match s[i + 1..].find('}') {
                Some(len)
                    if s[i + 1..i + 1 + len]
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_')
                        && len > 0 =>
                {
                    out.push(Piece::Text(&s[start..i]));
                    out.push(Piece::Field(&s[i + 1..i + 1 + len]));
                    i += len + 2;
                    start = i;
                }
                _ => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&s[start..]));
    out
}

/// Loads prompt templates from a JSONL file such as FastChat's
/// `fastchat/llm_judge/data/judge_prompts.jsonl`. Errors name the file and line.
pub fn load_prompt_templates(path: &Path) -> Result<Vec<PromptTemplate>> {
    let text = std::fs::read_to_string(path).map_err(|source| JudgeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let t: PromptTemplate = serde_json::from_str(line).map_err(|e| JudgeError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(t);
    }
    Ok(out)
}

/// Finds a template by name.
pub fn find_template<'a>(
    templates: &'a [PromptTemplate],
    name: &str,
) -> Result<&'a PromptTemplate> {
    templates
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| JudgeError::UnknownTemplate {
            name: name.to_string(),
            known: templates
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The MT-bench template name for a judging task, as FastChat picks it: `pair-` or `single-`,
/// `math-v1` when a reference answer is given (math, reasoning, coding) else `v1`/`v2`, and
/// `-multi-turn` for the second turn.
pub fn mtbench_template_name(
    kind: PromptKind,
    with_reference: bool,
    multi_turn: bool,
) -> &'static str {
    match (kind, with_reference, multi_turn) {
        (PromptKind::Pairwise, false, false) => "pair-v2",
        (PromptKind::Pairwise, false, true) => "pair-v2-multi-turn",
        (PromptKind::Pairwise, true, false) => "pair-math-v1",
        (PromptKind::Pairwise, true, true) => "pair-math-v1-multi-turn",
        (PromptKind::Single, false, false) => "single-v1",
        (PromptKind::Single, false, true) => "single-v1-multi-turn",
        (PromptKind::Single, true, false) => "single-math-v1",
        (PromptKind::Single, true, true) => "single-math-v1-multi-turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_prompt_renders_and_asks_for_two_scores() -> Result<()> {
        let t = PromptTemplate::seed_pairwise();
        assert_eq!(t.placeholders(), ["question", "answer_a", "answer_b"]);
        let msgs = t.render("q1", |f| match f {
            "question" => Some("2+2?"),
            "answer_a" => Some("4"),
            "answer_b" => Some("5"),
            _ => None,
        })?;
        assert!(msgs[0].content.contains("[[8 6]]") && msgs[0].content.contains("1 to 10"));
        assert!(
            msgs[1]
                .content
                .starts_with("[User Question]\n2+2?\n\n[The Start of Assistant A's Answer]\n4\n")
        );
        let e = t
            .render("q9", |f| (f == "question").then_some("x"))
            .expect_err("answer_a missing")
            .to_string();
        assert_eq!(
            e,
            "prompt template `seed-pair` needs field `answer_a`, which the item (id q9) lacks"
        );
        Ok(())
    }

    #[test]
    fn python_format_escapes() -> Result<()> {
        let t = PromptTemplate {
            prompt_template: "{{literal}} {x} {not a field} }".into(),
            ..PromptTemplate::seed_pairwise()
        };
        assert_eq!(t.placeholders(), ["x"]);
        let m = t.render("i", |_| Some("X"))?;
        assert_eq!(m[1].content, "{literal} X {not a field} }");
        Ok(())
    }
}
