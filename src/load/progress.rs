//! The live progress line: phase, rate, errors and p99 as the run goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::recorder::Recorder;
use crate::scenario::Phase;

/// Shows progress until `done` fires. Hidden when stderr is not a terminal,
/// under CI, or when `quiet`.
pub fn spawn(
    recorder: Arc<Recorder>,
    phases: Vec<Phase>,
    load_start: Instant,
    duration: Duration,
    quiet: bool,
    done: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let hidden = quiet || std::env::var_os("CI").is_some();
    let target = if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(duration.as_millis() as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {elapsed:>4}/{len_s} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let total_s = duration.as_secs();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.cancelled() => break,
            }
            let t = load_start.elapsed().min(duration);
            let phase = phases
                .iter()
                .find(|p| p.from <= t && t < p.until)
                .map_or("-", |p| p.name.as_str());
            let live = recorder.live();
            let error_pct = match live.requests {
                0 => 0.0,
                n => live.errors as f64 * 100.0 / n as f64,
            };
            bar.set_position(t.as_millis() as u64);
            bar.set_message(format!(
                "of {total_s}s | {phase:<9} | {:>7.1} req/s | errors {} ({error_pct:.1}%) | p99 {:.1} ms",
                live.rate,
                live.errors,
                live.p99_us as f64 / 1000.0
            ));
        }
        bar.finish_and_clear();
    })
}
