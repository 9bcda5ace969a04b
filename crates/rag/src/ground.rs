//! Grounded generation: retrieve → a prompt with numbered passages → a [`ChatBackend`] → the answer with its
//! citations resolved to chunk ids. A citation is `[n]` (or `[n, m]`) with `n` a passage number; one whose number
//! is not a retrieved passage is reported in [`GroundedAnswer::invalid_citations`].

use serde::Serialize;
use temper_chat::{ChatBackend, GenerationParams, Message};

use crate::error::Result;
use crate::retriever::{Hit, Retriever};

/// The instruction given to the model.
pub const SYSTEM_PROMPT: &str = "Answer the question using only the numbered passages. After each claim, cite the \
passages that support it by number in square brackets, like [1] or [2, 3]. If the passages do not contain the \
answer, say that you do not know.";

/// A retrieved passage as shown to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Its number in the prompt (from 1).
    pub number: usize,
    /// The chunk's id.
    pub chunk_id: String,
    /// The retriever's score.
    pub score: f32,
    /// The text shown.
    pub text: String,
}

/// An answer and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundedAnswer {
    /// The model's reply.
    pub answer: String,
    /// The passages of the prompt.
    pub passages: Vec<Passage>,
    /// Chunk ids cited by the answer (in order of first citation, without repeats).
    pub citations: Vec<String>,
    /// Citation numbers that match no passage.
    pub invalid_citations: Vec<usize>,
}

/// The chat messages for `question` and `passages`.
pub fn grounded_prompt(question: &str, passages: &[Passage]) -> Vec<Message> {
    let mut user = String::from("Passages:\n");
    for p in passages {
        user.push_str(&format!("[{}] {}\n\n", p.number, p.text.trim()));
    }
    user.push_str(&format!("Question: {question}"));
    vec![Message::system(SYSTEM_PROMPT), Message::user(user)]
}

/// Every number cited in `[..]` groups of `text` (`[1]`, `[2, 3]`), in order, repeats kept.
pub fn cited_numbers(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inside = &rest[..close];
        let nums: Option<Vec<usize>> = inside.split(',').map(|p| p.trim().parse().ok()).collect();
        if let Some(nums) = nums {
            out.extend(nums);
            rest = &rest[close + 1..];
        }
    }
    out
}

/// Retrieves `k` passages for `question` (texts looked up by `text`), asks `backend`, and resolves the citations.
pub fn ask(
    question: &str,
    retriever: &dyn Retriever,
    text: &dyn Fn(&str) -> Result<String>,
    backend: &dyn ChatBackend,
    params: &GenerationParams,
    k: usize,
) -> Result<GroundedAnswer> {
    let hits: Vec<Hit> = retriever.retrieve(question, k)?;
    let passages = hits
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(Passage {
                number: i + 1,
                text: text(&h.chunk_id)?,
                chunk_id: h.chunk_id,
                score: h.score,
            })
        })
        .collect::<Result<Vec<Passage>>>()?;
    let answer = backend.complete(&grounded_prompt(question, &passages), params)?;
    let mut citations: Vec<String> = Vec::new();
    let mut invalid = Vec::new();
    for n in cited_numbers(&answer) {
        match passages.iter().find(|p| p.number == n) {
            Some(p) if !citations.contains(&p.chunk_id) => citations.push(p.chunk_id.clone()),
            Some(_) => {}
            None if !invalid.contains(&n) => invalid.push(n),
            None => {}
        }
    }
    Ok(GroundedAnswer {
        answer,
        passages,
        citations,
        invalid_citations: invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_citation_groups_and_skips_other_brackets() {
        assert_eq!(
            cited_numbers("A [1]. B [2, 3] and [x] or [4 ]. [9"),
            [1, 2, 3, 4]
        );
    }
}
