//! The training subcommands, one shape each: read the TOML config (or defaults), load the model on an autodiff
//! device, run the trainer with a progress bar, and write `output_dir/final/`. The on-line ones (GRPO, RLOO, PPO,
//! CEM) are one generic body over [`OnlineConfig`].

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::de::DeserializeOwned;
use temper_models::Llama;
use temper_tokenizer::Tokenizer;
use temper_train::{CemRunConfig, GrpoRunConfig, PpoRunConfig, RlooRunConfig};
use temper_train::{
    ModelCard, OnlineConfig, Session, SftRunConfig, SftTrainer, TaskEval, TaskEvalConfig, TrainSettings,
    Trainable, start_online,
};

use crate::progress::TrainBar;
use crate::{TrainArgs, load};

/// The config of `--config`, or `defaults` when none is given (`None`: the command needs a file).
pub(crate) fn read_config<T: DeserializeOwned>(
    args: &TrainArgs,
    what: &str,
    defaults: Option<&str>,
) -> Result<T> {
    Ok(match (&args.config, defaults) {
        (Some(p), _) => temper_train::load_toml(p)?,
        (None, Some(text)) => temper_train::parse_toml(text, Path::new("<defaults>"))?,
        (None, None) => {
            anyhow::bail!("temper {what} needs --config FILE.toml (see examples/{what}.toml)")
        }
    })
}

/// `check`'s error prefixed with the config file (or `<defaults>`): run before anything is loaded or written, so a
/// bad value fails at once and leaves no output folder behind.
pub(crate) fn validated<E: std::fmt::Display>(
    args: &TrainArgs,
    check: std::result::Result<(), E>,
) -> Result<()> {
    check.map_err(|e| {
        let file = args
            .config
            .as_ref()
            .map_or("<defaults>".into(), |p| p.display().to_string());
        anyhow::anyhow!("{file}: {e}")
    })
}

/// Applies `--steps`, `--output-dir` and `--device`.
pub(crate) fn apply_overrides(train: &mut TrainSettings, device: &mut String, args: &TrainArgs) {
    if let Some(s) = args.steps {
        train.steps = s;
    }
    if let Some(o) = &args.output_dir {
        train.output_dir = o.clone();
    }
    if let Some(d) = &args.device {
        *device = d.clone();
    }
}

/// The run's model (asset name, GGUF file or HF folder) on `device` with autodiff, and its tokenizer.
pub(crate) fn load_for_training(model: &str, device: &str) -> Result<(Device, Llama, Tokenizer)> {
    let device = temper_models::parse_device(device)?.autodiff();
    let loaded = load(model, &device)?;
    let tok = loaded.tokenizer.context("the model has no tokenizer")?;
    Ok((device, loaded.model, tok))
}

/// The `[eval_task]` of an off-line run, built (its reward models loaded without autodiff on `device`).
pub(crate) fn task_eval(
    config: Option<&TaskEvalConfig>,
    seed: u64,
    device: &Device,
) -> Result<Option<TaskEval>> {
    Ok(match config {
        Some(c) => Some(TaskEval::new(c, seed, &device.clone().inner()).context("[eval_task]")?),
        None => None,
    })
}

/// Runs `train` on `session` with a progress bar, then writes `output_dir/final/`: the model with its tokenizer,
/// chat template and `card` (filled with the last step's metrics).
pub(crate) fn train_and_export<M: Trainable>(
    session: &mut Session<M>,
    tok: &Tokenizer,
    card: &ModelCard,
    train: impl FnOnce(&mut Session<M>, &mut TrainBar) -> temper_train::Result<()>,
) -> Result<()> {
    session.attach_tokenizer(tok)?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    train(session, &mut bar)?;
    bar.finish();
    let dir = session.export_final(tok, Some(card))?;
    eprintln!("final model: {}", dir.display());
    Ok(())
}

pub fn sft(args: &TrainArgs) -> Result<()> {
    let mut run: SftRunConfig = read_config(args, "sft", None)?;
    apply_overrides(&mut run.train, &mut run.device, args);
    validated(args, run.validate())?;
    let (train, eval) = SftTrainer::load_data(&run)?;
    let (device, model, tok) = load_for_training(&run.model, &run.device)?;
    let task_eval = task_eval(run.eval_task.as_ref(), run.train.seed, &device)?;
    let mut trainer = SftTrainer::new(&tok, &train, &eval, run.sft.clone(), &run.train)?.with_task_eval(task_eval);
    let mut session = Session::start(model, &device, run.train.clone())?;
    let card = ModelCard::for_run(
        &run.model,
        "SFT",
        &run,
        format!("`{}`", run.train_file.display()),
    );
    train_and_export(&mut session, &tok, &card, |s, bar| trainer.train(s, bar))
}

/// `temper grpo|rloo|ppo|cem`: the `[rollout]` model on its device, the algorithm in the on-line loop.
fn online<C: OnlineConfig>(args: &TrainArgs, what: &str) -> Result<()> {
    let mut run: C = read_config(args, what, Some(""))?;
    let mut device = run.rollout().device.clone();
    apply_overrides(run.train_mut(), &mut device, args);
    run.rollout_mut().device = device;
    validated(args, run.validate())?;
    let (device, model, tok) = load_for_training(&run.rollout().model, &run.rollout().device)?;
    let (mut trainer, mut session) = start_online(&run, &tok, model, &device)?;
    let task = serde_json::to_string(&run.rollout().task).unwrap_or_default();
    let card = ModelCard::for_run(
        &run.rollout().model,
        &what.to_uppercase(),
        &run,
        format!("task `{task}`"),
    );
    train_and_export(&mut session, &tok, &card, |s, bar| trainer.train(s, bar))
}

pub fn grpo(args: &TrainArgs) -> Result<()> {
    online::<GrpoRunConfig>(args, "grpo")
}

pub fn rloo(args: &TrainArgs) -> Result<()> {
    online::<RlooRunConfig>(args, "rloo")
}

pub fn ppo(args: &TrainArgs) -> Result<()> {
    online::<PpoRunConfig>(args, "ppo")
}

pub fn cem(args: &TrainArgs) -> Result<()> {
    online::<CemRunConfig>(args, "cem")
}
