//! `temper-fuzz all`: runs each target's worker as a child process for its share of time, restarting it after
//! an abnormal end (the input that ended it is saved and counted as a crash), and prints the summary line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{HANG_EXIT, Opts, save_artifact, targets};

/// At most this many worker restarts per target (a target that dies at once every time is reported, not looped).
const MAX_RESTARTS: u32 = 25;

/// One target's totals.
#[derive(Default)]
struct Tally {
    inputs: u64,
    /// Distinct crashes: kind and source location (or last line of the worker's stderr) → one report.
    crashes: BTreeMap<String, String>,
    outcomes: u64,
    pool: u64,
}

/// Runs every chosen target; prints one line per target and the summary; returns the number of crashes.
pub fn all(opts: &Opts) -> Result<u64> {
    let names: Vec<String> = if opts.targets.is_empty() {
        targets::names().into_iter().map(str::to_owned).collect()
    } else {
        opts.targets.clone()
    };
    for n in &names {
        if !targets::names().contains(&n.as_str()) {
            bail!(
                "unknown fuzz target `{n}` (known: {})",
                targets::names().join(", ")
            );
        }
    }
    let (mut inputs, mut crashes) = (0u64, 0u64);
    for name in &names {
        let t = run_target(name, opts)?;
        println!(
            "fuzz: {name}: {} inputs, {} crashes, {} distinct outcomes, pool {}",
            t.inputs,
            t.crashes.len(),
            t.outcomes,
            t.pool
        );
        for c in t.crashes.values() {
            println!("fuzz: {name}: crash: {c}");
        }
        inputs += t.inputs;
        crashes += t.crashes.len() as u64;
    }
    println!(
        "fuzz: {} targets, {inputs} inputs, {crashes} crashes",
        names.len()
    );
    Ok(crashes)
}

fn run_target(name: &str, opts: &Opts) -> Result<Tally> {
    let exe = std::env::current_exe().context("locating temper-fuzz")?;
    let mut tally = Tally::default();
    let end = Instant::now() + Duration::from_secs(opts.seconds);
    let mut restarts = 0;
    let mut seed = opts.seed;
    loop {
        let left = end
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let mut child = Command::new(&exe)
            .args([
                "worker",
                name,
                "--seconds",
                &left.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .args([
                "--timeout",
                &opts.timeout.to_string(),
                "--mem-mb",
                &opts.mem_mb.to_string(),
            ])
            .env("RAYON_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a worker")?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().context("worker stdout")?;
        let out_thread = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().context("worker stderr")?;
        let err_thread = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        // The worker stops itself at its deadline; past that plus the hang timeout it is stuck outside an input.
        let hard_end = Instant::now() + Duration::from_secs(left + opts.timeout + 30);
        let (mut inputs, mut done) = (0u64, false);
        let mut killed = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let f: Vec<&str> = line.split(' ').collect();
                    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                    match f[0] {
                        "progress" => inputs = num(1),
                        "done" => {
                            inputs = num(1);
                            tally.outcomes = tally.outcomes.max(num(3));
                            tally.pool = tally.pool.max(num(4));
                            done = true;
                        }
                        "crash" => {
                            // `crash panic PATH file:line: message` / `crash hang PATH ...`
                            let site = if f.get(1) == Some(&"panic") {
                                f.get(3).copied().unwrap_or("")
                            } else {
                                ""
                            };
                            let key = format!("{} {site}", f.get(1).copied().unwrap_or(""));
                            tally.crashes.entry(key).or_insert_with(|| f[1..].join(" "));
                        }
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > hard_end && !killed => {
                    let _ = child.kill();
                    killed = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let status = child.wait().context("waiting for a worker")?;
        let _ = out_thread.join();
        let stderr = err_thread.join().unwrap_or_default();
        tally.inputs += inputs;
        if status.success() && done {
            return Ok(tally);
        }
        let scratch = std::env::temp_dir().join(format!("temper-fuzz-{pid}-{name}"));
        let input = std::fs::read(scratch.join("current")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&scratch);
        if status.code() != Some(HANG_EXIT) {
            // Out of memory, a stack overflow, a signal: the input is the one the worker was running.
            let kind = if killed {
                "stuck"
            } else if stderr.contains("memory allocation of") {
                "oom"
            } else if stderr.contains("overflowed its stack") {
                "stack-overflow"
            } else {
                "abort"
            };
            let path = save_artifact(name, kind, &input);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            let key: String = format!("{kind} {last}")
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            tally
                .crashes
                .entry(key)
                .or_insert_with(|| format!("{kind} {} ({status}) {last}", path.display()));
        }
        restarts += 1;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if restarts > MAX_RESTARTS || Instant::now() + Duration::from_secs(1) >= end {
            return Ok(tally);
        }
    }
}
