//! Grounded generation through the `ChatBackend` seam with a scripted back end: the prompt numbers the retrieved
//! passages, citations resolve to their chunk ids, and numbers that match no passage are reported.

use std::cell::RefCell;

use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};
use temper_rag::{AnalyzerConfig, Bm25, Bm25Params, RagError, ask};

/// Replies with a fixed text and keeps the prompt it was given.
struct Scripted {
    reply: &'static str,
    seen: RefCell<Vec<Message>>,
}

impl ChatBackend for Scripted {
    fn complete(&self, messages: &[Message], _: &GenerationParams) -> Result<String, ChatError> {
        *self.seen.borrow_mut() = messages.to_vec();
        Ok(self.reply.to_string())
    }
}

#[test]
fn answer_citations_resolve_to_retrieved_chunks() -> Result<(), RagError> {
    let texts = [
        ("faq#0", "Apt installs packages."),
        ("faq#1", "Dpkg unpacks archives."),
        ("faq#2", "Grub boots."),
    ];
    let mut bm25 = Bm25::new(Bm25Params::default(), AnalyzerConfig::default())?;
    bm25.extend(texts.iter().map(|(id, t)| (id.to_string(), *t)));
    let lookup = |id: &str| {
        texts
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| RagError::UnknownChunk(id.into()))
    };
    let backend = Scripted {
        reply: "Use dpkg [1] or apt [2], see also [1] and [5].",
        seen: RefCell::new(Vec::new()),
    };
    let answer = ask(
        "how are archives and packages installed",
        &bm25,
        &lookup,
        &backend,
        &GenerationParams::greedy(64),
        2,
    )?;
    let ids: Vec<&str> = answer
        .passages
        .iter()
        .map(|p| p.chunk_id.as_str())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"faq#0") && ids.contains(&"faq#1"), "{ids:?}");
    assert_eq!(answer.citations, [ids[0], ids[1]]);
    assert_eq!(answer.invalid_citations, [5]);
    let prompt = &backend.seen.borrow()[1].content;
    assert!(
        prompt.contains(&format!("[1] {}", lookup(ids[0])?)),
        "{prompt}"
    );
    assert!(
        prompt.contains(&format!("[2] {}", lookup(ids[1])?)),
        "{prompt}"
    );
    assert!(prompt.ends_with("Question: how are archives and packages installed"));
    Ok(())
}
