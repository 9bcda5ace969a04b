//! `temper rag`: index a folder, query it (BM25, dense MiniLM, hybrid), evaluate retrieval, embed a text, and
//! answer questions from retrieved passages with citations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use temper_rag::metrics::{Qrels, QueryMetrics};
use temper_rag::{
    Chunker, CorpusIndex, DenseRetriever, Embedder, HNSW_FILE, Hit, HnswParams, IndexConfig,
    LlmReranker, MiniLm, Reranked, Retriever, Rrf, ask,
};

/// The index folder used when `--index` is not given (under the current directory).
pub const DEFAULT_INDEX: &str = ".temper-rag";
/// The name recorded for MiniLM embeddings.
const DENSE_MODEL: &str = "minilm";

/// `temper rag` subcommands.
#[derive(Subcommand)]
pub enum RagCommand {
    /// Index the text, Markdown and HTML files under DIR (re-indexing only changed files).
    Index(IndexArgs),
    /// The best chunks for a query.
    Query(QueryArgs),
    /// Retrieval metrics (recall@1/5/10, precision@5, MRR, nDCG@10) over a JSONL file of queries.
    Eval(EvalArgs),
    /// Queries for `eval` made from the index's section headings: each heading is a query, its section the gold.
    HeadingQueries(HeadingArgs),
    /// The normalised MiniLM embedding of a text.
    Embed(EmbedArgs),
    /// Answer a question from retrieved passages, citing them.
    Ask(AskArgs),
}

#[derive(Args)]
pub struct HeadingArgs {
    /// The index folder.
    #[arg(long, default_value = DEFAULT_INDEX)]
    index: PathBuf,
    /// Only sections at least this deep in the heading tree (2: skip the top-level `#` chapters).
    #[arg(long, default_value_t = 1)]
    min_depth: usize,
}

#[derive(Args)]
pub struct IndexArgs {
    /// The folder to index.
    dir: PathBuf,
    /// The index folder.
    #[arg(long, default_value = DEFAULT_INDEX)]
    index: PathBuf,
    /// Also embed the chunks with MiniLM (needed by `--mode dense|hybrid|hnsw`).
    #[arg(long)]
    dense: bool,
    /// Also build an HNSW graph of the embeddings (`hnsw.bin`, needed by `--mode hnsw`; implies `--dense`). Once
    /// built, it is rebuilt whenever re-indexing changes the embeddings.
    #[arg(long)]
    hnsw: bool,
    /// The HNSW graph's candidate list size while building.
    #[arg(long, default_value_t = 100)]
    ef_construction: usize,
    /// Largest chunk in bytes (Markdown sections longer than this are split by paragraphs).
    #[arg(long, default_value_t = 1500)]
    max_bytes: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// How to retrieve.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Mode {
    /// BM25.
    Bm25,
    /// MiniLM embeddings, exact top-k.
    Dense,
    /// Reciprocal rank fusion of BM25 and dense.
    Hybrid,
    /// MiniLM embeddings, approximate top-k with the HNSW graph (`temper rag index --hnsw`).
    Hnsw,
}

#[derive(Args)]
pub struct RetrieveArgs {
    /// The index folder.
    #[arg(long, default_value = DEFAULT_INDEX)]
    index: PathBuf,
    /// Retrieval mode.
    #[arg(long, value_enum, default_value = "bm25")]
    mode: Mode,
    /// Number of hits.
    #[arg(short, long, default_value_t = 5)]
    k: usize,
    /// The HNSW search's candidate list size (`--mode hnsw`; default: the one it was built with, 100).
    #[arg(long)]
    ef: Option<usize>,
    /// The RRF constant of `--mode hybrid`.
    #[arg(long, allow_negative_numbers = true, default_value_t = 60.0)]
    rrf_k: f32,
    /// Re-rank the first `--rerank-depth` hits with an LLM judge that rates each passage 0-10: `openai:<model>`
    /// (endpoint from the environment, as `temper judge`), an asset name or a model path (on the CPU).
    #[arg(long)]
    rerank: Option<String>,
    /// How many first-stage hits the judge rates (the rest follow in first-stage order).
    #[arg(long, default_value_t = 20)]
    rerank_depth: usize,
}

#[derive(Args)]
pub struct QueryArgs {
    /// The query.
    query: String,
    #[command(flatten)]
    retrieve: RetrieveArgs,
    /// Print a JSON list of hits.
    #[arg(long)]
    json: bool,
}

/// Unit of relevance for `eval`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Unit {
    /// Each chunk.
    Chunk,
    /// Chunks of one section (source + heading) count as one document.
    Section,
    /// Chunks of one file count as one document.
    Source,
}

#[derive(Args)]
pub struct EvalArgs {
    /// JSONL: one `{"query": "...", "relevant": {"chunk id": grade, ...}}` (or a list of chunk ids) a line; an
    /// optional `title` is a note for people and is not used.
    #[arg(long)]
    queries: PathBuf,
    #[command(flatten)]
    retrieve: RetrieveArgs,
    /// What counts as one document.
    #[arg(long, value_enum, default_value = "chunk")]
    unit: Unit,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// The text.
    #[arg(long)]
    text: String,
    /// Print `{"embedding": [...]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AskArgs {
    /// The question.
    question: String,
    #[command(flatten)]
    retrieve: RetrieveArgs,
    /// `openai:<model>` (endpoint from the environment, as `temper judge`), an asset name or a model path.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Device of a local model.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Upper bound on the answer's tokens.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Print JSON (answer, passages, citations, invalid citations).
    #[arg(long)]
    json: bool,
}

/// Runs a `temper rag` subcommand.
pub fn rag_cmd(cmd: &RagCommand) -> Result<()> {
    match cmd {
        RagCommand::Index(a) => index_cmd(a),
        RagCommand::Query(a) => query_cmd(a),
        RagCommand::Eval(a) => eval_cmd(a),
        RagCommand::HeadingQueries(a) => heading_queries_cmd(a),
        RagCommand::Embed(a) => embed_cmd(a),
        RagCommand::Ask(a) => ask_cmd(a),
    }
}

fn minilm() -> Result<MiniLm> {
    let asset = temper_assets::find(DENSE_MODEL)?;
    let fetched = temper_assets::fetch(asset, &mut crate::progress::Bar::default())?;
    let device = temper_models::parse_device("cpu")?;
    MiniLm::load(&fetched.dir, &device)
        .with_context(|| format!("loading MiniLM from {}", fetched.dir.display()))
}

pub(crate) fn open(index: &Path) -> Result<CorpusIndex> {
    CorpusIndex::open(index).with_context(|| {
        format!(
            "opening the index {} (run `temper rag index DIR` first)",
            index.display()
        )
    })
}

fn index_cmd(a: &IndexArgs) -> Result<()> {
    if !a.dir.is_dir() {
        bail!("{}: not a folder", a.dir.display());
    }
    let config = IndexConfig {
        chunker: Chunker::Markdown {
            max_bytes: a.max_bytes,
        },
        ..IndexConfig::default()
    };
    let mut idx = match CorpusIndex::open(&a.index) {
        Ok(idx) if idx.config() == &config => idx,
        _ => CorpusIndex::new(config)?,
    };
    let start = std::time::Instant::now();
    let report = idx.update_from_dir(&a.dir)?;
    // An index that has embeddings keeps them complete: new and changed chunks are embedded too.
    let embedded = if a.dense || a.hnsw || idx.dense_model().is_some() {
        idx.embed_missing(DENSE_MODEL, &minilm()?, 32)?
    } else {
        0
    };
    idx.save(&a.index)?;
    let hnsw_path = a.index.join(HNSW_FILE);
    let stale = hnsw_path.is_file() && idx.open_hnsw(&a.index, None).is_err();
    let hnsw_built = a.hnsw || stale;
    if hnsw_built {
        let params = HnswParams {
            ef_construction: a.ef_construction,
            ..HnswParams::default()
        };
        idx.build_hnsw(params)?.save(&hnsw_path)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    for (path, reason) in &report.skipped {
        eprintln!("skipped {path}: {reason}");
    }
    if a.json {
        let json = serde_json::json!({
            "report": report, "files": idx.num_files(), "chunks": idx.chunks().len(), "embedded": embedded,
            "hnsw_built": hnsw_built, "seconds": seconds, "index": a.index,
        });
        println!("{json}");
    } else {
        println!(
            "{} files ({} added, {} changed, {} unchanged, {} removed, {} skipped), {} chunks, {} embedded{}, {:.2}s → {}",
            idx.num_files(),
            report.added.len(),
            report.changed.len(),
            report.unchanged.len(),
            report.removed.len(),
            report.skipped.len(),
            idx.chunks().len(),
            embedded,
            if hnsw_built { ", HNSW built" } else { "" },
            seconds,
            a.index.display()
        );
    }
    Ok(())
}

/// Retrieves with the requested mode (dense and hybrid load MiniLM once per call of `f`).
fn with_retriever<T>(
    idx: &CorpusIndex,
    args: &RetrieveArgs,
    f: impl FnOnce(&dyn Retriever) -> Result<T>,
) -> Result<T> {
    if args.k == 0 {
        bail!("-k must be > 0");
    }
    let judge = match &args.rerank {
        Some(model) => {
            if args.rerank_depth == 0 {
                bail!("--rerank-depth must be > 0");
            }
            let spec = crate::judge::JudgeSpec::parse(model)?;
            Some(LlmReranker::new(
                crate::judge::build_backend(&spec, "cpu")?.0,
            ))
        }
        None => None,
    };
    let text = |id: &str| Ok(idx.chunk(id)?.indexed_text());
    let f = |r: &dyn Retriever| match &judge {
        Some(judge) => f(&Reranked {
            inner: r,
            reranker: judge,
            text,
            depth: args.rerank_depth,
        }),
        None => f(r),
    };
    if args.mode == Mode::Bm25 {
        return f(idx.bm25());
    }
    if idx.dense_model().is_none() {
        bail!("the index has no embeddings: run `temper rag index DIR --dense`");
    }
    if args.mode == Mode::Hnsw {
        let hnsw = idx
            .open_hnsw(&args.index, args.ef)
            .context("run `temper rag index DIR --hnsw` to build the graph")?;
        let model = minilm()?;
        return f(&DenseRetriever {
            embedder: &model,
            index: hnsw,
        });
    }
    let model = minilm()?;
    let dense = DenseRetriever {
        embedder: &model,
        index: idx.exact_index()?,
    };
    match args.mode {
        Mode::Dense => f(&dense),
        _ => {
            let depth = (args.k * 4).max(50);
            let hybrid = Rrf::new(args.rrf_k, depth)?
                .with(idx.bm25(), 1.0)
                .with(dense, 1.0);
            f(&hybrid)
        }
    }
}

fn hits_json(idx: &CorpusIndex, hits: &[Hit]) -> Result<serde_json::Value> {
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let c = idx.chunk(&h.chunk_id)?;
        out.push(serde_json::json!({
            "source": c.source, "chunk_id": h.chunk_id, "score": h.score, "heading": c.heading,
            "start": c.start, "end": c.end, "text": c.text,
        }));
    }
    Ok(serde_json::Value::Array(out))
}

fn query_cmd(a: &QueryArgs) -> Result<()> {
    let idx = open(&a.retrieve.index)?;
    let hits = with_retriever(&idx, &a.retrieve, |r| {
        Ok(r.retrieve(&a.query, a.retrieve.k)?)
    })?;
    if a.json {
        println!("{}", hits_json(&idx, &hits)?);
        return Ok(());
    }
    for (i, h) in hits.iter().enumerate() {
        let c = idx.chunk(&h.chunk_id)?;
        let preview: String = c
            .text
            .chars()
            .take(160)
            .collect::<String>()
            .replace('\n', " ");
        println!(
            "{:>2}. {:.4}  {}\n    {preview}",
            i + 1,
            h.score,
            h.chunk_id
        );
    }
    Ok(())
}

/// One line of a queries file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryLine {
    query: String,
    relevant: Relevant,
    /// A note for people (e.g. the section title a paraphrased query was written for); not used.
    #[serde(default, rename = "title")]
    _title: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Relevant {
    Graded(HashMap<String, i32>),
    Ids(Vec<String>),
}

fn read_queries(path: &Path) -> Result<Vec<(String, Qrels)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: QueryLine =
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let qrels = match q.relevant {
            Relevant::Graded(m) => m,
            Relevant::Ids(ids) => ids.into_iter().map(|id| (id, 1)).collect(),
        };
        out.push((q.query, qrels));
    }
    if out.is_empty() {
        bail!("{}: no queries", path.display());
    }
    Ok(out)
}

/// The id of the unit a chunk belongs to.
fn unit_of(idx: &CorpusIndex, chunk_id: &str, unit: Unit) -> String {
    match (unit, idx.chunk(chunk_id)) {
        (Unit::Section, Ok(c)) => format!("{} > {}", c.source, c.heading.as_deref().unwrap_or("")),
        (Unit::Source, Ok(c)) => c.source.clone(),
        _ => chunk_id.to_string(),
    }
}

fn eval_cmd(a: &EvalArgs) -> Result<()> {
    let idx = open(&a.retrieve.index)?;
    let queries = read_queries(&a.queries)?;
    for (q, rel) in &queries {
        if let Some(bad) = rel.keys().find(|id| idx.chunk(id).is_err()) {
            bail!(
                "{}: query {q:?}: chunk id `{bad}` is not in the index",
                a.queries.display()
            );
        }
    }
    let depth = a.retrieve.k.max(100);
    let start = std::time::Instant::now();
    let per_query = with_retriever(&idx, &a.retrieve, |r| {
        let mut all = Vec::with_capacity(queries.len());
        for (q, rel) in &queries {
            let mut seen = std::collections::HashSet::new();
            let ranked: Vec<String> = r
                .retrieve(q, depth)?
                .into_iter()
                .map(|h| unit_of(&idx, &h.chunk_id, a.unit))
                .filter(|u| seen.insert(u.clone()))
                .collect();
            let mut qrels: Qrels = HashMap::new();
            for (id, g) in rel {
                let e = qrels.entry(unit_of(&idx, id, a.unit)).or_insert(*g);
                *e = (*e).max(*g);
            }
            all.push(QueryMetrics::of(&ranked, &qrels));
        }
        Ok(all)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let mean = QueryMetrics::mean(&per_query);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"queries": queries.len(), "mode": format!("{:?}", a.retrieve.mode).to_lowercase(), "metrics": mean, "seconds": seconds})
        );
    } else {
        println!(
            "{} queries, {:?}: recall@1 {:.3}  recall@5 {:.3}  recall@10 {:.3}  P@5 {:.3}  MRR {:.3}  nDCG@10 {:.3}  ({:.2}s)",
            queries.len(),
            a.retrieve.mode,
            mean.recall_1,
            mean.recall_5,
            mean.recall_10,
            mean.precision_5,
            mean.mrr,
            mean.ndcg_10,
            seconds
        );
    }
    Ok(())
}

fn heading_queries_cmd(a: &HeadingArgs) -> Result<()> {
    let idx = open(&a.index)?;
    // Section (source, heading path) → its chunks, in index order.
    let mut sections: Vec<((String, String), Vec<String>)> = Vec::new();
    for c in idx.chunks() {
        let Some(h) = c
            .heading
            .as_ref()
            .filter(|h| h.split(" > ").count() >= a.min_depth)
        else {
            continue;
        };
        let key = (c.source.clone(), h.clone());
        match sections.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(c.id.clone()),
            None => sections.push((key, vec![c.id.clone()])),
        }
    }
    for ((_, path), ids) in sections {
        // The deepest heading, without a leading section number (`1.2. What is Debian?` → `What is Debian?`).
        let title = path
            .rsplit(" > ")
            .next()
            .unwrap_or(&path)
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .trim();
        if !title.is_empty() {
            println!("{}", serde_json::json!({"query": title, "relevant": ids}));
        }
    }
    Ok(())
}

fn embed_cmd(a: &EmbedArgs) -> Result<()> {
    let v = minilm()?
        .embed(&[a.text.as_str()])?
        .pop()
        .context("no embedding")?;
    if a.json {
        println!("{}", serde_json::json!({ "embedding": v }));
    } else {
        println!(
            "{}",
            v.iter()
                .map(|x| format!("{x:.6}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

fn ask_cmd(a: &AskArgs) -> Result<()> {
    let idx = open(&a.retrieve.index)?;
    let spec = crate::judge::JudgeSpec::parse(&a.model)?;
    let (backend, _) = crate::judge::build_backend(&spec, &a.device)?;
    let params = temper_chat::GenerationParams::greedy(a.max_new_tokens);
    let text = |id: &str| Ok(idx.chunk(id)?.indexed_text());
    let answer = with_retriever(&idx, &a.retrieve, |r| {
        Ok(ask(&a.question, r, &text, &backend, &params, a.retrieve.k)?)
    })?;
    if a.json {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(());
    }
    println!("{}\n", answer.answer.trim());
    for p in &answer.passages {
        println!("[{}] {} ({:.4})", p.number, p.chunk_id, p.score);
    }
    if !answer.invalid_citations.is_empty() {
        eprintln!(
            "warning: the answer cites passages that were not retrieved: {:?}",
            answer.invalid_citations
        );
    }
    Ok(())
}
