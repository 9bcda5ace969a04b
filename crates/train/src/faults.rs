//! Fault hooks for the crash-safety harness (`cargo xtask chaos`), off unless asked for; they sit on the write
//! paths (checkpoint folders, `metrics.jsonl`), never in a training step.
//!
//! - `TEMPER_CHAOS_PAUSE=checkpoint:MS` sleeps MS milliseconds inside every checkpoint write (the temp folder
//!   holds the weights, not yet the optimizer state); `metrics:MS` sleeps with `metrics.jsonl` open, before its
//!   line is written. A kill sent during the pause lands in that phase.
//! - `TEMPER_CHAOS_WRITE_BUDGET=BYTES` makes [`write_atomic`](crate::write_atomic) fail as a full disk does
//!   (`ENOSPC`, the file cut short) once the process has written BYTES bytes through it; tests set the budget of
//!   their own thread with [`set_write_budget`].

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

/// Where a pause can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Inside a checkpoint folder's write.
    Checkpoint,
    /// Inside the append of a `metrics.jsonl` line.
    Metrics,
}

fn parse_pause(spec: &str) -> Option<(Phase, Duration)> {
    let (phase, ms) = spec.split_once(':')?;
    let phase = match phase.trim() {
        "checkpoint" => Phase::Checkpoint,
        "metrics" => Phase::Metrics,
        _ => return None,
    };
    Some((phase, Duration::from_millis(ms.trim().parse().ok()?)))
}

/// Sleeps if `TEMPER_CHAOS_PAUSE` names `phase` (read once per process).
pub(crate) fn pause(phase: Phase) {
    static PAUSE: OnceLock<Option<(Phase, Duration)>> = OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("TEMPER_CHAOS_PAUSE")
            .ok()
            .as_deref()
            .and_then(parse_pause)
    });
    if let Some((p, d)) = pause
        && *p == phase
    {
        std::thread::sleep(*d);
    }
}

thread_local! {
    static BUDGET: Cell<Option<u64>> =
        Cell::new(std::env::var("TEMPER_CHAOS_WRITE_BUDGET").ok().and_then(|s| s.trim().parse().ok()));
}

/// Sets how many more bytes this thread's [`write_atomic`](crate::write_atomic) calls may write before they fail
/// with `ENOSPC` (`None`: no limit). For fault-injection tests.
pub fn set_write_budget(bytes: Option<u64>) {
    BUDGET.with(|b| b.set(bytes));
}

/// How many of `wanted` bytes may be written now (all of them without a budget); takes them from the budget.
pub(crate) fn take_write_budget(wanted: usize) -> usize {
    BUDGET.with(|b| match b.get() {
        None => wanted,
        Some(left) => {
            let granted = (wanted as u64).min(left);
            b.set(Some(left - granted));
            granted as usize
        }
    })
}

/// The error a full disk gives.
pub(crate) fn disk_full() -> std::io::Error {
    std::io::Error::from_raw_os_error(28) // ENOSPC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_specs_name_a_phase_and_milliseconds() {
        assert_eq!(
            parse_pause("checkpoint:250"),
            Some((Phase::Checkpoint, Duration::from_millis(250)))
        );
        assert_eq!(
            parse_pause("metrics: 5"),
            Some((Phase::Metrics, Duration::from_millis(5)))
        );
        assert_eq!(parse_pause("step:5"), None);
        assert_eq!(parse_pause("metrics"), None);
    }

    #[test]
    fn the_write_budget_runs_out() {
        set_write_budget(Some(10));
        assert_eq!(take_write_budget(6), 6);
        assert_eq!(take_write_budget(6), 4);
        assert_eq!(take_write_budget(1), 0);
        set_write_budget(None);
        assert_eq!(take_write_budget(1 << 20), 1 << 20);
        assert!(
            disk_full().to_string().contains("No space left"),
            "{}",
            disk_full()
        );
    }
}
