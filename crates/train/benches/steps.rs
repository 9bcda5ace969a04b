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
//! `adamw/{burn,fused}`: one AdamW update of all of SmolLM2's parameters from the same gradients, burn's
//! `AdamW` against Temper's [`FusedAdamW`] (the one `Session` uses), in the same run; throughput in parameters.

use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_main};
use temper_models::{Llama, load_model};
use temper_rl_objectives::{DpoConfig, ObjectiveOutput, SftConfig, sft_loss};
use temper_train::{
    DpoBatch, EncodedDpoPair, EntropyMode, FusedAdamW, Metrics, PaddedBatch, Session, StepReport, TrainSettings, Tokenized,
    dpo_inputs, dpo_micro_loss, sft_inputs, token_scores,
};

/// Sequence length of every row.
const LEN: usize = 128;
/// DPO prompt length (the completion is `LEN - PROMPT`).
const PROMPT: usize = 64;
/// The model file inside the `smollm2` asset.
const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Row `b` of the benchmark's token ids (the same formula as `trl_bench.py` and the generation bench).
fn row(b: usize, len: usize) -> Vec<u32> {
    (0..len).map(|t| (100 + (b * 7919 + t * 104_729) % 40_000) as u32).collect()
}

/// One optimizer step of `s` whose single micro-batch loss `micro` builds, as every trainer's loop runs it.
fn one_step(s: &mut Session, micro: impl Fn(&Llama, &Device) -> temper_train::Result<ObjectiveOutput>) -> StepReport {
    let device = s.device.clone();
    let loss = |model: &Llama, _| micro(model, &device).map(|out| (out.loss, out.metrics));
    s.step(loss, Metrics::new(), || serde_json::Value::Null).expect("optimizer step")
}

/// A session that never checkpoints inside the benchmark (`steps` is out of reach), logging to a temp folder.
fn session(model: &Llama, device: &Device, name: &str, learning_rate: f64, batch: usize) -> Session {
    let settings = TrainSettings {
        output_dir: std::env::temp_dir().join(format!("temper-bench-{name}-{}", std::process::id())),
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
            let g = Tensor::<D>::random(v.shape(), Distribution::Normal(0.0, 1e-3), &v.device().inner());
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
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
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

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let path = temper_assets::path_of("smollm2", SMOLLM2_GGUF)
        .unwrap_or_else(|e| panic!("{e}: run `temper fetch smollm2` first"));
    let model: Llama = match load_model(&path, &device) {
        Ok(m) => m.model,
        Err(e) => panic!("loading {}: {e}", path.display()),
    };
    bench_adamw(c, &model);
    let mut g = c.benchmark_group("cpu");
    // One step takes seconds: a flat sampling plan runs exactly one step per sample.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));

    // SFT, as `SftTrainer::train` builds each micro-batch's loss (one micro-batch = the whole batch).
    {
        let seqs: Vec<Tokenized> = (0..4)
            .map(|b| Tokenized {
                ids: row(b, LEN),
                loss_mask: vec![1; LEN],
            })
            .collect();
        let batch = PaddedBatch::right_padded(&seqs, 2);
        let config = SftConfig::default();
        let mut s = session(&model, &device, "sft", 2e-5, 4);
        g.throughput(Throughput::Elements((4 * LEN) as u64));
        g.bench_function(BenchmarkId::new("sft_step", "4x128"), |bench| {
            bench.iter(|| one_step(&mut s, |model, device| Ok(sft_loss(&config, sft_inputs(model, &batch, device))?)))
        });
        let _ = std::fs::remove_dir_all(&s.settings.output_dir);
    }

    // DPO, as `DpoTrainer::train` builds each micro-batch's loss, with cached reference log-probs.
    {
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
        let reference = token_scores(&model.valid(), &batch.ids, &batch.attention, false, 1.0, EntropyMode::Skip, &inner).logps;
        let ref_shape = reference.dims();
        let ref_values: Vec<f32> = reference.into_data().convert::<f32>().try_to_vec::<f32>().expect("reference log-probs");
        let config = DpoConfig::default();
        let mut s = session(&model, &device, "dpo", 1e-6, 2);
        g.throughput(Throughput::Elements((4 * LEN) as u64));
        g.bench_function(BenchmarkId::new("dpo_step", "2x2x128"), |bench| {
            bench.iter(|| {
                one_step(&mut s, |model, device| {
                    let reference = Tensor::from_data(TensorData::new(ref_values.clone(), ref_shape), device);
                    let inputs = dpo_inputs(model, &batch, reference, config.use_weighting, device);
                    dpo_micro_loss(&config, inputs, 1.0, 1.0)
                })
            })
        });
        let _ = std::fs::remove_dir_all(&s.settings.output_dir);
    }
    g.finish();
}

/// The bench group (what `criterion_group!` generates, written out so that it carries a doc comment).
pub fn benches() {
    temper_models::retain_freed_memory(); // as the `temper` binary does
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
