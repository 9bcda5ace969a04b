//! `temper judge`, `temper agree` and `temper champ-agreement`: the local-model chat back end
//! ([`LocalChatBackend`]) and the command-line side of `temper-judge`.
//!
//! - `judge` runs pairwise LLM-as-a-judge over a pairs JSONL file with a local Temper model or an
//!   OpenAI-compatible endpoint (`openai:<model>`), writes one verdict record per line and prints
//!   the bias summary (position consistency, first-slot preference, length bias) to stderr.
//! - `agree` compares two label files with every agreement metric and its bootstrap CI.
//! - `champ-agreement` asks a judge whether each human-annotated CHAMP solution (Mao et al. 2024,
//!   <https://arxiv.org/abs/2401.06961>) contains an error and measures agreement with the human
//!   "first wrong step" annotation (an annotated step means "has an error").
//!
//! Long file: the local chat back end and the CHAMP experiment still live here until they move into library
//! crates (issue 11); the command bodies then shrink below the limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::Serialize;
use temper_judge::{
    AgreeConfig, AgreementReport, BootstrapConfig, ChatBackend, GenParams, JudgeError,
    JudgeRunConfig, Label, LlmJudge, Message, Metric, OpenAiBackend, OpenAiConfig, Role,
    Unparseable,
};
use temper_models::{GenerationConfig, Llama, LoadedModel, SamplingParams, generate, parse_device};
use temper_tokenizer::{ChatTemplate, Tokenizer};

/// A [`ChatBackend`] running a Temper model on this machine: the messages are rendered with the
/// model's chat template, then generated greedily (temperature 0) or by seeded sampling, up to
/// `max_tokens` new tokens, stopping at EOS. burn modules are `Send` but not `Sync`, so the model
/// sits behind a [`Mutex`]: calls from several judge threads run one at a time.
pub struct LocalChatBackend {
    inner: Mutex<Local>,
    seed: u64,
}

struct Local {
    model: Llama,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    device: Device,
}

impl LocalChatBackend {
    /// A back end over `model` and `tokenizer`; `template` overrides the tokenizer's chat
    /// template (required when the tokenizer has none).
    pub fn new(
        model: Llama,
        tokenizer: Tokenizer,
        template: Option<ChatTemplate>,
        device: Device,
    ) -> Result<Self> {
        let template = match template {
            Some(t) => t,
            None => tokenizer
                .chat_template()
                .cloned()
                .context("this model has no chat template (a local judge needs one)")?,
        };
        Ok(Self {
            inner: Mutex::new(Local {
                model,
                tokenizer,
                template,
                device,
            }),
            seed: 0,
        })
    }

    /// A back end over a loaded checkpoint (which must carry a tokenizer with a chat template).
    pub fn from_loaded(loaded: LoadedModel, device: Device) -> Result<Self> {
        let source = loaded.source.display().to_string();
        let tokenizer = loaded.tokenizer.with_context(|| {
            format!("{source} has no tokenizer (add tokenizer.json to its folder)")
        })?;
        Self::new(loaded.model, tokenizer, None, device).with_context(|| source)
    }

    /// Sets the sampler seed used when `temperature > 0` (default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn lock(&self) -> temper_judge::Result<std::sync::MutexGuard<'_, Local>> {
        self.inner.lock().map_err(|_| {
            JudgeError::Backend("local model lock poisoned by a panicked thread".into())
        })
    }
}

/// Renders `messages` with the chat template and the generation prompt. A trailing assistant
/// message is a prefill: it is rendered after the generation prompt, unterminated, so the model
/// continues it.
fn render_messages(template: &ChatTemplate, messages: &[Message]) -> temper_judge::Result<String> {
    let (head, prefill) = match messages.split_last() {
        Some((last, head)) if last.role == Role::Assistant => (head, last.content.as_str()),
        _ => (messages, ""),
    };
    let chat: Vec<temper_tokenizer::Message> = head
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => temper_tokenizer::Role::System,
                Role::User => temper_tokenizer::Role::User,
                Role::Assistant => temper_tokenizer::Role::Assistant,
            };
            temper_tokenizer::Message::new(role, m.content.clone())
        })
        .collect();
    let mut text = template
        .render(&chat, true)
        .map_err(|e| JudgeError::Backend(format!("rendering the chat template: {e}")))?;
    text.push_str(prefill);
    Ok(text)
}

/// A trailing [`Role::Assistant`] message is a prefill (the start of the reply, as in Anthropic's
/// API): generation continues it and the returned reply is the continuation only.
impl ChatBackend for LocalChatBackend {
    fn complete(&self, messages: &[Message], params: &GenParams) -> temper_judge::Result<String> {
        if params.temperature.is_nan() || params.temperature < 0.0 {
            return Err(JudgeError::Config(format!(
                "temperature must be >= 0, got {}",
                params.temperature
            )));
        }
        let local = self.lock()?;
        let prompt = render_messages(&local.template, messages)?;
        let backend = |e: &dyn std::fmt::Display| JudgeError::Backend(e.to_string());
        let ids = local.tokenizer.encode(&prompt).map_err(|e| backend(&e))?;
        if ids.is_empty() {
            return Err(JudgeError::Backend(
                "the prompt encodes to no tokens".into(),
            ));
        }
        let ctx = local.model.config().max_position_embeddings;
        let max_new = params.max_tokens as usize;
        if ids.len() + max_new > ctx {
            return Err(JudgeError::Backend(format!(
                "prompt of {} tokens + {max_new} new tokens exceeds the model's context of {ctx}",
                ids.len()
            )));
        }
        let eos = local
            .tokenizer
            .eos_id()
            .or(local.model.config().eos_token_id);
        let config = GenerationConfig {
            max_new_tokens: max_new,
            sampling: SamplingParams {
                temperature: f64::from(params.temperature),
                top_k: None,
                top_p: None,
            },
            seed: self.seed,
            stop_token_ids: eos.into_iter().collect(),
            stop_strings: Vec::new(),
            pad_token_id: local.tokenizer.pad_id().or(eos).unwrap_or(0),
        };
        let gens = generate(
            &local.model,
            &[ids],
            &config,
            &local.device,
            None,
            |_, _| {},
        )
        .map_err(|e| backend(&e))?;
        let out = gens.first().map(|g| g.output_ids.as_slice()).unwrap_or(&[]);
        let text = local.tokenizer.decode(out, true).map_err(|e| backend(&e))?;
        Ok(text.trim().to_string())
    }
}

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
fn build_backend(spec: &JudgeSpec, device: &str, seed: u64) -> Result<(SharedBackend, bool)> {
    Ok(match spec {
        JudgeSpec::OpenAi(model) => {
            let mut config = OpenAiConfig::from_env(model.clone())?;
            config.cache_dir = Some(temper_assets::home().join("judge-cache"));
            (Box::new(OpenAiBackend::new(config)?), true)
        }
        JudgeSpec::Local(m) => {
            let device = parse_device(device)?;
            let loaded = crate::load(m, &device)?;
            (
                Box::new(LocalChatBackend::from_loaded(loaded, device)?.with_seed(seed)),
                false,
            )
        }
    })
}

/// A file of a fetched asset, fetching the asset first if needed.
fn asset_file(asset: &str, file: &str) -> Result<PathBuf> {
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
    pub max_tokens: u32,
    /// Judge temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Device of a local judge: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Sampler seed of a local judge when `--temperature` > 0.
    #[arg(long, default_value_t = 0)]
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
    let spec = JudgeSpec::parse(&args.judge)?;
    let template = match &args.template {
        Some(name) => {
            let path = asset_file("mtbench", "judge_prompts.jsonl")?;
            let templates = temper_judge::load_prompt_templates(&path)?;
            Some(temper_judge::find_template(&templates, name)?.clone())
        }
        None => None,
    };
    let (backend, concurrent) = build_backend(&spec, &args.device, args.seed)?;
    let concurrency = if concurrent { args.concurrency } else { 1 };
    let mut judge = LlmJudge::new(backend).with_params(GenParams {
        temperature: args.temperature,
        max_tokens: args.max_tokens,
    });
    if let Some(t) = template {
        judge = judge.with_pair_template(t)?;
    }
    let started = Instant::now();
    let run = temper_judge::judge_pairs(
        &args.pairs,
        &judge,
        &JudgeRunConfig::new(args.swap, concurrency),
    )?;
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
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
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
    #[arg(long, default_value_t = 0)]
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
            Some((temper_judge::id_from_json(v.get("id")?)?, i + 1))
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
    let a = temper_judge::load_labels(&args.a)?;
    let b = temper_judge::load_labels(&args.b)?;
    let joined = temper_judge::join(&a, &b);
    let report = temper_judge::report(&joined, &config)?;
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

/// The single-answer prompt of `champ-agreement`.
pub const CHAMP_SYSTEM: &str = "You check solutions to math problems. Reply with exactly [[YES]] if the solution contains an error \
(a wrong step, a wrong calculation or a wrong final answer), or exactly [[NO]] if it is fully correct.";

/// The user message of `champ-agreement` for one problem and solution.
pub fn champ_prompt(problem: &str, solution: &str) -> String {
    format!(
        "[Problem]\n{problem}\n\n[Solution]\n{solution}\n[End of Solution]\n\n\
         Does this solution contain an error? Answer [[YES]] or [[NO]]."
    )
}

/// Parses a `[[YES]]` / `[[NO]]` reply strictly: exactly one kind of token (case and inner
/// spaces ignored) must appear; `Ok(true)` means "has an error".
pub fn parse_yes_no(reply: &str) -> std::result::Result<bool, Unparseable> {
    let mut found: Vec<(bool, String)> = Vec::new();
    let mut rest = reply;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let inner = after[..end]
            .trim_start_matches('[')
            .trim()
            .to_ascii_uppercase();
        match inner.as_str() {
            "YES" => found.push((true, format!("[[{}]]", &after[..end]))),
            "NO" => found.push((false, format!("[[{}]]", &after[..end]))),
            _ => {}
        }
        rest = &after[end + 2..];
    }
    match found.first() {
        None => Err(Unparseable::NoVerdict),
        Some(&(v, _)) if found.iter().all(|(x, _)| *x == v) => Ok(v),
        Some(_) => Err(Unparseable::Conflicting(
            found.into_iter().map(|(_, t)| t).collect(),
        )),
    }
}

/// One human-annotated CHAMP solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChampItem {
    /// `<problem id>|<model>|<prompting setting>`, e.g. `P_Combinatorics_1|GPT-4|No C w/o H`.
    pub id: String,
    /// The problem statement.
    pub problem: String,
    /// The model's solution.
    pub solution: String,
    /// Human label: the annotator marked a first wrong step.
    pub has_error: bool,
}

/// The label strings written to the label files.
pub fn error_label(has_error: bool) -> &'static str {
    if has_error { "error" } else { "no_error" }
}

/// Extracts every annotated solution from CHAMP's `v0.json` (`problems.<id>.fws_annotations`),
/// sorted by (problem id, annotation key) so the order does not depend on how the JSON map is
/// stored. A solution has an error when its `start_idx` is not null.
pub fn champ_items(data: &serde_json::Value, path: &Path) -> Result<Vec<ChampItem>> {
    let where_ = |what: &str| format!("{}: {what}", path.display());
    let problems = data
        .get("problems")
        .and_then(serde_json::Value::as_object)
        .with_context(|| where_("no `problems` object"))?;
    let mut out = Vec::new();
    let mut problems: Vec<(&String, &serde_json::Value)> = problems.iter().collect();
    problems.sort_by(|a, b| a.0.cmp(b.0));
    for (pid, p) in problems {
        let problem = p
            .get("_text")
            .and_then(serde_json::Value::as_str)
            .with_context(|| where_(&format!("problems.{pid}: no string `_text`")))?;
        let Some(annotations) = p
            .get("fws_annotations")
            .and_then(serde_json::Value::as_object)
        else {
            continue;
        };
        let mut annotations: Vec<(&String, &serde_json::Value)> = annotations.iter().collect();
        annotations.sort_by(|a, b| a.0.cmp(b.0));
        for (key, a) in annotations {
            let field = |f: &str| format!("problems.{pid}.fws_annotations.{key:?}: {f}");
            let solution = a
                .get("text")
                .and_then(serde_json::Value::as_str)
                .with_context(|| where_(&field("no string `text`")))?;
            let has_error = match a.get("start_idx") {
                Some(serde_json::Value::Null) => false,
                Some(v) if v.is_u64() => true,
                other => bail!(where_(&field(&format!(
                    "`start_idx` must be null or an index, got {other:?}"
                )))),
            };
            out.push(ChampItem {
                id: format!("{pid}|{key}"),
                problem: problem.to_string(),
                solution: solution.to_string(),
                has_error,
            });
        }
    }
    Ok(out)
}

/// A fixed pseudo-random order of `0..total` (`i * 7919 mod total`, a permutation whenever
/// `total` is not a multiple of the prime 7919), cut to `limit`, so a partial run samples every
/// category, model and prompting setting instead of the first problems of the file.
pub fn sample_order(total: usize, limit: Option<usize>) -> Vec<usize> {
    const STEP: usize = 7919;
    let order: Vec<usize> = if total.is_multiple_of(STEP) {
        (0..total).collect()
    } else {
        (0..total).map(|i| (i * STEP) % total).collect()
    };
    order.into_iter().take(limit.unwrap_or(total)).collect()
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
    pub max_tokens: u32,
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

/// One line of `replies.jsonl`.
#[derive(Serialize)]
struct ChampReply<'a> {
    id: &'a str,
    human: &'static str,
    judge: Option<&'static str>,
    unparseable: Option<String>,
    error: Option<String>,
    reply: String,
}

/// The outcome of the CHAMP experiment.
#[derive(Debug, Serialize)]
pub struct ChampOutcome {
    /// Solutions judged.
    pub n_judged: usize,
    /// Replies without a strict verdict.
    pub unparseable: usize,
    /// Back-end errors.
    pub failed: usize,
    /// Human "has an error" count among the judged.
    pub human_errors: usize,
    /// Judge "[[YES]]" count.
    pub judge_yes: usize,
    /// Judge "[[NO]]" count.
    pub judge_no: usize,
    /// Wall-clock seconds of judging.
    pub seconds: f64,
    /// Agreement between human (a) and judge (b) on the parseable items.
    pub report: AgreementReport,
}

fn write_jsonl<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let mut s = String::new();
    for r in rows {
        s.push_str(&serde_json::to_string(&r)?);
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// How `champ_run` asks the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampRunConfig {
    /// Generation settings (greedy, a few tokens).
    pub params: GenParams,
    /// Requests at once.
    pub concurrency: usize,
    /// Bootstrap settings of the agreement CIs.
    pub bootstrap: BootstrapConfig,
    /// The start of the judge's reply, sent as a trailing assistant message and parsed as
    /// prefill + reply.
    pub prefill: Option<String>,
}

/// The messages `champ_run` sends for one item.
pub fn champ_messages(item: &ChampItem, prefill: Option<&str>) -> Vec<Message> {
    let mut m = vec![
        Message::system(CHAMP_SYSTEM),
        Message::user(champ_prompt(&item.problem, &item.solution)),
    ];
    if let Some(p) = prefill {
        m.push(Message {
            role: Role::Assistant,
            content: p.to_string(),
        });
    }
    m
}

/// Judges `items` with `backend` and writes `human.jsonl`, `judge.jsonl` (parseable replies
/// only), `replies.jsonl` and `report.json` into `out`.
pub fn champ_run(
    items: &[ChampItem],
    backend: &(dyn ChatBackend + Sync),
    config: &ChampRunConfig,
    out: &Path,
) -> Result<ChampOutcome> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let replies: Mutex<Vec<Option<temper_judge::Result<String>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..config.concurrency.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let messages = champ_messages(item, config.prefill.as_deref());
                    let r = backend
                        .complete(&messages, &config.params)
                        .map(|reply| format!("{}{reply}", config.prefill.as_deref().unwrap_or("")));
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(10) || n == items.len() {
                        eprintln!(
                            "judged {n}/{} ({:.0}s)",
                            items.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                    if let Ok(mut g) = replies.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let replies = replies.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut rows = Vec::with_capacity(items.len());
    let (mut human, mut judge) = (Vec::new(), Vec::new());
    let (mut unparseable, mut failed, mut yes, mut no) = (0, 0, 0, 0);
    for (item, r) in items.iter().zip(replies) {
        let h = error_label(item.has_error);
        human.push((item.id.clone(), Label::from(h)));
        let mut row = ChampReply {
            id: &item.id,
            human: h,
            judge: None,
            unparseable: None,
            error: None,
            reply: String::new(),
        };
        match r {
            Some(Ok(reply)) => {
                match parse_yes_no(&reply) {
                    Ok(v) => {
                        if v {
                            yes += 1
                        } else {
                            no += 1
                        }
                        row.judge = Some(error_label(v));
                        judge.push((item.id.clone(), Label::from(error_label(v))));
                    }
                    Err(u) => {
                        unparseable += 1;
                        row.unparseable = Some(u.to_string());
                    }
                }
                row.reply = reply;
            }
            Some(Err(e)) => {
                failed += 1;
                row.error = Some(e.to_string());
            }
            None => {
                failed += 1;
                row.error = Some("worker thread panicked".into());
            }
        }
        rows.push(row);
    }
    let label_row = |(id, l): &(String, Label)| serde_json::json!({ "id": id, "label": l });
    write_jsonl(&out.join("human.jsonl"), human.iter().map(label_row))?;
    write_jsonl(&out.join("judge.jsonl"), judge.iter().map(label_row))?;
    write_jsonl(&out.join("replies.jsonl"), &rows)?;
    let config = AgreeConfig {
        metrics: vec![
            Metric::CohenKappa,
            Metric::PercentAgreement,
            Metric::AlphaNominal,
        ],
        bootstrap: config.bootstrap,
        ..AgreeConfig::default()
    };
    let report = temper_judge::report(&temper_judge::join(&human, &judge), &config)?;
    let outcome = ChampOutcome {
        n_judged: items.len(),
        unparseable,
        failed,
        human_errors: items.iter().filter(|i| i.has_error).count(),
        judge_yes: yes,
        judge_no: no,
        seconds,
        report,
    };
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&outcome)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(outcome)
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
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let data: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let all = champ_items(&data, &path)?;
    let items: Vec<ChampItem> = sample_order(all.len(), args.limit)
        .into_iter()
        .map(|i| all[i].clone())
        .collect();
    let (backend, concurrent) = build_backend(&spec, &args.device, 0)?;
    let params = GenParams {
        temperature: 0.0,
        max_tokens: args.max_tokens,
    };
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
    let o = champ_run(&items, backend.as_ref(), &config, &args.out)?;
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
    use temper_judge::{PromptKind, PromptTemplate};
    use temper_models::load_model;

    fn testdata(rel: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata")).join(rel)
    }

    fn tmp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("temper-cli-judge-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create temp dir");
        d
    }

    /// The tiny Llama of `testdata/trl-parity` with its word-level tokenizer.
    fn tiny() -> (Llama, Tokenizer, Device) {
        let device = Device::default();
        let loaded = load_model(&testdata("trl-parity/model"), &device).expect("tiny model");
        let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json"))
            .expect("tokenizer");
        (loaded.model, tok, device)
    }

    /// A template over the tiny vocabulary: `t7` marks a system turn, `<|user|>` any other.
    const TINY_TEMPLATE: &str = "{% for m in messages %}{% if m['role'] == 'system' %}t7 {% else %}<|user|> {% endif %}\
        {{ m['content'] }} <|end|> {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}";

    fn tiny_backend() -> LocalChatBackend {
        let (model, tok, device) = tiny();
        let template = ChatTemplate::new(TINY_TEMPLATE, "<s>", "</s>").expect("template");
        LocalChatBackend::new(model, tok, Some(template), device).expect("backend")
    }

    fn assert_send_sync<T: Send + Sync>() {}

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
        let report = temper_judge::report(
            &temper_judge::join(
                &temper_judge::load_labels(&a)?,
                &temper_judge::load_labels(&b)?,
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

    #[test]
    fn yes_no_parsing_is_strict() {
        let cases: [(&str, std::result::Result<bool, Unparseable>); 8] = [
            ("[[YES]]", Ok(true)),
            ("[[No]]\n\nThe solution is right.", Ok(false)),
            ("Verdict: [[ yes ]] and again [[YES]]", Ok(true)),
            (
                "[[YES]\n\nThe solution contains",
                Err(Unparseable::NoVerdict),
            ),
            (
                "The solution contains an error.",
                Err(Unparseable::NoVerdict),
            ),
            ("[[MAYBE]]", Err(Unparseable::NoVerdict)),
            (
                "[[YES]] or [[NO]]",
                Err(Unparseable::Conflicting(vec![
                    "[[YES]]".into(),
                    "[[NO]]".into(),
                ])),
            ),
            ("[[[NO]]", Ok(false)),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_yes_no(reply), want, "reply {reply:?}");
        }
    }

    #[test]
    fn champ_labels_come_from_first_wrong_step_annotations() -> Result<()> {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/champ-sample.json"
        ));
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let items = champ_items(&data, path)?;
        let got: Vec<(&str, bool, &str)> = items
            .iter()
            .map(|i| (i.id.as_str(), i.has_error, i.solution.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("P_Algebra_1|GPT-4|Direct C w/ H", false, "x = 5 - 2 = 3."),
                ("P_Algebra_1|GPT-4|No C w/o H", true, "x = 5 + 2 = 7."),
                (
                    "P_Number-Theory_2|PaLM 2 Medium|No C w/o H",
                    true,
                    "17 = 3 * 5 + 2, so the remainder is 3."
                ),
            ]
        );
        assert_eq!(
            items[2].problem,
            "What is the remainder of 17 divided by 5?"
        );
        let mut bad = data.clone();
        bad["problems"]["P_Algebra_1"]["fws_annotations"]["GPT-4|No C w/o H"]["start_idx"] =
            "4".into();
        let e = champ_items(&bad, path)
            .expect_err("bad start_idx")
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: problems.P_Algebra_1.fws_annotations.\"GPT-4|No C w/o H\": `start_idx` must be null or an index, got Some(String(\"4\"))",
                path.display()
            )
        );
        let e = champ_items(&serde_json::json!({"concepts": {}}), path)
            .expect_err("no problems")
            .to_string();
        assert_eq!(e, format!("{}: no `problems` object", path.display()));
        Ok(())
    }

    #[test]
    fn sample_order_is_a_scattered_permutation() {
        let all = sample_order(540, None);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..540).collect::<Vec<_>>());
        assert_eq!(sample_order(540, Some(4)), [0, 359, 178, 537]);
        assert_eq!(sample_order(3, Some(10)), [0, 2, 1]);
        // Both annotations of a problem (adjacent indices) are reached within the first 100.
        let first: std::collections::HashSet<usize> =
            sample_order(540, Some(100)).into_iter().collect();
        assert_eq!(first.iter().filter(|i| *i % 2 == 0).count(), 50);
    }

    /// Replies with the text after `JUDGE=` in the user message (up to the next space).
    struct Scripted;
    impl ChatBackend for Scripted {
        fn complete(&self, messages: &[Message], _: &GenParams) -> temper_judge::Result<String> {
            let user = messages
                .iter()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or("");
            let prefilled = messages.last().is_some_and(|m| m.role == Role::Assistant);
            let tag = user
                .split("JUDGE=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            if tag == "FAIL" {
                return Err(JudgeError::Backend("scripted failure".into()));
            }
            // With a `[[` prefill the reply continues it.
            Ok(if prefilled {
                tag.trim_start_matches("[[").to_string()
            } else {
                tag.to_string()
            })
        }
    }

    #[test]
    fn champ_run_counts_unparseable_and_computes_kappa() -> Result<()> {
        let item = |n: usize, has_error: bool, tag: &str| ChampItem {
            id: format!("p{n}"),
            problem: "1+1?".into(),
            solution: format!("2. JUDGE={tag} end"),
            has_error,
        };
        let items = [
            item(1, true, "[[YES]]"),
            item(2, true, "[[YES]]"),
            item(3, true, "[[NO]]"),
            item(4, false, "[[NO]]"),
            item(5, false, "[[YES]]"),
            item(6, true, "maybe"),
            item(7, false, "FAIL"),
        ];
        let dir = tmp_dir("champ");
        for prefill in [None, Some("[[")] {
            let config = ChampRunConfig {
                params: GenParams {
                    temperature: 0.0,
                    max_tokens: 8,
                },
                concurrency: 3,
                bootstrap: BootstrapConfig {
                    resamples: 200,
                    ..BootstrapConfig::default()
                },
                prefill: prefill.map(str::to_string),
            };
            let o = champ_run(&items, &Scripted, &config, &dir)?;
            assert_eq!(
                (
                    o.n_judged,
                    o.unparseable,
                    o.failed,
                    o.human_errors,
                    o.judge_yes,
                    o.judge_no
                ),
                (7, 1, 1, 4, 3, 2)
            );
            // Parseable: human [E E E N N], judge [E E N N E]: p_o = 3/5, p_e = 0.6² + 0.4² = 0.52.
            let kappa = o.report.metrics[0].value.expect("kappa");
            assert!(
                (kappa - (0.6 - 0.52) / (1.0 - 0.52)).abs() < 1e-12,
                "kappa {kappa}"
            );
            assert_eq!(o.report.metrics[1].value, Some(0.6));
            assert_eq!(o.report.n_items, 5);
            assert_eq!(o.report.confusion.counts, [[2, 1], [1, 1]]);
        }
        let human = temper_judge::load_labels(&dir.join("human.jsonl"))?;
        let judge = temper_judge::load_labels(&dir.join("judge.jsonl"))?;
        assert_eq!((human.len(), judge.len()), (7, 5));
        assert_eq!(human[3], ("p4".to_string(), Label::from("no_error")));
        let replies = std::fs::read_to_string(dir.join("replies.jsonl"))?;
        let rows: Vec<serde_json::Value> = replies
            .lines()
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()?;
        assert_eq!(rows[0]["reply"], "[[YES]]");
        assert_eq!(rows[5]["unparseable"], "no verdict in reply");
        assert_eq!(rows[6]["error"], "chat back end: scripted failure");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn local_backend_renders_prefill_and_matches_direct_generation() -> Result<()> {
        assert_send_sync::<LocalChatBackend>();
        let backend = tiny_backend();
        let messages = [Message::system("t10"), Message::user("t11 t12 t13")];
        let template = ChatTemplate::new(TINY_TEMPLATE, "<s>", "</s>")?;
        assert_eq!(
            render_messages(&template, &messages)?,
            "t7 t10 <|end|> <|user|> t11 t12 t13 <|end|> <|assistant|> "
        );
        let mut prefilled = messages.to_vec();
        prefilled.push(Message {
            role: Role::Assistant,
            content: "t40".into(),
        });
        let prompt = render_messages(&template, &prefilled)?;
        assert_eq!(
            prompt,
            "t7 t10 <|end|> <|user|> t11 t12 t13 <|end|> <|assistant|> t40"
        );

        // Greedy reply == decoding what `generate` produces on the same prompt.
        let params = GenParams {
            temperature: 0.0,
            max_tokens: 6,
        };
        let reply = backend.complete(&prefilled, &params)?;
        let (model, tok, device) = tiny();
        let config = GenerationConfig {
            max_new_tokens: 6,
            sampling: SamplingParams {
                temperature: 0.0,
                top_k: None,
                top_p: None,
            },
            seed: 0,
            stop_token_ids: tok.eos_id().into_iter().collect(),
            stop_strings: vec![],
            pad_token_id: tok.pad_id().unwrap_or(0),
        };
        let gens = generate(
            &model,
            &[tok.encode(&prompt)?],
            &config,
            &device,
            None,
            |_, _| {},
        )?;
        assert_eq!(reply, tok.decode(&gens[0].output_ids, true)?.trim());
        assert!(
            !reply.is_empty() && reply.split_whitespace().count() <= 6,
            "{reply:?}"
        );

        // Seeded sampling is reproducible.
        let hot = GenParams {
            temperature: 1.0,
            max_tokens: 6,
        };
        let sampled = backend.complete(&messages, &hot)?;
        assert_eq!(backend.complete(&messages, &hot)?, sampled);

        // Prompts longer than the context (128 positions) are refused with the sizes.
        let long = Message::user(vec!["t20"; 125].join(" "));
        let e = backend
            .complete(&[long], &params)
            .expect_err("too long")
            .to_string();
        assert_eq!(
            e,
            "chat back end: prompt of 128 tokens + 6 new tokens exceeds the model's context of 128"
        );
        let e = backend
            .complete(
                &messages,
                &GenParams {
                    temperature: -1.0,
                    max_tokens: 1,
                },
            )
            .expect_err("t<0");
        assert_eq!(
            e.to_string(),
            "invalid configuration: temperature must be >= 0, got -1"
        );
        Ok(())
    }

    #[test]
    fn local_backend_needs_a_tokenizer_and_runs_the_pairwise_judge() -> Result<()> {
        let device = Device::default();
        let loaded = load_model(&testdata("trl-parity/model"), &device)?;
        let e = LocalChatBackend::from_loaded(loaded, device)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(e.as_deref().is_some_and(|e| e.ends_with("has no tokenizer (add tokenizer.json to its folder)")), "{e:?}");

        // The pairwise judge on the tiny model: it cannot write `[[A]]`, so every reply is unparseable.
        let template = PromptTemplate {
            name: "tiny".into(),
            kind: PromptKind::Pairwise,
            system_prompt: "t8".into(),
            prompt_template: "{question} t9 {answer_a} t10 {answer_b}".into(),
            output_format: "[[A]]".into(),
            description: String::new(),
            category: String::new(),
        };
        let judge = LlmJudge::new(tiny_backend())
            .with_pair_template(template)?
            .with_params(GenParams {
                temperature: 0.0,
                max_tokens: 4,
            });
        let dir = tmp_dir("pairs");
        let pairs = dir.join("pairs.jsonl");
        std::fs::write(
            &pairs,
            "{\"id\": \"a\", \"question\": \"t30\", \"answer_a\": \"t31\", \"answer_b\": \"t32 t33\"}\n\
             {\"id\": 2, \"question\": \"t40\", \"answer_a\": \"t41\", \"answer_b\": \"t42\"}\n",
        )?;
        let run = temper_judge::judge_pairs(&pairs, &judge, &JudgeRunConfig::new(true, 2))?;
        let s = &run.summary;
        assert_eq!(
            (
                s.n_pairs,
                s.unparseable_replies,
                s.unparseable_pairs,
                s.failed
            ),
            (2, 4, 2, 0)
        );
        assert_eq!(
            run.records.iter().map(|r| r.judgments.len()).sum::<usize>(),
            4
        );
        assert_eq!(run.to_jsonl().lines().count(), 2);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
