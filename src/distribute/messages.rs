//! The messages of a distributed run, each way.

use serde::{Deserialize, Serialize};

/// What a worker says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// First message on a connection: who the worker is.
    Hello {
        /// Its index (0-based).
        index: usize,
        /// How many workers it was told share the load.
        workers: usize,
        /// The faultline version it runs: a plan is only run by the same
        /// version that made it.
        version: String,
        /// Where it runs (host name), for messages.
        host: String,
    },
    /// The answer to a ping: the worker's clock when it answered.
    Pong {
        /// The ping's sequence number.
        seq: u32,
        /// Worker clock, ns since the Unix epoch.
        worker_ns: i64,
    },
    /// The worker cannot run the plan (a bad target, a version mismatch);
    /// the run is invalid.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What the coordinator says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Measure the clock: answer with a pong at once.
    Ping {
        /// Sequence number, echoed.
        seq: u32,
    },
}
