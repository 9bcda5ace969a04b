//! Test fixtures the trainers' unit tests share: the tiny TRL Llama and its tokenizer, word prompts, a synthetic
//! reward the tiny model can learn, tiny sampling parameters, loop settings and an observer that collects reports.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use temper_chat::GenerationParams;
use temper_models::{Llama, load_hf_dir};
use temper_rewards::{FnReward, RewardInput, WeightedSum};
use temper_tokenizer::Tokenizer;

use crate::config::TrainSettings;
use crate::online::OnlineTrainer;
use crate::rollout::{PromptSet, RenderedPrompt};
use crate::session::{Observer, StepReport};

pub(crate) fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(rel)
}

/// The tiny TRL Llama on an autodiff CPU device, with its word-level tokenizer.
pub(crate) fn tiny() -> (Llama, Tokenizer, Device) {
    let device = Device::flex().autodiff();
    let model = load_hf_dir(&testdata("trl-parity/model"), &device).expect("tiny llama");
    let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
    (model, tok, device)
}

/// Plain prompts like "t12 t40 t7" (no chat template), `n_train` for training and `n_eval` held out.
pub(crate) fn word_prompts(tok: &Tokenizer, n_train: usize, n_eval: usize) -> PromptSet {
    let make = |i: usize| {
        let text = (0..3).map(|j| format!("t{}", 7 + (i * 37 + j * 101) % 300)).collect::<Vec<_>>().join(" ");
        RenderedPrompt {
            ids: tok.encode(&text).expect("encode"),
            text,
            reference: None,
            prefill: String::new(),
        }
    };
    let eval: Vec<RenderedPrompt> = (n_train..n_train + n_eval).map(make).collect();
    // The same prompts as problems: a lone user message renders to its text as written.
    let eval_problems = eval
        .iter()
        .enumerate()
        .map(|(i, p)| temper_tasks::Problem::question(format!("words/{i}"), p.text.clone(), None))
        .collect();
    PromptSet {
        train: (0..n_train).map(make).collect(),
        eval,
        eval_problems,
        chat: false,
    }
}

/// Fraction of completion words `tN` with `N < 60`: about 0.17 for the untrained model.
pub(crate) fn low_ids(x: &RewardInput<'_>) -> f64 {
    let words: Vec<&str> = x.completion.split_whitespace().collect();
    if words.is_empty() {
        return 0.0;
    }
    let low = words
        .iter()
        .filter(|w| w.strip_prefix('t').and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 60))
        .count();
    low as f64 / words.len() as f64
}

pub(crate) fn low_id_reward() -> WeightedSum {
    WeightedSum::new(vec![(1.0, Box::new(FnReward::new("low_ids", low_ids)))])
}

/// Six new tokens at temperature 1, no stop string.
pub(crate) fn tiny_generation() -> GenerationParams {
    GenerationParams {
        max_new_tokens: 6,
        temperature: 1.0,
        stop: Vec::new(),
        ..GenerationParams::default()
    }
}

/// The on-line loop around `algorithm` on word prompts (`n_train` + `n_eval`) with `reward`.
pub(crate) fn online<'a, A>(
    tok: &'a Tokenizer,
    n_train: usize,
    n_eval: usize,
    reward: WeightedSum,
    algorithm: A,
    seed: u64,
) -> OnlineTrainer<'a, A> {
    let prompts = word_prompts(tok, n_train, n_eval);
    OnlineTrainer::with_task(tok, tiny_generation(), prompts, Box::new(reward), algorithm, seed).expect("trainer")
}

pub(crate) fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("temper-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A fresh folder `tmp(name)` holding `prompts.jsonl`: 8 two-word prompts of the tiny vocabulary, for a run config's
/// `[rollout.task] kind = "jsonl"`. Returns the folder.
pub(crate) fn prompts_dir(name: &str) -> PathBuf {
    let out = tmp(name);
    std::fs::create_dir_all(&out).expect("dir");
    let prompts: String = (0..8)
        .map(|i| format!("{{\"prompt\": \"t{} t{}\"}}\n", 20 + i, 40 + i))
        .collect();
    std::fs::write(out.join("prompts.jsonl"), prompts).expect("write");
    out
}

pub(crate) fn settings(out: &Path, steps: usize, batch: usize, micro: usize, lr: f64) -> TrainSettings {
    TrainSettings {
        output_dir: out.to_path_buf(),
        steps,
        batch_size: batch,
        micro_batch_size: Some(micro),
        learning_rate: lr,
        lr_schedule: crate::schedule::Schedule::Constant,
        save_steps: 0,
        ..TrainSettings::default()
    }
}

#[derive(Default)]
pub(crate) struct Collect(pub Vec<StepReport>);

impl Observer for Collect {
    fn on_step(&mut self, r: &StepReport) {
        self.0.push(r.clone());
    }
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// Seeds every learning test averages over: one 16-step run of the tiny model rises for most seeds but not for
/// all (seed 0 went 0.19 -> 0.30 when burn's CPU kernels changed their rounding), so the claim is about the mean.
pub(crate) const LEARNING_SEEDS: std::ops::Range<u64> = 0..4;
