//! The supervisor of `temper-fuzz all` against targets that misbehave on purpose (`self_test_hang` sleeps
//! forever, `self_test_oom` allocates until the heap limit; both only on inputs starting with `bad`, and both
//! exist only with `TEMPER_FUZZ_SELF_TEST=1`): each is reported once as a crash of its kind with the input that
//! caused it saved, and the run goes on to the next target.

use std::process::{Command, Output};

fn fuzz(args: &[&str], self_test: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_temper-fuzz"));
    c.args(args).env_remove("TEMPER_FUZZ_SELF_TEST");
    if self_test {
        c.env("TEMPER_FUZZ_SELF_TEST", "1");
    }
    c.output().expect("running temper-fuzz")
}

/// The one line of `stdout` starting with `prefix`.
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with(prefix) && (prefix.ends_with("crash: ") || !l.contains("crash: "))
        })
        .collect();
    assert_eq!(found.len(), 1, "one line `{prefix}…` in:\n{stdout}");
    found[0]
}

/// The number before `word` in `text` (`12 inputs` → 12).
fn count(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let at = words
        .iter()
        .position(|w| *w == word)
        .unwrap_or_else(|| panic!("no `{word}` in {text:?}"));
    words[at - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no number before `{word}` in {text:?}"))
}

/// The crash line of `target`, after checking that the input it names (a word containing `marker`) was saved and
/// is the one that misbehaves.
fn reported<'a>(stdout: &'a str, target: &str, marker: &str) -> &'a str {
    let report = line(stdout, &format!("fuzz: {target}: crash: "));
    let file = report
        .split(' ')
        .find(|w| w.contains(marker))
        .unwrap_or_else(|| panic!("no saved input in {report}"));
    assert_eq!(std::fs::read(file).expect("saved input"), b"bad", "{file}");
    report
}

#[test]
fn a_hang_and_an_out_of_memory_are_reported_with_their_input_and_the_run_goes_on() {
    let artifacts = temper_fuzz::fuzz_dir().join("artifacts");
    for t in ["self_test_hang", "self_test_oom"] {
        let _ = std::fs::remove_dir_all(artifacts.join(t));
    }
    let started = std::time::Instant::now();
    let out = fuzz(
        &[
            "all",
            "--targets",
            "self_test_hang,self_test_oom,verdict",
            "--seconds",
            "4",
            "--timeout",
            "1",
            "--mem-mb",
            "64",
        ],
        true,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let hang = reported(&stdout, "self_test_hang", "/timeout-");
    assert!(
        hang.contains("hang ") && hang.contains("one input ran longer than 1 s"),
        "{hang}"
    );
    // The supervisor restarts the worker after each hang; the same hang is one distinct crash.
    let hang_tally = line(&stdout, "fuzz: self_test_hang: ");
    assert_eq!(count(hang_tally, "crashes"), 1, "{hang_tally}");
    assert!(count(hang_tally, "inputs") >= 2, "{hang_tally}");

    let oom = reported(&stdout, "self_test_oom", "/oom-");
    assert!(oom.starts_with("fuzz: self_test_oom: crash: oom "), "{oom}");
    assert_eq!(count(line(&stdout, "fuzz: self_test_oom: "), "crashes"), 1);

    // The run went on to the next target, which ran normally.
    let verdict = line(&stdout, "fuzz: verdict: ");
    assert!(count(verdict, "inputs") > 100, "{verdict}");
    assert_eq!(count(verdict, "crashes"), 0, "{verdict}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("fuzz: 3 targets, ") && summary.ends_with(" inputs, 2 crashes"),
        "{summary}"
    );
    // Each target has its 4 s; a hang costs the 1 s timeout plus the watchdog's tick, not the whole budget.
    assert!(started.elapsed().as_secs() < 40, "{:?}", started.elapsed());
    for t in ["self_test_hang", "self_test_oom"] {
        let _ = std::fs::remove_dir_all(artifacts.join(t));
    }
}

#[test]
fn the_self_test_targets_do_not_exist_in_a_normal_run() {
    let out = fuzz(
        &["all", "--targets", "self_test_hang", "--seconds", "1"],
        false,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown fuzz target `self_test_hang`"),
        "{stderr}"
    );
    let listed = fuzz(&["list"], false);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("self_test"));
}
