//! `cargo xtask fuzz [--engine stable|libfuzzer] --seconds N [--targets a,b] [--timeout S] [--mem-mb M]`.
//!
//! - `stable` (the default): fuzz/'s own mutation driver `temper-fuzz all` (no coverage feedback; see
//!   fuzz/src/main.rs), which prints the summary line itself.
//! - `libfuzzer`: the coverage-guided libFuzzer targets of fuzz/libfuzzer/ (the same target bodies), built and
//!   run with `cargo fuzz` on the nightly toolchain, each for N seconds from its committed seed corpus
//!   (fuzz/corpus/<target>/, read only) plus a working corpus under the target directory (`<target
//!   dir>/libfuzzer/corpus/<target>/`, kept between runs). The inputs counted are libFuzzer's executed units
//!   (`stat::number_of_executed_units`); a crash, timeout or out-of-memory stops that target's run (libFuzzer
//!   saves the input under fuzz/libfuzzer/artifacts/<target>/) and counts as one.
//!
//! Both end with the line `fuzz: T targets, I inputs, C crashes` and exit with status 1 when C > 0.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// `cargo xtask fuzz ARGS`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut engine = "stable".to_owned();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--engine" {
            engine = it
                .next()
                .context("--engine needs a value (stable, libfuzzer)")?
                .clone();
        } else {
            rest.push(a.clone());
        }
    }
    let code = match engine.as_str() {
        "stable" => stable(root, &rest)?,
        "libfuzzer" => libfuzzer(root, &Opts::parse(&rest)?)?,
        other => bail!("--engine: unknown engine `{other}` (stable, libfuzzer)"),
    };
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// fuzz/'s driver (`temper-fuzz all`), passing the options on; returns its exit status.
fn stable(root: &Path, extra: &[String]) -> Result<i32> {
    let mut c = crate::cargo();
    c.current_dir(root)
        .args([
            "run",
            "--quiet",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--",
            "all",
        ])
        .args(extra);
    let st = c.status().context("running the fuzz driver")?;
    Ok(st.code().unwrap_or(1))
}

/// The libFuzzer engine's options (the stable driver parses its own).
#[derive(Debug, PartialEq)]
struct Opts {
    seconds: u64,
    targets: Vec<String>,
    timeout: u64,
    mem_mb: u64,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            seconds: 60,
            targets: Vec::new(),
            timeout: 10,
            mem_mb: 2048,
        };
        // Every option takes a value: the arguments go in pairs.
        for pair in args.chunks(2) {
            let [flag, v] = pair else {
                bail!("{} needs a value", pair[0]);
            };
            let num = || {
                v.parse::<u64>()
                    .with_context(|| format!("{flag} {v:?}: not a number"))
            };
            match flag.as_str() {
                "--seconds" => o.seconds = num()?,
                "--timeout" => o.timeout = num()?.max(1),
                "--mem-mb" => o.mem_mb = num()?,
                "--targets" => o.targets = v.split(',').map(str::to_owned).collect(),
                other => bail!("unknown option {other} for --engine libfuzzer"),
            }
        }
        Ok(o)
    }
}

/// A cargo command on the nightly toolchain, without the variables the stable cargo running xtask set.
fn nightly_cargo(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root)
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    c
}

/// Builds the libFuzzer targets and runs each; returns the exit status.
fn libfuzzer(root: &Path, opts: &Opts) -> Result<i32> {
    let version = nightly_cargo(root).args(["fuzz", "--version"]).output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => bail!(
            "--engine libfuzzer needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`, \
             `cargo install cargo-fuzz`); `cargo xtask fuzz` without --engine runs the stable driver"
        ),
    }
    let fuzz_dir = root.join("fuzz/libfuzzer");
    let known = target_names(&fuzz_dir)?;
    let names = if opts.targets.is_empty() {
        known.clone()
    } else {
        for t in &opts.targets {
            if !known.contains(t) {
                bail!("unknown fuzz target `{t}` (known: {})", known.join(", "));
            }
        }
        opts.targets.clone()
    };
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("libfuzzer");
    let common = |c: &mut Command| {
        c.arg("--fuzz-dir")
            .arg(&fuzz_dir)
            // No sanitizer (Rust's own checks catch what the targets can do; an address sanitizer would halve
            // the rate), and 16 codegen units (cargo-fuzz's default of 1 takes far longer to build burn).
            .args([
                "--sanitizer",
                "none",
                "--codegen-units",
                "16",
                "--target-dir",
            ])
            .arg(&target_dir);
    };
    let mut build = nightly_cargo(root);
    build.args(["fuzz", "build"]);
    common(&mut build);
    crate::status(build)?;

    let (mut inputs, mut crashes) = (0u64, 0u64);
    for name in &names {
        let work = target_dir.join("corpus").join(name);
        std::fs::create_dir_all(&work).with_context(|| work.display().to_string())?;
        let log_path = target_dir.join(format!("{name}.log"));
        let mut c = nightly_cargo(root);
        c.args(["fuzz", "run", name]);
        common(&mut c);
        c.arg(&work)
            .arg(root.join("fuzz/corpus").join(name))
            .arg("--")
            .arg(format!("-max_total_time={}", opts.seconds))
            .arg(format!("-timeout={}", opts.timeout))
            .arg(format!("-rss_limit_mb={}", opts.mem_mb))
            .arg("-max_len=65536")
            .arg("-print_final_stats=1")
            .env("RAYON_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().context("starting cargo fuzz run")?;
        let stderr = child.stderr.take().context("cargo fuzz stderr")?;
        let mut log =
            std::fs::File::create(&log_path).with_context(|| log_path.display().to_string())?;
        let mut report = Report::default();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            writeln!(log, "{line}").with_context(|| log_path.display().to_string())?;
            report.read(&line);
        }
        let status = child.wait().context("waiting for cargo fuzz run")?;
        if report.setup_failed {
            bail!(
                "fuzz target {name} could not start: {}",
                report.last_error.unwrap_or_default()
            );
        }
        let crashed = report.crash.is_some() || !status.success();
        println!(
            "fuzz: {name}: {} inputs, {} crashes, cov {}, ft {}, corpus {} (log {})",
            report.inputs,
            u64::from(crashed),
            report.cov,
            report.ft,
            report.corpus,
            log_path.display()
        );
        if crashed {
            println!(
                "fuzz: {name}: crash: {} {} ({status})",
                report.crash.as_deref().unwrap_or("abnormal end"),
                report.artifact.as_deref().unwrap_or("(no input saved)")
            );
        }
        inputs += report.inputs;
        crashes += u64::from(crashed);
    }
    println!(
        "fuzz: {} targets, {inputs} inputs, {crashes} crashes",
        names.len()
    );
    Ok(i32::from(crashes > 0))
}

/// The targets of fuzz/libfuzzer/: one `fuzz_targets/<name>.rs` each, sorted.
fn target_names(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}

/// What one libFuzzer run printed on stderr.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// Executed inputs: the final `stat::number_of_executed_units`, else the last `#N` status line.
    inputs: u64,
    /// Coverage (edges), features and corpus size of the last status line.
    cov: u64,
    ft: u64,
    corpus: u64,
    /// `SUMMARY: libFuzzer: <kind>` or a Rust panic's message.
    crash: Option<String>,
    /// Where libFuzzer saved the input that crashed.
    artifact: Option<String>,
    /// The target could not be built at start (a missing asset): not a finding.
    setup_failed: bool,
    last_error: Option<String>,
}

impl Report {
    fn read(&mut self, line: &str) {
        let after = |key: &str| -> Option<u64> {
            let rest = line.split(key).nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        };
        if let Some(n) = after("stat::number_of_executed_units:") {
            self.inputs = n;
        } else if let Some(status) = line.strip_prefix('#') {
            if let Some(n) = status
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
            {
                self.inputs = self.inputs.max(n);
            }
            self.cov = after(" cov: ").unwrap_or(self.cov);
            self.ft = after(" ft: ").unwrap_or(self.ft);
            if let Some(c) = line.split(" corp: ").nth(1) {
                self.corpus = c
                    .split('/')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(self.corpus);
            }
        } else if let Some(kind) = line.strip_prefix("SUMMARY: libFuzzer: ") {
            self.crash = Some(kind.trim().to_owned());
        } else if line.contains("panicked at") && self.crash.is_none() {
            self.crash = Some(format!("panic: {}", line.trim()));
        } else if let Some(p) = line.split("Test unit written to ").nth(1) {
            self.artifact = Some(p.trim().to_owned());
        } else if line.starts_with("temper-fuzz: cannot set up target") {
            self.setup_failed = true;
            self.last_error = Some(line.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> Report {
        let mut r = Report::default();
        text.lines().for_each(|l| r.read(l));
        r
    }

    #[test]
    fn a_clean_run_reports_executed_units_and_the_last_coverage() {
        let r = report(
            "INFO: Seed: 1\n#2\tINITED cov: 310 ft: 400 corp: 12/3Kb exec/s: 0 rss: 40Mb\n\
             #1048576\tpulse  cov: 512 ft: 900 corp: 40/9Kb lim: 4096 exec/s: 9000 rss: 60Mb\n\
             #1200000\tDONE   cov: 530 ft: 950 corp: 44/10Kb lim: 4096 exec/s: 9100 rss: 61Mb\n\
             Done 1200000 runs in 61 second(s)\nstat::number_of_executed_units: 1200123\n\
             stat::average_exec_per_sec:     19674\n",
        );
        assert_eq!(
            r,
            Report {
                inputs: 1_200_123,
                cov: 530,
                ft: 950,
                corpus: 44,
                ..Report::default()
            }
        );
    }

    #[test]
    fn a_crash_names_its_kind_and_input() {
        let r = report(
            "#300\tNEW    cov: 90 ft: 100 corp: 3/1Kb lim: 4 exec/s: 0 rss: 30Mb\n\
             thread '<unnamed>' panicked at crates/tools/src/formats/x.rs:10:5:\nindex out of bounds\n\
             ==1234== ERROR: libFuzzer: deadly signal\n\
             artifact_prefix='/w/fuzz/libfuzzer/artifacts/tool_calls/'; Test unit written to /w/fuzz/libfuzzer/artifacts/tool_calls/crash-ab12\n\
             SUMMARY: libFuzzer: deadly signal\n",
        );
        assert_eq!(r.inputs, 300);
        assert_eq!(r.crash.as_deref(), Some("deadly signal"));
        assert_eq!(
            r.artifact.as_deref(),
            Some("/w/fuzz/libfuzzer/artifacts/tool_calls/crash-ab12")
        );
        assert!(!r.setup_failed);
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let o = Opts::parse(&args("--seconds 90 --targets gguf,verdict --timeout 0")).expect("valid options");
        assert_eq!(
            o,
            Opts {
                seconds: 90,
                targets: vec!["gguf".into(), "verdict".into()],
                timeout: 1,
                mem_mb: 2048
            }
        );
        assert!(Opts::parse(&args("--seconds x")).is_err());
        assert!(Opts::parse(&args("--seed 3")).is_err());
        assert!(Opts::parse(&args("--seconds")).is_err());
    }
}
