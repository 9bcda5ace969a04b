//! [`GenerationParams`]: how to generate one reply, the same for a local model, an HTTP endpoint and a rollout.

use serde::{Deserialize, Serialize};

fn d_max_new_tokens() -> usize {
    256
}
fn d_temperature() -> f64 {
    1.0
}

/// How to generate a reply. Field names follow transformers' `generate` (`max_new_tokens`, `temperature`,
/// `top_k`, `top_p`); every field has a default, and unknown fields are rejected when read from TOML or JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationParams {
    /// Upper bound on new tokens (OpenAI `max_tokens`); default 256.
    #[serde(default = "d_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy. Default 1.0 (transformers' and TRL's).
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    /// Keep only the `k` most likely tokens; default none.
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `p`, in (0, 1]; default none.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Stop once the reply contains one of these strings (the stop string is kept); default none.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Seed of the sampler: the same seed, prompt and parameters give the same reply on the same back end.
    #[serde(default)]
    pub seed: u64,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            max_new_tokens: d_max_new_tokens(),
            temperature: d_temperature(),
            top_k: None,
            top_p: None,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

impl GenerationParams {
    /// Greedy decoding of at most `max_new_tokens` tokens (what a judge or an evaluation wants).
    pub fn greedy(max_new_tokens: usize) -> GenerationParams {
        GenerationParams {
            max_new_tokens,
            temperature: 0.0,
            ..GenerationParams::default()
        }
    }

    /// True when the parameters pick the most likely token at every step.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// True when tokens are drawn from the model's own distribution (temperature 1, no top-k or top-p), so the
    /// sampler's log-probs are the model's.
    pub fn is_plain_sampling(&self) -> bool {
        (self.temperature - 1.0).abs() < 1e-12 && self.top_k.is_none() && self.top_p.is_none()
    }

    /// Checks the values, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() {
            return Err(format!("temperature must be a finite number, got {}", self.temperature));
        }
        if self.temperature < 0.0 {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if self.top_k == Some(0) {
            return Err("top_k must be at least 1".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("top_p must be in (0, 1], got {p}"));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err("stop strings must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_greedy_and_validation() {
        let d: GenerationParams = serde_json::from_str("{}").expect("every field has a default");
        assert_eq!(d, GenerationParams::default());
        assert!(d.is_plain_sampling() && !d.is_greedy());
        assert!(GenerationParams::greedy(4).is_greedy());
        for (bad, field) in [
            (GenerationParams { temperature: f64::NAN, ..d.clone() }, "temperature"),
            (GenerationParams { temperature: -1.0, ..d.clone() }, "temperature"),
            (GenerationParams { top_k: Some(0), ..d.clone() }, "top_k"),
            (GenerationParams { top_p: Some(1.5), ..d.clone() }, "top_p"),
            (GenerationParams { stop: vec![String::new()], ..d.clone() }, "stop"),
        ] {
            assert!(bad.validate().expect_err(field).contains(field));
        }
        let typo = serde_json::from_str::<GenerationParams>(r#"{"max_tokens": 3}"#).expect_err("unknown field");
        assert!(typo.to_string().contains("max_tokens"), "{typo}");
    }
}
