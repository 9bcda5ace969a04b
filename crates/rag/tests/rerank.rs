//! The LLM-judge re-ranker through the `ChatBackend` seam, with a scripted judge: it re-orders BM25's first stage
//! by the ratings in free-form replies, unparsable replies go last, equal ratings keep BM25's order, the prompt
//! holds the query and the (cut) passage, and a failing back end is an error, not a silent ranking.

use std::cell::RefCell;

use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};
use temper_rag::{
    AnalyzerConfig, Bm25, Bm25Params, LlmReranker, RagError, Reranked, Retriever, UNPARSED,
};

const DOCS: [(&str, &str); 4] = [
    ("a", "apt apt apt: the apt tool, apt everywhere."),
    ("b", "apt resolves dependencies and downloads packages."),
    (
        "c",
        "apt and dpkg: dpkg unpacks one archive, apt installs packages with their dependencies.",
    ),
    ("d", "apt mirrors."),
];

/// Replies by the passage it is shown (the first `DOCS` text found in the prompt); records every prompt.
struct Judge {
    replies: [(&'static str, &'static str); 4],
    prompts: RefCell<Vec<Vec<Message>>>,
}

impl ChatBackend for Judge {
    fn complete(&self, messages: &[Message], _: &GenerationParams) -> Result<String, ChatError> {
        self.prompts.borrow_mut().push(messages.to_vec());
        let user = &messages[1].content;
        for ((id, text), (rid, reply)) in DOCS.iter().zip(&self.replies) {
            assert_eq!(id, rid);
            if user.contains(&text[..10.min(text.len())]) {
                return Ok(reply.to_string());
            }
        }
        Err(ChatError::Backend(format!("unknown passage in {user:?}")))
    }
}

fn bm25() -> Result<Bm25, RagError> {
    let mut bm25 = Bm25::new(Bm25Params::default(), AnalyzerConfig::default())?;
    bm25.extend(DOCS.iter().map(|(id, t)| (id.to_string(), *t)));
    Ok(bm25)
}

fn lookup(id: &str) -> Result<String, RagError> {
    DOCS.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| RagError::UnknownChunk(id.into()))
}

fn ids(hits: &[temper_rag::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.chunk_id.as_str()).collect()
}

#[test]
fn judge_ratings_reorder_the_first_stage() -> Result<(), RagError> {
    let bm25 = bm25()?;
    let first = bm25.retrieve("apt", 4)?;
    assert_eq!(
        ids(&first)[0],
        "a",
        "BM25 ranks the keyword-stuffed passage first"
    );
    let judge = Judge {
        replies: [
            ("a", "Rating: 2"),
            ("b", "7/10"),
            ("c", "**9**"),
            ("d", "I cannot tell."),
        ],
        prompts: RefCell::new(Vec::new()),
    };
    let reranked = Reranked {
        inner: &bm25,
        reranker: LlmReranker::new(&judge),
        text: lookup,
        depth: 4,
    };
    let hits = reranked.retrieve("how does apt install packages", 4)?;
    assert_eq!(ids(&hits), ["c", "b", "a", "d"]);
    let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
    assert_eq!(scores, [9.0, 7.0, 2.0, UNPARSED]);
    let prompts = judge.prompts.borrow();
    assert_eq!(prompts.len(), 4, "one request per passage");
    let user = &prompts[0][1].content;
    assert!(
        user.starts_with("Query: how does apt install packages\n"),
        "{user}"
    );
    assert!(user.contains("Passage:\n"), "{user}");
    // k below depth: all `depth` passages are judged, the best k returned.
    drop(prompts);
    let top = reranked.retrieve("how does apt install packages", 1)?;
    assert_eq!(ids(&top), ["c"]);
    assert_eq!(judge.prompts.borrow().len(), 8);
    Ok(())
}

#[test]
fn equal_ratings_keep_the_first_stage_order_and_passages_are_cut() -> Result<(), RagError> {
    let bm25 = bm25()?;
    let first = bm25.retrieve("apt dependencies", 4)?;
    let judge = Judge {
        replies: [("a", "5"), ("b", "5"), ("c", "5"), ("d", "5 out of 10")],
        prompts: RefCell::new(Vec::new()),
    };
    let mut reranker = LlmReranker::new(&judge);
    reranker.max_passage_bytes = 12;
    let reranked = Reranked {
        inner: &bm25,
        reranker,
        text: lookup,
        depth: 4,
    };
    let hits = reranked.retrieve("apt dependencies", 4)?;
    assert_eq!(ids(&hits), ids(&first));
    for p in judge.prompts.borrow().iter() {
        let passage = p[1]
            .content
            .split("Passage:\n")
            .nth(1)
            .and_then(|r| r.split("\n\nRating").next())
            .unwrap_or_default();
        assert!(passage.len() <= 12, "{passage:?}");
    }
    Ok(())
}

#[test]
fn a_failing_judge_is_an_error() -> Result<(), RagError> {
    struct Down;
    impl ChatBackend for Down {
        fn complete(&self, _: &[Message], _: &GenerationParams) -> Result<String, ChatError> {
            Err(ChatError::Backend("connection refused".into()))
        }
    }
    let bm25 = bm25()?;
    let reranked = Reranked {
        inner: &bm25,
        reranker: LlmReranker::new(Down),
        text: lookup,
        depth: 4,
    };
    let err = reranked.retrieve("apt", 2).expect_err("the judge is down");
    assert!(err.to_string().contains("connection refused"), "{err}");
    Ok(())
}
