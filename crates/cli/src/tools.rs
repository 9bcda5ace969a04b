//! `temper tools run`: one question through the tool loop — a Temper model (through `LocalChat` and its chat
//! template) or an OpenAI-compatible endpoint, the built-in tools and, with `--index`, a search tool over a
//! `temper rag` index — until the model answers, with the transcript as JSONL.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use temper_chat::{GenerationParams, Message};
use temper_rag::{CorpusIndex, Hit, Retriever};
use temper_tools::builtins::register_builtin;
use temper_tools::builtins::retrieval::{Passage, RetrievalTool};
use temper_tools::{Format, LoopConfig, Outcome, Registry, TurnStyle, run_tool_loop};

use crate::judge::{JudgeSpec, build_backend};

/// `temper tools ...`.
#[derive(clap::Subcommand)]
pub enum ToolsCommand {
    /// Ask one question with tools: generate → parse calls → validate → run → hand the results back → repeat.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The user's question.
    #[arg(long)]
    prompt: String,
    /// `openai:<model>` (endpoint from TEMPER_JUDGE_BASE_URL, as `temper judge`), an asset name or a model path.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Tools the model may call, comma-separated: calculator, date, convert_units, search (search needs --index).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "calculator,date,convert_units"
    )]
    tools: Vec<String>,
    /// A `temper rag index` folder: adds the `search` tool (BM25 over its chunks) unless --tools is given without it.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Tool-call syntax the model is asked for and read in: hermes, openai, llama3, pythonic, json.
    #[arg(long, default_value = "hermes")]
    format: String,
    /// How calls and results go back into the conversation: `structured` (assistant `tool_calls` and `tool`
    /// messages, for endpoints and tool-aware chat templates) or `text` (plain turns). Default: structured for
    /// `openai:` models, text for local ones.
    #[arg(long)]
    turns: Option<String>,
    /// A system prompt before the tools' description.
    #[arg(long)]
    system: Option<String>,
    /// Most model replies before giving up.
    #[arg(long, default_value_t = 6, allow_negative_numbers = true)]
    max_steps: usize,
    /// New tokens per reply.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true)]
    max_new_tokens: usize,
    /// Device of a local model.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write every turn to this file, one JSON object a line.
    #[arg(long)]
    transcript: Option<PathBuf>,
    /// Print one JSON object: outcome, answer, steps, tool calls made.
    #[arg(long)]
    json: bool,
}

pub fn tools_cmd(cmd: &ToolsCommand) -> Result<()> {
    match cmd {
        ToolsCommand::Run(args) => run_cmd(args),
    }
}

/// BM25 over a shared `CorpusIndex`, owned so that the tool can live in a `Registry`.
struct IndexBm25(Arc<CorpusIndex>);

impl Retriever for IndexBm25 {
    fn retrieve(&self, query: &str, k: usize) -> temper_rag::Result<Vec<Hit>> {
        self.0.bm25().retrieve(query, k)
    }
}

fn registry(args: &RunArgs) -> Result<Registry> {
    let mut names: Vec<&str> = args
        .tools
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if args.index.is_some() && !names.contains(&"search") {
        names.push("search");
    }
    let mut registry = Registry::new();
    for name in names {
        match name {
            "search" => {
                let dir = args
                    .index
                    .as_deref()
                    .context("--tools search needs --index DIR (a `temper rag index` folder)")?;
                let index = Arc::new(crate::rag::open(dir)?);
                let lookup_index = Arc::clone(&index);
                let lookup = move |id: &str| {
                    let chunk = lookup_index.chunk(id).ok()?;
                    Some(Passage {
                        source: chunk.source.clone(),
                        text: chunk.indexed_text(),
                    })
                };
                registry.register(RetrievalTool::new(IndexBm25(index), lookup))?
            }
            other => {
                if !register_builtin(&mut registry, other)? {
                    bail!(
                        "--tools: unknown tool `{other}`; known: calculator, date, convert_units, search"
                    );
                }
                &mut registry
            }
        };
    }
    if registry.names().is_empty() {
        bail!("--tools: no tools given");
    }
    Ok(registry)
}

fn run_cmd(args: &RunArgs) -> Result<()> {
    if args.prompt.trim().is_empty() {
        bail!("--prompt is empty");
    }
    if args.max_steps == 0 {
        bail!("--max-steps must be at least 1");
    }
    let format = Format::parse_name(&args.format).map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let spec = JudgeSpec::parse(&args.model).map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    let turns = match args.turns.as_deref() {
        Some("structured") => TurnStyle::Structured,
        Some("text") => TurnStyle::Text,
        Some(other) => bail!("--turns: expected structured or text, got `{other}`"),
        None if matches!(spec, JudgeSpec::OpenAi(_)) => TurnStyle::Structured,
        None => TurnStyle::Text,
    };
    let registry = registry(args)?;
    let (backend, _) = build_backend(&spec, &args.device)?;
    let mut config = LoopConfig::new(format);
    config.turns = turns;
    config.max_steps = args.max_steps;
    config.params = GenerationParams::greedy(args.max_new_tokens);
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(args.prompt.clone()));
    let run = run_tool_loop(backend.as_ref(), &registry, messages, &config)?;
    if let Some(path) = &args.transcript {
        run.transcript.write_jsonl(path)?;
    }
    let calls: Vec<serde_json::Value> = run
        .transcript
        .turns
        .iter()
        .filter(|t| t.kind == temper_tools::TurnKind::ToolResult)
        .map(|t| serde_json::json!(t))
        .collect();
    let (outcome, answer) = match &run.outcome {
        Outcome::Answer(text) => ("answer", serde_json::Value::String(text.clone())),
        Outcome::Stopped(args) => ("stopped", args.clone()),
        Outcome::StepLimit => ("step_limit", serde_json::Value::Null),
    };
    if args.json {
        let body = serde_json::json!({"outcome": outcome, "answer": answer, "steps": run.steps, "tool_results": calls});
        println!("{body}");
    } else {
        match &run.outcome {
            Outcome::Answer(text) => println!("{text}"),
            Outcome::Stopped(v) => println!("{v}"),
            Outcome::StepLimit => {
                bail!("no answer after {} model replies (--max-steps)", run.steps)
            }
        }
        eprintln!("{} model replies, {} tool results", run.steps, calls.len());
    }
    Ok(())
}
