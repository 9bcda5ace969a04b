//! The retrieval tool (feature `retrieval`): searches a local corpus through temper-rag's [`Retriever`] seam —
//! BM25, dense, HNSW, hybrid or re-ranked, whichever the caller built — and returns the best passages with their
//! chunk ids, so the model can quote and cite them. It knows only the seam and a lookup from chunk id to text.

use serde::Deserialize;
use serde_json::{Value, json};
use temper_rag::{Hit, Retriever};

use crate::error::{Result, ToolError};
use crate::tool::{Tool, ToolSpec};

/// A retrieved passage as the tool returns it: where it comes from and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The source document (a file path relative to the indexed folder, a URL, …).
    pub source: String,
    /// The passage text.
    pub text: String,
}

/// Most passages one call may ask for.
const MAX_K: usize = 10;
/// Passages returned when the call does not say.
const DEFAULT_K: usize = 3;

/// The arguments the model gives (their schema is [`search_schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    k: Option<usize>,
}

/// The schema of [`SearchArgs`] with the bounds the tool enforces, so that the registry refuses an empty query,
/// k = 0 or k > [`MAX_K`] before a search runs.
fn search_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "description": "What to search for, in words."},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K,
                  "description": format!("How many passages to return (default {DEFAULT_K}).")},
        },
        "required": ["query"],
        "additionalProperties": false,
    })
}

/// Searches a corpus with any [`Retriever`]; `lookup` gives a hit's source and text by chunk id.
///
/// The reply is `{"query": …, "results": [{"id", "source", "score", "text"}, …]}`, best first; each text is cut to
/// `max_chars` characters (at a character boundary, marked with `…`) so one reply cannot flood the context.
pub struct RetrievalTool<R, L> {
    spec: ToolSpec,
    retriever: R,
    lookup: L,
    max_chars: usize,
}

impl<R, L> RetrievalTool<R, L>
where
    R: Retriever,
    L: Fn(&str) -> Option<Passage>,
{
    /// A tool named `search` with k ≤ 10 and passages of up to 1,000 characters.
    pub fn new(retriever: R, lookup: L) -> RetrievalTool<R, L> {
        RetrievalTool::named(
            "search",
            "Search the local documents. Returns the most relevant passages, best first, each with its id and source.",
            retriever,
            lookup,
        )
    }

    /// A tool with its own name and description (e.g. `search_debian_faq`).
    pub fn named(
        name: impl Into<String>,
        description: impl Into<String>,
        retriever: R,
        lookup: L,
    ) -> RetrievalTool<R, L> {
        RetrievalTool {
            spec: ToolSpec::new(name, description, search_schema()),
            retriever,
            lookup,
            max_chars: 1000,
        }
    }

    /// Cuts each passage to `max_chars` characters (at least 1).
    pub fn max_chars(mut self, max_chars: usize) -> RetrievalTool<R, L> {
        self.max_chars = max_chars.max(1);
        self
    }

    fn result(&self, hit: &Hit) -> Result<Value> {
        let passage = (self.lookup)(&hit.chunk_id).ok_or_else(|| {
            ToolError::failed(
                &self.spec.name,
                format!(
                    "the index returned chunk `{}`, which has no text",
                    hit.chunk_id
                ),
            )
        })?;
        Ok(json!({
            "id": hit.chunk_id,
            "source": passage.source,
            "score": hit.score,
            "text": truncate(&passage.text, self.max_chars),
        }))
    }
}

impl<R, L> Tool for RetrievalTool<R, L>
where
    R: Retriever,
    L: Fn(&str) -> Option<Passage>,
{
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, args: Value) -> Result<Value> {
        let name = &self.spec.name;
        let args: SearchArgs =
            serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments {
                tool: name.clone(),
                message: e.to_string(),
            })?;
        let query = args.query.trim();
        if query.is_empty() {
            return Err(ToolError::failed(name, "the query is empty"));
        }
        let k = args.k.unwrap_or(DEFAULT_K);
        if k == 0 || k > MAX_K {
            return Err(ToolError::failed(
                name,
                format!("k must be between 1 and {MAX_K}, got {k}"),
            ));
        }
        let hits = self
            .retriever
            .retrieve(query, k)
            .map_err(|e| ToolError::failed(name, e.to_string()))?;
        let results = hits
            .iter()
            .take(k)
            .map(|h| self.result(h))
            .collect::<Result<Vec<Value>>>()?;
        Ok(json!({"query": query, "results": results}))
    }
}

/// `text` cut to at most `max_chars` characters, with `…` when something was cut.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("", 1), "");
    }
}
