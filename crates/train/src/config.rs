//! Settings shared by every trainer (`[train]` in the TOML), and TOML loading with unknown fields rejected.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::lora::LoraSettings;
use crate::schedule::Schedule;

fn d_steps() -> usize {
    100
}
fn d_batch() -> usize {
    8
}
fn d_lr() -> f64 {
    1e-5
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}
fn d_clip() -> Option<f64> {
    Some(1.0)
}
fn d_save() -> usize {
    50
}
fn d_keep() -> usize {
    2
}
fn d_max_len() -> usize {
    512
}
fn d_out() -> PathBuf {
    PathBuf::from("runs/temper")
}
fn d_true() -> bool {
    true
}

/// The model every config starts from unless it names one: SmolLM2-135M-Instruct (an asset name; the CLI resolves
/// it).
pub fn default_model() -> String {
    "smollm2".into()
}

/// The device every config runs on unless it names one: the CPU backend.
pub fn default_device() -> String {
    "cpu".into()
}

/// The optimisation loop's settings (HF `TrainingArguments` names where one exists).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// Folder for checkpoints, `metrics.jsonl` and the final model.
    #[serde(default = "d_out")]
    pub output_dir: PathBuf,
    /// Number of optimizer steps.
    #[serde(default = "d_steps")]
    pub steps: usize,
    /// Examples (sequences, pairs or prompts) per optimizer step.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Examples per forward pass; `batch_size / micro_batch_size` micro-batches are accumulated
    /// (`gradient_accumulation_steps` in HF). Defaults to `batch_size` (no accumulation).
    #[serde(default)]
    pub micro_batch_size: Option<usize>,
    /// Seed of data order, sampling and initialisation.
    #[serde(default)]
    pub seed: u64,
    /// Peak learning rate (AdamW, [Loshchilov & Hutter 2019](https://arxiv.org/abs/1711.05101)).
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    /// Decoupled weight decay (HF default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW β1 (HF default 0.9).
    #[serde(default = "d_beta1")]
    pub adam_beta1: f64,
    /// AdamW β2 (HF default 0.999).
    #[serde(default = "d_beta2")]
    pub adam_beta2: f64,
    /// AdamW ε (HF default 1e-8).
    #[serde(default = "d_eps")]
    pub adam_epsilon: f64,
    /// Linear warm-up steps.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Schedule after warm-up.
    #[serde(default)]
    pub lr_schedule: Schedule,
    /// Global gradient-norm clip (HF default 1.0); `None` disables clipping.
    #[serde(default = "d_clip")]
    pub max_grad_norm: Option<f64>,
    /// Save a checkpoint every this many steps (and at the end).
    #[serde(default = "d_save")]
    pub save_steps: usize,
    /// Keep this many most recent checkpoints.
    #[serde(default = "d_keep")]
    pub save_total_limit: usize,
    /// Evaluate every this many steps (0 = only at the start and the end).
    #[serde(default)]
    pub eval_steps: usize,
    /// Truncate sequences to this many tokens.
    #[serde(default = "d_max_len")]
    pub max_length: usize,
    /// Resume from the newest checkpoint in `output_dir` when there is one.
    #[serde(default = "d_true")]
    pub resume: bool,
    /// Train low-rank adapters instead of every weight
    /// ([LoRA, Hu et al. 2021](https://arxiv.org/abs/2106.09685)): `lora = { rank = 8, alpha = 16.0,
    /// targets = ["q_proj", "v_proj"] }`. Absent (the default) = full fine-tuning.
    #[serde(default)]
    pub lora: Option<LoraSettings>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        // Every field has a serde default, so the empty document always parses.
        toml::from_str("").expect("every TrainSettings field has a default")
    }
}

impl TrainSettings {
    /// Examples per forward pass.
    pub fn micro_batch(&self) -> usize {
        self.micro_batch_size.unwrap_or(self.batch_size)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.steps == 0 {
            return Err("train.steps must be at least 1".into());
        }
        if self.batch_size == 0 || self.micro_batch() == 0 {
            return Err("train.batch_size and train.micro_batch_size must be at least 1".into());
        }
        if !self.batch_size.is_multiple_of(self.micro_batch()) {
            return Err(format!(
                "train.batch_size ({}) must be a multiple of train.micro_batch_size ({})",
                self.batch_size,
                self.micro_batch()
            ));
        }
        if !(self.learning_rate >= 0.0 && self.learning_rate.is_finite()) {
            return Err(format!(
                "train.learning_rate must be a finite number >= 0, got {}",
                self.learning_rate
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "train.weight_decay must be a finite number >= 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.adam_epsilon > 0.0 && self.adam_epsilon.is_finite()) {
            return Err(format!(
                "train.adam_epsilon must be a finite number > 0, got {}",
                self.adam_epsilon
            ));
        }
        if let Some(c) = self.max_grad_norm
            && c.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        {
            return Err(format!("train.max_grad_norm must be positive, got {c}"));
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            return Err("train.adam_beta1 and train.adam_beta2 must be in [0, 1)".into());
        }
        if let Some(l) = &self.lora {
            l.validate()?;
        }
        Ok(())
    }
}

/// Parses a TOML config (unknown fields rejected by the types' `deny_unknown_fields`).
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(&text, path)
}

/// Parses TOML text; `path` names it in errors, which are one line: `line L, column C: what` (the `toml` crate's
/// own message spans several lines with a drawing of the spot).
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            match key_at(text, span.start) {
                Some(key) => format!("line {line}, column {column} (`{key}`): "),
                None => format!("line {line}, column {column}: "),
            }
        });
        let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        TrainError::Config {
            path: path.to_path_buf(),
            message: format!("{}{what}", at.unwrap_or_default()),
        }
    })
}

/// The dotted key whose value starts at byte `at` (`train.steps` for the `5` of `steps = 5` under `[train]`), when
/// `at` is right of a `key =` on its line.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &before[line_start..];
    let key = line.split_once('=')?.0.trim();
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_hf_and_unknown_fields_are_rejected() {
        let s = TrainSettings::default();
        assert_eq!(
            (s.adam_beta1, s.adam_beta2, s.adam_epsilon, s.max_grad_norm),
            (0.9, 0.999, 1e-8, Some(1.0))
        );
        assert_eq!(s.micro_batch(), 8);
        let err =
            parse_toml::<TrainSettings>("steps = 3\nlearning_rat = 1.0\n", Path::new("x.toml"))
                .expect_err("typo must be rejected");
        assert!(err.to_string().contains("learning_rat"), "{err}");
        // Errors are one line with the file, line and column.
        for (text, want) in [
            (
                "steps = 3\nbatch_size = -1\n",
                "config x.toml: line 2, column 14 (`batch_size`): invalid value: integer `-1`, expected usize",
            ),
            (
                "learning_rate = \"fast\"",
                "config x.toml: line 1, column 17 (`learning_rate`): invalid type: string \"fast\", expected f64",
            ),
            (
                "[lora]\nrank = \"8\"",
                "config x.toml: line 2, column 8 (`lora.rank`): invalid type: string \"8\"",
            ),
            ("steps = [", "config x.toml: line 1, column 10 (`steps`): unclosed array"),
        ] {
            let err = parse_toml::<TrainSettings>(text, Path::new("x.toml"))
                .expect_err(text)
                .to_string();
            assert!(
                err.starts_with(want) && !err.contains('\n'),
                "{text:?}: {err}"
            );
        }
        for (text, want) in [
            ("learning_rate = nan", "train.learning_rate"),
            ("learning_rate = -inf", "train.learning_rate"),
            ("weight_decay = nan", "train.weight_decay"),
            ("adam_epsilon = 0.0", "train.adam_epsilon"),
            ("adam_beta1 = nan", "train.adam_beta1"),
            ("max_grad_norm = -1.0", "train.max_grad_norm"),
        ] {
            let s: TrainSettings = parse_toml(text, Path::new("x.toml")).expect(text);
            assert!(s.validate().expect_err(text).contains(want), "{text}");
        }
        let bad: TrainSettings = parse_toml(
            "batch_size = 6\nmicro_batch_size = 4\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        assert!(bad.validate().expect_err("6 % 4").contains("multiple"));
        assert_eq!(s.lora, None, "full fine-tuning by default");
    }

    #[test]
    fn lora_table_parses_with_peft_defaults_and_rejects_bad_fields() {
        let s: TrainSettings = parse_toml(
            "lora = { rank = 4, alpha = 8.0, targets = [\"q_proj\", \"down_proj\"] }\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        let l = s.lora.clone().expect("lora");
        assert_eq!((l.rank, l.alpha, l.dropout, l.scale()), (4, 8.0, 0.0, 2.0));
        s.validate().expect("valid");
        assert!(l.targets_path("layers.3.mlp.down_proj.weight"));
        assert!(!l.targets_path("layers.3.self_attn.v_proj.weight"));
        assert!(!l.targets_path("layers.3.self_attn.q_proj.bias"));
        let d: TrainSettings = parse_toml("[lora]\n", Path::new("x.toml")).expect("defaults");
        assert_eq!(d.lora, Some(LoraSettings::default()));
        assert_eq!(LoraSettings::default().targets, vec!["q_proj", "v_proj"]);
        for (text, want) in [
            ("lora = { rank = 0 }", "rank"),
            ("lora = { dropout = 0.05 }", "dropout"),
            ("lora = { targets = [\"qproj\"] }", "qproj"),
            ("lora = { targets = [] }", "targets"),
            ("lora = { alpha = -1.0 }", "alpha"),
        ] {
            let s: TrainSettings = parse_toml(text, Path::new("x.toml")).expect("parses");
            let err = s.validate().expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = parse_toml::<TrainSettings>("lora = { rank = 4, r = 2 }", Path::new("x.toml"))
            .expect_err("unknown");
        assert!(err.to_string().contains("unknown field `r`"), "{err}");
    }
}
