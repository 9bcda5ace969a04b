//! Integration tests of `temper-train` on the tiny TRL Llama: gradient accumulation is exact, resuming gives
//! the same next losses as never stopping, exported weights reload to the same logits, and a non-finite
//! loss stops the run with a saved checkpoint.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use temper_models::{AttentionInfo, Llama, load_hf_dir};
use temper_tokenizer::Tokenizer;
use temper_train::{
    Observer, Quiet, Session, SftExample, SftTrainer, StepReport, TrainError, TrainSettings, export_hf, int_tensor,
    named_tensors,
};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(rel)
}

fn tiny() -> (Llama, Tokenizer, Device) {
    let device = Device::flex().autodiff();
    let model = load_hf_dir(&testdata("trl-parity/model"), &device).expect("tiny llama");
    let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
    (model, tok, device)
}

fn examples() -> Vec<SftExample> {
    (0..8)
        .map(|i| SftExample::PromptCompletion {
            prompt: (0..3 + i % 3).map(|j| format!("t{}", 10 + (i * 7 + j * 3) % 200)).collect::<Vec<_>>().join(" "),
            completion: (0..2 + i % 4).map(|j| format!("t{}", 20 + (i * 11 + j * 5) % 250)).collect::<Vec<_>>().join(" "),
        })
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("temper-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[derive(Default)]
struct Collect(Vec<StepReport>);

impl Observer for Collect {
    fn on_step(&mut self, r: &StepReport) {
        self.0.push(r.clone());
    }
}

fn settings(out: &Path, steps: usize, batch: usize, micro: usize) -> TrainSettings {
    TrainSettings {
        output_dir: out.to_path_buf(),
        steps,
        batch_size: batch,
        micro_batch_size: Some(micro),
        learning_rate: 1e-2,
        warmup_steps: 1,
        save_steps: 2,
        max_grad_norm: Some(1.0),
        ..TrainSettings::default()
    }
}

fn run_sft(out: &Path, steps: usize, batch: usize, micro: usize) -> (Session, Vec<StepReport>) {
    let (model, tok, device) = tiny();
    let s = settings(out, steps, batch, micro);
    let mut trainer = SftTrainer::new(&tok, &examples(), &[], Default::default(), &s).expect("tokenize");
    let mut session = Session::start(model, &device, s).expect("session");
    let mut obs = Collect::default();
    trainer.train(&mut session, &mut obs).expect("train");
    (session, obs.0)
}

fn max_weight_diff(a: &Llama, b: &Llama) -> f32 {
    let (ta, tb) = (named_tensors(a), named_tensors(b));
    assert_eq!(ta.len(), tb.len());
    let mut m = 0.0f32;
    for ((na, da), (nb, db)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        for (x, y) in da.iter::<f32>().zip(db.iter::<f32>()) {
            m = m.max((x - y).abs());
        }
    }
    m
}

#[test]
fn gradient_accumulation_1x4_equals_4x1() {
    let (a, ra) = run_sft(&tmp("acc-a"), 2, 4, 4);
    let (b, rb) = run_sft(&tmp("acc-b"), 2, 4, 1);
    for (x, y) in ra.iter().zip(&rb) {
        assert!((x.loss - y.loss).abs() <= 1e-5, "step {}: loss {} vs {}", x.step, x.loss, y.loss);
        assert!((x.grad_norm - y.grad_norm).abs() <= 1e-5 * x.grad_norm.max(1.0), "grad norms differ");
    }
    let d = max_weight_diff(&a.model, &b.model);
    assert!(d <= 1e-5, "updates differ by {d}");
    assert!(ra[1].loss < ra[0].loss + 1.0, "the loss stays sane");
}

#[test]
fn resuming_gives_the_same_next_losses_as_never_stopping() {
    let straight = tmp("resume-straight");
    let (_, full) = run_sft(&straight, 4, 4, 2);
    let out = tmp("resume-split");
    let (_, first) = run_sft(&out, 2, 4, 2); // stops after step 2 with a checkpoint
    assert_eq!(first.len(), 2);
    assert!(out.join("checkpoint-2/model.safetensors").is_file());
    let (session, second) = run_sft(&out, 4, 4, 2); // same folder: resumes at step 2
    assert_eq!(second.iter().map(|r| r.step).collect::<Vec<_>>(), vec![3, 4]);
    for (x, y) in full[2..].iter().zip(&second) {
        assert!((x.loss - y.loss).abs() <= 1e-5, "step {}: {} vs resumed {}", x.step, x.loss, y.loss);
    }
    assert_eq!(session.step, 4);
    // metrics.jsonl has exactly one line per step (the resumed run does not duplicate steps 1-2).
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let steps: Vec<u64> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .filter_map(|v| v["step"].as_u64())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight);
}

#[test]
fn exported_model_reloads_to_identical_logits() {
    let (model, _, _) = tiny();
    let device = Device::flex();
    let dir = tmp("export");
    export_hf(&model, &dir, &[]).expect("export");
    let back = load_hf_dir(&dir, &device).expect("reload");
    let ids = int_tensor(&[vec![7, 8, 9, 10, 300]], &device);
    let a: Vec<f32> = burn::module::Module::valid(&model)
        .forward(ids.clone(), &AttentionInfo::full(1, 5), None)
        .into_data()
        .iter::<f32>()
        .collect();
    let b: Vec<f32> = back.forward(ids, &AttentionInfo::full(1, 5), None).into_data().iter::<f32>().collect();
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_finite_loss_stops_with_a_clear_error_and_a_checkpoint() {
    let (model, tok, device) = tiny();
    let out = tmp("nan");
    let mut s = settings(&out, 20, 2, 2);
    s.learning_rate = 1e30;
    s.max_grad_norm = None;
    s.warmup_steps = 0;
    let mut trainer = SftTrainer::new(&tok, &examples(), &[], Default::default(), &s).expect("tokenize");
    let mut session = Session::start(model, &device, s).expect("session");
    let err = trainer.train(&mut session, &mut Quiet).expect_err("lr 1e30 must blow up");
    match &err {
        TrainError::NonFinite { checkpoint: Some(p), .. } => assert!(p.join("model.safetensors").is_file()),
        other => panic!("expected NonFinite with a checkpoint, got {other}"),
    }
    assert!(err.to_string().contains("non-finite"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn example_configs_parse_and_grpo_example_spells_out_the_defaults() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let grpo: temper_train::GrpoRunConfig = temper_train::load_toml(&examples.join("grpo.toml")).expect("grpo.toml");
    grpo.validate().expect("valid");
    let defaults: temper_train::GrpoRunConfig = temper_train::parse_toml("", Path::new("<defaults>")).expect("defaults");
    assert_eq!(
        serde_json::to_value(&grpo).expect("json"),
        serde_json::to_value(&defaults).expect("json"),
        "examples/grpo.toml must stay equal to `temper grpo`'s defaults"
    );
    let sft: temper_train::SftRunConfig = temper_train::load_toml(&examples.join("sft.toml")).expect("sft.toml");
    sft.train.validate().expect("valid");
    assert!(examples.join("..").join(&sft.train_file).is_file());
    let err = temper_train::parse_toml::<temper_train::GrpoRunConfig>("[grpo]\nnum_generation = 4\n", Path::new("x.toml"))
        .expect_err("typo");
    assert!(err.to_string().contains("num_generation"), "{err}");
}
