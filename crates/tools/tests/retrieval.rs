//! The retrieval tool over temper-rag's `Retriever` seam: BM25 over a small corpus behind the registry (schema
//! validation of `query` and `k`), hybrid fusion behind the same tool, and a tool loop in which a scripted model
//! searches and then answers from what came back.

use std::collections::BTreeMap;
mod scripted;

use scripted::Scripted;
use serde_json::{Value, json};
use temper_chat::{Message, Role, ToolCall};
use temper_rag::{AnalyzerConfig, Bm25, Bm25Params, Retriever, Rrf};
use temper_tools::builtins::retrieval::{Passage, RetrievalTool};
use temper_tools::{Format, LoopConfig, Outcome, Registry, Result, Tool, ToolError, run_tool_loop};

const DOCS: [(&str, &str, &str); 4] = [
    (
        "faq.md#0",
        "faq.md",
        "To upgrade Debian, run apt update and then apt full-upgrade.",
    ),
    (
        "faq.md#1",
        "faq.md",
        "The kernel boots from GRUB, the default boot loader.",
    ),
    (
        "net.md#0",
        "net.md",
        "Network interfaces are configured in /etc/network/interfaces.",
    ),
    (
        "pkg.md#0",
        "pkg.md",
        "dpkg installs a single .deb package; apt resolves its dependencies.",
    ),
];

fn corpus() -> (Bm25, BTreeMap<String, Passage>) {
    let mut bm25 = Bm25::new(Bm25Params::default(), AnalyzerConfig::default()).expect("bm25");
    bm25.extend(DOCS.iter().map(|(id, _, text)| (id.to_string(), *text)));
    let passages = DOCS
        .iter()
        .map(|(id, source, text)| {
            (
                id.to_string(),
                Passage {
                    source: source.to_string(),
                    text: text.to_string(),
                },
            )
        })
        .collect();
    (bm25, passages)
}

/// A registry with the search tool over [`corpus`].
fn search_registry() -> Result<Registry> {
    let (bm25, passages) = corpus();
    let mut registry = Registry::new();
    registry.register(RetrievalTool::new(bm25, move |id: &str| {
        passages.get(id).cloned()
    }))?;
    Ok(registry)
}

fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        id: "call_0".into(),
        name: name.into(),
        arguments,
    }
}

#[test]
fn bm25_search_returns_ranked_passages_with_ids_and_sources() -> Result<()> {
    let registry = search_registry()?;

    let out = registry.call(&call(
        "search",
        json!({"query": "how do I upgrade with apt", "k": 2}),
    ))?;
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["id"], "faq.md#0");
    assert_eq!(results[0]["source"], "faq.md");
    assert_eq!(results[0]["text"], DOCS[0].2);
    let (s0, s1) = (results[0]["score"].as_f64(), results[1]["score"].as_f64());
    assert!(
        matches!((s0, s1), (Some(a), Some(b)) if a >= b),
        "{s0:?} {s1:?}"
    );
    // Default k is 3; a term in one document only gives that document first.
    let out = registry.call(&call("search", json!({"query": "dpkg"})))?;
    assert_eq!(out["results"][0]["id"], "pkg.md#0");
    assert!(out["results"].as_array().is_some_and(|r| r.len() <= 3));
    Ok(())
}

#[test]
fn bad_arguments_are_refused_by_the_schema_before_searching() -> Result<()> {
    let registry = search_registry()?;
    for (args, pointer) in [
        (json!({"query": "apt", "k": 0}), "/k"),
        (json!({"query": "apt", "k": 11}), "/k"),
        (json!({"query": ""}), "/query"),
        (json!({"k": 2}), "query"),
        (json!({"query": "apt", "extra": 1}), "extra"),
    ] {
        let err = registry
            .call(&call("search", args.clone()))
            .expect_err("refused");
        assert!(
            matches!(&err, ToolError::InvalidArguments { message, .. } if message.contains(pointer)),
            "{args}: {err}"
        );
    }
    Ok(())
}

#[test]
fn passages_are_cut_at_max_chars_and_unknown_chunks_are_tool_errors() -> Result<()> {
    let (bm25, passages) = corpus();
    let tool = RetrievalTool::new(bm25, move |id: &str| passages.get(id).cloned()).max_chars(10);
    let mut registry = Registry::new();
    registry.register(tool)?;
    let out = registry.call(&call("search", json!({"query": "upgrade", "k": 1})))?;
    assert_eq!(out["results"][0]["text"], "To upgrade…");

    // An index whose chunks have no text (a stale lookup) is a reported failure, not a panic or an empty result.
    let (bm25, _) = corpus();
    let mut registry = Registry::new();
    registry.register(RetrievalTool::new(bm25, |_: &str| None))?;
    let err = registry
        .call(&call("search", json!({"query": "upgrade"})))
        .expect_err("no text");
    assert!(
        matches!(&err, ToolError::Failed { message, .. } if message.contains("faq.md#0")),
        "{err}"
    );
    Ok(())
}

/// A second retriever that ranks by the number of letters shared with the query, fused with BM25 by RRF: the tool
/// sees only the seam.
struct Letters(Vec<(String, String)>);

impl Retriever for Letters {
    fn retrieve(&self, query: &str, k: usize) -> temper_rag::Result<Vec<temper_rag::Hit>> {
        let mut hits: Vec<temper_rag::Hit> = self
            .0
            .iter()
            .map(|(id, text)| temper_rag::Hit {
                chunk_id: id.clone(),
                score: text.chars().filter(|c| query.contains(*c)).count() as f32,
            })
            .collect();
        temper_rag::sort_hits(&mut hits);
        hits.truncate(k);
        Ok(hits)
    }
}

#[test]
fn a_hybrid_retriever_plugs_into_the_same_tool() -> Result<()> {
    let (bm25, passages) = corpus();
    let letters = Letters(
        DOCS.iter()
            .map(|(id, _, t)| (id.to_string(), t.to_string()))
            .collect(),
    );
    let hybrid = Rrf::new(60.0, 10)
        .expect("rrf")
        .with(bm25, 1.0)
        .with(letters, 1.0);
    // `Rrf` borrows its retrievers (not `Send`), so this tool is called directly rather than through a `Registry`.
    let tool = RetrievalTool::named("search_docs", "Search.", hybrid, move |id: &str| {
        passages.get(id).cloned()
    });
    let out = tool.call(json!({"query": "network interfaces", "k": 4}))?;
    let ids: Vec<&str> = out["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], "net.md#0");
    Ok(())
}

#[test]
fn the_loop_searches_then_answers_from_the_passage() -> Result<()> {
    let registry = search_registry()?;
    let model = Scripted::new(&[
        "<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"upgrade debian\", \"k\": 1}}</tool_call>",
        "Run apt update, then apt full-upgrade [faq.md#0].",
    ]);
    let run = run_tool_loop(
        &model,
        &registry,
        vec![Message::user("How do I upgrade Debian?")],
        &LoopConfig::new(Format::Hermes),
    )?;
    assert_eq!(
        run.outcome,
        Outcome::Answer("Run apt update, then apt full-upgrade [faq.md#0].".into())
    );
    let seen = model.seen();
    let result = seen[1].last().expect("the tool's reply");
    assert_eq!(result.role, Role::Tool);
    let body: Value = serde_json::from_str(&result.content).expect("json");
    assert_eq!(body["results"][0]["id"], "faq.md#0");
    assert_eq!(body["results"][0]["text"], DOCS[0].2);
    Ok(())
}
