//! `temper export --format gguf`: a Llama-family model as a GGUF file that llama.cpp, Ollama and LM Studio load
//! as they load the original SmolLM2 GGUF — llama.cpp's tensor names and Q/K row permutation, the model's
//! hyper-parameters under `llama.*`, the tokenizer (tokens, types, merges, pre-tokenizer, special ids) and the chat
//! template under `tokenizer.*` — quantized to F32, F16, Q8_0 or Q4_1, with the error each tensor took.

use std::path::Path;

use serde::Serialize;
use temper_gguf::{GgmlType, GgufValue, GgufWriter, quantize};
use temper_models::{Architecture, Llama, gguf_name, permute_rows};
use temper_tokenizer::Tokenizer;

use crate::atomic::write_atomic;
use crate::error::{Result, TrainError};
use crate::export::hf_tensors;

/// The tensor type of a GGUF export (matrices and the embedding; norms always stay F32, as llama.cpp keeps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GgufQuant {
    /// 32-bit floats: the exact weights.
    F32,
    /// 16-bit floats.
    F16,
    /// 8-bit blocks of 32 with an f16 scale (llama.cpp `Q8_0`).
    Q8_0,
    /// 4-bit blocks of 32 with an f16 scale and minimum (llama.cpp `Q4_1`, the type of the SmolLM2 asset).
    Q4_1,
}

impl GgufQuant {
    /// Parses `f32`, `f16`, `q8_0` or `q4_1`.
    pub fn parse(name: &str) -> Result<GgufQuant> {
        match name.to_ascii_lowercase().as_str() {
            "f32" => Ok(GgufQuant::F32),
            "f16" => Ok(GgufQuant::F16),
            "q8_0" => Ok(GgufQuant::Q8_0),
            "q4_1" => Ok(GgufQuant::Q4_1),
            other => Err(TrainError::Export(format!("--quant {other}: expected f32, f16, q8_0 or q4_1"))),
        }
    }

    fn ggml(self) -> GgmlType {
        match self {
            GgufQuant::F32 => GgmlType::F32,
            GgufQuant::F16 => GgmlType::F16,
            GgufQuant::Q8_0 => GgmlType::Q8_0,
            GgufQuant::Q4_1 => GgmlType::Q4_1,
        }
    }

    /// llama.cpp's `general.file_type` (`LLAMA_FTYPE_*`).
    fn file_type(self) -> u32 {
        match self {
            GgufQuant::F32 => 0,
            GgufQuant::F16 => 1,
            GgufQuant::Q4_1 => 3,
            GgufQuant::Q8_0 => 7,
        }
    }
}

/// What quantization did to one tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorQuantError {
    /// GGUF tensor name.
    pub name: String,
    /// The type it was written as.
    pub dtype: String,
    /// Largest absolute difference between a weight and its stored value.
    pub max_abs: f64,
    /// Root-mean-square difference divided by the root-mean-square weight (0 = exact).
    pub relative_rms: f64,
}

/// Writes `model` with `tok` as a GGUF file at `path` (atomically) and returns the per-tensor quantization error.
pub fn export_gguf(model: &Llama, tok: &Tokenizer, path: &Path, quant: GgufQuant, name: &str) -> Result<Vec<TensorQuantError>> {
    let c = model.config();
    if c.architecture != Architecture::Llama {
        return Err(TrainError::Export(format!("GGUF export supports the Llama layout, this model is {:?}", c.architecture)));
    }
    let mut w = GgufWriter::new();
    let u32_of = |v: usize| GgufValue::U32(u32::try_from(v).unwrap_or(u32::MAX));
    w.metadata("general.architecture", GgufValue::String("llama".into()))
        .metadata("general.type", GgufValue::String("model".into()))
        .metadata("general.name", GgufValue::String(name.into()))
        .metadata("general.file_type", GgufValue::U32(quant.file_type()))
        .metadata("general.quantization_version", GgufValue::U32(2))
        .metadata("general.alignment", GgufValue::U32(32))
        .metadata("llama.vocab_size", u32_of(c.vocab_size))
        .metadata("llama.context_length", u32_of(c.max_position_embeddings))
        .metadata("llama.embedding_length", u32_of(c.hidden_size))
        .metadata("llama.block_count", u32_of(c.num_hidden_layers))
        .metadata("llama.feed_forward_length", u32_of(c.intermediate_size))
        .metadata("llama.attention.head_count", u32_of(c.num_attention_heads))
        .metadata("llama.attention.head_count_kv", u32_of(c.num_key_value_heads))
        .metadata("llama.rope.dimension_count", u32_of(c.head_dim))
        .metadata("llama.rope.freq_base", GgufValue::F32(c.rope_theta as f32))
        .metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::F32(c.rms_norm_eps as f32));
    if c.head_dim * c.num_attention_heads != c.hidden_size {
        w.metadata("llama.attention.key_length", u32_of(c.head_dim))
            .metadata("llama.attention.value_length", u32_of(c.head_dim));
    }
    for (key, value) in tok.gguf_metadata().map_err(|e| TrainError::Export(format!("tokenizer metadata: {e}")))? {
        w.metadata(&key, value);
    }
    let mut report = Vec::new();
    for (hf, (shape, bytes)) in hf_tensors(model)? {
        let gname = gguf_name(&hf).ok_or_else(|| TrainError::Export(format!("no GGUF name for tensor `{hf}`")))?;
        let mut values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let heads = if hf.contains("self_attn.q_proj") {
            Some(c.num_attention_heads)
        } else if hf.contains("self_attn.k_proj") {
            Some(c.num_key_value_heads)
        } else {
            None
        };
        if let Some(n) = heads {
            let cols = if shape.len() > 1 { shape[1] } else { 1 };
            values = permute_rows(&values, shape[0], cols, n);
        }
        // Norms (1-D) stay F32; a matrix whose rows are not whole blocks of 32 falls back to F16.
        let row = *shape.last().unwrap_or(&1);
        let dtype = match (shape.len(), quant) {
            (1, _) => GgmlType::F32,
            (_, GgufQuant::Q8_0 | GgufQuant::Q4_1) if !row.is_multiple_of(32) => GgmlType::F16,
            _ => quant.ggml(),
        };
        let data = quantize(dtype, &values).map_err(|e| TrainError::Export(format!("{gname}: {e}")))?;
        report.push(quant_error(&gname, dtype, &values, &data)?);
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        w.tensor(&gname, &dims, dtype, data);
    }
    write_atomic(path, &w.to_bytes())?;
    Ok(report)
}

/// Dequantizes `data` through a one-tensor GGUF file held in memory and compares it with `values`.
fn quant_error(name: &str, dtype: GgmlType, values: &[f32], data: &[u8]) -> Result<TensorQuantError> {
    let mut back = Vec::with_capacity(values.len());
    temper_gguf::dequantize(dtype, data, &mut back).map_err(|e| TrainError::Export(format!("{name}: {e}")))?;
    let (mut max_abs, mut err2, mut val2) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in values.iter().zip(&back) {
        let d = f64::from(a - b);
        max_abs = max_abs.max(d.abs());
        err2 += d * d;
        val2 += f64::from(*a) * f64::from(*a);
    }
    Ok(TensorQuantError {
        name: name.to_string(),
        dtype: format!("{dtype:?}"),
        max_abs,
        relative_rms: if val2 > 0.0 { (err2 / val2).sqrt() } else { err2.sqrt() },
    })
}
