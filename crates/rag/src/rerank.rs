//! An LLM-judge re-ranker: every passage is shown to a chat model with the query and rated for relevance on a 0–10
//! scale (pointwise, one request per passage, as in RankGPT's pointwise baseline and Liang et al. 2022's HELM
//! "relevance" prompts), the rating parsed out of the free-form reply. Any [`ChatBackend`] serves: a local
//! Temper model or an OpenAI-compatible endpoint.

use temper_chat::{ChatBackend, GenerationParams, Message};

use crate::error::Result;
use crate::retriever::Reranker;

/// The instruction given to the judge.
pub const RERANK_PROMPT: &str = "You judge search results. Rate how well the passage answers the query on a scale \
from 0 (unrelated) to 10 (answers it completely). Reply with the number only.";

/// Highest rating on the scale.
pub const MAX_RATING: f32 = 10.0;

/// The score given to a passage whose reply holds no rating in 0..=10 (below every real rating, so such passages
/// go last; among themselves they keep the first stage's order).
pub const UNPARSED: f32 = -1.0;

/// One passage's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The rating read from the reply, if any.
    pub rating: Option<f32>,
    /// The judge's reply as it came.
    pub reply: String,
}

/// A [`Reranker`] that asks a chat model to rate each passage.
#[derive(Debug, Clone)]
pub struct LlmReranker<B> {
    /// The judge.
    pub backend: B,
    /// Decoding parameters of each request (a few greedy tokens are enough for a number).
    pub params: GenerationParams,
    /// Passages are cut to at most this many bytes (at a character boundary) before they are shown.
    pub max_passage_bytes: usize,
}

impl<B: ChatBackend> LlmReranker<B> {
    /// A judge with greedy decoding of at most 8 tokens and passages cut to 2000 bytes.
    pub fn new(backend: B) -> LlmReranker<B> {
        LlmReranker {
            backend,
            params: GenerationParams::greedy(8),
            max_passage_bytes: 2000,
        }
    }

    /// The rating and raw reply for every passage, in order.
    pub fn judge(&self, query: &str, passages: &[&str]) -> Result<Vec<Judgement>> {
        passages
            .iter()
            .map(|p| {
                let passage = truncate(p, self.max_passage_bytes);
                let reply = self
                    .backend
                    .complete(&rerank_messages(query, passage), &self.params)?;
                Ok(Judgement {
                    rating: parse_rating(&reply),
                    reply,
                })
            })
            .collect()
    }
}

impl<B: ChatBackend> Reranker for LlmReranker<B> {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        Ok(self
            .judge(query, passages)?
            .into_iter()
            .map(|j| j.rating.unwrap_or(UNPARSED))
            .collect())
    }
}

/// The chat messages that ask for one passage's rating.
pub fn rerank_messages(query: &str, passage: &str) -> Vec<Message> {
    vec![
        Message::system(RERANK_PROMPT),
        Message::user(format!(
            "Query: {query}\n\nPassage:\n{}\n\nRating (0-10):",
            passage.trim()
        )),
    ]
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The numbers written in `text` (digits with an optional decimal part), with the byte offset after each.
fn numbers(text: &str) -> Vec<(f32, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit()
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        // A number glued to letters (`v2`, `3rd`, `10x`) is not a rating.
        if i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            continue;
        }
        if let Ok(v) = text[start..i].parse::<f32>() {
            out.push((v, i));
        }
    }
    out
}

/// Reads a 0–10 rating from a judge's free-form reply, or `None`.
///
/// In order: a number followed by `/10` or `out of 10`; else the first number after the last `score`, `rating`
/// or `relevance` (any case); else the first number of the reply. The number must lie in 0..=10.
pub fn parse_rating(reply: &str) -> Option<f32> {
    let lower = reply.to_ascii_lowercase();
    let nums = numbers(&lower);
    let in_range = |v: f32| (0.0..=MAX_RATING).contains(&v).then_some(v);
    for &(v, end) in &nums {
        let rest = lower[end..].trim_start();
        if rest.starts_with("/10") || rest.starts_with("/ 10") || rest.starts_with("out of 10") {
            return in_range(v);
        }
    }
    let keyword = ["score", "rating", "relevance", "rate"]
        .iter()
        .filter_map(|k| lower.rfind(k).map(|p| p + k.len()))
        .max();
    if let Some(after) = keyword
        && let Some(&(v, _)) = nums.iter().find(|(_, end)| *end > after)
    {
        return in_range(v);
    }
    nums.first().and_then(|&(v, _)| in_range(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_read_from_free_form_replies() {
        let cases: &[(&str, Option<f32>)] = &[
            ("7", Some(7.0)),
            (" 10\n", Some(10.0)),
            ("0", Some(0.0)),
            ("8.5", Some(8.5)),
            ("**9**", Some(9.0)),
            ("Rating: 6", Some(6.0)),
            ("I'd give it 4/10.", Some(4.0)),
            ("3 / 10", Some(3.0)),
            ("This passage covers 2 of the 3 points. Score: 5", Some(5.0)),
            ("In Debian 11 the passage rates 7 out of 10", Some(7.0)),
            ("Relevance score: 9. (10 would be perfect)", Some(9.0)),
            ("11", None),
            ("-3", None),
            ("Rating: 42", None),
            ("The passage is relevant.", None),
            ("", None),
            ("version v2 and 3rd edition", None),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_rating(reply), *want, "{reply:?}");
        }
    }

    #[test]
    fn passages_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
