//! The preference subcommands: `temper rm` (reward model), `temper dpo` and `temper make-pairs` (preference
//! pairs from a model's own samples ranked by rule rewards, or `--synthetic-wrong` arithmetic pairs whose
//! rejected answer is a typical mistake).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use temper_tasks::{SyntheticSpec, parse_op, synthetic_pairs};
use temper_tokenizer::Tokenizer;
use temper_train::{
    DpoRunConfig, DpoTrainer, ModelCard, PairsConfig, RmRunConfig, RmTrainer, Session, TaskSpec,
    make_pairs, write_pairs_jsonl,
};

use crate::train::{
    apply_overrides, load_for_training, read_config, task_eval, train_and_export, validated,
};
use crate::{TrainArgs, load, resolve_model};

/// `temper make-pairs`: sample K completions per prompt, keep (best, worst) by rule reward, write JSONL.
#[derive(clap::Args)]
pub struct MakePairsArgs {
    /// An asset name (`smollm2`), a `.gguf` file or an HF model folder.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// `arithmetic` (built-in task) or a prompts JSONL file (`prompt`/`question` + optional `answer`).
    #[arg(long, default_value = "arithmetic")]
    task: String,
    /// Number of training prompts to sample (with `--synthetic-wrong`: training pairs to write).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Samples per prompt.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// Held-out prompts to sample for `--eval-out` (with `--synthetic-wrong`: held-out pairs, one per distinct
    /// held-out problem, fewer when the held-out split is smaller).
    #[arg(long, default_value_t = 0)]
    eval_n: usize,
    /// New tokens per sample.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Sampling temperature.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    temperature: f64,
    /// Seed of the task and the sampler.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    seed: u64,
    /// A TOML `PairsConfig` (task, generation, rewards...); the flags above are ignored when given.
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output JSONL of training pairs.
    #[arg(long)]
    out: PathBuf,
    /// Output JSONL of held-out pairs.
    #[arg(long)]
    eval_out: Option<PathBuf>,
    /// No sampling: arithmetic pairs with chosen = the right `<answer>N</answer>` and rejected = a typical wrong
    /// number (off by 1–3, off by 10, or another operation's result), prompts rendered exactly like the
    /// built-in arithmetic task's (`--model` supplies only the tokenizer and chat template). Held-out pairs use
    /// only problems of the task's held-out split, so they never share a problem with the training pairs.
    #[arg(long)]
    synthetic_wrong: bool,
    /// Operand digits of the `--synthetic-wrong` problems, comma-separated (pairs are split evenly).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    digits: Vec<u32>,
    /// Operations of the `--synthetic-wrong` problems, comma-separated (`add`, `sub`, `mul`).
    #[arg(long, value_delimiter = ',', default_value = "add,sub,mul")]
    ops: Vec<String>,
}

/// Prints a library's progress messages before the progress bar exists.
struct Messages;

impl temper_train::Observer for Messages {
    fn on_step(&mut self, _: &temper_train::StepReport) {}
    fn on_message(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// `temper rm --config rm.toml`.
pub fn rm(args: &TrainArgs) -> Result<()> {
    let mut run: RmRunConfig = read_config(args, "rm", None)?;
    apply_overrides(&mut run.train, &mut run.device, args);
    validated(args, run.validate())?;
    let (train, eval) = run.load_data()?;
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let (model, tok) = run.load_model(&resolve_model(&run.model)?, &device)?;
    let mut trainer = RmTrainer::new(&tok, &model, &train, &eval, run.rm.clone(), &run.train)?;
    let mut session = Session::start(model, &device, run.train.clone())?;
    let card = ModelCard::for_run(
        &run.model,
        "Reward model (Bradley-Terry)",
        &run,
        format!("`{}`", run.train_file.display()),
    );
    train_and_export(&mut session, &tok, &card, |s, bar| trainer.train(s, bar))
}

/// `temper dpo --config dpo.toml`.
pub fn dpo(args: &TrainArgs) -> Result<()> {
    let mut run: DpoRunConfig = read_config(args, "dpo", None)?;
    apply_overrides(&mut run.train, &mut run.device, args);
    validated(args, run.validate())?;
    let (device, model, tok) = load_for_training(&run.model, &run.device)?;
    let policy = burn::module::Module::valid(&model);
    let (train, eval) =
        run.load_or_make_pairs(&policy, &tok, &device.clone().inner(), &mut Messages)?;
    let reference = match &run.ref_model {
        Some(spec) => Some(load(spec, &device.clone().inner())?.model),
        None => None,
    };
    let mut trainer = DpoTrainer::new(
        &tok,
        reference.as_ref().unwrap_or(&model),
        &train,
        &eval,
        &run,
    )?
    .with_task_eval(task_eval(run.eval_task.as_ref(), run.train.seed, &device)?);
    let mut session = Session::start(model, &device, run.train.clone())?;
    let data = format!("{} preference pairs ({} held out)", train.len(), eval.len());
    let card = ModelCard::for_run(&run.model, "DPO", &run, data);
    train_and_export(&mut session, &tok, &card, |s, bar| trainer.train(s, bar))
}

/// `temper make-pairs --model M --task arithmetic --n N --out pairs.jsonl`.
pub fn make_pairs_cmd(args: &MakePairsArgs) -> Result<()> {
    if args.synthetic_wrong {
        return synthetic_cmd(args);
    }
    let cfg: PairsConfig = match &args.config {
        Some(p) => temper_train::load_toml(p)?,
        None => {
            let mut cfg = PairsConfig {
                num_prompts: args.n,
                samples_per_prompt: args.k,
                eval_prompts: args.eval_n,
                seed: args.seed,
                ..PairsConfig::default()
            };
            cfg.generation.max_new_tokens = args.max_new_tokens;
            cfg.generation.temperature = args.temperature;
            if args.task != "arithmetic" {
                cfg.task = TaskSpec::Jsonl {
                    train_file: PathBuf::from(&args.task),
                    eval_file: None,
                    prefill: String::new(),
                };
            }
            cfg
        }
    };
    let source = args
        .config
        .as_ref()
        .map_or("the flags".into(), |p| p.display().to_string());
    cfg.validate().with_context(|| source)?;
    let device = temper_models::parse_device(&args.device)?;
    let loaded = load(&args.model, &device)?;
    let tok = loaded
        .tokenizer
        .as_ref()
        .context("the model has no tokenizer")?;
    let (train, eval, stats) = make_pairs(&loaded.model, tok, &cfg, &device)?;
    write_pairs_jsonl(&args.out, &train)?;
    if let Some(p) = &args.eval_out {
        write_pairs_jsonl(p, &eval)?;
    }
    println!("{}", serde_json::to_string(&stats)?);
    eprintln!("wrote {} pairs to {}", train.len(), args.out.display());
    Ok(())
}

/// The tokenizer of `--model` (a GGUF file or an HF folder with tokenizer.json), without loading weights.
fn load_tokenizer(spec: &str) -> Result<Tokenizer> {
    let path = resolve_model(spec)?;
    Ok(if path.is_file() {
        Tokenizer::from_gguf(&temper_gguf::GgufFile::open(&path)?)?
    } else {
        Tokenizer::from_file(&path.join("tokenizer.json"))?
    })
}

/// `temper make-pairs --synthetic-wrong`.
fn synthetic_cmd(args: &MakePairsArgs) -> Result<()> {
    if args.config.is_some() || args.task != "arithmetic" {
        bail!("--synthetic-wrong builds arithmetic pairs itself: drop --config and --task");
    }
    let spec = SyntheticSpec {
        digits: args.digits.clone(),
        ops: args
            .ops
            .iter()
            .map(|s| parse_op(s))
            .collect::<Result<_, _>>()
            .context("--ops")?,
        train_pairs: args.n,
        eval_pairs: args.eval_n,
        seed: args.seed,
    };
    let tok = load_tokenizer(&args.model)?;
    tok.chat_template()
        .context("--synthetic-wrong needs a model with a chat template")?;
    let (train, eval, stats) = synthetic_pairs(&tok, &spec).context("--synthetic-wrong")?;
    write_pairs_jsonl(&args.out, &train)?;
    match &args.eval_out {
        Some(p) => write_pairs_jsonl(p, &eval)?,
        None if !eval.is_empty() => bail!("--eval-n {} needs --eval-out FILE", args.eval_n),
        None => {}
    }
    println!("{}", serde_json::to_string(&stats)?);
    eprintln!(
        "wrote {} training pairs to {}",
        train.len(),
        args.out.display()
    );
    Ok(())
}
