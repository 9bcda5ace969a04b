//! LoRA adapters in PEFT's format (`adapter_config.json` + `adapter_model.safetensors`), which
//! `peft.PeftModel.from_pretrained(base, folder)` loads on the base model: the same update `W + (alpha/r)·B A` in
//! HF's `[out, in]` layout as burn's `W + (alpha/r)·a b` in its `[in, out]` layout, so `lora_A = aᵀ` (`[r, in]`)
//! and `lora_B = bᵀ` (`[out, r]`).

use std::collections::BTreeMap;

use burn::module::Module;

use crate::error::{Result, TrainError};
use crate::export::{HfTensors, safetensors_bytes};
use crate::lora::{LoraSettings, trainable_tensors};

/// The PEFT name of a burn adapter factor (`layers.3.self_attn.q_proj.weight.lora.a` →
/// `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`), wherever the Llama sits in the trained
/// module (`policy.layers…` for PPO's policy with value head, `backbone.layers…` for a reward model).
fn peft_name(burn_path: &str) -> Option<String> {
    let (module, factor) = burn_path.rsplit_once(".weight.lora.")?;
    let layer = &module[module.find("layers.")?..];
    let kind = match factor {
        "a" => "lora_A",
        "b" => "lora_B",
        _ => return None,
    };
    Some(format!("base_model.model.model.{layer}.{kind}.weight"))
}

/// `adapter_config.json` and `adapter_model.safetensors` of the LoRA adapters in `model`, for a base model named
/// `base_model` (what `base_model_name_or_path` records). Errors when the model holds no adapter.
pub fn peft_adapter_files<M: Module>(model: &M, lora: &LoraSettings, base_model: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut tensors: HfTensors = BTreeMap::new();
    let mut modules = std::collections::BTreeSet::new();
    for (path, data) in trainable_tensors(model) {
        let Some(name) = peft_name(&path) else { continue };
        let shape = data.shape().to_vec();
        let values: Vec<f32> = data.convert::<f32>().try_to_vec::<f32>().map_err(|e| TrainError::Export(format!("{path}: {e:?}")))?;
        let [rows, cols] = shape[..] else {
            return Err(TrainError::Export(format!("{path}: adapter factor of shape {shape:?}, expected 2-D")));
        };
        let mut t = vec![0.0f32; values.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = values[i * cols + j];
            }
        }
        if let Some(m) = path.split(".weight.lora.").next().and_then(|m| m.rsplit('.').next()) {
            modules.insert(m.to_string());
        }
        tensors.insert(name, (vec![cols, rows], t.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    if tensors.is_empty() {
        return Err(TrainError::Export("the model holds no LoRA adapter to export".into()));
    }
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": modules.into_iter().collect::<Vec<_>>(),
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
    });
    Ok(vec![
        ("adapter_config.json".into(), serde_json::to_vec_pretty(&config).map_err(|e| TrainError::Export(e.to_string()))?),
        ("adapter_model.safetensors".into(), safetensors_bytes(&tensors)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_adapter_paths_map_to_peft_names() {
        for (burn, peft) in [
            ("layers.0.self_attn.q_proj.weight.lora.a", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            ("policy.layers.11.mlp.down_proj.weight.lora.b", "base_model.model.model.layers.11.mlp.down_proj.lora_B.weight"),
        ] {
            assert_eq!(peft_name(burn).as_deref(), Some(peft), "{burn}");
        }
        assert_eq!(peft_name("value_head.weight"), None);
        assert_eq!(peft_name("layers.0.self_attn.q_proj.weight"), None);
    }
}
