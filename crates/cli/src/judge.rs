//! `temper judge`, `temper agree` and `temper champ-agreement`: the command-line side of `temper-judges`
//! (a local model judges through `temper_models::LocalChat`).
//!
//! - `judge` runs pairwise LLM-as-a-judge over a pairs JSONL file with a local Temper model or an
//!   OpenAI-compatible endpoint (`openai:<model>`), writes one verdict record per line and prints
//!   the bias summary (position consistency, first-slot preference, length bias) to stderr.
//! - `agree` compares two label files with every agreement metric and its bootstrap CI.
//! - `champ-agreement` asks a judge whether each human-annotated CHAMP solution (Mao et al. 2024,
//!   <https://arxiv.org/abs/2401.06961>) contains an error and measures agreement with the human
//!   "first wrong step" annotation (an annotated step means "has an error").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use temper_judges::{
    AgreeConfig, AgreementReport, BootstrapConfig, ChampItem, ChampRunConfig, ChatBackend,
    GenerationParams, JudgeRunConfig, Label, LlmJudge, Metric, OpenAiBackend, OpenAiConfig,
    champ_run, load_champ_items, sample_order,
};
use temper_models::{LocalChat, parse_device};

/// Which judge `--judge` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JudgeSpec {
    /// `openai:<model>`: an OpenAI-compatible endpoint from `TEMPER_JUDGE_BASE_URL`.
    OpenAi(String),
    /// An asset name or a path to a local model.
    Local(String),
}

impl JudgeSpec {
    /// Parses `openai:<model>` or a local model spec.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            bail!("--judge is empty (use openai:<model>, an asset name or a model path)");
        }
        match spec.strip_prefix("openai:") {
            Some("") => bail!("--judge openai: needs a model name, e.g. openai:gpt-4o"),
            Some(m) => Ok(JudgeSpec::OpenAi(m.to_string())),
            None => Ok(JudgeSpec::Local(spec.to_string())),
        }
    }
}

/// A chat back end that can be shared by the judge's worker threads.
pub type SharedBackend = Box<dyn ChatBackend + Send + Sync>;

/// Builds the back end named by `spec`; local models load on `device`. The second value says
/// whether it can serve concurrent requests (a local model cannot).
pub(crate) fn build_backend(spec: &JudgeSpec, device: &str) -> Result<(SharedBackend, bool)> {
    Ok(match spec {
        JudgeSpec::OpenAi(model) => {
            let mut config = OpenAiConfig::from_env(model.clone())?;
            config.cache_dir = Some(temper_assets::home().join("judge-cache"));
            (Box::new(OpenAiBackend::new(config)?), true)
        }
        JudgeSpec::Local(m) => {
            let device = parse_device(device)?;
            let loaded = crate::load(m, &device)?;
            (Box::new(LocalChat::from_loaded(loaded, device)?), false)
        }
    })
}

/// A file of a fetched asset, fetching the asset first if needed.
pub(crate) fn asset_file(asset: &str, file: &str) -> Result<PathBuf> {
    let a = temper_assets::find(asset)?;
    if temper_assets::cached(a).is_none() {
        temper_assets::fetch(a, &mut crate::progress::Bar::default())?;
    }
    Ok(temper_assets::path_of(asset, file)?)
}

/// `temper judge` arguments.
#[derive(clap::Args, Debug)]
pub struct JudgeArgs {
    /// Pairs JSONL: `{"id", "question", "answer_a", "answer_b"}` (+ optional `reference`, `question_2`, …).
    #[arg(long)]
    pub pairs: PathBuf,
    /// `openai:<model>` (endpoint from TEMPER_JUDGE_BASE_URL / TEMPER_JUDGE_API_KEY) or a local
    /// model: an asset name (`smollm2`), a `.gguf` file or an HF folder.
    #[arg(long)]
    pub judge: String,
    /// Judge each pair in both orders and report position consistency.
    #[arg(long)]
    pub swap: bool,
    /// An MT-bench pairwise prompt (`pair-v2`, `pair-math-v1`, …); default: Temper's seed prompt.
    #[arg(long)]
    pub template: Option<String>,
    /// Write the verdict JSONL here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pairs judged at once (a local model always runs one at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Maximum new tokens per judge reply.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Judge temperature (0 = greedy).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub temperature: f64,
    /// Device of a local judge: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Sampler seed when `--temperature` > 0 (a local judge's sampler; sent to an OpenAI endpoint when not 0).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
}

/// `temper judge`: judge every pair, write the records, print the summary to stderr.
pub fn judge_cmd(args: &JudgeArgs) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.temperature.is_nan() || args.temperature < 0.0 {
        bail!(
            "--temperature must be >= 0 (0 = greedy), got {}",
            args.temperature
        );
    }
    if !args.pairs.is_file() {
        bail!("--pairs {}: no such file", args.pairs.display());
    }
    // The pairs are read before any model loads or request goes out: a bad line fails at once.
    let items = temper_judges::load_pairs(&args.pairs)?;
    if items.is_empty() {
        bail!("--pairs {}: no pairs in the file", args.pairs.display());
    }
    let spec = JudgeSpec::parse(&args.judge)?;
    let template = match &args.template {
        Some(name) => {
            let path = asset_file("mtbench", "judge_prompts.jsonl")?;
            let templates = temper_judges::load_prompt_templates(&path)?;
            Some(temper_judges::find_template(&templates, name)?.clone())
        }
        None => None,
    };
    let (backend, concurrent) = build_backend(&spec, &args.device)?;
    let concurrency = if concurrent { args.concurrency } else { 1 };
    let mut judge = LlmJudge::new(backend).with_params(GenerationParams {
        max_new_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        ..GenerationParams::default()
    });
    if let Some(t) = template {
        judge = judge.with_pair_template(t)?;
    }
    let started = Instant::now();
    let run =
        temper_judges::judge_items(&items, &judge, &JudgeRunConfig::new(args.swap, concurrency));
    write_or_print(args.out.as_deref(), &run.to_jsonl())?;
    eprint!("{}", run.summary);
    eprintln!("time: {:.1}s", started.elapsed().as_secs_f64());
    if run.summary.n_pairs > 0 && run.summary.failed == run.summary.n_pairs {
        let first = run
            .records
            .iter()
            .find_map(|r| r.error.as_deref())
            .unwrap_or("unknown");
        bail!("every pair failed; first error: {first}");
    }
    Ok(())
}

fn write_or_print(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => Ok(temper_train::write_atomic(p, text.as_bytes())?),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `temper agree` arguments.
#[derive(clap::Args, Debug)]
pub struct AgreeArgs {
    /// First label file (JSONL `{"id": …, "label": …}`).
    #[arg(long)]
    pub a: PathBuf,
    /// Second label file.
    #[arg(long)]
    pub b: PathBuf,
    /// Metrics to compute (repeatable or comma-separated; default: all).
    #[arg(long = "metric", value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Labels meaning "tie" for percent_agreement_without_ties (repeatable; default tie, C, tie (bothbad)).
    #[arg(long = "tie-label")]
    pub tie_labels: Vec<String>,
    /// Bootstrap resamples for the CIs.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Bootstrap seed.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Compute on the ids present in both files instead of failing when some are in only one.
    #[arg(long)]
    pub allow_missing: bool,
}

/// The 1-based line of every id in a label file (lines that do not parse are skipped: the
/// loader has already reported them).
fn id_lines(path: &Path) -> Result<HashMap<String, usize>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            Some((temper_judges::id_from_json(v.get("id")?)?, i + 1))
        })
        .collect())
}

/// Builds the [`AgreeConfig`] of `agree` from its flags.
fn agree_config(args: &AgreeArgs) -> Result<AgreeConfig> {
    let mut config = AgreeConfig::default();
    if !args.metrics.is_empty() {
        config.metrics = args
            .metrics
            .iter()
            .map(|m| m.trim().parse::<Metric>())
            .collect::<std::result::Result<_, _>>()?;
    }
    if !args.tie_labels.is_empty() {
        config.tie_labels = args
            .tie_labels
            .iter()
            .map(|l| Label::from(l.as_str()))
            .collect();
    }
    config.bootstrap = BootstrapConfig {
        resamples: args.resamples,
        seed: args.seed,
        ..BootstrapConfig::default()
    };
    config.bootstrap.validate()?;
    Ok(config)
}

/// The messages about ids present in only one file, each with its file and line.
fn unmatched_messages(args: &AgreeArgs, report: &AgreementReport) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (ids, path, other) in [
        (&report.only_in_a, &args.a, &args.b),
        (&report.only_in_b, &args.b, &args.a),
    ] {
        if ids.is_empty() {
            continue;
        }
        let lines = id_lines(path)?;
        for id in ids {
            let line = lines.get(id).copied().unwrap_or(0);
            out.push(format!(
                "{}:{line}: id {id:?} has no label in {}",
                path.display(),
                other.display()
            ));
        }
    }
    Ok(out)
}

/// `temper agree`: every requested metric with its CI (text or JSON on stdout). Ids present in
/// only one file are listed on stderr with file and line and make the command fail unless
/// `--allow-missing`.
pub fn agree_cmd(args: &AgreeArgs) -> Result<()> {
    let config = agree_config(args)?;
    let a = temper_judges::load_labels(&args.a)?;
    let b = temper_judges::load_labels(&args.b)?;
    let joined = temper_judges::join(&a, &b);
    let report = temper_judges::report(&joined, &config)?;
    let unmatched = unmatched_messages(args, &report)?;
    if !unmatched.is_empty() && !args.allow_missing {
        for m in &unmatched {
            eprintln!("{m}");
        }
        bail!(
            "{} id(s) are in only one file (pass --allow-missing to compare the {} shared ids)",
            unmatched.len(),
            report.n_items
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// `temper champ-agreement` arguments.
#[derive(clap::Args, Debug)]
pub struct ChampArgs {
    /// `openai:<model>` or a local model (asset name, `.gguf` file or HF folder).
    #[arg(long)]
    pub judge: String,
    /// Judge at most this many solutions, spread evenly over the file.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output folder for human.jsonl, judge.jsonl, replies.jsonl and report.json.
    #[arg(long, default_value = "champ-agreement")]
    pub out: PathBuf,
    /// CHAMP `v0.json` (default: the `champ` asset).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Maximum new tokens per judge reply.
    #[arg(long, default_value_t = 8)]
    pub max_tokens: usize,
    /// Requests at once (a local model always runs one at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Device of a local judge: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Bootstrap resamples for the CIs.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Start the judge's reply with this text (e.g. `[[`) and parse prefill + reply; for local
    /// models, which continue it.
    #[arg(long)]
    pub prefill: Option<String>,
}

/// `temper champ-agreement`: the CHAMP judge-vs-human experiment.
pub fn champ_cmd(args: &ChampArgs) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let spec = JudgeSpec::parse(&args.judge)?;
    let path = match &args.data {
        Some(p) => p.clone(),
        None => asset_file("champ", "v0.json")?,
    };
    let all = load_champ_items(&path)?;
    let items: Vec<ChampItem> = sample_order(all.len(), args.limit)
        .into_iter()
        .map(|i| all[i].clone())
        .collect();
    let (backend, concurrent) = build_backend(&spec, &args.device)?;
    let params = GenerationParams::greedy(args.max_tokens);
    let bootstrap = BootstrapConfig {
        resamples: args.resamples,
        ..BootstrapConfig::default()
    };
    bootstrap.validate()?;
    eprintln!(
        "judging {} of {} annotated CHAMP solutions with {}",
        items.len(),
        all.len(),
        args.judge
    );
    let concurrency = if concurrent { args.concurrency } else { 1 };
    let config = ChampRunConfig {
        params,
        concurrency,
        bootstrap,
        prefill: args.prefill.clone(),
    };
    let started = Instant::now();
    let progress = |done: usize, total: usize| {
        if done.is_multiple_of(10) || done == total {
            eprintln!(
                "judged {done}/{total} ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let o = champ_run(&items, backend.as_ref(), &config, &args.out, &progress)?;
    println!(
        "solutions judged: {}  human has-error: {}  judge [[YES]]: {}  [[NO]]: {}  unparseable: {} ({:.1}%)  failed: {}",
        o.n_judged,
        o.human_errors,
        o.judge_yes,
        o.judge_no,
        o.unparseable,
        100.0 * o.unparseable as f64 / o.n_judged.max(1) as f64,
        o.failed
    );
    println!("agreement on parseable replies (a = human, b = judge):");
    print!("{}", o.report);
    println!("time: {:.1}s; files in {}", o.seconds, args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn tmp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("temper-cli-judge-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create temp dir");
        d
    }

    #[test]
    fn judge_spec_parsing() {
        let cases: [(&str, Option<JudgeSpec>); 5] = [
            ("openai:gpt-4o", Some(JudgeSpec::OpenAi("gpt-4o".into()))),
            ("smollm2", Some(JudgeSpec::Local("smollm2".into()))),
            (
                " /m/model.gguf ",
                Some(JudgeSpec::Local("/m/model.gguf".into())),
            ),
            ("openai:", None),
            ("  ", None),
        ];
        for (input, want) in cases {
            assert_eq!(JudgeSpec::parse(input).ok(), want, "input {input:?}");
        }
        let e = JudgeSpec::parse("openai:")
            .expect_err("empty model")
            .to_string();
        assert_eq!(e, "--judge openai: needs a model name, e.g. openai:gpt-4o");
    }

    #[test]
    fn subcommand_flags_parse_and_bad_flags_fail() -> Result<()> {
        let cli = crate::Cli::try_parse_from([
            "temper",
            "judge",
            "--pairs",
            "p.jsonl",
            "--judge",
            "smollm2",
            "--swap",
            "--template",
            "pair-v2",
            "--concurrency",
            "3",
            "--out",
            "v.jsonl",
        ])
        .expect("judge args");
        let crate::Command::Judge(a) = cli.command else {
            bail!("not judge")
        };
        assert_eq!(
            (
                a.pairs,
                a.judge.as_str(),
                a.swap,
                a.template.as_deref(),
                a.concurrency,
                a.out,
                a.max_tokens
            ),
            (
                PathBuf::from("p.jsonl"),
                "smollm2",
                true,
                Some("pair-v2"),
                3,
                Some(PathBuf::from("v.jsonl")),
                512
            )
        );
        let cli = crate::Cli::try_parse_from([
            "temper",
            "agree",
            "--a",
            "h.jsonl",
            "--b",
            "j.jsonl",
            "--metric",
            "cohen_kappa,percent_agreement",
            "--metric",
            "alpha_nominal",
            "--json",
            "--tie-label",
            "C",
        ])
        .expect("agree args");
        let crate::Command::Agree(a) = cli.command else {
            bail!("not agree")
        };
        assert_eq!(
            a.metrics,
            ["cohen_kappa", "percent_agreement", "alpha_nominal"]
        );
        assert_eq!(
            (a.json, a.tie_labels.as_slice(), a.allow_missing),
            (true, &["C".to_string()][..], false)
        );
        let cli = crate::Cli::try_parse_from([
            "temper",
            "champ-agreement",
            "--judge",
            "smollm2",
            "--limit",
            "100",
            "--prefill",
            "[[",
        ])
        .expect("champ args");
        let crate::Command::ChampAgreement(a) = cli.command else {
            bail!("not champ")
        };
        assert_eq!(
            (a.limit, a.max_tokens, a.prefill.as_deref(), a.out),
            (Some(100), 8, Some("[["), PathBuf::from("champ-agreement"))
        );
        for bad in [
            vec!["temper", "judge", "--judge", "smollm2"],
            vec![
                "temper",
                "judge",
                "--pairs",
                "p",
                "--judge",
                "m",
                "--concurrency",
                "many",
            ],
            vec!["temper", "agree", "--a", "x"],
            vec!["temper", "champ-agreement", "--judge", "m", "--bogus"],
        ] {
            assert!(
                crate::Cli::try_parse_from(&bad).is_err(),
                "{bad:?} should not parse"
            );
        }
        Ok(())
    }

    #[test]
    fn commands_reject_bad_values_with_one_line_errors() {
        let parse = |args: &[&str]| crate::Cli::try_parse_from(args).expect("parses").command;
        let run_err = |c: crate::Command| {
            match c {
                crate::Command::Judge(a) => judge_cmd(&a),
                crate::Command::ChampAgreement(a) => champ_cmd(&a),
                crate::Command::Agree(a) => agree_cmd(&a),
                _ => Ok(()),
            }
            .expect_err("must fail")
            .to_string()
        };
        let missing = "/nonexistent/pairs.jsonl";
        assert_eq!(
            run_err(parse(&[
                "temper", "judge", "--pairs", missing, "--judge", "smollm2"
            ])),
            format!("--pairs {missing}: no such file")
        );
        assert_eq!(
            run_err(parse(&[
                "temper",
                "judge",
                "--pairs",
                missing,
                "--judge",
                "m",
                "--concurrency",
                "0"
            ])),
            "--concurrency must be at least 1"
        );
        assert_eq!(
            run_err(parse(&[
                "temper",
                "champ-agreement",
                "--judge",
                "m",
                "--limit",
                "0"
            ])),
            "--limit must be at least 1"
        );
        let e = run_err(parse(&["temper", "agree", "--a", missing, "--b", missing]));
        assert!(e.starts_with(missing) && !e.contains('\n'), "{e}");
        let e = run_err(parse(&[
            "temper", "agree", "--a", "x", "--b", "y", "--metric", "kappa",
        ]));
        assert!(
            e.starts_with("invalid configuration: unknown metric `kappa` (known: mean_difference"),
            "{e}"
        );
    }

    #[test]
    fn agree_reports_unmatched_ids_with_file_and_line() -> Result<()> {
        let dir = tmp_dir("agree");
        let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
        std::fs::write(
            &a,
            "{\"id\": \"q1\", \"label\": \"A\"}\n\n{\"id\": \"q2\", \"label\": \"B\"}\n{\"id\": 3, \"label\": \"A\"}\n",
        )?;
        std::fs::write(
            &b,
            "{\"id\": \"q2\", \"label\": \"B\"}\n{\"id\": \"3\", \"label\": \"B\"}\n{\"id\": \"q9\", \"label\": \"A\"}\n",
        )?;
        let args = |allow_missing| AgreeArgs {
            a: a.clone(),
            b: b.clone(),
            metrics: vec!["percent_agreement".into()],
            json: false,
            tie_labels: vec![],
            resamples: 50,
            seed: 0,
            allow_missing,
        };
        let strict = args(false);
        let config = agree_config(&strict)?;
        assert_eq!(config.metrics, [Metric::PercentAgreement]);
        let report = temper_judges::report(
            &temper_judges::join(
                &temper_judges::load_labels(&a)?,
                &temper_judges::load_labels(&b)?,
            ),
            &config,
        )?;
        assert_eq!(report.n_items, 2);
        assert_eq!(report.metrics[0].value, Some(0.5));
        assert_eq!(
            unmatched_messages(&strict, &report)?,
            [
                format!(
                    "{}:1: id \"q1\" has no label in {}",
                    a.display(),
                    b.display()
                ),
                format!(
                    "{}:3: id \"q9\" has no label in {}",
                    b.display(),
                    a.display()
                ),
            ]
        );
        let e = agree_cmd(&strict).expect_err("unmatched ids").to_string();
        assert_eq!(
            e,
            "2 id(s) are in only one file (pass --allow-missing to compare the 2 shared ids)"
        );
        agree_cmd(&args(true))?;
        // A bad label is reported with its file and line.
        std::fs::write(
            &b,
            "{\"id\": \"q2\", \"label\": \"B\"}\n{\"id\": \"3\", \"label\": [1]}\n",
        )?;
        let e = agree_cmd(&args(true)).expect_err("bad label").to_string();
        assert_eq!(
            e,
            format!(
                "{}:2: `label` must be a string or a number, got [1]",
                b.display()
            )
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
