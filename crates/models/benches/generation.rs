//! Criterion benches of SmolLM2 (f32) on the CPU backend: prefill and decode tokens/s at batch 1 and 8,
//! forward+backward tokens/s, and samples/s of N samples of one prompt (N = 1, 4, 16) with one shared prefill
//! (`generate_n`) against N sequential `generate` calls. `cargo xtask bench` runs them and writes the report.
//!
//! Throughput is reported per element = token (per sample for `samples_*`), so criterion prints tokens/s
//! (samples/s) directly.

#![allow(missing_docs)] // `criterion_group!` generates an undocumented function

use std::path::PathBuf;
use std::time::Duration;

use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use temper_models::{
    AttentionInfo, CausalLm, GenerationConfig, Llama, SamplingParams, generate, generate_n, load_model,
};

const PROMPT_LEN: usize = 128;
const DECODE_TOKENS: usize = 32;
/// Prompt length and new tokens of the N-samples benches.
const SAMPLE_PROMPT: usize = 64;
const SAMPLE_TOKENS: usize = 16;

fn smollm2() -> PathBuf {
    temper_assets::path_of("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        .unwrap_or_else(|e| panic!("{e}: run `temper fetch smollm2` first"))
}

fn prompts(batch: usize, len: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| (0..len).map(|t| (100 + (b * 7919 + t * 104_729) % 40_000) as u32).collect())
        .collect()
}

fn ids(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

/// The CPU backends of this build: `cpu` (flex) always, `ndarray` with `--features ndarray` (for the backend
/// comparison in docs/backends.md).
fn backends() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)] // pushed to only with `--features ndarray`
    let mut v = vec![("cpu", Device::flex())];
    #[cfg(feature = "ndarray")]
    {
        #[allow(deprecated)] // burn 0.22 deprecates ndarray; measured here to justify flex as the default
        v.push(("ndarray", Device::ndarray()));
    }
    v
}

fn bench(c: &mut Criterion) {
    temper_models::retain_freed_memory(); // as the `temper` binary does
    for (name, device) in backends() {
        bench_backend(c, name, &device);
    }
}

fn bench_backend(c: &mut Criterion, group: &str, device: &Device) {
    let path = smollm2();
    let device = device.clone();
    let model: Llama = match load_model(&path, &device) {
        Ok(m) => m.model,
        Err(e) => panic!("loading {}: {e}", path.display()),
    };
    let mut g = c.benchmark_group(group);
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));

    for batch in [1usize, 8] {
        let p = prompts(batch, PROMPT_LEN);
        g.throughput(Throughput::Elements((batch * PROMPT_LEN) as u64));
        g.bench_with_input(BenchmarkId::new("prefill_tokens", batch), &p, |b, p| {
            b.iter(|| {
                let h = model.hidden(ids(p, &device), &AttentionInfo::full(p.len(), PROMPT_LEN), None);
                let _ = h.into_data(); // sync
            })
        });
    }
    for batch in [1usize, 8] {
        let p = prompts(batch, 16);
        let config = GenerationConfig {
            max_new_tokens: DECODE_TOKENS,
            sampling: SamplingParams { temperature: 0.0, top_k: None, top_p: None },
            ..GenerationConfig::default()
        };
        // Decode throughput: new tokens per second including the (short, 16-token) prefill.
        g.throughput(Throughput::Elements((batch * DECODE_TOKENS) as u64));
        g.bench_with_input(BenchmarkId::new("decode_tokens", batch), &p, |b, p| {
            b.iter(|| generate(&model, p, &config, &device, None, |_, _| {}).expect("generate"))
        });
    }
    // N samples of one prompt (temperature 1, no stop token, so every sample has SAMPLE_TOKENS tokens).
    let prompt = prompts(1, SAMPLE_PROMPT).remove(0);
    for n in [1usize, 4, 16] {
        let config = GenerationConfig {
            max_new_tokens: SAMPLE_TOKENS,
            sampling: SamplingParams { temperature: 1.0, top_k: None, top_p: None },
            ..GenerationConfig::default()
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("samples_shared", n), &n, |b, &n| {
            b.iter(|| generate_n(&model, &prompt, n, &config, &device, None, |_, _| {}).expect("generate_n"))
        });
        g.bench_with_input(BenchmarkId::new("samples_sequential", n), &n, |b, &n| {
            b.iter(|| {
                for seed in 0..n as u64 {
                    let c = GenerationConfig { seed, ..config.clone() };
                    generate(&model, std::slice::from_ref(&prompt), &c, &device, None, |_, _| {}).expect("generate");
                }
            })
        });
    }
    {
        let ad = device.clone().autodiff();
        let train_model: Llama = load_model(&path, &ad).expect("load").model;
        let (batch, len) = (4usize, 64usize);
        let p = prompts(batch, len);
        g.throughput(Throughput::Elements((batch * len) as u64));
        g.bench_function("forward_backward_tokens/4x64", |b| {
            b.iter(|| {
                let logits = train_model.forward(ids(&p, &ad), &AttentionInfo::full(batch, len), None);
                let targets = ids(&p, &ad);
                let lp = temper_tensor_ops::token_logprobs(logits, targets);
                let loss = lp.mean().neg();
                let grads = loss.backward();
                drop(grads);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
