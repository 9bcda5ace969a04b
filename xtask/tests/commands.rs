//! `cargo xtask` as a user meets it: an unknown command or a bad `plot` invocation exits non-zero with the
//! usage, `help` exits 0.

use std::process::Command;

fn xtask(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn unknown_commands_exit_non_zero_and_help_exits_zero() {
    let (code, _, stderr) = xtask(&["nosuch"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("xtask: unknown command `nosuch`"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: cargo xtask <command>"), "{stderr}");
    let (code, stdout, _) = xtask(&["help"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.starts_with("usage: cargo xtask <command>"),
        "{stdout}"
    );
    let (code, _, stderr) = xtask(&[
        "plot",
        "/nonexistent/metrics.jsonl",
        "--keys",
        "loss",
        "--out",
        "/nonexistent/x.svg",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("xtask: ") && stderr.contains("/nonexistent/metrics.jsonl"),
        "{stderr}"
    );
}
