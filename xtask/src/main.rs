//! `cargo xtask`: the project's automation — `test` (fetch assets, run every test), `tidy`, `bench`, `chaos`,
//! `fuzz`.

mod bench;
mod chaos;
mod fuzz;
mod plot;
mod tidy;
mod vs_trl;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  help                 print this message
  test                 fetch the assets the tests need, then run every test of the workspace
  tidy                 check the source tree's conventions (also runs as a test)
  bench [--vs transformers|trl|transformers,trl] [--only minilm] [--quick] [--release]
        [--reps N] [--steps N]
                       run the criterion benchmarks, write target/bench-report.md;
                       --vs runs the same work in transformers / TRL (a venv it creates),
                       prints the ratios (--vs trl also updates its section of docs/benchmarks.md);
                       --vs trl runs the SFT, DPO and GRPO step benches in processes of their own,
                       Temper and TRL interleaved, --reps repetitions (default 3) of 1 untimed and
                       --steps timed steps (default 2) per process, with peak RSS;
                       --only minilm: MiniLM encoding, interleaved with sentence-transformers
  fuzz [--engine stable|libfuzzer] [--seconds N] [--targets a,b] [--timeout S] [--mem-mb M]
                       build fuzz/ (a workspace of its own) and run every fuzz target for N seconds
                       each (default 60); ends with `fuzz: T targets, I inputs, C crashes`, exit 1
                       when C > 0; crashing inputs are saved in fuzz/artifacts/<target>/;
                       --engine libfuzzer: coverage-guided, with cargo-fuzz on nightly (fuzz/libfuzzer/)
  plot METRICS.jsonl --keys a,b --out FILE.svg [--title T]
                       chart metrics of a training run as SVG
  chaos [--kills N] [--seed S] [--algos sft,dpo,grpo,rloo,ppo,cem,rm,sft-lora|all]
                       SIGKILL training runs of the tiny model at random moments, restart them, check they end
                       equal to an uninterrupted run; then a full disk during checkpointing";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("tidy") => {
            let problems = tidy::check(&root())?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                bail!(
                    "tidy found {} problem(s):\n{}",
                    problems.len(),
                    problems.join("\n")
                )
            }
        }
        Some("bench") => bench::run(&root(), &args[1..]),
        Some("plot") => plot::run(&args[1..]),
        Some("chaos") => chaos::run(&root(), &args[1..]),
        Some("fuzz") => fuzz::run(&root(), &args[1..]),
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// The workspace root: the parent of `xtask/`. Taken from `CARGO_MANIFEST_DIR` as `cargo run` (the `xtask` alias)
/// sets it for this run; the value compiled in is only the fallback, because cargo reuses a built `xtask` for
/// another checkout that shares the target directory (as CI's cached one is), and would send it to the wrong tree.
pub(crate) fn root() -> PathBuf {
    let xtask = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    xtask
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub(crate) fn status(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("running {shown}"))?;
    if !st.success() {
        bail!("{shown} failed with {st}");
    }
    Ok(())
}

/// Assets the test suite reads (real model, real data).
const TEST_ASSETS: &[&str] = &["smollm2", "minilm"];

fn test(extra: &[String]) -> Result<()> {
    for asset in TEST_ASSETS {
        let mut c = cargo();
        c.args(["run", "--quiet", "-p", "temper-cli", "--", "fetch", asset]);
        status(c)?;
    }
    let mut c = cargo();
    c.args(["test", "--workspace"]).args(extra);
    status(c)
}
