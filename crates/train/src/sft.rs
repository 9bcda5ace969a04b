//! Supervised fine-tuning: masked NLL (or DFT) on completions / assistant turns, with exact gradient
//! accumulation (each micro-batch is weighted by its share of the step's target tokens).

use std::path::PathBuf;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use temper_models::CausalLm;
use temper_rl_objectives::{SftConfig, SftInputs, sft_loss};
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::Tokenizer;

use crate::batch::{PaddedBatch, Tokenized, mask_tensor, shift_mask, token_scores, tokenize_sft};
use crate::config::{TrainSettings, default_device};
use crate::data::{Cursor, SftExample, parse_sft, read_jsonl};
use crate::error::{Result, TrainError};
use crate::session::{Metrics, Observer, Session};
use crate::task_eval::{TaskEval, TaskEvalConfig};

/// `temper sft --config FILE.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftRunConfig {
    /// The model to start from (asset name, GGUF file or HF folder; resolved by the CLI).
    pub model: String,
    /// Device: cpu, wgpu, cuda.
    #[serde(default = "default_device")]
    pub device: String,
    /// Training JSONL.
    pub train_file: PathBuf,
    /// Held-out JSONL for `eval/loss`.
    #[serde(default)]
    pub eval_file: Option<PathBuf>,
    /// Loop settings.
    #[serde(default)]
    pub train: TrainSettings,
    /// Objective settings.
    #[serde(default)]
    pub sft: SftConfig,
    /// Held-out task accuracy (`eval/accuracy`) beside `eval/loss`, measured as the on-line trainers measure it.
    #[serde(default)]
    pub eval_task: Option<TaskEvalConfig>,
}

impl SftRunConfig {
    /// Checks `[train]` and `[eval_task]` before anything is loaded.
    pub fn validate(&self) -> Result<()> {
        self.train.validate().map_err(|message| TrainError::Config {
            path: "[train]".into(),
            message,
        })?;
        self.eval_task.as_ref().map_or(Ok(()), TaskEvalConfig::validate)
    }
}

/// The SFT objective's inputs for one padded micro-batch: next-token log-probs under `model`, the loss mask
/// aligned to them, and the entropy metric (no gradient), as `SftTrainer` feeds `sft_loss`.
pub fn sft_inputs<M: CausalLm + ?Sized>(model: &M, b: &PaddedBatch, device: &Device) -> SftInputs {
    let scores = token_scores(model, &b.ids, &b.attention, false, 1.0, EntropyMode::Detached, device);
    let mut inputs = SftInputs::new(scores.logps, mask_tensor(&shift_mask(&b.loss_mask), device));
    inputs.entropy = scores.entropy;
    inputs
}

/// An SFT run over tokenised data.
pub struct SftTrainer<'a> {
    tok: &'a Tokenizer,
    train: Vec<Tokenized>,
    eval: Vec<Tokenized>,
    cursor: Cursor,
    config: SftConfig,
    pad: u32,
    task_eval: Option<TaskEval>,
}

impl<'a> SftTrainer<'a> {
    /// Tokenises the data (errors name the file and line of a bad example).
    pub fn new(
        tok: &'a Tokenizer,
        train: &[SftExample],
        eval: &[SftExample],
        config: SftConfig,
        settings: &TrainSettings,
    ) -> Result<Self> {
        // The tokenizer's ids (an SFT run has no model config at hand): the same rule as every trainer.
        let ids = tok.special_ids(None);
        let (eos, pad) = (ids.eos.unwrap_or(0), ids.pad);
        let enc = |xs: &[SftExample]| -> Result<Vec<Tokenized>> {
            xs.iter().map(|x| tokenize_sft(tok, x, eos, settings.max_length)).collect()
        };
        Ok(Self {
            tok,
            train: enc(train)?,
            eval: enc(eval)?,
            cursor: Cursor::new(train.len(), settings.seed),
            config,
            pad,
            task_eval: None,
        })
    }

    /// Also measures held-out task accuracy whenever `eval/loss` is measured.
    pub fn with_task_eval(mut self, task_eval: Option<TaskEval>) -> Self {
        self.task_eval = task_eval;
        self
    }

    /// Logs `eval/loss` and, with `[eval_task]`, `eval/reward` and `eval/accuracy` at the session's step.
    fn log_eval(&self, session: &Session, observer: &mut dyn Observer) -> Result<()> {
        if let Some(l) = self.eval_loss(session)? {
            session.log_value(&serde_json::json!({"step": session.step, "eval/loss": l}))?;
            observer.on_message(&format!("step {}: eval/loss {l:.4}", session.step));
        }
        match &self.task_eval {
            Some(t) => t.log(session, self.tok, observer),
            None => Ok(()),
        }
    }

    /// Reads the JSONL files named in a run config.
    pub fn load_data(run: &SftRunConfig) -> Result<(Vec<SftExample>, Vec<SftExample>)> {
        let train = read_jsonl(&run.train_file, parse_sft)?;
        let eval = match &run.eval_file {
            Some(p) => read_jsonl(p, parse_sft)?,
            None => Vec::new(),
        };
        Ok((train, eval))
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.tok
    }

    /// Mean NLL per target token over the held-out set (no gradients).
    pub fn eval_loss(&self, session: &Session) -> Result<Option<f64>> {
        if self.eval.is_empty() {
            return Ok(None);
        }
        let model = burn::module::Module::valid(&session.model);
        let device = session.device.clone().inner();
        let (mut sum, mut n) = (0.0, 0usize);
        for chunk in self.eval.chunks(session.settings.micro_batch()) {
            let b = PaddedBatch::right_padded(chunk, self.pad);
            let scores = token_scores(&model, &b.ids, &b.attention, false, 1.0, EntropyMode::Skip, &device);
            let mask = mask_tensor(&shift_mask(&b.loss_mask), &device);
            let tokens = b.target_tokens();
            let nll: f32 = (scores.logps * mask).sum().neg().into_scalar();
            sum += f64::from(nll);
            n += tokens;
        }
        Ok(Some(sum / n.max(1) as f64))
    }

    /// Runs until `session.settings.steps`, checkpointing as configured.
    pub fn train(&mut self, session: &mut Session, observer: &mut dyn Observer) -> Result<()> {
        if let Some(state) = session.take_resumed_state("SFT data cursor")? {
            self.cursor = state;
        }
        if session.step == 0 {
            self.log_eval(session, observer)?;
        }
        while session.running() {
            let picked = self.cursor.take(session.settings.batch_size);
            let micro = session.settings.micro_batch();
            let batches: Vec<PaddedBatch> = picked
                .chunks(micro)
                .map(|idx| {
                    let seqs: Vec<Tokenized> = idx.iter().map(|&i| self.train[i].clone()).collect();
                    PaddedBatch::right_padded(&seqs, self.pad)
                })
                .collect();
            let total_tokens: usize = batches.iter().map(PaddedBatch::target_tokens).sum();
            let device = session.device.clone();
            let config = self.config.clone();
            let cursor = self.cursor.clone();
            let report = session.step(
                |model, i| {
                    let b = &batches[i];
                    let out = sft_loss(&config, sft_inputs(model, b, &device))?;
                    // Weight by this micro-batch's share of target tokens: Σ_i loss_i = mean over the step.
                    let share = b.target_tokens() as f64 / total_tokens.max(1) as f64;
                    let mut m: Metrics = out.metrics;
                    m.insert("num_tokens".into(), b.target_tokens() as f64 * batches.len() as f64);
                    Ok((out.loss * share, m))
                },
                Metrics::new(),
                || serde_json::to_value(&cursor).unwrap_or_default(),
            )?;
            observer.on_step(&report);
            if session.eval_due() {
                self.log_eval(session, observer)?;
            }
            session.checkpoint_if_due(&self.cursor, observer)?;
        }
        Ok(())
    }
}
