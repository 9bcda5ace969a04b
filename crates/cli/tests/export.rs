//! What `temper export` writes opens in the tools people use, as the base model does: transformers loads the HF
//! folder with its chat template and generates the same greedy tokens as `temper generate`; transformers' GGUF
//! reader does the same with the f32 GGUF; Temper reads both back; and a LoRA run's `final/adapter/` loads with
//! PEFT on the base model and gives the merged `final/` model's logits.
//!
//! The Python side runs in the venv `cargo xtask bench` uses (`$TEMPER_HOME/bench-venv`); it is created and filled
//! from PyPI when missing, and the test fails loudly when that is impossible.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn temper_home() -> PathBuf {
    std::env::var_os("TEMPER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/temper"))
}

/// Whether SmolLM2 is cached; panics when it is not, unless `TEMPER_SKIP_ASSETS=1`.
fn have_smollm2() -> bool {
    if temper_home().join("smollm2/.complete").exists() || temper_home().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").exists() {
        return true;
    }
    assert!(
        std::env::var("TEMPER_SKIP_ASSETS").as_deref() == Ok("1"),
        "SmolLM2 is not cached: run `temper fetch smollm2` (or set TEMPER_SKIP_ASSETS=1 to skip)"
    );
    false
}

/// The venv's python with torch, transformers and gguf importable (installed from PyPI when missing).
fn venv_python() -> PathBuf {
    let venv = temper_home().join("bench-venv");
    let py = venv.join("bin/python");
    if !py.is_file() {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("run python3 -m venv");
        assert!(ok.success(), "could not create the venv {}", venv.display());
    }
    let probe = Command::new(&py).args(["-c", "import torch, transformers, gguf, peft"]).status().expect("run the venv's python");
    if !probe.success() {
        let ok = Command::new(&py)
            .args(["-m", "pip", "install", "-q", "torch", "transformers", "gguf", "numpy", "accelerate", "peft"])
            .status()
            .expect("run pip");
        assert!(ok.success(), "pip could not install torch, transformers, gguf and peft into {}", venv.display());
    }
    py
}

fn temper(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_temper")).args(args).output().expect("run temper");
    assert!(out.status.success(), "temper {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().expect("an id list").iter().map(|x| x.as_u64().expect("an id")).collect()
}

#[test]
fn exported_smollm2_opens_in_transformers_and_its_gguf_reader_with_the_same_chat_and_greedy_tokens() {
    if !have_smollm2() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("temper-export-tools-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let (hf, gguf) = (dir.join("hf"), dir.join("smollm2-f32.gguf"));
    let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    temper(&["export", "--model", "smollm2", "--out", &s(&hf)]);
    temper(&["export", "--model", "smollm2", "--format", "gguf", "--quant", "f32", "--out", &s(&gguf)]);
    for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
        "special_tokens_map.json", "generation_config.json"]
    {
        assert!(hf.join(file).is_file(), "{file} is missing from the export");
    }
    let question = "What is 2 + 3?";
    let max_new = 12;
    let generate = |model: &str| -> Value {
        let text = temper(&["generate", "--model", model, "--chat", "--prompt", question, "--max-new-tokens", &max_new.to_string(), "--json"]);
        serde_json::from_str(&text).expect("generate --json prints JSON")
    };
    let base = generate("smollm2");
    for model in [s(&hf), s(&gguf)] {
        let back = generate(&model);
        assert_eq!(ids(&back["input_ids"]), ids(&base["input_ids"]), "Temper renders the chat of {model} as the base's");
        assert_eq!(ids(&back["output_ids"]), ids(&base["output_ids"]), "Temper's greedy tokens from {model}");
    }
    let messages = serde_json::json!([{"role": "user", "content": question}]).to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_export.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .args([s(&hf), s(&gguf), messages, max_new.to_string()])
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("run check_export.py");
    assert!(out.status.success(), "check_export.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("check_export.py prints JSON");
    let template = std::fs::read_to_string(hf.join("chat_template.jinja")).expect("template");
    for side in ["hf", "gguf"] {
        let r = &report[side];
        assert_eq!(r["chat_template"].as_str(), Some(template.as_str()), "{side}: the base model's template, byte for byte");
        assert_eq!(ids(&r["input_ids"]), ids(&base["input_ids"]), "{side}: apply_chat_template gives Temper's prompt");
        assert_eq!(ids(&r["output_ids"]), ids(&base["output_ids"]), "{side}: transformers' greedy tokens are Temper's");
    }
    assert_eq!(report["hf"]["eos_token_id"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `(name, dtype, relative rms)` of each tensor line `temper export --format gguf` prints.
fn quant_report(stdout: &str) -> Vec<(String, String, f64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[5] == "relative").then(|| (f[0].to_string(), f[1].to_string(), f[7].parse().expect("a number")))
        })
        .collect()
}

#[test]
fn quantized_gguf_exports_match_llama_cpp_quantizers_and_load_back() {
    if !have_smollm2() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("temper-export-quant-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let prompt = ["generate", "--model", "", "--chat", "--prompt", "What is the capital of France?", "--max-new-tokens", "8"];
    for (quant, check) in [("q4_1", 0), ("q8_0", 1)] {
        let out = dir.join(format!("smollm2-{quant}.gguf"));
        let path = out.to_str().expect("UTF-8 path").to_string();
        let report = quant_report(&temper(&["export", "--model", "smollm2", "--format", "gguf", "--quant", quant, "--out", &path]));
        assert_eq!(report.len(), 272, "every tensor of SmolLM2 is reported");
        for (name, dtype, rel) in &report {
            if dtype == "F32" {
                assert_eq!(*rel, 0.0, "{name}: norms stay exact");
            } else if check == 0 && name != "token_embd.weight" {
                // The asset's matrices are Q4_1: re-quantizing their values with llama.cpp's reference rule is exact.
                assert_eq!(*rel, 0.0, "{name}: Q4_1 of Q4_1 values must be exact");
            } else {
                assert!(*rel < if check == 0 { 0.1 } else { 0.01 }, "{name} {dtype}: relative rms {rel}");
            }
        }
        let mut args = prompt;
        args[2] = &path;
        assert!(temper(&args).contains("Paris"), "{quant}: the re-loaded model still answers");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lora_runs_adapter_loads_in_peft_on_the_base_and_equals_the_merged_model() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/trl-parity");
    let dir = std::env::temp_dir().join(format!("temper-export-peft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = dir.join("base");
    std::fs::create_dir_all(&base).expect("tmp dir");
    // The tiny TRL Llama with its word-level tokenizer in one folder, as a user's base model would be.
    for (from, file) in [("model", "config.json"), ("model", "model.safetensors"), ("model", "generation_config.json"),
        ("tokenizer", "tokenizer.json"), ("tokenizer", "tokenizer_config.json"), ("tokenizer", "chat_template.jinja")]
    {
        std::fs::copy(testdata.join(from).join(file), base.join(file)).expect("copy the tiny model");
    }
    let lines: Vec<String> = (0..16)
        .map(|i| serde_json::json!({"prompt": format!("t{} t{}", 10 + i, 40 + i), "completion": format!(" t{} t7", 60 + i)}).to_string())
        .collect();
    std::fs::write(dir.join("train.jsonl"), lines.join("\n") + "\n").expect("data");
    let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    let run = dir.join("run");
    let config = format!(
        "model = {:?}\ntrain_file = {:?}\n[train]\noutput_dir = {:?}\nsteps = 4\nbatch_size = 4\nlearning_rate = 0.01\n\
         save_steps = 0\nlora = {{ rank = 4, alpha = 8.0, targets = [\"q_proj\", \"v_proj\", \"down_proj\"] }}\n",
        s(&base),
        s(&dir.join("train.jsonl")),
        s(&run)
    );
    std::fs::write(dir.join("sft.toml"), config).expect("config");
    temper(&["sft", "--config", &s(&dir.join("sft.toml"))]);
    let (merged, adapter) = (run.join("final"), run.join("final/adapter"));
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(adapter.join("adapter_config.json")).expect("adapter_config.json"))
        .expect("JSON");
    assert_eq!((cfg["peft_type"].as_str(), cfg["r"].as_u64(), cfg["lora_alpha"].as_f64()), (Some("LORA"), Some(4), Some(8.0)));
    let ids = serde_json::json!([1, 5, 9, 12, 40, 41, 7, 3]).to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_peft.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .args([s(&base), s(&merged), s(&adapter), ids])
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("run check_peft.py");
    assert!(out.status.success(), "check_peft.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("check_peft.py prints JSON");
    let (peft, base_diff) = (report["peft_vs_merged"].as_f64().expect("a number"), report["base_vs_merged"].as_f64().expect("a number"));
    assert!(base_diff > 1e-3, "the adapters changed the model (base vs merged {base_diff})");
    assert!(peft < 1e-4, "PEFT on the base gives the merged model's logits: max |diff| {peft}");
    let _ = std::fs::remove_dir_all(&dir);
}
