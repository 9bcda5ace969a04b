//! `cargo xtask bench`: runs the criterion benches, reads their estimates, writes `target/bench-report.md`, and
//! with `--vs transformers` runs the same work in PyTorch transformers (a venv it creates) and prints ratios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, status};

/// Benchmark id (criterion `group/function/param`) → tokens per element, for throughput.
const BENCHES: &[(&str, &str, f64)] = &[
    ("cpu/prefill_tokens/1", "prefill_tokens/1", 128.0),
    ("cpu/prefill_tokens/8", "prefill_tokens/8", 8.0 * 128.0),
    ("cpu/decode_tokens/1", "decode_tokens/1", 32.0),
    ("cpu/decode_tokens/8", "decode_tokens/8", 8.0 * 32.0),
    ("cpu/forward_backward_tokens_4x64", "forward_backward_tokens/4x64", 256.0),
];

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Mean time (ns) of one criterion benchmark from `target/criterion/<id>/new/estimates.json`.
fn criterion_mean_ns(target: &Path, id: &str) -> Result<f64> {
    let path = target.join("criterion").join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    v["mean"]["point_estimate"].as_f64().with_context(|| format!("{}: no mean.point_estimate", path.display()))
}

fn smollm2() -> PathBuf {
    let home = std::env::var_os("TEMPER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/temper"));
    home.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn venv_python() -> Result<PathBuf> {
    let home = smollm2().parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let venv = home.join("bench-venv");
    let py = venv.join("bin/python");
    if !py.is_file() {
        eprintln!("creating {} (torch, transformers, gguf from PyPI)", venv.display());
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(&venv);
        status(c)?;
    }
    let check = Command::new(&py).args(["-c", "import torch, transformers, gguf, accelerate"]).status()?;
    if !check.success() {
        let mut c = Command::new(&py);
        c.args(["-m", "pip", "install", "-q", "torch", "transformers", "gguf", "numpy", "accelerate"]);
        status(c)?;
    }
    Ok(py)
}

/// `cargo xtask bench [--vs transformers] [--quick]`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let vs = args.iter().position(|a| a == "--vs").and_then(|i| args.get(i + 1)).cloned();
    if let Some(v) = &vs
        && v != "transformers"
    {
        bail!("--vs {v}: only `transformers` is supported (TRL step benchmarks are not written yet)");
    }
    if !smollm2().is_file() {
        let mut c = cargo();
        c.args(["run", "--quiet", "-p", "temper-cli", "--", "fetch", "smollm2"]);
        status(c)?;
    }
    let mut c = cargo();
    // The dev profile compiles every dependency (burn) at opt-level 3 and shares its build with `cargo test`;
    // the release profile would mean a second full burn build. `--release` opts into it.
    let profile = if args.iter().any(|a| a == "--release") { "release" } else { "dev" };
    c.args(["bench", "--profile", profile, "-p", "temper-models", "--bench", "generation", "--", "--noplot"]);
    if args.iter().any(|a| a == "--quick") {
        c.arg("--quick");
    }
    status(c)?;
    let target = target_dir(root);
    let mut temper: BTreeMap<&str, f64> = BTreeMap::new();
    for (id, key, tokens) in BENCHES {
        let ns = criterion_mean_ns(&target, id)?;
        temper.insert(key, tokens / (ns * 1e-9));
    }
    let baseline: Option<serde_json::Value> = match vs {
        Some(_) => {
            let py = venv_python()?;
            let script = root.join("xtask/bench/transformers_bench.py");
            let out = Command::new(&py).arg(&script).arg(smollm2()).output()?;
            if !out.status.success() {
                bail!("transformers baseline failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default();
            Some(serde_json::from_str(line).with_context(|| format!("parsing baseline output: {line}"))?)
        }
        None => None,
    };
    let mut report = String::from("# Temper benchmarks (SmolLM2-135M, f32, CPU)\n\n");
    report.push_str(&format!(
        "Machine: {} cores. Temper backend: burn flex, cargo profile `{profile}`.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ));
    if baseline.is_some() {
        report.push_str("| benchmark | Temper tokens/s | transformers tokens/s | ratio |\n|---|---:|---:|---:|\n");
    } else {
        report.push_str("| benchmark | Temper tokens/s |\n|---|---:|\n");
    }
    for (_, key, _) in BENCHES {
        let t = temper[key];
        match baseline.as_ref().and_then(|b| b[*key].as_f64()) {
            Some(b) => report.push_str(&format!("| {key} | {t:.1} | {b:.1} | {:.2}x |\n", t / b)),
            None => report.push_str(&format!("| {key} | {t:.1} |\n")),
        }
    }
    if let Some(b) = &baseline {
        report.push_str(&format!("\nBaseline: torch {} with {} threads.\n", b["torch"], b["threads"]));
    }
    let path = target.join("bench-report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("{report}\nwritten to {}", path.display());
    Ok(())
}
