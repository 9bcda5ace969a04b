//! `cargo xtask chaos`: crash safety, measured. Runs training commands on the tiny test model (a few steps, a
//! checkpoint every 2; `temper sft|dpo|grpo` by default, also `rloo`, `ppo`, `cem`, `rm` and SFT with LoRA with
//! `--algos`, see chaos/algo.rs), kills the process with SIGKILL at seeded random moments — anywhere, inside a
//! checkpoint write, inside a `metrics.jsonl` write (the last two held open by `TEMPER_CHAOS_PAUSE`, see
//! `crates/train/src/faults.rs`) — restarts the same command until it completes, and compares the finished run
//! with an uninterrupted one: the weights, adapters, value head and optimizer state in `final/` and the last
//! checkpoint and its `trainer_state.json` byte for byte ([`compared_files`]), `metrics.jsonl` line for line
//! without its wall-clock fields ([`WALL_CLOCK`]). Then a full disk during checkpointing (a small tmpfs when
//! `mount` works, else an injected write failure). Ends with `chaos: K kills, R resumed runs equal to the
//! uninterrupted run, L lost`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

mod algo;

use algo::Algo;

/// Optimizer steps of every run.
pub(crate) const STEPS: usize = 6;
/// A checkpoint every this many steps: the most a crash may cost.
pub(crate) const SAVE_STEPS: usize = 2;
/// Metrics fields that hold wall-clock time, left out of the comparison (keys equal to or starting with these).
const WALL_CLOCK: &[&str] = &["seconds", "timing/"];
/// How long `TEMPER_CHAOS_PAUSE` holds a checkpoint or metrics write open.
const PAUSE_MS: u64 = 150;
/// The most kills one run takes before it is left to finish.
const KILLS_PER_RUN: usize = 4;

pub(crate) fn toml_str(p: &Path) -> String {
    Value::String(p.display().to_string()).to_string()
}

/// splitmix64: the seeded source of every kill time and phase.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Options {
    kills: usize,
    seed: u64,
    algos: Vec<Algo>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        kills: 36,
        seed: 1,
        algos: Algo::DEFAULT.to_vec(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kills" => o.kills = value()?.parse().context("--kills: a number")?,
            "--seed" => o.seed = value()?.parse().context("--seed: a number")?,
            "--algos" => o.algos = Algo::parse_list(value()?)?,
            other => bail!(
                "chaos: unknown argument `{other}` (--kills N, --seed S, --algos sft,dpo,grpo,... or all)"
            ),
        }
    }
    Ok(o)
}

/// Where a kill was aimed, and where the process was seen to be when it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Anywhere: loading, a step, an evaluation, the final export.
    Anywhere,
    /// A checkpoint folder was being written.
    Checkpoint,
    /// `metrics.jsonl` was open for a line.
    Metrics,
}

/// What the harness saw around one kill.
struct Kill {
    seen: Phase,
    /// Steps logged before the kill minus the step of the checkpoint the restart resumes from.
    lost_steps: usize,
    torn_line: bool,
    leftovers: usize,
}

/// The run and what it measured, summed over algorithms.
#[derive(Default)]
struct Tally {
    kills: usize,
    by_phase: BTreeMap<(&'static str, &'static str), usize>,
    lost_steps: usize,
    most_lost: usize,
    torn_lines: usize,
    leftovers: usize,
    runs: usize,
    killed_runs: usize,
    equal_runs: usize,
    problems: Vec<String>,
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    let mut build = crate::cargo();
    build.args(["build", "--quiet", "-p", "temper-cli"]);
    crate::status(build)?;
    let bin = target_dir(root).join("debug/temper");
    let scratch = std::env::temp_dir().join(format!("temper-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let fixtures = scratch.join("fixtures");
    write_fixtures(root, &fixtures)?;
    let mut rng = Rng(opts.seed);
    let mut tally = Tally::default();
    let n = opts.algos.len();
    for (i, &algo) in opts.algos.iter().enumerate() {
        let kills = opts.kills / n + usize::from(i < opts.kills % n);
        chaos_one(&bin, algo, &scratch, &fixtures, kills, &mut rng, &mut tally)?;
    }
    full_disk(&bin, &scratch, &fixtures, &mut tally)?;
    for algo in &opts.algos {
        let count = |phase| {
            tally
                .by_phase
                .get(&(algo.name(), phase))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{}: kills in a checkpoint write {}, in a metrics write {}, elsewhere {}",
            algo.name(),
            count(phase_name(Phase::Checkpoint)),
            count(phase_name(Phase::Metrics)),
            count(phase_name(Phase::Anywhere))
        );
    }
    println!(
        "runs: {} ({} with at least one kill), each against an uninterrupted run of {STEPS} steps",
        tally.runs, tally.killed_runs
    );
    println!(
        "steps redone after kills: {} in all, at most {} after one kill (checkpoint every {SAVE_STEPS}); \
         torn metrics lines repaired: {}; leftover temp files cleaned: {}",
        tally.lost_steps, tally.most_lost, tally.torn_lines, tally.leftovers
    );
    for p in &tally.problems {
        println!("problem: {p}");
    }
    let lost = tally.problems.len();
    println!(
        "chaos: {} kills, {} resumed runs equal to the uninterrupted run, {lost} lost",
        tally.kills, tally.equal_runs
    );
    if lost == 0 {
        std::fs::remove_dir_all(&scratch).ok();
        Ok(())
    } else {
        println!("(run folders kept in {})", scratch.display());
        std::process::exit(1)
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The tiny model as an HF folder a user would pass (weights, config, tokenizer), and small data files in its
/// word vocabulary (`t0` … `t300`).
fn write_fixtures(root: &Path, dir: &Path) -> Result<()> {
    let model = dir.join("model");
    std::fs::create_dir_all(&model)?;
    let testdata = root.join("testdata/trl-parity");
    for (from, name) in [
        ("model", "config.json"),
        ("model", "model.safetensors"),
        ("model", "generation_config.json"),
        ("tokenizer", "tokenizer.json"),
        ("tokenizer", "tokenizer_config.json"),
    ] {
        let src = testdata.join(from).join(name);
        std::fs::copy(&src, model.join(name))
            .with_context(|| format!("copying {}", src.display()))?;
    }
    let words = |i: usize, n: usize, k: usize| {
        (0..n)
            .map(|j| format!("t{}", 7 + (i * k + j * 31) % 290))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let jsonl = |name: &str, lines: Vec<Value>| -> Result<()> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))
    };
    let sft = |range: std::ops::Range<usize>| {
        range.map(|i| serde_json::json!({"prompt": words(i, 3, 13), "completion": words(i, 2 + i % 3, 17)})).collect()
    };
    let pairs = |range: std::ops::Range<usize>| {
        range.map(|i| serde_json::json!({"prompt": words(i, 3, 11), "chosen": words(i, 2, 5), "rejected": words(i, 3, 19)})).collect()
    };
    let prompts = |range: std::ops::Range<usize>| {
        range
            .map(|i| serde_json::json!({"prompt": words(i, 3, 23)}))
            .collect()
    };
    jsonl("sft.jsonl", sft(0..16))?;
    jsonl("sft_eval.jsonl", sft(16..20))?;
    jsonl("pairs.jsonl", pairs(0..16))?;
    jsonl("pairs_eval.jsonl", pairs(16..20))?;
    jsonl("prompts.jsonl", prompts(0..12))?;
    jsonl("prompts_eval.jsonl", prompts(12..15))
}

/// Starts `temper <algo> --config <config>` with stderr to `log`.
fn spawn(
    bin: &Path,
    algo: Algo,
    config: &Path,
    log: &Path,
    env: &[(&str, String)],
) -> Result<Child> {
    let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut c = Command::new(bin);
    c.args([algo.command(), "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Runs to completion; an error (with the log's last line) if it fails.
fn run_to_end(
    bin: &Path,
    algo: Algo,
    config: &Path,
    log: &Path,
    env: &[(&str, String)],
) -> Result<Duration> {
    let t0 = Instant::now();
    let status = spawn(bin, algo, config, log, env)?.wait()?;
    if !status.success() {
        bail!(
            "temper {} failed ({status}): {}",
            algo.name(),
            last_line(log)
        );
    }
    Ok(t0.elapsed())
}

fn last_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn chaos_one(
    bin: &Path,
    algo: Algo,
    scratch: &Path,
    fixtures: &Path,
    kills: usize,
    rng: &mut Rng,
    tally: &mut Tally,
) -> Result<()> {
    let base = scratch.join(algo.name());
    std::fs::create_dir_all(&base)?;
    let reference = base.join("reference");
    let ref_config = base.join("reference.toml");
    std::fs::write(&ref_config, algo.config(fixtures, &reference))?;
    let ref_time = run_to_end(bin, algo, &ref_config, &base.join("reference.log"), &[])?;
    let mut left = kills;
    let mut run_no = 0;
    while left > 0 {
        run_no += 1;
        let out = base.join(format!("run-{run_no}"));
        let config = base.join(format!("run-{run_no}.toml"));
        std::fs::write(&config, algo.config(fixtures, &out))?;
        let mut killed = 0;
        loop {
            let target = if killed == KILLS_PER_RUN || left == 0 {
                None
            } else {
                Some([Phase::Anywhere, Phase::Checkpoint, Phase::Metrics][rng.below(3) as usize])
            };
            match attempt(bin, algo, &config, &out, target, ref_time, rng)? {
                Some(k) => {
                    killed += 1;
                    left -= 1;
                    tally.kills += 1;
                    *tally
                        .by_phase
                        .entry((algo.name(), phase_name(k.seen)))
                        .or_default() += 1;
                    tally.lost_steps += k.lost_steps;
                    tally.most_lost = tally.most_lost.max(k.lost_steps);
                    tally.torn_lines += usize::from(k.torn_line);
                    tally.leftovers += k.leftovers;
                    if k.lost_steps > SAVE_STEPS {
                        tally.problems.push(format!(
                            "{} run {run_no}: a kill cost {} steps, more than the {SAVE_STEPS} since the last checkpoint",
                            algo.name(),
                            k.lost_steps
                        ));
                    }
                }
                None => break,
            }
        }
        tally.runs += 1;
        tally.killed_runs += usize::from(killed > 0);
        let diffs = compare(&reference, &out);
        if diffs.is_empty() {
            tally.equal_runs += usize::from(killed > 0);
        } else {
            tally.problems.extend(
                diffs
                    .into_iter()
                    .map(|d| format!("{} run {run_no} ({killed} kills): {d}", algo.name())),
            );
        }
    }
    Ok(())
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Anywhere => "elsewhere",
        Phase::Checkpoint => "checkpoint write",
        Phase::Metrics => "metrics write",
    }
}

/// Starts the run's command once; with a `target` kills it there (`Some(kill)`), else lets it finish (`None`;
/// also `None` when it finishes before the kill lands).
fn attempt(
    bin: &Path,
    algo: Algo,
    config: &Path,
    out: &Path,
    target: Option<Phase>,
    ref_time: Duration,
    rng: &mut Rng,
) -> Result<Option<Kill>> {
    let log = out.with_extension("log");
    let env: Vec<(&str, String)> = match target {
        Some(Phase::Checkpoint) => vec![("TEMPER_CHAOS_PAUSE", format!("checkpoint:{PAUSE_MS}"))],
        Some(Phase::Metrics) => vec![("TEMPER_CHAOS_PAUSE", format!("metrics:{PAUSE_MS}"))],
        _ => Vec::new(),
    };
    let mut child = spawn(bin, algo, config, &log, &env)?;
    let pid = child.id();
    // Which occurrence of the phase to hit (0 = the first after the start), and when within it.
    let skip = rng.below(3) as usize;
    let within = Duration::from_millis(rng.below(PAUSE_MS));
    let anywhere = Duration::from_millis(rng.below((ref_time.as_millis() as u64).max(1)));
    let t0 = Instant::now();
    let mut seen = 0usize;
    let mut was_in = false;
    let mut hit_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!(
                    "temper {} failed ({status}) after a restart: {}",
                    algo.name(),
                    last_line(&log)
                );
            }
            return Ok(None);
        }
        let fire = match (target, hit_at) {
            (None, _) => false,
            (Some(Phase::Anywhere), _) => t0.elapsed() >= anywhere,
            (Some(_), Some(at)) => at.elapsed() >= within,
            (Some(p), None) => {
                let now_in = where_is(pid, out) == p;
                if now_in && !was_in {
                    if seen == skip {
                        hit_at = Some(Instant::now());
                    }
                    seen += 1;
                }
                was_in = now_in;
                false
            }
        };
        if fire {
            let seen_phase = where_is(pid, out);
            let steps_logged = logged_steps(out);
            child.kill()?; // SIGKILL
            child.wait()?;
            return Ok(Some(inspect(out, seen_phase, steps_logged)));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Where process `pid` is: `metrics.jsonl` open, a `.checkpoint-*.tmp-<pid>` folder in `out`, or elsewhere.
fn where_is(pid: u32, out: &Path) -> Phase {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok());
    if fds
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|l| l.ends_with("metrics.jsonl"))
    {
        return Phase::Metrics;
    }
    let suffix = format!(".tmp-{pid}");
    let writing = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(".checkpoint-") && n.ends_with(&suffix)
        });
    if writing {
        Phase::Checkpoint
    } else {
        Phase::Anywhere
    }
}

/// The highest step with a step line (one with `loss`) in `out/metrics.jsonl`.
fn logged_steps(out: &Path) -> usize {
    let bytes = std::fs::read(out.join("metrics.jsonl")).unwrap_or_default();
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .filter_map(|v| v.get("step").and_then(Value::as_u64))
        .max()
        .unwrap_or(0) as usize
}

/// The step of the checkpoint `out/latest` names (what a restart resumes from), 0 without one.
fn resume_step(out: &Path) -> usize {
    let name = std::fs::read_to_string(out.join("latest")).unwrap_or_default();
    std::fs::read_to_string(out.join(name.trim()).join("trainer_state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("step").and_then(Value::as_u64))
        .unwrap_or(0) as usize
}

fn inspect(out: &Path, seen: Phase, steps_logged: usize) -> Kill {
    let bytes = std::fs::read(out.join("metrics.jsonl")).unwrap_or_default();
    let torn_line = !bytes.is_empty() && !bytes.ends_with(b"\n");
    let leftovers = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    Kill {
        seen,
        lost_steps: steps_logged
            .max(logged_steps(out))
            .saturating_sub(resume_step(out)),
        torn_line,
        leftovers,
    }
}

/// Differences between a finished run in `out` and the uninterrupted `reference`.
fn compare(reference: &Path, out: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    let files = compared_files(reference);
    if files.is_empty() {
        diffs.push("the uninterrupted run wrote no weights to compare".into());
    }
    for file in files {
        match (
            std::fs::read(reference.join(&file)),
            std::fs::read(out.join(&file)),
        ) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => diffs.push(format!("{file} differs from the uninterrupted run's")),
            (a, b) => diffs.push(format!(
                "{file}: missing (reference {}, run {})",
                a.is_ok(),
                b.is_ok()
            )),
        }
    }
    match (metrics_lines(reference), metrics_lines(out)) {
        (Ok(a), Ok(b)) if a == b => {}
        (Ok(a), Ok(b)) => {
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            diffs.push(format!(
                "metrics.jsonl: {} lines vs {} in the reference, first difference at line {}",
                b.len(),
                a.len(),
                first + 1
            ));
        }
        (Err(e), _) | (_, Err(e)) => diffs.push(format!("metrics.jsonl: {e}")),
    }
    let leftovers: Vec<String> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    if !leftovers.is_empty() {
        diffs.push(format!("temp files left after the run: {leftovers:?}"));
    }
    diffs
}

/// The state files of a finished run, relative to it: in `final/` and the last checkpoint, every `.safetensors`
/// (the model, LoRA adapters, PPO's value head), every `.bpk` (optimizer state) and `trainer_state.json`.
fn compared_files(run: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for folder in ["final".to_string(), format!("checkpoint-{STEPS}")] {
        let mut names: Vec<String> = std::fs::read_dir(run.join(&folder))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| {
                n.ends_with(".safetensors") || n.ends_with(".bpk") || n == "trainer_state.json"
            })
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{folder}/{n}")));
    }
    files
}

/// The lines of `dir/metrics.jsonl` without their wall-clock fields; an error names a torn line.
fn metrics_lines(dir: &Path) -> Result<Vec<Value>> {
    let path = dir.join("metrics.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let mut v: Value = serde_json::from_str(l)
                .with_context(|| format!("line {} is torn: {l:?}", i + 1))?;
            if let Some(o) = v.as_object_mut() {
                o.retain(|k, _| {
                    !WALL_CLOCK
                        .iter()
                        .any(|w| k == w || (w.ends_with('/') && k.starts_with(w)))
                });
            }
            Ok(v)
        })
        .collect()
}

/// A full disk during checkpointing: SFT writes into a tmpfs with room for one checkpoint and a half (or, where
/// `mount` is not allowed, with `TEMPER_CHAOS_WRITE_BUDGET` of that size). The run must stop with one clear line
/// naming the checkpoint, leave `latest` at the previous one, and — with room again — resume to the uninterrupted
/// result.
fn full_disk(bin: &Path, scratch: &Path, fixtures: &Path, tally: &mut Tally) -> Result<()> {
    let algo = Algo::Sft;
    let reference = scratch.join("sft/reference");
    if !reference.is_dir() {
        let config = scratch.join("full-disk-reference.toml");
        std::fs::write(&config, algo.config(fixtures, &reference))?;
        run_to_end(
            bin,
            algo,
            &config,
            &scratch.join("full-disk-reference.log"),
            &[],
        )?;
    }
    let ckpt = dir_bytes(&reference.join(format!("checkpoint-{STEPS}")))?;
    let room = (ckpt + ckpt / 2).div_ceil(4096) * 4096 + 64 * 1024;
    let disk = scratch.join("full-disk");
    std::fs::create_dir_all(&disk)?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={room}"), "tmpfs"])
        .arg(&disk)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let out = disk.join("run");
    let config = scratch.join("full-disk.toml");
    std::fs::write(&config, algo.config(fixtures, &out))?;
    let log = scratch.join("full-disk.log");
    let env = if mounted {
        Vec::new()
    } else {
        vec![("TEMPER_CHAOS_WRITE_BUDGET", room.to_string())]
    };
    let how = if mounted {
        format!("a {room}-byte tmpfs")
    } else {
        format!("an injected write failure after {room} bytes")
    };
    let result = (|| -> Result<()> {
        let failed = run_to_end(bin, algo, &config, &log, &env).is_err();
        let line = last_line(&log);
        println!("full disk ({how}): {line}");
        if !failed || !line.contains("No space left on device") || !line.contains("checkpoint-") {
            tally.problems.push(format!(
                "full disk ({how}): expected a failed run naming the checkpoint, got {line:?}"
            ));
            return Ok(());
        }
        let latest = std::fs::read_to_string(out.join("latest")).unwrap_or_default();
        if resume_step(&out) == 0 {
            tally.problems.push(format!(
                "full disk: no loadable previous checkpoint (latest = {latest:?})"
            ));
            return Ok(());
        }
        if mounted {
            crate::status({
                let mut c = Command::new("mount");
                c.args(["-o", "remount,size=64m"]).arg(&disk);
                c
            })?;
        }
        run_to_end(bin, algo, &config, &log, &[]).context("resuming after the full disk")?;
        let diffs = compare(&reference, &out);
        if diffs.is_empty() {
            println!(
                "full disk: the run resumed from {} and ended equal to the uninterrupted run",
                latest.trim()
            );
        }
        tally.problems.extend(
            diffs
                .into_iter()
                .map(|d| format!("full disk, resumed: {d}")),
        );
        Ok(())
    })();
    if mounted {
        let _ = Command::new("umount").arg(&disk).status();
    }
    result
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        n += e?.metadata()?.len();
    }
    Ok(n)
}
