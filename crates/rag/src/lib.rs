//! `temper-rag`: retrieval-augmented generation that a team can reuse on its own.
//!
//! - [`Chunker`] cuts documents into [`Chunk`]s (word windows with overlap, sentences, paragraphs, Markdown
//!   sections), each with its source id and byte offsets.
//! - [`Retriever`] is the seam (one required method: a query and k → ranked [`Hit`]s). It is implemented by
//!   [`Bm25`] (the sparse side, with a real [`Analyzer`]), [`DenseRetriever`] over an [`ExactIndex`] or an HNSW
//!   index (feature `hnsw`), and [`Rrf`] (reciprocal rank fusion); [`Reranked`] plugs in a [`Reranker`],
//!   e.g. [`LlmReranker`] (a chat model rates each passage 0–10).
//! - [`CorpusIndex`] indexes a folder, persists itself and re-indexes only changed files.
//! - [`ask`] answers from retrieved passages through any `temper_chat::ChatBackend`, with citations checked.
//! - [`metrics`] computes recall@k, precision@k, MRR and nDCG@k as `trec_eval` does.
//! - Feature `dense`: [`MiniLm`], the all-MiniLM-L6-v2 sentence encoder (BERT) on burn, an [`Embedder`].
//!
//! **Architecture invariant:** with default features this crate reaches neither burn nor an HTTP stack.
//!
//! ```
//! use temper_rag::{AnalyzerConfig, Bm25, Bm25Params, Retriever};
//!
//! let mut bm25 = Bm25::new(Bm25Params::default(), AnalyzerConfig::default())?;
//! bm25.extend([("a".to_string(), "apt installs packages"), ("b".to_string(), "the kernel boots")]);
//! let hits = bm25.retrieve("installing a package", 5)?;
//! assert_eq!(hits[0].chunk_id, "a");
//! # Ok::<(), temper_rag::RagError>(())
//! ```

mod analyzer;
mod bm25;
mod chunk;
mod corpus;
#[cfg(feature = "dense")]
mod dense;
mod error;
mod fusion;
mod ground;
#[cfg(feature = "hnsw")]
mod hnsw;
mod html;
pub mod metrics;
mod rerank;
mod retriever;
mod vectors;

pub use analyzer::{Analyzer, AnalyzerConfig, ENGLISH_STOP_WORDS};
pub use bm25::{Bm25, Bm25Params, Idf};
pub use chunk::{Chunk, Chunker};
pub use corpus::{CorpusIndex, INDEX_FILE, IndexConfig, UpdateReport, VECTORS_FILE, write_atomic};
#[cfg(feature = "dense")]
pub use dense::{MiniLm, MiniLmConfig};
pub use error::{RagError, Result};
pub use fusion::{Rrf, fuse};
pub use ground::{GroundedAnswer, Passage, SYSTEM_PROMPT, ask, cited_numbers, grounded_prompt};
#[cfg(feature = "hnsw")]
pub use hnsw::{HNSW_FILE, HnswIndex, HnswParams};
pub use html::html_to_text;
pub use rerank::{
    Judgement, LlmReranker, MAX_RATING, RERANK_PROMPT, UNPARSED, parse_rating, rerank_messages,
};
pub use retriever::{Hit, Reranked, Reranker, Retriever, sort_hits};
pub use vectors::{DenseRetriever, Embedder, ExactIndex, VectorSearch, dot};
