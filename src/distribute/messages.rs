//! The messages of a distributed run, each way.

use serde::{Deserialize, Serialize};

use crate::load::recorder::{Forwarded, RawSeries};
use crate::scenario::StackKind;

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
    /// The plan is read and the load set up; it starts at the instant given.
    Ready,
    /// The worker cannot run the plan (a bad target, a version mismatch, a
    /// start instant already past); the run is invalid.
    Refused {
        /// Why.
        reason: String,
    },
    /// What the worker measured since its last progress (sent every
    /// [`PROGRESS_EVERY`], empty or not: silence means a worker lost).
    Progress {
        /// Settled windows.
        measured: Forwarded,
        /// Request records in their `requests.bin` encoding, base64.
        requests: String,
        /// Acknowledged payments in their `acks.bin` encoding, base64.
        acks: String,
    },
    /// The load is over: the last of what it measured, and its totals.
    Done {
        /// The last windows.
        measured: Forwarded,
        /// The last request records, as in `Progress`.
        requests: String,
        /// The last acknowledgements, as in `Progress`.
        acks: String,
        /// Per series, the whole run.
        totals: Vec<RawSeries>,
        /// Goose users that ran.
        users: usize,
        /// Connections opened to the SUT.
        connections: u64,
    },
}

/// How often a worker reports progress.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Everything a worker needs to run its slice, besides its identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkPlan {
    /// The scenario file's path on the coordinator (for messages).
    pub scenario_path: String,
    /// The scenario file's text: the worker checks it as `faultline run`
    /// does, so both read the same load.
    pub scenario_source: String,
    /// The stack kind the coordinator runs (`--stack`).
    pub stack: StackKind,
    /// The run's seed.
    pub seed: u64,
    /// The prefix of the run's business ids.
    pub run_tag: String,
    /// Base URL each journey sends to, in the scenario's order.
    pub targets: Vec<String>,
    /// When the load starts, ns since the Unix epoch on the worker's clock
    /// (the coordinator's instant, converted with the measured offset).
    pub start_ns: i64,
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
    /// Run this.
    Plan(Box<WorkPlan>),
    /// Stop the load now (the run was interrupted or another worker was
    /// lost) and say `Done`.
    Stop,
}
