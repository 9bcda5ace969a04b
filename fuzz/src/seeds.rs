//! `temper-fuzz make-gguf-seeds DIR`: writes the GGUF seed corpus (fuzz/corpus/gguf/), small files made with
//! Temper's own writer: a tokenizer-bearing model cut down from SmolLM2's vocabulary (the first 400 tokens and
//! the merges among them, its chat template, a few tensors of several types), every metadata type, and a
//! version-2 file with a custom alignment.

use std::path::Path;

use anyhow::{Context, Result};
use temper_gguf::{GgmlType, GgufFile, GgufValue, GgufWriter};

/// Tokens kept from SmolLM2's vocabulary.
const VOCAB: usize = 400;

/// Writes the seeds into `dir`.
pub fn make_gguf_seeds(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let src_path = temper_assets::home().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let src = GgufFile::open(&src_path)
        .with_context(|| format!("{} (run `temper fetch smollm2`)", src_path.display()))?;

    let mut w = GgufWriter::new();
    w.metadata("general.architecture", GgufValue::String("llama".into()));
    let tokens = src.get_array("tokenizer.ggml.tokens")?;
    let kept: Vec<GgufValue> = tokens.iter().take(VOCAB).cloned().collect();
    let names: std::collections::HashSet<&str> =
        kept.iter().filter_map(GgufValue::as_str).collect();
    let merges: Vec<GgufValue> = src
        .get_array("tokenizer.ggml.merges")?
        .iter()
        .filter(|m| {
            m.as_str().is_some_and(|m| {
                let mut parts = m.splitn(2, ' ');
                let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                names.contains(a) && names.contains(b) && names.contains(format!("{a}{b}").as_str())
            })
        })
        .cloned()
        .collect();
    let types: Vec<GgufValue> = src
        .get_array("tokenizer.ggml.token_type")?
        .iter()
        .take(VOCAB)
        .cloned()
        .collect();
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.chat_template",
    ] {
        w.metadata(key, GgufValue::String(src.get_str(key)?.to_owned()));
    }
    w.metadata("tokenizer.ggml.tokens", GgufValue::Array(kept))
        .metadata("tokenizer.ggml.merges", GgufValue::Array(merges))
        .metadata("tokenizer.ggml.token_type", GgufValue::Array(types))
        .metadata("tokenizer.ggml.bos_token_id", GgufValue::U32(1))
        .metadata("tokenizer.ggml.eos_token_id", GgufValue::U32(2))
        .tensor_f32("output_norm.weight", &[4], &[1.0, 0.5, -0.25, 2.0])
        .tensor_f32(
            "token_embd.weight",
            &[4, 2],
            &[0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 0.25],
        )
        .tensor("blk.0.attn_q.weight", &[32, 1], GgmlType::Q4_0, vec![7; 18])
        .tensor("blk.0.attn_k.weight", &[32, 1], GgmlType::Q8_0, vec![3; 34])
        .tensor("blk.0.ffn_up.weight", &[256], GgmlType::Q4_K, vec![1; 144])
        .tensor(
            "blk.0.ffn_down.weight",
            &[3],
            GgmlType::F16,
            vec![0, 60, 0, 188, 0, 0],
        );
    w.write(&dir.join("tokenizer_model.gguf"))?;

    let mut w = GgufWriter::new();
    w.metadata("u8", GgufValue::U8(255))
        .metadata("i8", GgufValue::I8(-1))
        .metadata("u16", GgufValue::U16(65535))
        .metadata("i16", GgufValue::I16(-2))
        .metadata("u32", GgufValue::U32(7))
        .metadata("i32", GgufValue::I32(-7))
        .metadata("f32", GgufValue::F32(0.5))
        .metadata("bool", GgufValue::Bool(true))
        .metadata("string", GgufValue::String("héllo".into()))
        .metadata("u64", GgufValue::U64(1 << 40))
        .metadata("i64", GgufValue::I64(-1))
        .metadata("f64", GgufValue::F64(2.5))
        .metadata(
            "nested",
            GgufValue::Array(vec![
                GgufValue::Array(vec![GgufValue::U8(1)]),
                GgufValue::Array(vec![]),
            ]),
        );
    w.write(&dir.join("every_type.gguf"))?;

    let mut w = GgufWriter::new();
    w.version(2)
        .metadata("general.alignment", GgufValue::U32(64))
        .tensor_f32("a", &[2, 2], &[1.0, 2.0, 3.0, 4.0])
        .tensor_f32("b", &[], &[9.0]);
    w.write(&dir.join("v2_aligned.gguf"))?;
    Ok(())
}
