//! Integration tests of `temper-train` on the tiny TRL Llama: gradient accumulation is exact, resuming gives
//! the same next losses as never stopping, exported weights reload to the same logits, a non-finite
//! loss stops the run with a saved checkpoint, and LoRA (`[train] lora`) starts from the full model's loss,
//! trains only its adapters, exports merged weights and resumes exactly. Crash safety: what a kill leaves
//! (temp files, a torn metrics line, steps logged after the last checkpoint) is repaired on resume, a full disk
//! during checkpointing fails clearly and keeps the previous checkpoint, and SIGKILLed runs end as if never stopped.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use temper_models::{AttentionInfo, Llama, load_hf_dir};
use temper_tokenizer::Tokenizer;
use temper_train::{
    LoraSettings, Observer, Quiet, Session, SftExample, SftTrainer, StepReport, TrainError,
    TrainSettings, export_hf, int_tensor, named_tensors, trainable_count,
};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

fn tiny() -> (Llama, Tokenizer, Device) {
    let device = Device::flex().autodiff();
    let model = load_hf_dir(&testdata("trl-parity/model"), &device).expect("tiny llama");
    let tok =
        Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
    (model, tok, device)
}

fn examples() -> Vec<SftExample> {
    (0..8)
        .map(|i| SftExample::PromptCompletion {
            prompt: (0..3 + i % 3)
                .map(|j| format!("t{}", 10 + (i * 7 + j * 3) % 200))
                .collect::<Vec<_>>()
                .join(" "),
            completion: (0..2 + i % 4)
                .map(|j| format!("t{}", 20 + (i * 11 + j * 5) % 250))
                .collect::<Vec<_>>()
                .join(" "),
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
    run_sft_with(settings(out, steps, batch, micro))
}

fn run_sft_with(s: TrainSettings) -> (Session, Vec<StepReport>) {
    let (model, tok, device) = tiny();
    let mut trainer =
        SftTrainer::new(&tok, &examples(), &[], Default::default(), &s).expect("tokenize");
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
        assert!(
            (x.loss - y.loss).abs() <= 1e-5,
            "step {}: loss {} vs {}",
            x.step,
            x.loss,
            y.loss
        );
        assert!(
            (x.grad_norm - y.grad_norm).abs() <= 1e-5 * x.grad_norm.max(1.0),
            "grad norms differ"
        );
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
    assert_eq!(
        second.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![3, 4]
    );
    for (x, y) in full[2..].iter().zip(&second) {
        assert!(
            (x.loss - y.loss).abs() <= 1e-5,
            "step {}: {} vs resumed {}",
            x.step,
            x.loss,
            y.loss
        );
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
    let b: Vec<f32> = back
        .forward(ids, &AttentionInfo::full(1, 5), None)
        .into_data()
        .iter::<f32>()
        .collect();
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
    let mut trainer =
        SftTrainer::new(&tok, &examples(), &[], Default::default(), &s).expect("tokenize");
    let mut session = Session::start(model, &device, s).expect("session");
    let err = trainer
        .train(&mut session, &mut Quiet)
        .expect_err("lr 1e30 must blow up");
    match &err {
        TrainError::NonFinite {
            checkpoint: Some(p),
            ..
        } => assert!(p.join("model.safetensors").is_file()),
        other => panic!("expected NonFinite with a checkpoint, got {other}"),
    }
    assert!(err.to_string().contains("non-finite"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn example_configs_parse_and_grpo_example_spells_out_the_defaults() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let grpo: temper_train::GrpoRunConfig =
        temper_train::load_toml(&examples.join("grpo.toml")).expect("grpo.toml");
    grpo.validate().expect("valid");
    let defaults: temper_train::GrpoRunConfig =
        temper_train::parse_toml("", Path::new("<defaults>")).expect("defaults");
    assert_eq!(
        serde_json::to_value(&grpo).expect("json"),
        serde_json::to_value(&defaults).expect("json"),
        "examples/grpo.toml must stay equal to `temper grpo`'s defaults"
    );
    let sft: temper_train::SftRunConfig =
        temper_train::load_toml(&examples.join("sft.toml")).expect("sft.toml");
    sft.train.validate().expect("valid");
    assert!(examples.join("..").join(&sft.train_file).is_file());
    let err = temper_train::parse_toml::<temper_train::GrpoRunConfig>(
        "[grpo]\nnum_generation = 4\n",
        Path::new("x.toml"),
    )
    .expect_err("typo");
    assert!(err.to_string().contains("num_generation"), "{err}");
}

/// Rank 4 on three projections (two attention, one MLP) of the tiny model.
fn lora() -> LoraSettings {
    LoraSettings {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    }
}

fn lora_settings(out: &Path, steps: usize) -> TrainSettings {
    TrainSettings {
        lora: Some(lora()),
        learning_rate: 2e-2,
        warmup_steps: 0,
        lr_schedule: temper_train::Schedule::Constant,
        ..settings(out, steps, 4, 2)
    }
}

fn logits(model: &Llama) -> Vec<f32> {
    let device = Device::flex();
    let ids = int_tensor(&[vec![7, 8, 9, 10, 300, 41]], &device);
    model
        .forward(ids, &AttentionInfo::full(1, 6), None)
        .into_data()
        .iter::<f32>()
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn lora_starts_at_the_full_models_loss_and_trains_only_its_adapters() {
    let (initial, _, _) = tiny();
    let full_dir = tmp("lora-full");
    let (full, full_reports) = run_sft_with(TrainSettings {
        lora: None,
        ..lora_settings(&full_dir, 1)
    });
    let dir = tmp("lora-train");
    let (session, reports) = run_sft_with(lora_settings(&dir, 8));
    // (a) B = 0: the adapted model is the full model, so the first loss is the same number.
    assert!(
        (reports[0].loss - full_reports[0].loss).abs() <= 1e-6,
        "LoRA step-1 loss {} vs full {}",
        reports[0].loss,
        full_reports[0].loss
    );
    // (b) the loss falls.
    let (first, last) = (reports[0].loss, reports[7].loss);
    assert!(last < first - 0.05, "LoRA loss {first} -> {last}");
    // (b) every base weight is bit-identical to the initial model; adapters moved.
    let base: std::collections::BTreeMap<String, Vec<f32>> = named_tensors(&initial)
        .into_iter()
        .map(|(n, d)| (n, d.iter::<f32>().collect()))
        .collect();
    let fresh_dir = tmp("lora-fresh");
    let fresh = Session::start(
        initial.clone(),
        &Device::flex().autodiff(),
        lora_settings(&fresh_dir, 1),
    )
    .expect("fresh");
    let fresh_a: std::collections::BTreeMap<String, Vec<f32>> = named_tensors(&fresh.model)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".lora.a"))
        .map(|(n, d)| (n, d.iter::<f32>().collect()))
        .collect();
    let (mut frozen, mut a_factors, mut b_factors) = (0, 0, 0);
    for (name, data) in named_tensors(&session.model) {
        let v: Vec<f32> = data.iter::<f32>().collect();
        if let Some(weight) = name.strip_suffix(".lora.b") {
            assert!(
                weight.ends_with("q_proj.weight")
                    || weight.ends_with("v_proj.weight")
                    || weight.ends_with("down_proj.weight")
            );
            assert!(v.iter().any(|x| x.abs() > 1e-4), "{name} is still zero");
            b_factors += 1;
        } else if name.ends_with(".lora.a") {
            let init = &fresh_a[&name];
            assert!(
                max_diff(&v, init) > 1e-4,
                "{name} did not move from its (seeded) initial value"
            );
            a_factors += 1;
        } else {
            assert_eq!(v, base[&name], "frozen {name} changed");
            frozen += 1;
        }
    }
    let layers = initial.config().num_hidden_layers;
    assert_eq!(
        (a_factors, b_factors, frozen),
        (3 * layers, 3 * layers, base.len())
    );
    // (e) gradients and optimizer state exist for the adapters only: AdamW keeps the same number of state
    // tensors per trained parameter, so the ratio to a full fine-tune is (adapter params) / (all params).
    let per_param = full.optimizer_state_tensors() / base.len();
    assert!(
        per_param >= 2,
        "AdamW keeps at least two moments per parameter, got {per_param}"
    );
    assert_eq!(
        session.optimizer_state_tensors(),
        per_param * 2 * 3 * layers
    );
    let c = initial.config();
    let (h, i, q, kv) = (
        c.hidden_size,
        c.intermediate_size,
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    );
    let r = 4;
    assert_eq!(
        trainable_count(&session.model),
        layers * r * ((h + q) + (h + kv) + (i + h))
    );
    let bpk = |d: &Path| {
        std::fs::metadata(d.join("optimizer.bpk"))
            .expect("optimizer.bpk")
            .len()
    };
    let (lora_bytes, full_bytes) = (
        bpk(&dir.join("checkpoint-8")),
        bpk(&full_dir.join("checkpoint-1")),
    );
    assert!(
        lora_bytes * 5 < full_bytes,
        "optimizer.bpk: LoRA {lora_bytes} B vs full {full_bytes} B"
    );
    for d in [full_dir, dir, fresh_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn lora_exports_merged_weights_that_reload_to_the_adapted_logits() {
    let (initial, _, _) = tiny();
    let dir = tmp("lora-export");
    let (session, _) = run_sft_with(lora_settings(&dir, 4));
    let adapted = logits(&burn::module::Module::valid(&session.model));
    let base = logits(&burn::module::Module::valid(&initial));
    assert!(
        max_diff(&adapted, &base) > 1e-3,
        "training moved the logits"
    );
    // (c) export writes W + (alpha/r)·A B: a plain model with the plain model's tensor names.
    let out = dir.join("final");
    export_hf(&session.model, &out, &[]).expect("export");
    let back = load_hf_dir(&out, &Device::flex()).expect("reload");
    let d = max_diff(&logits(&back), &adapted);
    assert!(
        d <= 1e-5,
        "merged export differs from the adapted model by {d}"
    );
    let names = |m: &Llama| {
        named_tensors(m)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&back), names(&initial));
    // The checkpoint's model.safetensors is the same merged model, so a checkpoint is a plain model folder.
    let ckpt =
        load_hf_dir(&dir.join("checkpoint-4"), &Device::flex()).expect("checkpoint as a model");
    assert!(max_diff(&logits(&ckpt), &adapted) <= 1e-5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lora_resumes_exactly_and_refuses_another_base() {
    let straight = tmp("lora-straight");
    let (_, full) = run_sft_with(lora_settings(&straight, 4));
    let out = tmp("lora-split");
    let (_, first) = run_sft_with(lora_settings(&out, 2));
    assert_eq!(first.len(), 2);
    for f in [
        "adapter_model.safetensors",
        "adapter_config.json",
        "model.safetensors",
        "optimizer.bpk",
    ] {
        assert!(
            out.join("checkpoint-2").join(f).is_file(),
            "checkpoint-2/{f}"
        );
    }
    // (d) the same command again continues from the adapters: the same next losses as never stopping.
    let (session, second) = run_sft_with(lora_settings(&out, 4));
    assert_eq!(
        second.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![3, 4]
    );
    for (x, y) in full[2..].iter().zip(&second) {
        assert!(
            (x.loss - y.loss).abs() <= 1e-6,
            "step {}: {} vs resumed {}",
            x.step,
            x.loss,
            y.loss
        );
        assert!((x.grad_norm - y.grad_norm).abs() <= 1e-5 * x.grad_norm.max(1.0));
    }
    assert_eq!(session.step, 4);
    // Another base model, or turning LoRA off, is refused with a message naming the checkpoint.
    let (model, _, device) = tiny();
    struct Nudge;
    impl burn::module::ModuleMapper for Nudge {
        fn map_float<const D: usize>(
            &mut self,
            p: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            p.map(|t| t.mul_scalar(1.001))
        }
    }
    let other = burn::module::Module::map(model.clone(), &mut Nudge);
    let err = Session::start(other, &device, lora_settings(&out, 6))
        .err()
        .expect("another base");
    assert!(
        err.to_string().contains("base model differs") && err.to_string().contains("checkpoint-4"),
        "{err}"
    );
    let err = Session::start(
        model,
        &device,
        TrainSettings {
            lora: None,
            ..lora_settings(&out, 6)
        },
    )
    .err()
    .expect("no lora");
    assert!(err.to_string().contains("train.lora is not set"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight);
}

/// `metrics.jsonl` as JSON objects without the wall-clock field `seconds` (every line must parse).
fn metrics_without_time(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}"));
            v.as_object_mut().expect("a JSON object").remove("seconds");
            v
        })
        .collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_run_killed_while_writing_is_repaired_on_resume_and_ends_as_if_never_stopped() {
    let straight = tmp("crash-straight");
    let (reference, _) = run_sft(&straight, 4, 4, 2);
    // What SIGKILL during the write of checkpoint-4 leaves, after a first crash between writing checkpoint-3's
    // folder and moving `latest`: `latest` still names checkpoint-2, the half-written checkpoint-4 folder and a
    // temp file under their temp names, steps 3-4 already in metrics.jsonl, then a line cut mid-character.
    let out = tmp("crash-killed");
    run_sft(&out, 4, 4, 2);
    let dead = std::process::id().wrapping_add(1);
    std::fs::write(out.join("latest"), "checkpoint-2").expect("latest");
    std::fs::rename(
        out.join("checkpoint-4"),
        out.join(format!(".checkpoint-4.tmp-{dead}")),
    )
    .expect("rename");
    std::fs::create_dir_all(out.join("checkpoint-3")).expect("orphan");
    std::fs::write(out.join(format!(".latest.tmp-{dead}")), "checkp").expect("temp file");
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("metrics.jsonl"))
        .expect("metrics");
    std::io::Write::write_all(&mut metrics, b"{\"step\":5,\"note\":\"\xe2\x82").expect("torn line");
    drop(metrics);

    let (resumed, reports) = run_sft(&out, 4, 4, 2);
    assert_eq!(
        reports.iter().map(|r| r.step).collect::<Vec<_>>(),
        [3, 4],
        "resumed from checkpoint-2"
    );
    assert_eq!(
        max_weight_diff(&resumed.model, &reference.model),
        0.0,
        "weights equal the uninterrupted run's"
    );
    assert_eq!(
        metrics_without_time(&out),
        metrics_without_time(&straight),
        "one line per step, none torn"
    );
    assert_eq!(
        listing(&out),
        ["checkpoint-2", "checkpoint-4", "latest", "metrics.jsonl"]
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint-4/optimizer.bpk")).expect("optimizer"),
        std::fs::read(straight.join("checkpoint-4/optimizer.bpk")).expect("optimizer"),
        "optimizer state equals the uninterrupted run's"
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight);
}

/// Fills the disk (an injected `ENOSPC` in the atomic writer) after the first checkpoint is saved.
struct FillDiskAfterFirstSave;

impl Observer for FillDiskAfterFirstSave {
    fn on_step(&mut self, _: &StepReport) {}
    fn on_message(&mut self, message: &str) {
        if message.starts_with("saved ") {
            temper_train::set_write_budget(Some(4096));
        }
    }
}

#[test]
fn a_full_disk_during_checkpointing_fails_clearly_and_the_previous_checkpoint_resumes() {
    let straight = tmp("full-straight");
    let (reference, _) = run_sft(&straight, 4, 4, 2);
    let out = tmp("full-disk");
    let (model, tok, device) = tiny();
    let s = settings(&out, 4, 4, 2);
    let mut trainer =
        SftTrainer::new(&tok, &examples(), &[], Default::default(), &s).expect("tokenize");
    let mut session = Session::start(model, &device, s).expect("session");
    let err = trainer
        .train(&mut session, &mut FillDiskAfterFirstSave)
        .expect_err("the disk is full");
    temper_train::set_write_budget(None);
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        text.contains("checkpoint-4") && text.contains("No space left on device"),
        "{text}"
    );
    assert!(text.contains("previous checkpoint is untouched"), "{text}");
    assert_eq!(
        listing(&out),
        ["checkpoint-2", "latest", "metrics.jsonl"],
        "no half-written folder is left"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).expect("latest"),
        "checkpoint-2"
    );
    // The previous checkpoint loads and the run finishes as if the disk had never filled.
    let (resumed, reports) = run_sft(&out, 4, 4, 2);
    assert_eq!(reports.first().map(|r| r.step), Some(3));
    assert_eq!(max_weight_diff(&resumed.model, &reference.model), 0.0);
    assert_eq!(metrics_without_time(&out), metrics_without_time(&straight));
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight);
}

/// Set in the child process of the SIGKILL test: the folder its SFT run writes to.
const CHILD_RUN: &str = "TEMPER_TEST_KILLED_RUN";

#[test]
fn sigkilled_sft_runs_resume_to_the_uninterrupted_result() {
    if let Some(dir) = std::env::var_os(CHILD_RUN) {
        run_sft(Path::new(&dir), 6, 4, 2); // the child: one start of the run, killed or not
        return;
    }
    let straight = tmp("kill-straight");
    let t0 = std::time::Instant::now();
    let (reference, _) = run_sft(&straight, 6, 4, 2);
    let took = t0.elapsed();
    // Three starts of the same run in a child process (this test binary, this test), each killed with SIGKILL
    // after 30%, 60%, 90% of the uninterrupted run's time; every metrics line is held open 40 ms, so the child is
    // slower than the reference and the kills land mid-run. Then a last start finishes the run here.
    let out = tmp("kill-run");
    let exe = std::env::current_exe().expect("test binary");
    let mut landed = 0;
    for fraction in [0.3, 0.6, 0.9] {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "sigkilled_sft_runs_resume_to_the_uninterrupted_result",
                "--test-threads=1",
            ])
            .env(CHILD_RUN, &out)
            .env("TEMPER_CHAOS_PAUSE", "metrics:40")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child");
        std::thread::sleep(took.mul_f64(fraction));
        landed += usize::from(child.try_wait().expect("child status").is_none());
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    assert!(landed >= 1, "no kill landed before the child finished");
    let (resumed, _) = run_sft(&out, 6, 4, 2);
    assert_eq!(
        max_weight_diff(&resumed.model, &reference.model),
        0.0,
        "weights equal the uninterrupted run's"
    );
    assert_eq!(metrics_without_time(&out), metrics_without_time(&straight));
    assert!(
        listing(&out).iter().all(|n| !n.starts_with('.')),
        "{:?}",
        listing(&out)
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight);
}

#[test]
fn sft_with_an_eval_task_logs_held_out_accuracy_through_the_one_evaluation_path() {
    let out = tmp("task-eval");
    let run: temper_train::SftRunConfig = temper_train::parse_toml(
        &format!(
            "model = \"tiny\"\ntrain_file = \"unused.jsonl\"\n\
             [train]\noutput_dir = \"{}\"\nsteps = 2\nbatch_size = 4\nsave_steps = 0\neval_steps = 1\n\
             [eval_task]\nchat = false\ntask = {{ kind = \"arithmetic\", train_size = 10, eval_size = 6 }}\n\
             generation = {{ max_new_tokens = 4 }}\n",
            out.display()
        ),
        Path::new("sft.toml"),
    )
    .expect("config");
    run.validate().expect("valid");
    let config = run.eval_task.as_ref().expect("[eval_task]");
    let (model, tok, device) = tiny();
    let plain = device.clone().inner();
    let task_eval = temper_train::TaskEval::new(config, run.train.seed, &plain).expect("task eval");
    // The held-out problems are the ones an on-line run with the same task and seed evaluates on.
    let online = temper_train::PromptSet::build(&config.task, &tok, false, run.train.seed).expect("prompts");
    assert_eq!(task_eval.problems(), online.eval_problems.as_slice());
    assert_eq!(task_eval.problems().len(), 6);

    let mut trainer = SftTrainer::new(&tok, &examples(), &[], Default::default(), &run.train)
        .expect("tokenize")
        .with_task_eval(Some(task_eval));
    let mut session = Session::start(model, &device, run.train.clone()).expect("session");
    trainer.train(&mut session, &mut Quiet).expect("train");

    let evals: Vec<serde_json::Value> = metrics_without_time(&out)
        .into_iter()
        .filter(|v| v.get("eval/accuracy").is_some())
        .collect();
    let steps: Vec<u64> = evals.iter().map(|v| v["step"].as_u64().expect("step")).collect();
    assert_eq!(steps, [0, 1, 2], "at the start and every eval_steps");
    // The last logged values are a measurement of the trained model: measured again, they are the same.
    let again = temper_train::TaskEval::new(config, run.train.seed, &plain).expect("task eval");
    let (reward, accuracy) = again
        .measure(&session.merged(), &tok, &plain)
        .expect("measure")
        .expect("problems");
    assert_eq!(evals[2]["eval/reward"].as_f64(), Some(reward));
    assert_eq!(evals[2]["eval/accuracy"].as_f64(), Some(accuracy));
    assert!((0.0..=1.0).contains(&accuracy));

    // A bad `[eval_task]` field is refused by name before anything runs.
    let bad: temper_train::SftRunConfig = temper_train::parse_toml(
        "model = \"tiny\"\ntrain_file = \"x.jsonl\"\n[eval_task]\ngeneration = { top_p = 2.0 }\n",
        Path::new("sft.toml"),
    )
    .expect("parses");
    let err = bad.validate().expect_err("top_p = 2 is invalid").to_string();
    assert!(err.contains("eval_task.generation.top_p"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}
