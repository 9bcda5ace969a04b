//! The retrieval tool (feature `retrieval`): searches a local corpus through temper-rag's [`Retriever`] seam —
//! BM25, dense, HNSW, hybrid or re-ranked, whichever the caller built — and returns the best passages with their
//! chunk ids, so the model can quote and cite them. It knows only the seam and a lookup from chunk id to text.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use temper_rag::{Hit, Retriever};

use crate::error::{Result, ToolError};
use crate::tool::{Tool, ToolSpec, schema_for};

/// A retrieved passage as the tool returns it: where it comes from and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The source document (a file path relative to the indexed folder, a URL, …).
    pub source: String,
    /// The passage text.
    pub text: String,
}

/// The arguments the model gives.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to search for, in words.
    query: String,
    /// How many passages to return (default 3).
    #[serde(default)]
    k: Option<usize>,
}

/// Searches a corpus with any [`Retriever`]; `lookup` gives a hit's source and text by chunk id.
///
/// The reply is `{"query": …, "results": [{"id", "source", "score", "text"}, …]}`, best first; each text is cut to
/// `max_chars` characters (at a character boundary, marked with `…`) so one reply cannot flood the context.
pub struct RetrievalTool<R, L> {
    spec: ToolSpec,
    retriever: R,
    lookup: L,
    max_k: usize,
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
        let mut parameters = schema_for::<SearchArgs>();
        let max_k = 10;
        // The schema says what the tool accepts, so the registry refuses k = 0 or k > max_k before a search runs.
        if let Some(k) = parameters.pointer_mut("/properties/k") {
            *k = json!({"type": "integer", "minimum": 1, "maximum": max_k,
                        "description": "How many passages to return (default 3)."});
        }
        if let Some(q) = parameters.pointer_mut("/properties/query") {
            *q = json!({"type": "string", "minLength": 1, "description": "What to search for, in words."});
        }
        RetrievalTool {
            spec: ToolSpec::new(name, description, parameters),
            retriever,
            lookup,
            max_k,
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
        let k = args.k.unwrap_or(3);
        if k == 0 || k > self.max_k {
            return Err(ToolError::failed(
                name,
                format!("k must be between 1 and {}, got {k}", self.max_k),
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
