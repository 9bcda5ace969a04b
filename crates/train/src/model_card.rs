//! The files of a complete HF model folder besides the weights: the tokenizer as transformers saves it (with the
//! chat template byte for byte), `generation_config.json`, and a short model card (`README.md`) saying what the
//! model was trained from, how, on what, and with which final metrics.

use std::collections::BTreeMap;

use temper_models::LlamaConfig;
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

/// `generation_config.json` as transformers writes it for a model whose config names its special ids: BOS, EOS
/// (the tokenizer's when it has one, as generation stops on it) and padding.
pub fn generation_config(config: &LlamaConfig, tok: Option<&Tokenizer>) -> serde_json::Value {
    let eos = tok.and_then(Tokenizer::eos_id).or(config.eos_token_id);
    let bos = tok.and_then(Tokenizer::bos_id).or(config.bos_token_id);
    let pad = tok.and_then(Tokenizer::pad_id).or(config.pad_token_id);
    let mut g = serde_json::Map::new();
    g.insert("_from_model_config".into(), serde_json::json!(true));
    for (k, v) in [("bos_token_id", bos), ("eos_token_id", eos), ("pad_token_id", pad)] {
        if let Some(id) = v {
            g.insert(k.into(), serde_json::json!(id));
        }
    }
    serde_json::Value::Object(g)
}

/// Every file of an HF model folder besides `model.safetensors` and `config.json`: the tokenizer's files
/// ([`Tokenizer::hf_files`]), `generation_config.json`, and `README.md` when a card is given.
pub fn hf_folder_files(config: &LlamaConfig, tok: Option<&Tokenizer>, card: Option<&ModelCard>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = match tok {
        Some(t) => t
            .hf_files(Some(config.max_position_embeddings))
            .map_err(|e| TrainError::Export(format!("tokenizer files: {e}")))?,
        None => Vec::new(),
    };
    let generation = serde_json::to_vec_pretty(&generation_config(config, tok)).map_err(|e| TrainError::Export(e.to_string()))?;
    files.push(("generation_config.json".into(), generation));
    if let Some(card) = card {
        files.push(("README.md".into(), card.render().into_bytes()));
    }
    Ok(files)
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
