//! `temper export`: writes a model as HF `model.safetensors` + `config.json`, atomically, so that Temper and
//! transformers both reload it. A model trained with LoRA is written merged (`W + (alpha/r)·A B`): a plain model.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::DType;
use temper_models::Llama;

use crate::atomic::{atomic_dir, write_atomic};
use crate::error::{Result, TrainError};
use crate::params::named_tensors;

/// HF-named f32 tensors ready for safetensors: `name -> (shape, little-endian bytes)`.
pub(crate) type HfTensors = BTreeMap<String, (Vec<usize>, Vec<u8>)>;

/// Named f32 tensors read back: `name -> (shape, values)`.
pub(crate) type F32Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Maps a burn parameter path of [`Llama`] to its HF tensor name, and whether it is a linear weight stored
/// `[in, out]` in burn (HF stores `[out, in]`).
pub(crate) fn hf_name(burn_path: &str) -> Option<(String, bool)> {
    let is_linear = burn_path.ends_with("_proj.weight") || burn_path == "lm_head.weight";
    let name = if burn_path == "lm_head.weight" {
        "lm_head.weight".to_string()
    } else if burn_path == "embed_tokens.weight" {
        "model.embed_tokens.weight".to_string()
    } else if let Some(rest) = burn_path.strip_prefix("layers.").or_else(|| burn_path.strip_prefix("norm.")) {
        let base = if burn_path.starts_with("norm.") {
            format!("model.norm.{rest}")
        } else {
            format!("model.layers.{rest}")
        };
        base.replace(".gamma", ".weight")
    } else {
        return None;
    };
    Some((name, is_linear))
}

/// HF-named f32 tensors of a model: `name -> (shape, little-endian bytes)`. LoRA adapters, if any, are merged
/// into their weights.
pub fn hf_tensors(model: &Llama) -> Result<HfTensors> {
    let mut out = BTreeMap::new();
    // Without adapters `materialize` keeps the same tensor handles (no copy).
    for (path, data) in named_tensors(&model.valid().materialize()) {
        let (name, transpose) = hf_name(&path).ok_or_else(|| TrainError::Export(format!("unknown parameter `{path}`")))?;
        let data = if data.dtype() == DType::F32 { data } else { data.convert::<f32>() };
        let shape = data.shape().to_vec();
        let values: Vec<f32> = data
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Export(format!("{path}: {e:?}")))?;
        let (shape, values) = if transpose && shape.len() == 2 {
            let (r, c) = (shape[0], shape[1]);
            let mut t = vec![0.0f32; values.len()];
            for i in 0..r {
                for j in 0..c {
                    t[j * r + i] = values[i * c + j];
                }
            }
            (vec![c, r], t)
        } else {
            (shape, values)
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.insert(name, (shape, bytes));
    }
    Ok(out)
}

/// Serialises HF-named tensors to safetensors bytes.
pub(crate) fn safetensors_bytes(tensors: &HfTensors) -> Result<Vec<u8>> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (shape, bytes))| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| TrainError::Export(format!("{n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| TrainError::Export(e.to_string()))
}

/// Reads every tensor of a safetensors file as f32: `name -> (shape, values)` (F32, F16 and BF16 are accepted).
pub(crate) fn read_f32_safetensors(path: &Path) -> Result<F32Tensors> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            safetensors::Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| burn::tensor::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| burn::tensor::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => return Err(bad(format!("{name}: unsupported dtype {other:?}"))),
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok(out)
}

/// Writes `dir/model.safetensors` and `dir/config.json` (plus any extra files, e.g. the tokenizer) atomically:
/// the folder appears complete or not at all.
pub fn export_hf(model: &Llama, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
    write_hf_dir(dir, &hf_tensors(model)?, &model.config().to_hf_json(), extra)
}

/// Writes `dir/` atomically: `model.safetensors` from `tensors`, `config.json` from `config`, and the `extra`
/// files (e.g. a tokenizer).
pub(crate) fn write_hf_dir(dir: &Path, tensors: &HfTensors, config: &serde_json::Value, extra: &[(&str, Vec<u8>)]) -> Result<()> {
    let bytes = safetensors_bytes(tensors)?;
    let config = serde_json::to_vec_pretty(config).map_err(|e| TrainError::Export(e.to_string()))?;
    atomic_dir(dir, |tmp| {
        write_atomic(&tmp.join("model.safetensors"), &bytes)?;
        write_atomic(&tmp.join("config.json"), &config)?;
        for (name, content) in extra {
            write_atomic(&tmp.join(name), content)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::hf_name;

    #[test]
    fn burn_paths_map_to_hf_names() {
        let cases = [
            ("embed_tokens.weight", "model.embed_tokens.weight", false),
            ("layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight", true),
            ("layers.11.self_attn.k_proj.bias", "model.layers.11.self_attn.k_proj.bias", false),
            ("layers.2.input_layernorm.gamma", "model.layers.2.input_layernorm.weight", false),
            ("layers.2.mlp.down_proj.weight", "model.layers.2.mlp.down_proj.weight", true),
            ("norm.gamma", "model.norm.weight", false),
            ("lm_head.weight", "lm_head.weight", true),
        ];
        for (burn, hf, linear) in cases {
            assert_eq!(hf_name(burn), Some((hf.to_string(), linear)), "{burn}");
        }
        assert_eq!(hf_name("value_head.weight"), None);
    }
}
