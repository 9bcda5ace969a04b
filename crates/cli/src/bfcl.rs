//! `temper eval --task bfcl`: the Berkeley Function Calling Leaderboard (v4, asset `bfcl`) scored with
//! `temper-tools`' AST checker — from pre-decoded calls (`--responses FILE.jsonl`, any model) or by asking a model
//! (`--model`: a Temper model through `LocalChat`, or `openai:<model>`) in a tool-call format.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use temper_chat::GenerationParams;
use temper_tools::Format;
use temper_tools::bfcl::{self, Category, Dataset, Verdict};

use crate::eval::{EvalArgs, write_out};
use crate::judge::{JudgeSpec, asset_file, build_backend};

/// The printed report: the checker's verdicts plus what was evaluated.
#[derive(Serialize)]
struct BfclReport<'a> {
    task: &'static str,
    category: &'static str,
    /// `responses:<file>` or the model spec.
    source: String,
    format: &'static str,
    correct: usize,
    total: usize,
    accuracy: f64,
    results: &'a [Verdict],
}

/// The category's questions (and possible answers) from the `bfcl` asset or the BFCL data folder `--data`; when a
/// model is asked, the first `--limit` of them.
fn dataset(args: &EvalArgs) -> Result<Dataset> {
    let category =
        Category::parse(&args.category).map_err(|e| anyhow::anyhow!("--category: {e}"))?;
    let mut data = match &args.data {
        Some(dir) => Dataset::load(dir, category)?,
        None => {
            let (questions, answers) = category.package_files();
            let questions = asset_file("bfcl", &questions)?;
            let answers = answers.map(|a| asset_file("bfcl", &a)).transpose()?;
            Dataset::load_files(category, &questions, answers.as_deref())?
        }
    };
    if args.responses.is_none() {
        data.items.truncate(args.limit);
    }
    Ok(data)
}

/// `temper eval --task bfcl`.
pub fn bfcl_cmd(args: &EvalArgs) -> Result<()> {
    let format = Format::parse_name(&args.format).map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let data = dataset(args)?;
    let (report, source) = match &args.responses {
        Some(path) => (
            bfcl::score_file(&data, path)?,
            format!("responses:{}", path.display()),
        ),
        None => {
            let model = args
                .model
                .as_deref()
                .context("--task bfcl needs --model or --responses")?;
            let spec = JudgeSpec::parse(model).map_err(|e| anyhow::anyhow!("--model: {e}"))?;
            let (backend, _) = build_backend(&spec, &args.device)?;
            let params = GenerationParams::greedy(args.max_new_tokens);
            let bar = ProgressBar::new(data.items.len() as u64).with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} questions, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("bfcl {}", data.category.name()));
            let asked = bfcl::ask(&data, backend.as_ref(), format, &params, |done| {
                bar.set_position(done as u64)
            })?;
            bar.finish_and_clear();
            if let Some(dir) = &args.out {
                let text: String = data
                    .items
                    .iter()
                    .zip(&asked)
                    .map(|(item, (_, reply))| {
                        format!("{}\n", serde_json::json!({"id": item.id, "reply": reply}))
                    })
                    .collect();
                write_out(dir, "replies.jsonl", &text)?;
            }
            let responses: Vec<_> = asked.into_iter().map(|(response, _)| response).collect();
            (bfcl::score(&data, &responses)?, model.to_string())
        }
    };
    let printed = BfclReport {
        task: "bfcl",
        category: report.category.name(),
        source,
        format: format.name(),
        correct: report.correct,
        total: report.total,
        accuracy: report.accuracy,
        results: &report.results,
    };
    let json = serde_json::to_string_pretty(&printed)?;
    if let Some(dir) = &args.out {
        write_out(dir, "report.json", &json)?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!(
            "bfcl {} ({}): {}/{} correct, accuracy {:.3}",
            printed.category, printed.source, printed.correct, printed.total, printed.accuracy
        );
    }
    Ok(())
}
