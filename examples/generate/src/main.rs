//! `temper-models` alone: load a Llama-family checkpoint (HF `config.json` + safetensors), generate greedily with
//! the KV cache, and print each new token with its log-prob. Run:
//! `cargo run -p example-generate [-- MODEL_DIR]` (default: the tiny test model in testdata/trl-parity/model).

use std::path::{Path, PathBuf};

use temper_models::{Generation, GenerationConfig, Llama, Result, SamplingParams, generate, load_hf_dir, parse_device};

/// Token ids of the prompt (the tiny model has a 320-token vocabulary; SmolLM2 has 49 152).
const PROMPT: [u32; 5] = [1, 17, 42, 99, 7];
/// New tokens to generate.
const MAX_NEW_TOKENS: usize = 8;

/// The tiny test model shipped with the repository.
fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/trl-parity/model")
}

/// Greedy decoding (temperature 0) of [`PROMPT`], stopping at the model's EOS if it has one (one prompt: no
/// padding, so the pad id is irrelevant).
fn run(model_dir: &Path) -> Result<(Llama, Generation)> {
    let device = parse_device("cpu")?;
    let model = load_hf_dir(model_dir, &device)?;
    let config = GenerationConfig {
        max_new_tokens: MAX_NEW_TOKENS,
        sampling: SamplingParams { temperature: 0.0, top_k: None, top_p: None },
        stop_token_ids: model.config().eos_token_id.into_iter().collect(),
        ..GenerationConfig::default()
    };
    let mut out = generate(&model, &[PROMPT.to_vec()], &config, &device, None, |_, _| {})?;
    let generation = out.pop().ok_or_else(|| temper_models::ModelError::Generation("no sequence came back".into()))?;
    Ok((model, generation))
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map_or_else(default_model, PathBuf::from);
    let (_, g) = run(&dir)?;
    println!("model {}: prompt {:?}", dir.display(), g.prompt_ids);
    for (id, lp) in g.output_ids.iter().zip(&g.logprobs) {
        println!("  token {id:>6}  log-prob {lp:.4}");
    }
    println!("finished: {:?}", g.finish_reason);
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Int, Tensor, TensorData, activation::log_softmax};

    use super::*;

    /// Log-probs of every position's next token from one full forward pass (no cache) over `ids`: `[len, vocab]`.
    fn full_pass_logprobs(model: &Llama, ids: &[u32]) -> Vec<Vec<f32>> {
        let device = parse_device("cpu").expect("cpu device");
        let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), &device);
        let logits = model.forward(input, &temper_models::AttentionInfo::full(1, ids.len()), None);
        let vocab = logits.dims()[2];
        let flat = log_softmax(logits, 2).into_data().try_to_vec::<f32>().unwrap_or_default();
        flat.chunks(vocab).map(<[f32]>::to_vec).collect()
    }

    #[test]
    fn greedy_generation_matches_a_full_forward_pass() {
        let (model, g) = run(&default_model()).expect("generate");
        assert_eq!(g.prompt_ids, PROMPT.to_vec());
        assert!(!g.output_ids.is_empty() && g.output_ids.len() <= MAX_NEW_TOKENS);
        assert_eq!(g.logprobs.len(), g.output_ids.len());
        assert!(g.logprobs.iter().all(|lp| lp.is_finite() && *lp <= 0.0), "log-probs {:?}", g.logprobs);

        // The KV-cache tokens are the argmax of a no-cache pass over prompt + output, and their log-probs agree.
        let all: Vec<u32> = PROMPT.iter().chain(&g.output_ids).copied().collect();
        let rows = full_pass_logprobs(&model, &all[..all.len() - 1]);
        for (k, (&id, &lp)) in g.output_ids.iter().zip(&g.logprobs).enumerate() {
            let row = &rows[PROMPT.len() - 1 + k];
            let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
            assert_eq!(best, Some(id as usize), "token {k}: greedy picked {id}");
            assert!((row[id as usize] - lp).abs() < 1e-3, "token {k}: log-prob {lp} vs full pass {}", row[id as usize]);
        }

        // Greedy decoding is deterministic: a second call gives the same tokens and log-probs.
        let (_, again) = run(&default_model()).expect("generate again");
        assert_eq!(again.output_ids, g.output_ids);
        assert_eq!(again.logprobs, g.logprobs);
    }
}
