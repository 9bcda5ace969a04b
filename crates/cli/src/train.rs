//! The training subcommands: read the TOML config (or defaults), load the model on an autodiff device, run the
//! trainer with a progress bar, and write the final model.

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use temper_train::{GrpoRunConfig, GrpoTrainer, Session, SftRunConfig, SftTrainer, TrainSettings, export_hf};
use temper_train::{CemRunConfig, CemTrainer, PpoRunConfig, PpoTrainer, RlooRunConfig, RlooTrainer};

use crate::progress::TrainBar;
use crate::{TrainArgs, load};

fn read_config<T: DeserializeOwned>(args: &TrainArgs, defaults: &str) -> Result<T> {
    Ok(match &args.config {
        Some(p) => temper_train::load_toml(p)?,
        None => temper_train::parse_toml(defaults, Path::new("<defaults>"))?,
    })
}

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

fn finish(session: &Session, tok: &temper_tokenizer::Tokenizer) -> Result<()> {
    let dir = session.settings.output_dir.join("final");
    let tok_json = tok.inner().to_string(false).map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))?;
    export_hf(&session.model, &dir, &[("tokenizer.json", tok_json.into_bytes())])?;
    eprintln!("final model: {}", dir.display());
    Ok(())
}

pub fn sft(args: &TrainArgs) -> Result<()> {
    let mut run: SftRunConfig = read_config(args, "model = \"smollm2\"\ntrain_file = \"missing.jsonl\"\n")?;
    if args.config.is_none() {
        anyhow::bail!("temper sft needs --config FILE.toml naming train_file (see examples/sft.toml)");
    }
    apply_overrides(&mut run.train, &mut run.device, args);
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let (train, eval) = SftTrainer::load_data(&run)?;
    let mut trainer = SftTrainer::new(tok, &train, &eval, run.sft.clone(), &run.train)?;
    let mut session = Session::start(loaded.model, &device, run.train.clone())?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    trainer.train(&mut session, &mut bar)?;
    bar.finish();
    finish(&session, tok)
}

pub fn grpo(args: &TrainArgs) -> Result<()> {
    let mut run: GrpoRunConfig = read_config(args, "")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let mut trainer = GrpoTrainer::new(tok, &loaded.model, run.clone())?;
    let mut session = Session::start(loaded.model, &device, run.train.clone())?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    trainer.train(&mut session, &mut bar)?;
    bar.finish();
    finish(&session, tok)
}

pub fn rloo(args: &TrainArgs) -> Result<()> {
    let mut run: RlooRunConfig = read_config(args, "")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let mut trainer = RlooTrainer::new(tok, &loaded.model, run.clone())?;
    let mut session = Session::start(loaded.model, &device, run.train.clone())?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    trainer.train(&mut session, &mut bar)?;
    bar.finish();
    finish(&session, tok)
}

pub fn ppo(args: &TrainArgs) -> Result<()> {
    let mut run: PpoRunConfig = read_config(args, "")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let mut trainer = PpoTrainer::start(tok, loaded.model, &device, run.clone())?;
    let mut bar = TrainBar::new(run.train.steps, trainer.step());
    trainer.train(&mut bar)?;
    bar.finish();
    let dir = run.train.output_dir.join("final");
    let tok_json = tok.inner().to_string(false).map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))?;
    export_hf(trainer.policy(), &dir, &[("tokenizer.json", tok_json.into_bytes())])?;
    eprintln!("final model: {}", dir.display());
    Ok(())
}

pub fn cem(args: &TrainArgs) -> Result<()> {
    let mut run: CemRunConfig = read_config(args, "")?;
    apply_overrides(&mut run.train, &mut run.device, args);
    let device = temper_models::parse_device(&run.device)?.autodiff();
    let loaded = load(&run.model, &device)?;
    let tok = loaded.tokenizer.as_ref().context("the model has no tokenizer")?;
    let mut trainer = CemTrainer::new(tok, run.clone())?;
    let mut session = Session::start(loaded.model, &device, run.train.clone())?;
    let mut bar = TrainBar::new(session.settings.steps, session.step);
    trainer.train(&mut session, &mut bar)?;
    bar.finish();
    finish(&session, tok)
}
