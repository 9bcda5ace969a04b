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
