//! The bodies of Temper's fuzz targets, shared by the two drivers: the stable mutation driver `temper-fuzz`
//! (src/main.rs, no coverage feedback) and the coverage-guided libFuzzer targets of `fuzz/libfuzzer/` (built with
//! `cargo fuzz` on nightly). Both call [`targets::make`] and [`targets::Target::run`]; libFuzzer's entry points
//! go through [`run_once`].

pub mod targets;

use std::cell::RefCell;
use std::path::PathBuf;

/// fuzz/ (the corpus and artifacts live under it).
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The last panic's location and message, recorded by the hook [`record_panics`] installs.
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Replaces the panic hook by one that prints nothing and records the panic's location and message for
/// [`last_panic`]; both drivers install it before running a target.
pub fn record_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = format!("{at}: {msg}");
        }
    }));
}

/// `file:line: message` of the last panic recorded since [`record_panics`] (empty when none).
pub fn last_panic() -> String {
    LAST_PANIC.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Runs target `name` on one input, building it on first use in this thread (a libFuzzer target is one
/// process running inputs one after another). A target that cannot be built (a missing asset) ends the process
/// with status 2 and the reason on stderr: that is a broken setup, not a finding.
///
/// A panic that escapes the target aborts the process (libFuzzer then saves the input as a crash), as in the
/// stable driver. A panic that the code under test catches itself is not a finding: `Tokenizer::from_file` turns
/// the tokenizers crate's panic on some malformed files into an error. libfuzzer-sys's own panic hook aborts on
/// every panic, caught or not, so it is replaced here by one that only records the message.
pub fn run_once(name: &str, data: &[u8]) {
    thread_local! {
        static TARGET: RefCell<Option<Box<dyn targets::Target>>> = const { RefCell::new(None) };
    }
    TARGET.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let scratch = std::env::temp_dir()
                .join(format!("temper-libfuzzer-{}-{name}", std::process::id()));
            let made = std::fs::create_dir_all(&scratch)
                .map_err(anyhow::Error::from)
                .and_then(|()| targets::make(name, &scratch));
            record_panics();
            match made {
                Ok(t) => *slot = Some(t),
                Err(e) => {
                    eprintln!("temper-fuzz: cannot set up target {name}: {e:#}");
                    std::process::exit(2);
                }
            }
        }
        if let Some(t) = slot.as_mut() {
            // The outcome is the stable driver's stand-in for coverage; libFuzzer measures coverage itself.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run(data)));
            match run {
                Ok(outcome) => {
                    std::hint::black_box(outcome);
                }
                Err(_) => {
                    eprintln!("temper-fuzz: target {name} panicked at {}", last_panic());
                    std::process::abort();
                }
            }
        }
    });
}
