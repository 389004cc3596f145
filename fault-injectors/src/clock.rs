//! One clock for every observation: instants are reported as seconds from a
//! shared origin, and the origin's wall time is reported once so observers
//! in other processes can line up.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The origin all injector times are measured from.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    origin_unix: SystemTime,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A clock whose origin is `origin` (e.g. the start of a harness run).
    pub fn starting_at(origin: Instant) -> Self {
        let back = origin.saturating_duration_since(Instant::now());
        let ahead = Instant::now().saturating_duration_since(origin);
        let origin_unix = SystemTime::now() + back - ahead;
        Self {
            origin,
            origin_unix,
        }
    }

    /// The origin.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Time since the origin (zero for instants before it).
    pub fn since_origin(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.origin)
    }

    /// The origin as milliseconds since the Unix epoch.
    pub fn origin_unix_ms(&self) -> u128 {
        self.origin_unix
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::start()
    }
}
