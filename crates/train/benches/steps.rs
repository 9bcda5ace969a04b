//! Criterion benches of one optimizer step of SFT and of DPO on SmolLM2 (f32, CPU backend), through
//! [`Session::step`] (the loop every trainer uses: backward, global-norm clip at 1.0, AdamW, metrics line) and the
//! trainers' own loss code. `cargo xtask bench --vs trl` runs them against TRL's `SFTTrainer` / `DPOTrainer`.
//!
//! Shapes (the TRL baseline in `xtask/bench/trl_bench.py` uses the same token ids and lengths):
//! - SFT: 4 sequences × 128 tokens, loss on every target token (a plain-text data set: TRL's language-modelling
//!   path), NLL, the `entropy` metric computed as `SftTrainer` does.
//! - DPO: 2 pairs (4 sequences) × 128 tokens, prompt 64 + completion 64, sigmoid loss with β = 0.1, reference
//!   log-probs precomputed once before timing (TRL `precompute_ref_log_probs=True`), the policy's token
//!   statistics (entropy, mean logits, top-1) computed as `DpoTrainer` does.
//!
//! Throughput is per token of the batch (512 per step), so criterion prints tokens/s.
//!
//! With `--process sft|dpo|grpo` the binary runs one bench in its own process instead (timed steps and the
//! process's peak RSS as one JSON line): `cargo xtask bench --vs trl` interleaves these runs with
//! `trl_bench.py --only ...`. `grpo` runs GRPO steps through the on-line loop (sampling with the trainer's model,
//! reward, reference, loss, optimizer step), see [`grpo_config`].
//!
//! `adamw/{burn,fused}`: one AdamW update of all of SmolLM2's parameters from the same gradients, burn's
//! `AdamW` against Temper's [`FusedAdamW`] (the one `Session` uses), in the same run; throughput in parameters.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use temper_models::{Llama, load_model};
use temper_rl_objectives::{DpoConfig, ObjectiveOutput, SftConfig, sft_loss};
use temper_train::{
    DpoBatch, EncodedDpoPair, EntropyMode, FusedAdamW, GrpoRunConfig, Metrics, Observer,
    PaddedBatch, Session, StepReport, Tokenized, TrainSettings, dpo_inputs, dpo_micro_loss,
    parse_toml, sft_inputs, start_online, token_scores,
};

/// Sequence length of every row.
const LEN: usize = 128;
/// DPO prompt length (the completion is `LEN - PROMPT`).
const PROMPT: usize = 64;
/// The model file inside the `smollm2` asset.
const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Row `b` of the benchmark's token ids (the same formula as `trl_bench.py` and the generation bench).
fn row(b: usize, len: usize) -> Vec<u32> {
    (0..len)
        .map(|t| (100 + (b * 7919 + t * 104_729) % 40_000) as u32)
        .collect()
}

/// One optimizer step of `s` whose single micro-batch loss `micro` builds, as every trainer's loop runs it.
fn one_step(
    s: &mut Session,
    micro: impl Fn(&Llama, &Device) -> temper_train::Result<ObjectiveOutput>,
) -> StepReport {
    let device = s.device.clone();
    let loss = |model: &Llama, _| micro(model, &device).map(|out| (out.loss, out.metrics));
    s.step(loss, Metrics::new(), || serde_json::Value::Null)
        .expect("optimizer step")
}

/// A session that never checkpoints inside the benchmark (`steps` is out of reach), logging to a temp folder.
fn session(
    model: &Llama,
    device: &Device,
    name: &str,
    learning_rate: f64,
    batch: usize,
) -> Session {
    let settings = TrainSettings {
        output_dir: std::env::temp_dir()
            .join(format!("temper-bench-{name}-{}", std::process::id())),
        steps: usize::MAX / 2,
        batch_size: batch,
        learning_rate,
        resume: false,
        save_steps: 0,
        ..TrainSettings::default()
    };
    Session::start(model.clone(), device, settings).expect("session")
}

/// A gradient for every parameter of `model`: small normal noise, as a step's gradients are.
fn noise_grads(model: &Llama) -> GradientsParams {
    struct Noise(GradientsParams);
    impl ModuleVisitor for Noise {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val();
            let g = Tensor::<D>::random(
                v.shape(),
                Distribution::Normal(0.0, 1e-3),
                &v.device().inner(),
            );
            self.0.register(param.id, g);
        }
    }
    let mut n = Noise(GradientsParams::new());
    model.visit(&mut n);
    n.0
}

/// One AdamW update of every parameter, burn's against the fused one, from the same model and gradients; each
/// optimizer is stepped once before timing so that both carry moments (the steady-state update).
fn bench_adamw(c: &mut Criterion, model: &Llama) {
    let mut g = c.benchmark_group("adamw");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(model.num_parameters() as u64));
    type Make = fn() -> ModuleOptimizer;
    let optimizers: [(&str, Make); 2] = [
        ("burn", || AdamWConfig::new().with_weight_decay(0.01).init()),
        ("fused", || FusedAdamW::new(0.9, 0.999, 1e-5, 0.01).init()),
    ];
    for (name, make) in optimizers {
        let mut optim = make();
        let mut current = optim.step(1e-5, model.clone(), noise_grads(model));
        g.bench_function(BenchmarkId::new(name, "smollm2"), |bench| {
            bench.iter_batched(
                || noise_grads(model),
                |grads| current = optim.step(1e-5, current.clone(), grads),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// SmolLM2 in f32 on the CPU backend with autodiff, and its tokenizer.
fn smollm2(device: &Device) -> (Llama, Option<temper_tokenizer::Tokenizer>) {
    let path = temper_assets::path_of("smollm2", SMOLLM2_GGUF)
        .unwrap_or_else(|e| panic!("{e}: run `temper fetch smollm2` first"));
    match load_model(&path, device) {
        Ok(m) => (m.model, m.tokenizer),
        Err(e) => panic!("loading {}: {e}", path.display()),
    }
}

/// The SFT step's batch: 4 sequences × 128 tokens, loss on every target token.
struct SftCase {
    batch: PaddedBatch,
    config: SftConfig,
}

impl SftCase {
    fn new() -> Self {
        let seqs: Vec<Tokenized> = (0..4)
            .map(|b| Tokenized {
                ids: row(b, LEN),
                loss_mask: vec![1; LEN],
            })
            .collect();
        Self {
            batch: PaddedBatch::right_padded(&seqs, 2),
            config: SftConfig::default(),
        }
    }

    /// One step, as `SftTrainer::train` builds each micro-batch's loss (one micro-batch = the whole batch).
    fn step(&self, s: &mut Session) -> StepReport {
        one_step(s, |model, device| {
            Ok(sft_loss(
                &self.config,
                sft_inputs(model, &self.batch, device),
            )?)
        })
    }
}

/// The DPO step's batch: 2 pairs, prompt 64 + completion 64, with the reference log-probs precomputed once.
struct DpoCase {
    batch: DpoBatch,
    ref_values: Vec<f32>,
    ref_shape: [usize; 2],
    config: DpoConfig,
}

impl DpoCase {
    fn new(model: &Llama, device: &Device) -> Self {
        let pairs: Vec<EncodedDpoPair> = (0..2)
            .map(|i| {
                let full = row(i, LEN);
                EncodedDpoPair {
                    prompt: full[..PROMPT].to_vec(),
                    chosen: full[PROMPT..].to_vec(),
                    rejected: row(2 + i, LEN)[PROMPT..].to_vec(),
                }
            })
            .collect();
        let refs: Vec<&EncodedDpoPair> = pairs.iter().collect();
        let batch = DpoBatch::new(&refs, 2);
        // Precomputed once, like `precompute_ref_log_probs`: a forward of the frozen initial policy without autodiff.
        let inner = device.clone().inner();
        let reference = token_scores(
            &model.valid(),
            &batch.ids,
            &batch.attention,
            false,
            1.0,
            EntropyMode::Skip,
            &inner,
        )
        .logps;
        let ref_shape = reference.dims();
        let ref_values = reference
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("reference log-probs");
        Self {
            batch,
            ref_values,
            ref_shape,
            config: DpoConfig::default(),
        }
    }

    /// One step, as `DpoTrainer::train` builds each micro-batch's loss, with the cached reference log-probs.
    fn step(&self, s: &mut Session) -> StepReport {
        one_step(s, |model, device| {
            let reference = Tensor::from_data(
                TensorData::new(self.ref_values.clone(), self.ref_shape),
                device,
            );
            let inputs = dpo_inputs(
                model,
                &self.batch,
                reference,
                self.config.use_weighting,
                device,
            );
            dpo_micro_loss(&self.config, inputs, 1.0, 1.0)
        })
    }
}

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let (model, _) = smollm2(&device);
    bench_adamw(c, &model);
    let mut g = c.benchmark_group("cpu");
    // One step takes seconds: a flat sampling plan runs exactly one step per sample.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements((4 * LEN) as u64));

    let sft = SftCase::new();
    let mut s = session(&model, &device, "sft", 2e-5, 4);
    g.bench_function(BenchmarkId::new("sft_step", "4x128"), |bench| {
        bench.iter(|| sft.step(&mut s))
    });
    let _ = std::fs::remove_dir_all(&s.settings.output_dir);

    let dpo = DpoCase::new(&model, &device);
    let mut s = session(&model, &device, "dpo", 1e-6, 2);
    g.bench_function(BenchmarkId::new("dpo_step", "2x2x128"), |bench| {
        bench.iter(|| dpo.step(&mut s))
    });
    let _ = std::fs::remove_dir_all(&s.settings.output_dir);
    g.finish();
}

/// GRPO: prompts per step, completions per prompt, completion-length cap (as `trl_bench.py --only grpo`).
const GRPO_PROMPTS: usize = 2;
const GRPO_GENERATIONS: usize = 4;
const GRPO_MAX_NEW: usize = 32;

/// The report key of the GRPO row: prompts × generations × completion-length cap.
fn grpo_key() -> String {
    format!("grpo_step/{GRPO_PROMPTS}x{GRPO_GENERATIONS}x{GRPO_MAX_NEW}")
}

/// `temper grpo`'s config for the GRPO step: SmolLM2, the plain-text prompts of `prompts` (no chat template, as
/// TRL's standard-format prompts), temperature 1, no stop string (EOS or the cap ends a completion), the reward
/// `-min(1, 0.01 · chars)`, and the loss of the `dapo_beta0.04` parity fixture (DAPO, β = 0.04 with a frozen
/// reference, ε = 0.2, ε_high = 0.28). `steps` is out of reach: [`StepTimes`] ends the process after the timed
/// steps, so that no final checkpoint is written.
fn grpo_config(prompts: &Path, out: &Path) -> String {
    format!(
        r#"
[rollout]
model = "smollm2"
chat = false
task = {{ kind = "jsonl", train_file = "{}" }}
generation = {{ max_new_tokens = {GRPO_MAX_NEW}, temperature = 1.0, stop = [] }}
reward = [{{ kind = "length_penalty", target = 0, per_unit = 0.01, cap = 1.0 }}]

[train]
output_dir = "{}"
steps = 1000000
batch_size = {}
learning_rate = 1e-6
save_steps = 0
eval_steps = 0

[grpo]
num_generations = {GRPO_GENERATIONS}
loss_type = {{ type = "dapo" }}
beta = 0.04
epsilon = 0.2
epsilon_high = 0.28
"#,
        prompts.display(),
        out.display(),
        GRPO_PROMPTS * GRPO_GENERATIONS
    )
}

/// The peak resident set size of this process in KiB (`VmHWM` of `/proc/self/status`), as `trl_bench.py` reads its
/// own.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The JSON line a `--process` run prints: the timed steps (after `warmup`), the extra per-step columns, the
/// process's peak RSS.
fn process_json(key: &str, warmup: usize, columns: &[(&str, &[f64])]) -> serde_json::Value {
    let mut out = serde_json::json!({
        "bench": key,
        "warmup": warmup,
        "vm_hwm_kib": vm_hwm_kib(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    for (name, values) in columns {
        out[*name] = serde_json::json!(values.get(warmup..).unwrap_or_default());
    }
    out
}

/// Wall time between optimizer steps of the on-line loop (sampling, scoring, reference and training: the whole
/// step), the loop's own `timing/generate_s` and the training step's seconds; ends the process after `total` steps.
struct StepTimes {
    last: Instant,
    total: usize,
    warmup: usize,
    out: PathBuf,
    wall: Vec<f64>,
    generate: Vec<f64>,
    train: Vec<f64>,
    lengths: Vec<f64>,
}

impl Observer for StepTimes {
    fn on_step(&mut self, report: &StepReport) {
        let now = Instant::now();
        self.wall.push((now - self.last).as_secs_f64());
        self.last = now;
        let metric = |k: &str| report.metrics.get(k).copied().unwrap_or(f64::NAN);
        self.generate.push(metric("timing/generate_s"));
        self.train.push(report.seconds);
        self.lengths.push(metric("completions/mean_length"));
        if self.wall.len() == self.total {
            let _ = std::fs::remove_dir_all(&self.out);
            let json = process_json(
                &grpo_key(),
                self.warmup,
                &[
                    ("seconds", &self.wall),
                    ("generate_seconds", &self.generate),
                    ("train_seconds", &self.train),
                    ("completion_mean_length", &self.lengths),
                ],
            );
            println!("{json}");
            std::process::exit(0);
        }
    }
}

/// `--process grpo`: `warmup + steps` GRPO steps through the on-line loop, as `temper grpo` runs them.
fn grpo_process(steps: usize, warmup: usize, prompts: &Path) -> Result<(), String> {
    let device = Device::flex().autodiff();
    let (model, tok) = smollm2(&device);
    let tok = tok.ok_or("the SmolLM2 GGUF carries no tokenizer")?;
    let out = std::env::temp_dir().join(format!("temper-bench-grpo-{}", std::process::id()));
    let run: GrpoRunConfig = parse_toml(&grpo_config(prompts, &out), Path::new("<grpo bench>"))
        .map_err(|e| e.to_string())?;
    let (mut trainer, mut session) =
        start_online(&run, &tok, model, &device).map_err(|e| e.to_string())?;
    let mut timer = StepTimes {
        last: Instant::now(),
        total: steps + warmup,
        warmup,
        out: out.clone(),
        wall: Vec::new(),
        generate: Vec::new(),
        train: Vec::new(),
        lengths: Vec::new(),
    };
    let result = trainer.train(&mut session, &mut timer);
    let _ = std::fs::remove_dir_all(&out);
    Err(format!(
        "the GRPO loop ended before {} steps: {result:?}",
        steps + warmup
    ))
}

/// One optimizer step of a prepared case on its session.
type StepFn = Box<dyn Fn(&mut Session) -> StepReport>;

/// `--process sft|dpo`: `warmup + steps` optimizer steps, each timed as a whole.
fn step_process(which: &str, steps: usize, warmup: usize) -> Result<serde_json::Value, String> {
    let device = Device::flex().autodiff();
    let (model, _) = smollm2(&device);
    let (key, mut s, case): (&str, Session, StepFn) = match which {
        "sft" => {
            let sft = SftCase::new();
            (
                "sft_step/4x128",
                session(&model, &device, "sft", 2e-5, 4),
                Box::new(move |s| sft.step(s)),
            )
        }
        "dpo" => {
            let dpo = DpoCase::new(&model, &device);
            (
                "dpo_step/2x2x128",
                session(&model, &device, "dpo", 1e-6, 2),
                Box::new(move |s| dpo.step(s)),
            )
        }
        other => return Err(format!("--process {other}: expected sft, dpo or grpo")),
    };
    drop(model);
    let mut seconds = Vec::new();
    for _ in 0..steps + warmup {
        let t0 = Instant::now();
        case(&mut s);
        seconds.push(t0.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&s.settings.output_dir);
    Ok(process_json(key, warmup, &[("seconds", &seconds)]))
}

/// `steps --process sft|dpo|grpo --steps N --warmup W [--prompts FILE]`: one bench in this process, one JSON line
/// on stdout (what `cargo xtask bench --vs trl` runs, interleaved with `trl_bench.py --only ...`).
fn process(args: &[String]) -> Result<(), String> {
    let which = args
        .first()
        .ok_or("--process needs sft, dpo or grpo")?
        .clone();
    let (mut steps, mut warmup, mut prompts) = (3usize, 1usize, None);
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--steps" => steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--warmup" => warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--prompts" => prompts = Some(PathBuf::from(value()?)),
            "--bench" => {} // what `cargo bench` adds
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if which == "grpo" {
        let prompts = prompts.ok_or("--process grpo needs --prompts FILE (JSONL with `prompt`)")?;
        return grpo_process(steps, warmup, &prompts);
    }
    println!("{}", step_process(&which, steps, warmup)?);
    Ok(())
}

/// The criterion benches, or with `--process` one bench in this process for `cargo xtask bench --vs trl`.
fn main() {
    temper_models::retain_freed_memory(); // as the `temper` binary does
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--process") {
        if let Err(e) = process(&args[i + 1..]) {
            eprintln!("steps --process: {e}");
            std::process::exit(2);
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
