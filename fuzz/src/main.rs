//! `temper-fuzz`: a stable-Rust fuzz driver (no nightly, no sanitizers) for Temper's readers of untrusted input.
//!
//! - `temper-fuzz all --seconds N [--targets a,b] [--timeout S] [--mem-mb M]`: runs every target (or the named
//!   ones) for N seconds each, one after another, each in a worker process of its own, and ends with the line
//!   `fuzz: T targets, I inputs, C crashes` (exit status 1 when C > 0). A crash is a distinct panic (by source
//!   location), a hang (one input running longer than the timeout, default 10 s), an out-of-memory (the live heap
//!   passing the limit, default 2048 MiB) or any other abnormal end of the worker; its input is saved under
//!   `fuzz/artifacts/<target>/`.
//! - `temper-fuzz worker TARGET ...`: one target's loop (what `all` runs).
//! - `temper-fuzz replay TARGET FILE...`: runs the target on saved inputs (artifacts, corpus files) and prints
//!   each outcome; a panic surfaces as a panic.
//! - `temper-fuzz list`: the targets.
//! - `temper-fuzz make-gguf-seeds`: writes fuzz/corpus/gguf/ (src/seeds.rs).
//!
//! Inputs are corpus files (fuzz/corpus/<target>/) mutated byte-wise (src/mutate.rs), plus a few random ones; an
//! input that reaches an outcome not seen before joins the pool that later inputs are mutated from. The target
//! bodies are the crate's library (src/lib.rs, src/targets.rs), shared with the libFuzzer targets of
//! fuzz/libfuzzer/. With `TEMPER_FUZZ_SELF_TEST=1` two more targets exist that hang or run out of memory on
//! purpose, for tests/supervisor.rs.

mod alloc;
mod mutate;
mod seeds;
mod supervise;

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use mutate::{Rng, mutate, random_input};
pub use temper_fuzz::{fuzz_dir, targets};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// The worker's exit status after a hang (the supervisor knows it has been reported).
pub const HANG_EXIT: i32 = 70;

/// Inputs longer than this are cut (every seed is smaller).
const MAX_LEN: usize = 64 * 1024;

/// The most inputs kept in a worker's pool.
const MAX_POOL: usize = 4096;

fn main() {
    if let Err(e) = run() {
        eprintln!("temper-fuzz: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Opts::parse(&args)?;
    match args.first().map(String::as_str) {
        Some("list") => {
            for name in targets::names() {
                println!("{name}");
            }
            Ok(())
        }
        Some("all") => {
            let crashes = supervise::all(&opts)?;
            std::process::exit(i32::from(crashes > 0));
        }
        Some("worker") => worker(
            opts.positional.first().context("worker: which target?")?,
            &opts,
        ),
        Some("replay") => {
            let (target, files) = opts
                .positional
                .split_first()
                .context("replay: which target?")?;
            let scratch = scratch_dir(target)?;
            let mut t = targets::make(target, &scratch)?;
            for f in files {
                let data = std::fs::read(f).with_context(|| f.clone())?;
                println!("{f}: {}", t.run(&data));
            }
            Ok(())
        }
        Some("make-gguf-seeds") => seeds::make_gguf_seeds(&fuzz_dir().join("corpus/gguf")),
        _ => bail!(
            "usage: temper-fuzz all|worker|replay|list|make-gguf-seeds (see the doc comment of fuzz/src/main.rs)"
        ),
    }
}

/// Command-line options shared by the subcommands.
pub struct Opts {
    /// Seconds per target.
    pub seconds: u64,
    /// Only these targets (all when empty).
    pub targets: Vec<String>,
    /// Seconds one input may run before it counts as a hang.
    pub timeout: u64,
    /// Live-heap limit in MiB.
    pub mem_mb: usize,
    /// The random seed of the worker.
    pub seed: u64,
    /// Arguments that are not options.
    pub positional: Vec<String>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            seconds: 60,
            targets: Vec::new(),
            timeout: 10,
            mem_mb: 2048,
            seed: 1,
            positional: Vec::new(),
        };
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
            let number = |name: &str, v: &String| {
                v.parse::<u64>()
                    .with_context(|| format!("{name} {v:?}: not a number"))
            };
            match a.as_str() {
                "--seconds" => o.seconds = number(a, value(a)?)?,
                "--timeout" => o.timeout = number(a, value(a)?)?.max(1),
                "--mem-mb" => o.mem_mb = number(a, value(a)?)? as usize,
                "--seed" => o.seed = number(a, value(a)?)?,
                "--targets" => o.targets = value(a)?.split(',').map(str::to_owned).collect(),
                flag if flag.starts_with("--") => bail!("unknown option {flag}"),
                _ => o.positional.push(a.clone()),
            }
        }
        Ok(o)
    }
}

/// A fresh scratch folder of this process for `target`.
pub fn scratch_dir(target: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("temper-fuzz-{}-{target}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}

/// FNV-1a, for artifact names and outcome sets.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Saves `data` as `fuzz/artifacts/<target>/<kind>-<hash>`, returning the path.
pub fn save_artifact(target: &str, kind: &str, data: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("artifacts").join(target);
    let path = dir.join(format!("{kind}-{:016x}", fnv(data)));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, data)) {
        eprintln!("temper-fuzz: cannot save {}: {e}", path.display());
    }
    path
}

/// The seed corpus of `target`: every file of fuzz/corpus/<target>/, sorted by name.
fn corpus(target: &str) -> Result<Vec<Vec<u8>>> {
    if targets::SELF_TEST_TARGETS.contains(&target) {
        return Ok(targets::SELF_TEST_SEEDS
            .iter()
            .map(|s| s.to_vec())
            .collect());
    }
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: the seed corpus of {target}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| f.display().to_string()))
        .collect()
}

fn worker(target: &str, opts: &Opts) -> Result<()> {
    let scratch = scratch_dir(target)?;
    let seeds = corpus(target)?;
    let dict = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map_or(&[][..], |(_, d)| *d);
    let mut t = targets::make(target, &scratch)?;
    // The input being run, where the supervisor finds it after an abort (out of memory, stack overflow).
    let current_path = scratch.join("current");
    let current =
        std::fs::File::create(&current_path).with_context(|| current_path.display().to_string())?;
    temper_fuzz::record_panics();
    alloc::set_limit(opts.mem_mb << 20);

    let started = Arc::new(AtomicU64::new(0));
    let inputs = Arc::new(AtomicU64::new(0));
    let running: Arc<Mutex<Vec<u8>>> = Arc::default();
    spawn_watchdog(target, opts.timeout, &started, &inputs, &running);

    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(opts.seconds);
    let mut rng = Rng::new(opts.seed ^ fnv(target.as_bytes()));
    let mut pool = seeds.clone();
    let mut outcomes = HashSet::new();
    let mut crash_sites = HashSet::new();
    let mut last_report = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline || (n as usize) < seeds.len() {
        let data = if (n as usize) < seeds.len() {
            seeds[n as usize].clone()
        } else if rng.one_in(20) || pool.is_empty() {
            random_input(&mut rng, MAX_LEN)
        } else {
            let mut d = pool[rng.below(pool.len())].clone();
            mutate(&mut rng, &mut d, &pool, dict, MAX_LEN);
            d
        };
        current
            .set_len(0)
            .and_then(|()| current.write_all_at(&data, 0))
            .context("writing the current input")?;
        if let Ok(mut r) = running.lock() {
            r.clone_from(&data);
        }
        started.store(t0.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run(&data)));
        started.store(0, Ordering::SeqCst);
        n += 1;
        inputs.store(n, Ordering::Relaxed);
        match result {
            Ok(outcome) => {
                if outcomes.insert(fnv(outcome.as_bytes())) {
                    if pool.len() < MAX_POOL {
                        pool.push(data);
                    } else {
                        let i = rng.below(pool.len());
                        pool[i] = data;
                    }
                }
            }
            Err(_) => {
                let what = temper_fuzz::last_panic();
                let site = what.split(": ").next().unwrap_or_default().to_owned();
                let path = save_artifact(target, "crash", &data);
                if crash_sites.insert(site) {
                    println!("crash panic {} {}", path.display(), what.replace('\n', " "));
                }
            }
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            println!("progress {n} {} {}", outcomes.len(), pool.len());
            last_report = Instant::now();
        }
    }
    println!(
        "done {n} {} {} {}",
        crash_sites.len(),
        outcomes.len(),
        pool.len()
    );
    std::io::stdout().flush().ok();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Ends the worker when one input runs longer than `timeout` seconds, after saving it as a `timeout-` artifact.
fn spawn_watchdog(
    target: &str,
    timeout: u64,
    started: &Arc<AtomicU64>,
    inputs: &Arc<AtomicU64>,
    running: &Arc<Mutex<Vec<u8>>>,
) {
    let (target, started, inputs, running) = (
        target.to_owned(),
        started.clone(),
        inputs.clone(),
        running.clone(),
    );
    let t0 = Instant::now();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = started.load(Ordering::SeqCst);
            if s != 0 && (t0.elapsed().as_millis() as u64).saturating_sub(s) > timeout * 1000 {
                let data = running.lock().map(|d| d.clone()).unwrap_or_default();
                let path = save_artifact(&target, "timeout", &data);
                println!(
                    "crash hang {} one input ran longer than {timeout} s",
                    path.display()
                );
                println!("progress {} 0 0", inputs.load(Ordering::Relaxed));
                std::io::stdout().flush().ok();
                std::process::exit(HANG_EXIT);
            }
        }
    });
}
