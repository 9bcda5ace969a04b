//! The loop every trainer shares: AdamW with warm-up + schedule, gradient accumulation, global-norm clipping,
//! non-finite checks, metrics as JSONL, and checkpoints (weights as safetensors, optimizer, data position)
//! written atomically and resumed exactly — for any [`Trainable`] module (a bare [`Llama`], a reward model, a
//! policy with a value head), in full or through LoRA adapters (`[train] lora`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use temper_models::{Llama, load_hf_dir};

use crate::adamw::FusedAdamW;
use crate::atomic::{atomic_dir, recover_interrupted_writes, write_atomic};
use crate::config::TrainSettings;
use crate::error::{Result, TrainError};
use crate::export::{HfTensors, hf_tensors, read_f32_safetensors, safetensors_bytes};
use crate::faults;
use crate::lora::{
    LoraSettings, attach, frozen_checksum, load_by_path, trainable_count, trainable_tensors,
};
use crate::model_card::{ModelCard, hf_folder_files, last_step_metrics};
use crate::params::{add_grads, clip_grad_norm, stable_param_ids};
use crate::peft::peft_adapter_files;
use crate::schedule::lr_at;

/// A module [`Session`] can train and checkpoint: it writes its weights into a folder and reads them back (the
/// folder is a model transformers can load), and says which parameters stay fully trained under LoRA.
pub trait Trainable: Module + Sized {
    /// Writes the weights into `dir` (`model.safetensors`, plus any extra files, e.g. a value head). Called on a
    /// plain (merged) model: LoRA adapters have already been folded into the weights.
    fn save_weights(&self, dir: &Path) -> Result<()>;
    /// The `config.json` written next to the weights.
    fn config_json(&self) -> serde_json::Value;
    /// Rebuilds the model from a folder written by [`Trainable::save_weights`] + [`Trainable::config_json`].
    fn load_weights(dir: &Path, device: &Device) -> Result<Self>;
    /// Writes the final model folder `dir` (weights, `config.json` and the `extra` files, e.g. `tokenizer.json`)
    /// atomically, from a plain (merged) model: what `output_dir/final/` holds. Default: the checkpoint's
    /// [`Trainable::save_weights`] + [`Trainable::config_json`].
    fn write_export(&self, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
        let config = serde_json::to_vec_pretty(&self.config_json())
            .map_err(|e| TrainError::Export(e.to_string()))?;
        atomic_dir(dir, |tmp| {
            self.save_weights(tmp)?;
            write_atomic(&tmp.join("config.json"), &config)?;
            for (name, content) in extra {
                write_atomic(&tmp.join(name), content)?;
            }
            Ok(())
        })
    }
    /// Whether the parameter at burn path `path` is trained in full when LoRA is on (a task head such as a
    /// reward model's `score`; PEFT's `modules_to_save`). Default: none.
    fn trained_in_full(_path: &str) -> bool {
        false
    }
}

impl Trainable for Llama {
    fn save_weights(&self, dir: &Path) -> Result<()> {
        write_atomic(
            &dir.join("model.safetensors"),
            &safetensors_bytes(&hf_tensors(self)?)?,
        )
    }

    fn config_json(&self) -> serde_json::Value {
        self.config().to_hf_json()
    }

    fn load_weights(dir: &Path, device: &Device) -> Result<Self> {
        Ok(load_hf_dir(dir, device)?)
    }

    fn write_export(&self, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
        crate::export::export_hf(self, dir, extra)
    }
}

/// What a LoRA checkpoint records about its adapters (`adapter_config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterConfig {
    lora: LoraSettings,
    /// [`frozen_checksum`] of the base: a resume from another base is refused.
    base_checksum: f64,
}

/// One optimizer update (no step counting, no logging): see [`Session::update`].
#[derive(Clone, Debug)]
pub struct Update {
    /// Sum of the micro-batch losses.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Sum of the micro-batches' metrics (as returned by the closure).
    pub metrics: Metrics,
}

/// Named scalar metrics of one step (TRL's names): the one `Metrics` type, from `temper-rl-objectives`.
pub use temper_rl_objectives::Metrics;

/// What one optimizer step did.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// 1-based step number after this update.
    pub step: usize,
    /// Total steps planned.
    pub total_steps: usize,
    /// Loss of the whole (accumulated) batch.
    pub loss: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Wall time of the step in seconds.
    pub seconds: f64,
    /// Algorithm metrics (TRL's names), averaged over micro-batches.
    pub metrics: Metrics,
}

/// Receives progress (the CLI draws a progress bar; tests collect reports).
pub trait Observer {
    /// Called after every optimizer step.
    fn on_step(&mut self, report: &StepReport);
    /// Free-form progress messages (evaluation results, checkpoints).
    fn on_message(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn on_step(&mut self, _: &StepReport) {}
}

/// Saved next to the weights: everything else needed to continue exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: usize,
    /// The run's seed (per-step randomness is derived from `seed` and `step`).
    pub seed: u64,
    /// The algorithm's own position (data cursor, CEM iteration, ...).
    pub algorithm: serde_json::Value,
}

/// A model being trained, with its optimizer and bookkeeping.
pub struct Session<M = Llama> {
    /// The model, on an autodiff device (with LoRA: frozen weights plus trainable adapters).
    pub model: M,
    /// The device (with autodiff).
    pub device: Device,
    /// Loop settings.
    pub settings: TrainSettings,
    /// Optimizer steps done so far.
    pub step: usize,
    /// State the algorithm asked to restore (after a resume); read it with [`Session::take_resumed_state`].
    resumed_algorithm_state: Option<serde_json::Value>,
    optim: ModuleOptimizer,
    metrics_file: PathBuf,
    /// With LoRA: the checksum of the frozen base.
    base_checksum: Option<f64>,
    /// Written beside the weights in every checkpoint ([`Session::attach_tokenizer`]).
    model_files: Vec<(String, Vec<u8>)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// AdamW with the run's betas, epsilon and weight decay (the learning rate is passed per step).
pub(crate) fn adamw(s: &TrainSettings) -> ModuleOptimizer {
    FusedAdamW::new(
        s.adam_beta1 as f32,
        s.adam_beta2 as f32,
        s.adam_epsilon as f32,
        s.weight_decay as f32,
    )
    .init()
}

/// Appends one JSON line to `path` in one write and flushes it, so a crash loses at most the current line (a line
/// cut short is dropped by [`trim_metrics`] when the run resumes).
pub(crate) fn append_jsonl(path: &Path, value: &serde_json::Value) -> Result<()> {
    let line = format!("{value}\n");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    faults::pause(faults::Phase::Metrics);
    f.write_all(line.as_bytes()).map_err(io(path))?;
    f.flush().map_err(io(path))
}

/// Repairs `metrics.jsonl` for a run resuming at `step`: keeps the lines of steps up to `step` in order and drops
/// the rest — lines of later steps (the resumed run logs them again), a line cut short by a crash, anything that is
/// not a JSON object with a `step`. Written atomically; a missing file stays missing.
pub(crate) fn trim_metrics(path: &Path, step: usize) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut kept = Vec::with_capacity(bytes.len());
    for line in bytes.split(|&b| b == b'\n') {
        let line_step = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64));
        if line_step.is_some_and(|s| s as usize <= step) {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
    }
    if kept != bytes {
        write_atomic(path, &kept)?;
    }
    Ok(())
}

/// Points `output_dir/latest` at checkpoint `name`, then deletes all but the `keep` newest `checkpoint-<step>`
/// folders (never `name`).
pub(crate) fn mark_latest_and_prune(output_dir: &Path, name: &str, keep: usize) -> Result<()> {
    write_atomic(&output_dir.join("latest"), name.as_bytes())?;
    let mut steps: Vec<(usize, PathBuf)> = checkpoint_dirs(output_dir)?
        .into_iter()
        .filter(|(_, p)| !p.ends_with(name))
        .collect();
    steps.sort();
    let keep = keep.max(1) - 1; // `name` is one of the kept
    if steps.len() > keep {
        for (_, p) in &steps[..steps.len() - keep] {
            std::fs::remove_dir_all(p).map_err(io(p))?;
        }
    }
    Ok(())
}

/// The `checkpoint-<step>` folders in `output_dir`, with their steps.
fn checkpoint_dirs(output_dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    Ok(std::fs::read_dir(output_dir)
        .map_err(io(output_dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("checkpoint-")?
                .parse::<usize>()
                .ok()
                .map(|s| (s, e.path()))
        })
        .collect())
}

/// Makes `output_dir` whole again after a crash, before a run starts in it: removes what an interrupted atomic
/// write left ([`recover_interrupted_writes`]) and the checkpoint folders newer than the one `latest` names (a
/// crash between writing the folder and moving `latest`; the run redoes those steps). Without a valid `latest`
/// no checkpoint folder is touched.
fn recover_output_dir(output_dir: &Path) -> Result<()> {
    recover_interrupted_writes(output_dir)?;
    let latest = latest_checkpoint(output_dir).and_then(|p| {
        let name = p.file_name()?.to_string_lossy().to_string();
        name.strip_prefix("checkpoint-")?.parse::<usize>().ok()
    });
    let Some(latest) = latest else {
        return Ok(());
    };
    for (step, path) in checkpoint_dirs(output_dir)? {
        if step > latest {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// The newest checkpoint folder in `output_dir`, if any.
pub fn latest_checkpoint(output_dir: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(output_dir.join("latest")).ok()?;
    let p = output_dir.join(name.trim());
    p.join("trainer_state.json").is_file().then_some(p)
}

impl<M: Trainable> Session<M> {
    /// Starts from `model` (moved to `device`, which must have autodiff), or resumes from the newest checkpoint
    /// in `settings.output_dir` when `settings.resume` is set and one exists. With `settings.lora`, adapters are
    /// attached to the targeted projections (seeded by `settings.seed`) and every other weight is frozen; a
    /// resumed LoRA run reads its adapters from the checkpoint and keeps `model` as the frozen base.
    pub fn start(model: M, device: &Device, settings: TrainSettings) -> Result<Self> {
        settings.validate().map_err(|message| TrainError::Config {
            path: PathBuf::from("[train]"),
            message,
        })?;
        std::fs::create_dir_all(&settings.output_dir).map_err(io(&settings.output_dir))?;
        recover_output_dir(&settings.output_dir)?;
        let metrics_file = settings.output_dir.join("metrics.jsonl");
        let mut model = model.fork(device);
        let mut base_checksum = None;
        if let Some(lora) = &settings.lora {
            let (adapted, n) = attach(model, lora, settings.seed, &M::trained_in_full);
            if n == 0 {
                return Err(TrainError::Config {
                    path: PathBuf::from("[train.lora]"),
                    message: format!("no weight matches targets {:?}", lora.targets),
                });
            }
            if trainable_count(&adapted) == 0 {
                return Err(TrainError::Config {
                    path: PathBuf::from("[train.lora]"),
                    message: "the adapters do not require gradients: start the session on an autodiff device".into(),
                });
            }
            base_checksum = Some(frozen_checksum(&adapted));
            model = adapted;
        }
        let mut session = Session {
            model: stable_param_ids(model),
            device: device.clone(),
            step: 0,
            resumed_algorithm_state: None,
            optim: adamw(&settings),
            metrics_file,
            settings,
            base_checksum,
            model_files: Vec::new(),
        };
        if session.settings.resume
            && let Some(ckpt) = latest_checkpoint(&session.settings.output_dir)
        {
            session.load_checkpoint(&ckpt)?;
        } else if session.metrics_file.exists() {
            std::fs::remove_file(&session.metrics_file).map_err(io(&session.metrics_file))?;
        }
        Ok(session)
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let bad = |message: String| TrainError::Checkpoint {
            path: dir.to_path_buf(),
            message,
        };
        let state_path = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
        let state: TrainerState =
            serde_json::from_str(&text).map_err(|e| bad(format!("trainer_state.json: {e}")))?;
        let adapter_cfg = dir.join("adapter_config.json");
        match (&self.settings.lora, self.base_checksum) {
            (Some(lora), Some(checksum)) => {
                let text = std::fs::read_to_string(&adapter_cfg).map_err(|_| {
                    bad("train.lora is set but the checkpoint has no adapter_config.json (it was a full fine-tuning run)".into())
                })?;
                let saved: AdapterConfig = serde_json::from_str(&text)
                    .map_err(|e| bad(format!("adapter_config.json: {e}")))?;
                if &saved.lora != lora {
                    return Err(bad(format!(
                        "adapters were trained with {:?}, the config asks for {lora:?}",
                        saved.lora
                    )));
                }
                let tolerance = 1e-12 * checksum.abs().max(1.0);
                if (saved.base_checksum - checksum).abs() > tolerance {
                    return Err(bad(format!(
                        "the base model differs from the one the adapters were trained on (checksum {} vs {checksum})",
                        saved.base_checksum
                    )));
                }
                let values = read_f32_safetensors(&dir.join("adapter_model.safetensors"))?;
                let (model, problems) = load_by_path(self.model.clone(), &values);
                if !problems.is_empty() {
                    return Err(bad(format!(
                        "adapter_model.safetensors: {}",
                        problems.join("; ")
                    )));
                }
                self.model = model;
            }
            _ => {
                if adapter_cfg.is_file() {
                    return Err(bad(
                        "the checkpoint holds LoRA adapters but train.lora is not set".into(),
                    ));
                }
                self.model = stable_param_ids(M::load_weights(dir, &self.device)?);
            }
        }
        let opt_path = dir.join("optimizer.bpk");
        let bytes = std::fs::read(&opt_path).map_err(io(&opt_path))?;
        self.optim = adamw(&self.settings)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| bad(format!("optimizer.bpk: {e:?}")))?;
        self.step = state.step;
        self.resumed_algorithm_state = Some(state.algorithm);
        // Drop metrics of steps after the checkpoint: they will be redone.
        trim_metrics(&self.metrics_file, state.step)
    }

    /// The trained model as a plain module without gradients: LoRA adapters merged into the weights
    /// (`W + (alpha/r)·A B`), what exports and checkpoints write.
    pub fn merged(&self) -> M {
        self.model.valid().materialize()
    }

    /// Makes every checkpoint's model part a folder transformers opens as it opens the base model: the tokenizer's
    /// files (with its chat template) and `generation_config.json` are written beside the weights.
    pub fn attach_tokenizer(&mut self, tok: &temper_tokenizer::Tokenizer) -> Result<()> {
        self.model_files = hf_folder_files(&self.model.config_json(), Some(tok), None)?;
        Ok(())
    }

    /// Writes the trained model, merged, to `output_dir/final/` as a complete HF folder (weights, `config.json`,
    /// the tokenizer's files with its chat template, `generation_config.json`, and the model card `README.md` with
    /// the last step's metrics when `card` is given); a LoRA run also writes its adapters in PEFT's format to
    /// `final/adapter/`. Returns the folder.
    pub fn export_final(
        &self,
        tok: &temper_tokenizer::Tokenizer,
        card: Option<&ModelCard>,
    ) -> Result<PathBuf> {
        let dir = self.settings.output_dir.join("final");
        let merged = self.merged();
        let card = card.map(|c| ModelCard {
            metrics: last_step_metrics(&self.metrics_file),
            ..c.clone()
        });
        let files = hf_folder_files(&merged.config_json(), Some(tok), card.as_ref())?;
        let extra: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        merged.write_export(&dir, &extra)?;
        if let Some(lora) = &self.settings.lora {
            let base = card.as_ref().map_or("", |c| c.base_model.as_str());
            let adapter = peft_adapter_files(&self.model, lora, base)?;
            atomic_dir(&dir.join("adapter"), |tmp| {
                for (name, bytes) in &adapter {
                    write_atomic(&tmp.join(name), bytes)?;
                }
                Ok(())
            })?;
        }
        Ok(dir)
    }

    /// True while steps remain.
    pub fn running(&self) -> bool {
        self.step < self.settings.steps
    }

    /// Number of micro-batches per optimizer step.
    pub fn accumulation(&self) -> usize {
        self.settings.batch_size / self.settings.micro_batch()
    }

    /// One optimizer step. `micro(model, i)` returns the loss of micro-batch `i` of `accumulation()`,
    /// **already scaled** so that the sum over micro-batches is the batch loss, plus its metrics.
    ///
    /// `extra` metrics (rollout rewards, timings) are logged with the step. `algorithm_state` is saved in the
    /// "last-good" checkpoint if the loss turns non-finite.
    pub fn step(
        &mut self,
        mut micro: impl FnMut(&M, usize) -> Result<(Tensor<1>, Metrics)>,
        extra: Metrics,
        algorithm_state: impl FnOnce() -> serde_json::Value,
    ) -> Result<StepReport> {
        let t0 = Instant::now();
        let n = self.accumulation();
        let (index, total) = (self.step, self.settings.steps);
        let update = self.update(
            n,
            |model, i| {
                let (loss, mut m) = micro(model, i)?;
                m.values_mut().for_each(|v| *v /= n as f64); // micro-batch metrics: mean over micro-batches
                Ok((loss, m))
            },
            (index, total),
            algorithm_state,
        )?;
        let mut metrics = extra;
        for (k, v) in update.metrics {
            *metrics.entry(k).or_insert(0.0) += v;
        }
        self.finish_step(
            update.loss,
            update.grad_norm,
            update.learning_rate,
            metrics,
            t0,
        )
    }

    /// One optimizer update without counting a step: accumulates the gradients of `micro_batches` micro-losses
    /// (each already scaled so that their sum is the update's loss; their metrics are summed), clips them, and
    /// steps AdamW at the learning rate of update `schedule.0` of `schedule.1`. For trainers that make several
    /// updates per step (PPO's epochs × mini-batches); call [`Session::finish_step`] after the last one.
    pub fn update(
        &mut self,
        micro_batches: usize,
        mut micro: impl FnMut(&M, usize) -> Result<(Tensor<1>, Metrics)>,
        schedule: (usize, usize),
        algorithm_state: impl FnOnce() -> serde_json::Value,
    ) -> Result<Update> {
        let mut grads: Option<GradientsParams> = None;
        let mut loss_sum = 0.0;
        let mut metrics = Metrics::new();
        for i in 0..micro_batches {
            let (loss, m) = micro(&self.model, i)?;
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(self.non_finite(value, algorithm_state()));
            }
            loss_sum += value;
            for (k, v) in m {
                *metrics.entry(k).or_insert(0.0) += v;
            }
            let g = GradientsParams::from_grads(loss.backward(), &self.model);
            match grads.as_mut() {
                Some(acc) => add_grads(&self.model, acc, g),
                None => grads = Some(g),
            }
        }
        let mut grads = grads.unwrap_or_default();
        let grad_norm = match self.settings.max_grad_norm {
            Some(max) => clip_grad_norm(&self.model, &mut grads, max),
            None => crate::params::grad_norm(&self.model, &grads),
        };
        if !grad_norm.is_finite() {
            return Err(self.non_finite(grad_norm, algorithm_state()));
        }
        let s = &self.settings;
        let lr = lr_at(
            s.lr_schedule,
            s.learning_rate,
            s.warmup_steps,
            schedule.0,
            schedule.1,
        );
        // `clone` is shallow (tensors are shared handles); the optimizer returns the updated module.
        self.model = self.optim.step(lr, self.model.clone(), grads);
        Ok(Update {
            loss: loss_sum,
            grad_norm,
            learning_rate: lr,
            metrics,
        })
    }

    /// Saves a "last-good" checkpoint (the state before the failing step) and returns the error to raise.
    fn non_finite(&self, value: f64, algorithm_state: serde_json::Value) -> TrainError {
        match self.save_checkpoint_named("last-good", algorithm_state) {
            Ok(saved) => TrainError::NonFinite {
                step: self.step + 1,
                value,
                checkpoint: Some(saved),
            },
            Err(e) => e,
        }
    }

    /// Counts a finished step (`step += 1`) and logs it to `metrics.jsonl`; `t0` is when the step began.
    pub fn finish_step(
        &mut self,
        loss: f64,
        grad_norm: f64,
        learning_rate: f64,
        metrics: Metrics,
        t0: Instant,
    ) -> Result<StepReport> {
        self.step += 1;
        let report = StepReport {
            step: self.step,
            total_steps: self.settings.steps,
            loss,
            learning_rate,
            grad_norm,
            seconds: t0.elapsed().as_secs_f64(),
            metrics,
        };
        self.log(&report)?;
        Ok(report)
    }

    /// Appends a JSON line to `metrics.jsonl` (flushed, so a crash loses at most the current line).
    pub fn log(&self, report: &StepReport) -> Result<()> {
        let mut line = serde_json::json!({
            "step": report.step,
            "loss": report.loss,
            "learning_rate": report.learning_rate,
            "grad_norm": report.grad_norm,
            "seconds": report.seconds,
        });
        if let Some(obj) = line.as_object_mut() {
            for (k, v) in &report.metrics {
                obj.insert(k.clone(), serde_json::json!(v));
            }
        }
        self.log_value(&line)
    }

    /// Appends any JSON object to `metrics.jsonl` (evaluation results use `"eval/..."` keys).
    pub fn log_value(&self, value: &serde_json::Value) -> Result<()> {
        append_jsonl(&self.metrics_file, value)
    }

    /// Whether a checkpoint is due after the current step.
    pub fn checkpoint_due(&self) -> bool {
        self.step == self.settings.steps
            || (self.settings.save_steps > 0 && self.step.is_multiple_of(self.settings.save_steps))
    }

    /// Whether an evaluation is due after the current step (every `eval_steps`, and after the last step).
    pub fn eval_due(&self) -> bool {
        self.step == self.settings.steps
            || (self.settings.eval_steps > 0 && self.step.is_multiple_of(self.settings.eval_steps))
    }

    /// If a checkpoint is due, saves one with the trainer's `state` and tells the observer where.
    pub fn checkpoint_if_due(
        &self,
        state: &impl Serialize,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        if self.checkpoint_due() {
            let dir = self.save_checkpoint(serde_json::to_value(state).unwrap_or_default())?;
            observer.on_message(&format!("saved {}", dir.display()));
        }
        Ok(())
    }

    /// The trainer state of the checkpoint this session resumed from, decoded (once; `None` on a fresh start).
    /// `what` names the state in the error, e.g. "GRPO prompt cursor".
    pub fn take_resumed_state<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &str,
    ) -> Result<Option<T>> {
        let Some(state) = self.resumed_algorithm_state.take() else {
            return Ok(None);
        };
        serde_json::from_value(state)
            .map(Some)
            .map_err(|e| TrainError::Checkpoint {
                path: self.settings.output_dir.clone(),
                message: format!("{what}: {e}"),
            })
    }

    /// Writes `output_dir/checkpoint-<step>/` atomically and points `latest` at it; prunes old checkpoints.
    ///
    /// The folder always holds the merged model (`model.safetensors` + `config.json`, loadable as a plain
    /// model; with [`Session::attach_tokenizer`] also the tokenizer's files and `generation_config.json`), `optimizer.bpk` and `trainer_state.json`; with LoRA also `adapter_model.safetensors` (every
    /// trained tensor by burn path) and `adapter_config.json`, from which a resume continues exactly.
    pub fn save_checkpoint(&self, algorithm: serde_json::Value) -> Result<PathBuf> {
        let name = format!("checkpoint-{}", self.step);
        let dir = self.save_checkpoint_named(&name, algorithm)?;
        mark_latest_and_prune(
            &self.settings.output_dir,
            &name,
            self.settings.save_total_limit,
        )?;
        Ok(dir)
    }

    fn save_checkpoint_named(&self, name: &str, algorithm: serde_json::Value) -> Result<PathBuf> {
        let dir = self.settings.output_dir.join(name);
        let merged = self.merged();
        let config = serde_json::to_vec_pretty(&merged.config_json())
            .map_err(|e| TrainError::Export(e.to_string()))?;
        let adapters = match (&self.settings.lora, self.base_checksum) {
            (Some(lora), Some(base_checksum)) => {
                let tensors = named_f32(trainable_tensors(&self.model))?;
                let cfg = AdapterConfig {
                    lora: lora.clone(),
                    base_checksum,
                };
                let cfg = serde_json::to_vec_pretty(&cfg)
                    .map_err(|e| TrainError::Export(e.to_string()))?;
                Some((safetensors_bytes(&tensors)?, cfg))
            }
            _ => None,
        };
        let optim = self
            .optim
            .into_bytes()
            .map_err(|e| format!("{e:?}"))
            .and_then(|b| canonical_optimizer_bytes(b).map_err(|e| format!("{e:?}")))
            .map_err(|e| TrainError::Checkpoint {
                path: dir.clone(),
                message: format!("serialising the optimizer: {e}"),
            })?;
        let state = TrainerState {
            step: self.step,
            seed: self.settings.seed,
            algorithm,
        };
        let state =
            serde_json::to_vec_pretty(&state).map_err(|e| TrainError::Export(e.to_string()))?;
        atomic_dir(&dir, |tmp| {
            merged.save_weights(tmp)?;
            faults::pause(faults::Phase::Checkpoint);
            write_atomic(&tmp.join("config.json"), &config)?;
            for (file, bytes) in &self.model_files {
                write_atomic(&tmp.join(file), bytes)?;
            }
            if let Some((weights, cfg)) = &adapters {
                write_atomic(&tmp.join("adapter_model.safetensors"), weights)?;
                write_atomic(&tmp.join("adapter_config.json"), cfg)?;
            }
            write_atomic(&tmp.join("optimizer.bpk"), &optim)?;
            write_atomic(&tmp.join("trainer_state.json"), &state)
        })
        .map_err(|e| TrainError::Checkpoint {
            path: dir.clone(),
            message: format!("not written ({e}); the previous checkpoint is untouched"),
        })?;
        Ok(dir)
    }

    /// Per-step RNG seed: the same step of a resumed run draws the same numbers.
    pub fn step_seed(&self) -> u64 {
        self.settings
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(self.step as u64 + 1)
    }

    /// The number of tensors in the optimizer's state (AdamW keeps its moments only for parameters that
    /// received a gradient: with LoRA, the adapters and any fully trained head).
    pub fn optimizer_state_tensors(&self) -> usize {
        self.optim.to_record().len()
    }
}

/// The optimizer state in burn's format with its tensors in name order (burn writes them in hash-map order, so two
/// equal states gave different bytes): equal states make equal `optimizer.bpk` files.
fn canonical_optimizer_bytes(
    bytes: burn::tensor::Bytes,
) -> std::result::Result<Vec<u8>, burn_pack::Error> {
    let reader = burn_pack::Reader::from_bytes(bytes)?;
    let (scalars, metadata) = (reader.scalars().clone(), reader.metadata().clone());
    let mut tensors = reader.into_tensors()?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut writer = burn_pack::Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    Ok(writer.into_bytes()?.to_vec())
}

/// `(path, data)` pairs as safetensors-ready f32 `name -> (shape, bytes)`.
fn named_f32(tensors: Vec<(String, burn::tensor::TensorData)>) -> Result<HfTensors> {
    tensors
        .into_iter()
        .map(|(name, data)| {
            let shape = data.shape().to_vec();
            let v = data
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| TrainError::Export(format!("{name}: {e:?}")))?;
            Ok((
                name,
                (shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_metrics_keeps_the_checkpointed_steps_and_drops_later_and_torn_lines() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("temper-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("metrics.jsonl");
        let lines = [
            "{\"step\":1,\"loss\":2.0}",
            "{\"step\":2,\"loss\":1.5}",
            "{\"step\":2,\"eval/loss\":1.7}",
            "{\"step\":3,\"loss\":1.2}",
        ];
        let mut text = lines.join("\n").into_bytes();
        text.extend_from_slice(b"\n{\"step\":4,\"loss\":1.\xe2"); // cut mid-line and mid-character
        std::fs::write(&path, &text).map_err(io(&path))?;
        trim_metrics(&path, 2)?;
        assert_eq!(
            std::fs::read_to_string(&path).map_err(io(&path))?,
            format!("{}\n", lines[..3].join("\n"))
        );
        // Resuming at a step with nothing to drop leaves the file as it is; a missing file stays missing.
        trim_metrics(&path, 2)?;
        assert_eq!(
            std::fs::read_to_string(&path)
                .map_err(io(&path))?
                .lines()
                .count(),
            3
        );
        std::fs::remove_file(&path).map_err(io(&path))?;
        trim_metrics(&path, 2)?;
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
