//! One clock for the whole run: every observation is reported as seconds
//! from the start of the load (negative before it, e.g. preflight).
//!
//! Injectors count on their own clock whose origin is when the stack came
//! up; [`RunClock`] converts their times.

use std::time::{Duration, Instant};

use fault_injectors::Clock;

/// The run's time origin (the first intended request) and the injectors'.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    injectors: Clock,
    load_start: Instant,
}

impl RunClock {
    /// A run whose load starts at `load_start`, with injectors on `injectors`.
    pub fn new(injectors: Clock, load_start: Instant) -> Self {
        Self {
            injectors,
            load_start,
        }
    }

    /// When the load starts.
    pub fn load_start(&self) -> Instant {
        self.load_start
    }

    /// The instant `offset` after the load starts.
    pub fn at(&self, offset: Duration) -> Instant {
        self.load_start + offset
    }

    /// Seconds from the load start to `at` (negative before it).
    pub fn seconds(&self, at: Instant) -> f64 {
        if at >= self.load_start {
            (at - self.load_start).as_secs_f64()
        } else {
            -(self.load_start - at).as_secs_f64()
        }
    }

    /// An injector time (seconds from the injectors' origin) on the run's clock.
    pub fn injector_to_run(&self, injector_s: f64) -> f64 {
        injector_s + self.seconds(self.injectors.origin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_times_shift_by_the_bring_up_time() {
        let origin = Instant::now();
        let clock = RunClock::new(
            Clock::starting_at(origin),
            origin + Duration::from_millis(1500),
        );
        assert!((clock.injector_to_run(2.0) - 0.5).abs() < 1e-9);
        assert!((clock.seconds(origin) + 1.5).abs() < 1e-9);
        assert!((clock.seconds(clock.at(Duration::from_secs(3))) - 3.0).abs() < 1e-9);
    }
}
