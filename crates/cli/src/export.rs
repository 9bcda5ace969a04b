//! `temper export`: a model (asset, GGUF, HF folder, checkpoint or training run's `final/`) as a complete HF folder
//! that transformers opens with its chat template, or as a GGUF file for llama.cpp / Ollama / LM Studio.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use temper_train::{GgufQuant, export_gguf, export_hf, hf_folder_files};

use crate::load;

/// `temper export` flags.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// An asset name, a GGUF file, an HF folder or a checkpoint folder.
    #[arg(long)]
    model: String,
    /// Output folder (`--format hf`) or file (`--format gguf`).
    #[arg(long)]
    out: PathBuf,
    /// `hf`: safetensors + config + tokenizer + chat template + generation config; `gguf`: one llama.cpp file.
    #[arg(long, default_value = "hf", value_parser = ["hf", "gguf"])]
    format: String,
    /// GGUF tensor type: f32 (exact), f16, q8_0 or q4_1.
    #[arg(long, default_value = "f32")]
    quant: String,
}

/// Runs `temper export`.
pub fn export_cmd(args: &ExportArgs) -> Result<()> {
    let quant = GgufQuant::parse(&args.quant)?;
    if args.format == "hf" && args.quant != "f32" {
        bail!("--quant applies to --format gguf only (an HF export holds f32 weights)");
    }
    let device = burn::tensor::Device::flex();
    let loaded = load(&args.model, &device)?;
    match args.format.as_str() {
        "gguf" => {
            let tok = loaded.tokenizer.as_ref().context("a GGUF export needs the model's tokenizer")?;
            let name = args.out.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
            let report = export_gguf(&loaded.model, tok, &args.out, quant, &name)?;
            let worst = report.iter().max_by(|a, b| a.relative_rms.total_cmp(&b.relative_rms));
            for t in &report {
                println!("{:<32} {:<5} max |err| {:.3e}  relative rms {:.3e}", t.name, t.dtype, t.max_abs, t.relative_rms);
            }
            if let Some(w) = worst {
                println!("largest relative error: {} ({:.3e})", w.name, w.relative_rms);
            }
        }
        _ => {
            let files = hf_folder_files(&loaded.model.config().to_hf_json(), loaded.tokenizer.as_ref(), None)?;
            let extra: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            export_hf(&loaded.model, &args.out, &extra)?;
        }
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
