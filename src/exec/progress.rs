//! Progress display: bars on a terminal, one plain line per finished stage otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    lock: Mutex<()>,
}

pub struct StageBar {
    bar: Option<ProgressBar>,
}

impl StageBar {
    /// Stage-defined units done of total.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:32} [{bar:30}] {pos}/{len} ({eta})")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
            }
            bar.set_position(done);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    pub fn new(mode: Mode, total: usize) -> Self {
        let (multi, overall) = if mode == Mode::Bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{prefix:34} [{bar:30}] {pos}/{len} stages  {elapsed}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            overall.set_prefix("neurospec run");
            (Some(multi), Some(overall))
        } else {
            (None, None)
        };
        Progress { mode, multi, overall, total, done: AtomicUsize::new(0), lock: Mutex::new(()) }
    }

    pub fn start(&self, stage: &str) -> StageBar {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {prefix:32} {spinner} {elapsed}").expect("valid template"));
            bar.set_prefix(stage.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        StageBar { bar }
    }

    pub fn finished(&self, stage: &str, status: &str) {
        let k = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match self.mode {
            Mode::Bars => {
                if let Some(overall) = &self.overall {
                    overall.set_position(k as u64);
                    if status != "cached" {
                        overall.println(format!("  {stage}: {status}"));
                    }
                }
            }
            Mode::Lines => {
                let _guard = self.lock.lock();
                eprintln!("[{k}/{}] {stage}: {status}", self.total);
            }
            Mode::Quiet => {}
        }
    }

    pub fn clear(&self) {
        if let Some(overall) = &self.overall {
            overall.finish_and_clear();
        }
    }
}
