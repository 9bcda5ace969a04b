//! The files of a complete HF model folder besides the weights: the tokenizer as transformers saves it (with the
//! chat template byte for byte), `generation_config.json`, and a short model card (`README.md`) saying what the
//! model was trained from, how, on what, and with which final metrics.

use std::collections::BTreeMap;

use serde::Serialize;
use temper_tokenizer::Tokenizer;

use crate::error::{Result, TrainError};

/// What a model card says about a run.
#[derive(Clone, Debug, Default)]
pub struct ModelCard {
    /// The model training started from (asset name, GGUF file or HF folder, as the config named it).
    pub base_model: String,
    /// The training method, e.g. `GRPO`, `SFT`, `DPO (sigmoid)`.
    pub method: String,
    /// The run's configuration (the TOML as parsed, defaults filled in).
    pub config: String,
    /// The training data, in a sentence (task, file, size).
    pub data: String,
    /// The last values of the run's metrics (`metrics.jsonl`), by name.
    pub metrics: BTreeMap<String, f64>,
}

impl ModelCard {
    /// A card for a run of `method` from `base_model` with `config` (written as TOML) on `data`; the metrics are
    /// filled in from `metrics.jsonl` when the final model is written ([`crate::Session::export_final`]).
    pub fn for_run(base_model: &str, method: &str, config: &impl Serialize, data: impl Into<String>) -> ModelCard {
        ModelCard {
            base_model: base_model.to_string(),
            method: method.to_string(),
            config: toml::to_string(config).unwrap_or_else(|e| format!("# the configuration could not be written as TOML: {e}")),
            data: data.into(),
            metrics: BTreeMap::new(),
        }
    }

    /// The card as Markdown with the YAML front matter the HF hub and `huggingface_hub.ModelCard` read.
    pub fn render(&self) -> String {
        let method_tag = self.method.split_whitespace().next().unwrap_or("").to_lowercase();
        let mut out = String::from("---\nlibrary_name: transformers\n");
        out += &format!("base_model: {}\n", yaml_string(&self.base_model));
        out += &format!("tags:\n- temper\n- {}\n---\n\n", yaml_string(&method_tag));
        out += &format!("# {} of {}\n\n", self.method, self.base_model);
        out += "Trained with [Temper](https://example.invalid/temper) on burn.\n\n";
        out += &format!("- **Base model:** `{}`\n- **Method:** {}\n- **Data:** {}\n\n", self.base_model, self.method, self.data);
        if !self.metrics.is_empty() {
            out += "## Final metrics\n\n| metric | value |\n|---|---:|\n";
            for (k, v) in &self.metrics {
                out += &format!("| `{k}` | {v:.6} |\n");
            }
            out += "\n";
        }
        out += "## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n";
        out += "tok = AutoTokenizer.from_pretrained(\"PATH\")\nmodel = AutoModelForCausalLM.from_pretrained(\"PATH\")\n";
        out += "ids = tok.apply_chat_template([{\"role\": \"user\", \"content\": \"What is 3 + 4?\"}], add_generation_prompt=True, return_tensors=\"pt\")\n";
        out += "print(tok.decode(model.generate(ids, max_new_tokens=32)[0][ids.shape[1]:], skip_special_tokens=True))\n```\n\n";
        out += "## Configuration\n\n```toml\n";
        out += self.config.trim_end();
        out += "\n```\n";
        out
    }
}

/// A YAML scalar that survives any characters in `s`.
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `generation_config.json` as transformers writes it for a model whose `config.json` is `config`: BOS, EOS (the
/// tokenizer's when it has one, as generation stops on it) and padding ids.
pub fn generation_config(config: &serde_json::Value, tok: Option<&Tokenizer>) -> serde_json::Value {
    let id = |key: &str| config.get(key).and_then(serde_json::Value::as_u64).and_then(|v| u32::try_from(v).ok());
    let eos = tok.and_then(Tokenizer::eos_id).or(id("eos_token_id"));
    let bos = tok.and_then(Tokenizer::bos_id).or(id("bos_token_id"));
    let pad = tok.and_then(Tokenizer::pad_id).or(id("pad_token_id"));
    let mut g = serde_json::Map::new();
    g.insert("_from_model_config".into(), serde_json::json!(true));
    for (k, v) in [("bos_token_id", bos), ("eos_token_id", eos), ("pad_token_id", pad)] {
        if let Some(id) = v {
            g.insert(k.into(), serde_json::json!(id));
        }
    }
    serde_json::Value::Object(g)
}

/// Every file of an HF model folder besides the weights and `config.json` (which is `config`): the tokenizer's
/// files ([`Tokenizer::hf_files`], with `model_max_length` from the config), `generation_config.json`, and
/// `README.md` when a card is given.
pub fn hf_folder_files(config: &serde_json::Value, tok: Option<&Tokenizer>, card: Option<&ModelCard>) -> Result<Vec<(String, Vec<u8>)>> {
    let max_len = config.get("max_position_embeddings").and_then(serde_json::Value::as_u64).map(|v| v as usize);
    let mut files = match tok {
        Some(t) => t.hf_files(max_len).map_err(|e| TrainError::Export(format!("tokenizer files: {e}")))?,
        None => Vec::new(),
    };
    let generation = serde_json::to_vec_pretty(&generation_config(config, tok)).map_err(|e| TrainError::Export(e.to_string()))?;
    files.push(("generation_config.json".into(), generation));
    if let Some(card) = card {
        files.push(("README.md".into(), card.render().into_bytes()));
    }
    Ok(files)
}

/// The numeric values of the last line of `metrics.jsonl` that has a `loss` (the last optimizer step).
pub(crate) fn last_step_metrics(path: &std::path::Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("loss").is_some())
        .and_then(|v| v.as_object().cloned())
        .map(|o| o.into_iter().filter_map(|(k, v)| v.as_f64().map(|x| (k, x))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_has_front_matter_metrics_and_config() {
        let card = ModelCard {
            base_model: "smollm2".into(),
            method: "GRPO".into(),
            config: "[train]\nsteps = 20\n".into(),
            data: "built-in arithmetic task".into(),
            metrics: BTreeMap::from([("eval/accuracy".to_string(), 0.55)]),
        };
        let text = card.render();
        assert!(text.starts_with("---\nlibrary_name: transformers\nbase_model: \"smollm2\"\ntags:\n- temper\n- \"grpo\"\n---\n"), "{text}");
        assert!(text.contains("| `eval/accuracy` | 0.550000 |"), "{text}");
        assert!(text.contains("```toml\n[train]\nsteps = 20\n```"), "{text}");
    }
}
