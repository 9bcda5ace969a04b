//! The preference subcommands: `temper rm` (reward model), `temper dpo` and `temper make-pairs` (preference
//! pairs from a model's own samples ranked by rule rewards, or `--synthetic-wrong` arithmetic pairs whose
//! rejected answer is a typical mistake).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use temper_tasks::{SyntheticSpec, parse_op, synthetic_pairs};
use temper_tokenizer::Tokenizer;
use temper_train::{
    DpoRunConfig, DpoTrainer, PairsConfig, RewardModel, RmRunConfig, RmTrainer, Session, TaskSpec, export_hf,
    make_pairs, write_pairs_jsonl,
};

use crate::progress::TrainBar;
use crate::train::apply_overrides;
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
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Seed of the task and the sampler.
    #[arg(long, default_value_t = 0)]
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

fn read_config<T: serde::de::DeserializeOwned>(args: &TrainArgs, what: &str) -> Result<T> {
    let path = args
        .config
        .as_ref()
        .with_context(|| format!("temper {what} needs --config FILE.toml (see examples/{what}.toml)"))?;
    Ok(temper_train::load_toml(path)?)
}

fn tokenizer_json(tok: &Tokenizer) -> Result<Vec<u8>> {
    Ok(tok
        .inner()
        .to_string(false)
        .map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))?
        .into_bytes())
}

fn is_classifier(path: &Path) -> bool {
    std::fs::read_to_string(path.join("config.json")).is_ok_and(|c| c.contains("ForSequenceClassification"))
}

/// `temper rm --config rm.toml`.
pub fn rm(args: &TrainArgs) -> Result<()> {
    let mut run: RmRunConfig = read_config(args, "rm")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    run.validate()?;
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let path = resolve_model(&run.model)?;
    let (model, tok) = if path.is_dir() && is_classifier(&path) {
        let tok = Tokenizer::from_file(&path.join("tokenizer.json"))
            .with_context(|| format!("a reward model folder needs tokenizer.json: {}", path.display()))?;
        (RewardModel::load_hf_dir(&path, &device)?, tok)
    } else {
        let loaded = load(&run.model, &device)?;
        let tok = loaded.tokenizer.context("the model has no tokenizer")?;
        let pad = tok
            .pad_id()
            .or(tok.eos_id())
            .or(loaded.model.config().pad_token_id)
            .unwrap_or(0);
        (
            RewardModel::from_backbone(loaded.model, run.head_init_std, run.train.seed, pad, &device),
            tok,
        )
    };
    let (train, eval) = run.load_data()?;
    let mut trainer = RmTrainer::new(&tok, model, &device, &train, &eval, run.rm.clone(), run.train.clone())?;
    let mut bar = TrainBar::new(trainer.session.settings.steps, trainer.session.step);
    trainer.train(&mut bar)?;
    bar.finish();
    let dir = trainer.session.settings.output_dir.join("final");
    trainer
        .session
        .merged()
        .export(&dir, &[("tokenizer.json", tokenizer_json(&tok)?)])?;
    eprintln!("final reward model: {}", dir.display());
    Ok(())
}

/// `temper dpo --config dpo.toml`.
pub fn dpo(args: &TrainArgs) -> Result<()> {
    let mut run: DpoRunConfig = read_config(args, "dpo")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    run.validate()?;
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let (train, eval) = match &run.pairs {
        None => run.load_data()?,
        Some(cfg) => {
            // Pairs from the model's own samples; kept in output_dir so that a resumed run trains on the same data.
            temper_train::cached_pairs(&run.train.output_dir, run.train.resume, || {
                eprintln!("sampling preference pairs from the model ...");
                let policy = burn::module::Module::valid(&loaded.model);
                let (t, e, stats) = make_pairs(&policy, tok, cfg, &device.clone().inner())?;
                eprintln!(
                    "{} pairs from {} prompts (chosen reward {:.3}, rejected {:.3}); {} held-out pairs",
                    stats.pairs,
                    stats.prompts,
                    stats.mean_chosen_reward,
                    stats.mean_rejected_reward,
                    e.len()
                );
                if t.is_empty() {
                    bail!(
                        "no prompt had a best sample better than its worst: raise [pairs] samples_per_prompt or num_prompts"
                    );
                }
                Ok((t, e))
            })?
        }
    };
    let reference = match &run.ref_model {
        Some(spec) => Some(load(spec, &device.clone().inner())?.model),
        None => None,
    };
    let mut trainer = DpoTrainer::new(tok, reference.as_ref().unwrap_or(&loaded.model), &train, &eval, &run)?;
    let mut session = Session::start(loaded.model, &device, run.train.clone())?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    trainer.train(&mut session, &mut bar)?;
    bar.finish();
    let dir = session.settings.output_dir.join("final");
    export_hf(&session.model, &dir, &[("tokenizer.json", tokenizer_json(tok)?)])?;
    eprintln!("final model: {}", dir.display());
    Ok(())
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
    let device = temper_models::parse_device(&args.device)?;
    let loaded = load(&args.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
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
        ops: args.ops.iter().map(|s| parse_op(s)).collect::<Result<_, _>>().context("--ops")?,
        train_pairs: args.n,
        eval_pairs: args.eval_n,
        seed: args.seed,
    };
    let tok = load_tokenizer(&args.model)?;
    tok.chat_template().context("--synthetic-wrong needs a model with a chat template")?;
    let (train, eval, stats) = synthetic_pairs(&tok, &spec).context("--synthetic-wrong")?;
    write_pairs_jsonl(&args.out, &train)?;
    match &args.eval_out {
        Some(p) => write_pairs_jsonl(p, &eval)?,
        None if !eval.is_empty() => bail!("--eval-n {} needs --eval-out FILE", args.eval_n),
        None => {}
    }
    println!("{}", serde_json::to_string(&stats)?);
    eprintln!("wrote {} training pairs to {}", train.len(), args.out.display());
    Ok(())
}
