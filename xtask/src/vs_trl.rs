//! `cargo xtask bench --vs trl`: every step bench (SFT, DPO, GRPO) runs in a process of its own on both sides,
//! interleaved Temper, TRL, Temper, TRL, … over the repetitions, so that a slow phase of a shared machine hits
//! both sides. Each process prints one JSON line: its timed steps (after its warm-up steps) and its peak RSS,
//! `VmHWM` of `/proc/self/status` read by the process itself at its end (the same measure on both sides). The
//! runner notes the load average before each process and the highest 1-minute load average sampled every second
//! while it ran.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::bench::{parse_baseline, parse_loadavg};

/// The step benches: `--process`/`--only` name, report key, tokens per step (0: reported per step only).
pub const STEPS: &[(&str, &str, f64)] = &[
    ("sft", "sft_step/4x128", 512.0),
    ("dpo", "dpo_step/2x2x128", 512.0),
    ("grpo", "grpo_step/2x4x32", 0.0),
];

/// The GRPO prompts both sides read (`xtask/bench/grpo_prompts.jsonl`, one `{"prompt": …}` a line).
pub const GRPO_PROMPTS: &str = "xtask/bench/grpo_prompts.jsonl";

/// What one bench process measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Median of the timed steps' wall seconds.
    pub seconds: f64,
    /// Median generation seconds per step (GRPO only).
    pub generate: Option<f64>,
    /// Median training seconds per step: the step minus generation (GRPO only).
    pub train: Option<f64>,
    /// Mean completion length (GRPO only).
    pub completion_length: Option<f64>,
    /// Peak RSS of the process in MiB.
    pub peak_mib: f64,
    /// 1-minute load average just before the process started.
    pub load_before: f64,
    /// Highest 1-minute load average sampled while it ran.
    pub load_during: f64,
}

/// The median of `v` (mean of the middle two for an even length); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// The numbers of a process's JSON line `key`, required.
fn numbers(v: &serde_json::Value, key: &str) -> Result<Vec<f64>> {
    v[key]
        .as_array()
        .with_context(|| format!("no `{key}` array"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .with_context(|| format!("`{key}` holds a non-number: {x}"))
        })
        .collect()
}

/// A bench process's JSON line (both sides print the same fields) with the loads the runner noted.
pub fn parse_measured(
    v: &serde_json::Value,
    load_before: f64,
    load_during: f64,
) -> Result<Measured> {
    let seconds = numbers(v, "seconds")?;
    let seconds = median(&seconds).context("`seconds` is empty: no step was timed")?;
    let optional = |key: &str| -> Result<Option<f64>> {
        if v.get(key).is_none() {
            return Ok(None);
        }
        Ok(median(&numbers(v, key)?))
    };
    let generate = optional("generate_seconds")?;
    let peak_kib = v["vm_hwm_kib"]
        .as_f64()
        .context("no `vm_hwm_kib` (peak RSS)")?;
    Ok(Measured {
        seconds,
        generate,
        train: generate.map(|g| seconds - g),
        completion_length: optional("completion_mean_length")?,
        peak_mib: peak_kib / 1024.0,
        load_before,
        load_during,
    })
}

fn load_now() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .map_or(f64::NAN, |l| l[0])
}

/// Runs `cmd` (its stderr passed through), samples the load every second while it runs, and returns what its last
/// stdout line measured.
fn run_process(mut cmd: Command, what: &str) -> Result<Measured> {
    let before = load_now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let mut stdout = child.stdout.take().context("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let mut during = before;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        std::thread::sleep(Duration::from_secs(1));
        during = during.max(load_now());
    };
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("{what}: the stdout reader panicked"))??;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    let v = parse_baseline(&out).with_context(|| what.to_string())?;
    parse_measured(&v, before, during).with_context(|| format!("{what}'s JSON line"))
}

/// Every repetition of one bench on both sides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Temper's runs, in order.
    pub temper: Vec<Measured>,
    /// TRL's runs, in order.
    pub trl: Vec<Measured>,
}

/// How the runs were made (for the section's text).
pub struct Plan<'a> {
    /// Repetitions (each: one Temper process, then one TRL process, per bench).
    pub reps: usize,
    /// Timed steps per process.
    pub steps: usize,
    /// Untimed first steps per process.
    pub warmup: usize,
    /// The bench venv's python.
    pub python: &'a Path,
    /// The SmolLM2 GGUF.
    pub gguf: &'a Path,
    /// The cargo profile of the Temper side.
    pub profile: &'a str,
}

/// Builds the Temper bench binary, then runs every step bench `plan.reps` times on each side, interleaved.
pub fn run(root: &Path, plan: &Plan<'_>) -> Result<Vec<Rows>> {
    let cargo_bench = || {
        let mut c = crate::cargo();
        c.args([
            "bench",
            "--quiet",
            "--profile",
            plan.profile,
            "-p",
            "temper-train",
            "--bench",
            "steps",
        ]);
        c
    };
    let mut build = cargo_bench();
    build.arg("--no-run");
    crate::status(build)?;
    let prompts = root.join(GRPO_PROMPTS);
    let (steps, warmup) = (plan.steps.to_string(), plan.warmup.to_string());
    let mut rows = vec![Rows::default(); STEPS.len()];
    for rep in 0..plan.reps {
        for (i, (name, key, _)) in STEPS.iter().enumerate() {
            eprintln!("repetition {}/{}: {key}, Temper", rep + 1, plan.reps);
            let mut temper = cargo_bench();
            temper.args([
                "--",
                "--process",
                name,
                "--steps",
                &steps,
                "--warmup",
                &warmup,
            ]);
            let mut trl = Command::new(plan.python);
            trl.arg(root.join("xtask/bench/trl_bench.py"))
                .arg(plan.gguf);
            trl.args([
                "--only",
                name,
                "--steps",
                &steps,
                "--warmup",
                &warmup,
                "--threads",
                "2",
            ]);
            if *name == "grpo" {
                temper.arg("--prompts").arg(&prompts);
                trl.arg("--prompts").arg(&prompts);
            }
            rows[i]
                .temper
                .push(run_process(temper, &format!("Temper {key}"))?);
            eprintln!("repetition {}/{}: {key}, TRL", rep + 1, plan.reps);
            rows[i]
                .trl
                .push(run_process(trl, &format!("trl_bench.py --only {name}"))?);
            eprintln!(
                "so far (repetition {}/{}):\n{}",
                rep + 1,
                plan.reps,
                table(&rows)
            );
        }
    }
    Ok(rows)
}

/// `median (min–max)` of the per-repetition ratios `trl / temper` of `f` (> 1: Temper is faster).
fn ratio_cell(rows: &Rows, f: impl Fn(&Measured) -> Option<f64>) -> String {
    let ratios: Vec<f64> = rows
        .temper
        .iter()
        .zip(&rows.trl)
        .filter_map(|(t, b)| Some(f(b)? / f(t)?))
        .collect();
    match median(&ratios) {
        Some(m) => {
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{m:.2}x ({lo:.2}–{hi:.2})")
        }
        None => "-".into(),
    }
}

/// `lo–hi` of `f` over runs, with `digits` decimals.
fn range(runs: &[Measured], f: impl Fn(&Measured) -> f64, digits: usize) -> String {
    let v: Vec<f64> = runs.iter().map(f).filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return "-".into();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$}–{hi:.digits$}")
}

/// Median over runs of `f`, formatted, or `-`.
fn med(runs: &[Measured], f: impl Fn(&Measured) -> Option<f64>, digits: usize) -> String {
    let v: Vec<f64> = runs.iter().filter_map(f).collect();
    median(&v).map_or("-".into(), |m| format!("{m:.digits$}"))
}

/// One optional column of a run (GRPO's generation or training seconds).
type Part = fn(&Measured) -> Option<f64>;

/// The table rows of every bench: step time, ratio (median and spread), peak RSS, loads; GRPO's generation and
/// training as rows of their own.
pub fn table(rows: &[Rows]) -> String {
    let mut out = String::from(
        "| step | Temper s/step | TRL s/step | ratio: median (min–max) | peak RSS Temper MiB | TRL MiB | load \
         before / during: Temper | TRL |\n|---|---:|---:|---:|---:|---:|---|---|\n",
    );
    for ((_, key, _), r) in STEPS.iter().zip(rows) {
        let loads = |runs: &[Measured]| {
            format!(
                "{} / {}",
                range(runs, |m| m.load_before, 1),
                range(runs, |m| m.load_during, 1)
            )
        };
        let peak = |runs: &[Measured]| med(runs, |m| Some(m.peak_mib), 0);
        out.push_str(&format!(
            "| {key} | {} | {} | {} | {} | {} | {} | {} |\n",
            med(&r.temper, |m| Some(m.seconds), 2),
            med(&r.trl, |m| Some(m.seconds), 2),
            ratio_cell(r, |m| Some(m.seconds)),
            peak(&r.temper),
            peak(&r.trl),
            loads(&r.temper),
            loads(&r.trl),
        ));
        let parts: [(&str, Part); 2] = [("generate", |m| m.generate), ("train", |m| m.train)];
        for (part, f) in parts {
            if r.temper.iter().chain(&r.trl).any(|m| f(m).is_some()) {
                out.push_str(&format!(
                    "| {key} {part} | {} | {} | {} | | | | |\n",
                    med(&r.temper, f, 2),
                    med(&r.trl, f, 2),
                    ratio_cell(r, f),
                ));
            }
        }
        if r.temper
            .iter()
            .chain(&r.trl)
            .any(|m| m.completion_length.is_some())
        {
            out.push_str(&format!(
                "| {key} mean completion tokens | {} | {} | | | | | |\n",
                med(&r.temper, |m| m.completion_length, 1),
                med(&r.trl, |m| m.completion_length, 1),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(seconds: f64, peak_mib: f64) -> Measured {
        Measured {
            seconds,
            generate: None,
            train: None,
            completion_length: None,
            peak_mib,
            load_before: 2.0,
            load_during: 4.0,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_process_line_is_read_with_its_peak_rss_and_grpo_parts() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"bench": "sft_step/4x128", "warmup": 1, "vm_hwm_kib": 2097152, "seconds": [3.0, 2.0, 4.0]}"#,
        )
        .expect("json");
        let m = parse_measured(&v, 1.5, 3.25).expect("measured");
        assert_eq!(
            m,
            Measured {
                load_before: 1.5,
                load_during: 3.25,
                ..measured(3.0, 2048.0)
            }
        );
        let grpo: serde_json::Value = serde_json::from_str(
            r#"{"vm_hwm_kib": 1024, "seconds": [10.0, 12.0], "generate_seconds": [6.0, 7.0],
                "completion_mean_length": [30.0, 32.0]}"#,
        )
        .expect("json");
        let g = parse_measured(&grpo, 0.0, 0.0).expect("grpo");
        assert_eq!(
            (g.seconds, g.generate, g.train, g.completion_length),
            (11.0, Some(6.5), Some(4.5), Some(31.0))
        );
        for bad in [
            r#"{"vm_hwm_kib": 1, "seconds": []}"#,
            r#"{"vm_hwm_kib": 1}"#,
            r#"{"seconds": [1.0]}"#,
            r#"{"vm_hwm_kib": 1, "seconds": ["x"]}"#,
            r#"{"vm_hwm_kib": 1, "seconds": [1.0], "generate_seconds": "x"}"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(bad).expect("json");
            assert!(parse_measured(&v, 0.0, 0.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_gives_the_ratio_median_and_spread_peak_rss_and_loads() {
        // Temper 2 s/step in every repetition; TRL 3, 4 and 5 s: ratios 1.5, 2.0, 2.5.
        let sft = Rows {
            temper: vec![
                measured(2.0, 1000.0),
                measured(2.0, 1010.0),
                measured(2.0, 1020.0),
            ],
            trl: vec![
                measured(3.0, 1500.0),
                measured(4.0, 1400.0),
                measured(5.0, 1600.0),
            ],
        };
        let mut grpo = sft.clone();
        for (i, m) in grpo
            .temper
            .iter_mut()
            .chain(grpo.trl.iter_mut())
            .enumerate()
        {
            m.generate = Some(m.seconds / 2.0);
            m.train = Some(m.seconds / 2.0);
            m.completion_length = Some(30.0 + i as f64);
        }
        let t = table(&[sft, Rows::default(), grpo]);
        assert!(
            t.contains("| sft_step/4x128 | 2.00 | 4.00 | 2.00x (1.50–2.50) | 1010 | 1500 | 2.0–2.0 / 4.0–4.0 | 2.0–2.0 / 4.0–4.0 |\n"),
            "{t}"
        );
        assert!(t.contains("| dpo_step/2x2x128 | - | - | - |"), "{t}");
        assert!(
            t.contains("| grpo_step/2x4x32 generate | 1.00 | 2.00 | 2.00x (1.50–2.50) |"),
            "{t}"
        );
        assert!(
            t.contains("| grpo_step/2x4x32 train | 1.00 | 2.00 | 2.00x (1.50–2.50) |"),
            "{t}"
        );
        assert!(
            t.contains("| grpo_step/2x4x32 mean completion tokens | 31.0 | 34.0 |"),
            "{t}"
        );
        assert!(!t.contains("sft_step/4x128 generate"), "{t}");
    }
}
