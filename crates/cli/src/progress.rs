//! Terminal progress bars (indicatif) behind the library crates' `Progress` seams.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar for asset downloads; silent when stderr is not a terminal.
#[derive(Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl temper_assets::Progress for Bar {
    fn start(&mut self, what: &str, total_bytes: Option<u64>) {
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{msg:24} [{bar:40}] {bytes}/{total_bytes} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            }
        };
        bar.set_message(what.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn finish(&mut self, msg: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_with_message(msg.to_string());
        }
    }
}

/// A training progress bar: step count, ETA, and the latest loss / reward / KL.
pub struct TrainBar {
    bar: ProgressBar,
    /// When stderr is not a terminal the bar is invisible: print one plain line per step instead.
    plain: bool,
}

impl TrainBar {
    /// A bar for `total` optimizer steps, starting at `done`.
    pub fn new(total: usize, done: usize) -> Self {
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, ETA {eta} | {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("train");
        bar.set_position(done as u64);
        let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self { bar, plain }
    }

    /// Closes the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl temper_train::Observer for TrainBar {
    fn on_step(&mut self, r: &temper_train::StepReport) {
        let mut msg = format!("loss {:.4}", r.loss);
        for key in ["reward", "kl", "rewards/accuracies", "eval/loss"] {
            if let Some(v) = r.metrics.get(key) {
                msg.push_str(&format!(" {key} {v:.3}"));
            }
        }
        msg.push_str(&format!(" | {:.1}s/step", r.seconds));
        if self.plain {
            eprintln!("step {}/{}: {msg}", r.step, r.total_steps);
        }
        self.bar.set_position(r.step as u64);
        self.bar.set_message(msg);
    }

    fn on_message(&mut self, message: &str) {
        if self.plain {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }
}
