//! Weight loading: HF `config.json` + safetensors (single file or sharded) and GGUF (dequantized to f32).
//!
//! Both sources are read through [`WeightSource`], keyed by HF tensor names; the GGUF source maps names and
//! undoes llama.cpp's Q/K row permutation so that the same model code serves both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Linear, RmsNorm, RmsNormConfig};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::config::{Architecture, LlamaConfig};
use crate::error::{ModelError, Result};
use crate::llama::{Attention, DecoderLayer, Llama, Mlp};

/// A dense f32 tensor on the host: values in row-major order and the shape.
pub type HostTensor = (Vec<f32>, Vec<usize>);

/// Where weights come from, by HF tensor name (`model.layers.0.self_attn.q_proj.weight`).
pub trait WeightSource {
    /// The tensor, or `Ok(None)` when the checkpoint does not have it.
    fn get(&self, hf_name: &str) -> Result<Option<HostTensor>>;
    /// The file, for error messages.
    fn path(&self) -> &Path;
}

/// HF safetensors weights: `model.safetensors`, or shards listed in `model.safetensors.index.json`.
pub struct HfWeights {
    path: PathBuf,
    files: Vec<(PathBuf, memmap2::Mmap)>,
    /// tensor name -> index into `files`
    index: BTreeMap<String, usize>,
}

impl HfWeights {
    /// Opens the safetensors file(s) of an HF model folder, or one `.safetensors` file.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| ModelError::Io { path: p, source }
        };
        let paths: Vec<PathBuf> = if path.is_file() {
            vec![path.to_path_buf()]
        } else if path.join("model.safetensors").is_file() {
            vec![path.join("model.safetensors")]
        } else if path.join("model.safetensors.index.json").is_file() {
            let idx_path = path.join("model.safetensors.index.json");
            let text = std::fs::read_to_string(&idx_path).map_err(io(&idx_path))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: idx_path.clone(),
                message: e.to_string(),
            })?;
            let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| ModelError::Config {
                path: idx_path.clone(),
                message: "missing object `weight_map`".into(),
            })?;
            let mut shards: Vec<PathBuf> = map
                .values()
                .filter_map(|f| f.as_str())
                .map(|f| path.join(f))
                .collect();
            shards.sort();
            shards.dedup();
            shards
        } else {
            return Err(ModelError::Layout {
                path: path.to_path_buf(),
                message: "no model.safetensors or model.safetensors.index.json here".into(),
            });
        };
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (i, p) in paths.iter().enumerate() {
            let file = std::fs::File::open(p).map_err(io(p))?;
            // SAFETY-free: memmap2's map is `unsafe`; we read the file into memory instead when mapping is denied.
            let mmap = map_file(&file, p)?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| ModelError::Weight {
                path: p.clone(),
                name: String::new(),
                message: format!("not a valid safetensors file: {e}"),
            })?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            files.push((p.clone(), mmap));
        }
        Ok(Self {
            path: path.to_path_buf(),
            files,
            index,
        })
    }

    /// Names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

#[allow(unsafe_code)]
fn map_file(file: &std::fs::File, path: &Path) -> Result<memmap2::Mmap> {
    // SAFETY: the checkpoint is opened read-only and not modified while mapped; a concurrent truncation by
    // another process is the same hazard every safetensors/GGUF reader accepts.
    unsafe { memmap2::Mmap::map(file) }.map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

impl WeightSource for HfWeights {
    fn get(&self, name: &str) -> Result<Option<HostTensor>> {
        let Some(&i) = self.index.get(name) else {
            return Ok(None);
        };
        let (path, mmap) = &self.files[i];
        let err = |message: String| ModelError::Weight {
            path: path.clone(),
            name: name.to_string(),
            message,
        };
        let st = SafeTensors::deserialize(mmap).map_err(|e| err(e.to_string()))?;
        let view = st.tensor(name).map_err(|e| err(e.to_string()))?;
        let values = to_f32(view.dtype(), view.data())
            .ok_or_else(|| err(format!("dtype {:?} is not supported (F32, F16, BF16)", view.dtype())))?;
        Ok(Some((values, view.shape().to_vec())))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// GGUF weights, dequantized to f32 on demand, exposed under HF names.
pub struct GgufWeights<'a> {
    gguf: &'a temper_gguf::GgufFile,
    path: PathBuf,
    config: LlamaConfig,
}

impl<'a> GgufWeights<'a> {
    /// Wraps an open GGUF file whose hyper-parameters are `config`.
    pub fn new(gguf: &'a temper_gguf::GgufFile, path: &Path, config: LlamaConfig) -> Self {
        Self {
            gguf,
            path: path.to_path_buf(),
            config,
        }
    }
}

/// Maps an HF tensor name of a Llama-family model to its llama.cpp GGUF name (`model.layers.3.mlp.up_proj.weight`
/// → `blk.3.ffn_up.weight`).
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let (module, kind) = tail.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// Moves Q/K rows between HF's order and llama.cpp's: within each head of `hd` rows, HF row `s·hd/2 + j` is GGUF
/// row `2j + s`. `to_gguf` applies llama.cpp's `permute`; otherwise its inverse.
fn reorder_rows(values: &[f32], rows: usize, cols: usize, n_heads: usize, to_gguf: bool) -> Vec<f32> {
    let hd = rows / n_heads;
    let half = hd / 2;
    let mut out = vec![0.0f32; values.len()];
    for h in 0..n_heads {
        for j in 0..half {
            for s in 0..2 {
                let (hf, gguf) = (h * hd + s * half + j, h * hd + 2 * j + s);
                let (src, dst) = if to_gguf { (hf, gguf) } else { (gguf, hf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Undoes llama.cpp's `permute`: GGUF row `h·hd + 2j + s` holds HF row `h·hd + s·hd/2 + j`.
fn unpermute_rows(values: &[f32], rows: usize, cols: usize, n_heads: usize) -> Vec<f32> {
    reorder_rows(values, rows, cols, n_heads, false)
}

/// llama.cpp's `permute`, which its HF → GGUF converter applies to Llama's Q and K rows: HF row
/// `h·hd + s·hd/2 + j` goes to GGUF row `h·hd + 2j + s`. The inverse of the loader's un-permutation.
pub fn permute_rows(values: &[f32], rows: usize, cols: usize, n_heads: usize) -> Vec<f32> {
    reorder_rows(values, rows, cols, n_heads, true)
}

impl WeightSource for GgufWeights<'_> {
    fn get(&self, hf_name: &str) -> Result<Option<HostTensor>> {
        let Some(name) = gguf_name(hf_name) else {
            return Ok(None);
        };
        if self.gguf.tensor(&name).is_none() {
            return Ok(None);
        }
        let (values, shape) = self.gguf.tensor_f32(&name)?;
        let heads = if hf_name.contains("q_proj") {
            Some(self.config.num_attention_heads)
        } else if hf_name.contains("k_proj") {
            Some(self.config.num_key_value_heads)
        } else {
            None
        };
        match heads {
            Some(n) if self.config.architecture == Architecture::Llama => {
                let rows = shape[0];
                let cols = if shape.len() > 1 { shape[1] } else { 1 };
                Ok(Some((unpermute_rows(&values, rows, cols, n), shape)))
            }
            _ => Ok(Some((values, shape))),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

struct Builder<'a> {
    src: &'a dyn WeightSource,
    device: &'a Device,
}

impl Builder<'_> {
    fn tensor(&self, name: &str, expect: &[usize]) -> Result<Vec<f32>> {
        let (values, shape) = self.src.get(name)?.ok_or_else(|| ModelError::Weight {
            path: self.src.path().to_path_buf(),
            name: name.to_string(),
            message: "missing".into(),
        })?;
        if shape != expect {
            return Err(ModelError::Weight {
                path: self.src.path().to_path_buf(),
                name: name.to_string(),
                message: format!("shape {shape:?}, expected {expect:?}"),
            });
        }
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Weight {
                path: self.src.path().to_path_buf(),
                name: name.to_string(),
                message: format!("non-finite value at flat index {bad}"),
            });
        }
        Ok(values)
    }

    /// HF `[out, in]` weight (+ optional bias) -> burn `Linear` with `[in, out]` weight.
    fn linear(&self, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear> {
        let w = self.tensor(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut t = vec![0.0f32; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w[o * d_in + i];
            }
        }
        let weight = Param::from_tensor(Tensor::from_data(TensorData::new(t, [d_in, d_out]), self.device));
        let bias = if bias {
            let b = self.tensor(&format!("{prefix}.bias"), &[d_out])?;
            Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), self.device)))
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn norm(&self, name: &str, d: usize, eps: f64) -> Result<RmsNorm> {
        let mut n = RmsNormConfig::new(d).with_epsilon(eps).init(self.device);
        let g = self.tensor(name, &[d])?;
        n.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(g, [d]), self.device));
        Ok(n)
    }
}

/// Builds a [`Llama`] from any weight source.
pub fn build_llama(config: &LlamaConfig, src: &dyn WeightSource, device: &Device) -> Result<Llama> {
    let b = Builder { src, device };
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let (nh, nkv, hd) = (config.num_attention_heads, config.num_key_value_heads, config.head_dim);
    let eps = config.rms_norm_eps;
    let embed = b.tensor("model.embed_tokens.weight", &[config.vocab_size, h])?;
    let embed = Llama::embedding_from(Tensor::from_data(TensorData::new(embed, [config.vocab_size, h]), device));
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let attn = Attention::from_linears(
            b.linear(&format!("{p}.self_attn.q_proj"), h, nh * hd, config.attention_bias)?,
            b.linear(&format!("{p}.self_attn.k_proj"), h, nkv * hd, config.attention_bias)?,
            b.linear(&format!("{p}.self_attn.v_proj"), h, nkv * hd, config.attention_bias)?,
            b.linear(&format!("{p}.self_attn.o_proj"), nh * hd, h, false)?,
            config,
        );
        layers.push(DecoderLayer {
            input_layernorm: b.norm(&format!("{p}.input_layernorm.weight"), h, eps)?,
            self_attn: attn,
            post_attention_layernorm: b.norm(&format!("{p}.post_attention_layernorm.weight"), h, eps)?,
            mlp: Mlp {
                gate_proj: b.linear(&format!("{p}.mlp.gate_proj"), h, i, false)?,
                up_proj: b.linear(&format!("{p}.mlp.up_proj"), h, i, false)?,
                down_proj: b.linear(&format!("{p}.mlp.down_proj"), i, h, false)?,
            },
        });
    }
    let norm = b.norm("model.norm.weight", h, eps)?;
    let lm_head = if config.tie_word_embeddings {
        None
    } else {
        Some(b.linear("lm_head", h, config.vocab_size, false)?)
    };
    Ok(Llama::from_parts(config.clone(), embed, layers, norm, lm_head))
}

/// Loads an HF model folder (`config.json` + safetensors).
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<Llama> {
    let config = LlamaConfig::from_hf_json(&dir.join("config.json"))?;
    let weights = HfWeights::open(dir)?;
    build_llama(&config, &weights, device)
}

/// Loads a GGUF file (every tensor dequantized to f32).
pub fn load_gguf(gguf: &temper_gguf::GgufFile, path: &Path, device: &Device) -> Result<Llama> {
    let config = LlamaConfig::from_gguf(gguf, path)?;
    let weights = GgufWeights::new(gguf, path, config.clone());
    build_llama(&config, &weights, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hf() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"),
            ("model.layers.12.self_attn.k_proj.bias", "blk.12.attn_k.bias"),
            ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"),
            ("model.layers.0.post_attention_layernorm.weight", "blk.0.ffn_norm.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        for (hf, g) in cases {
            assert_eq!(gguf_name(hf).as_deref(), Some(g), "{hf}");
        }
        assert_eq!(gguf_name("score.weight"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (n_heads, hd, cols) = (2usize, 4usize, 3usize);
        let rows = n_heads * hd;
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0.0; hf.len()];
        for h in 0..n_heads {
            for s in 0..2 {
                for j in 0..hd / 2 {
                    let src = h * hd + s * (hd / 2) + j; // (h, s, j)
                    let dst = h * hd + j * 2 + s; // (h, j, s)
                    permuted[dst * cols..(dst + 1) * cols].copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_ne!(permuted, hf);
        assert_eq!(unpermute_rows(&permuted, rows, cols, n_heads), hf);
        assert_eq!(permute_rows(&hf, rows, cols, n_heads), permuted, "permute_rows is llama.cpp's permute");
    }
}
