//! Load beyond one process: `faultline run --workers N --engine …`.
//!
//! The coordinator (the `faultline run` process) owns the stack, the fault
//! timeline, the observers and the verdict; N workers only generate load.
//! Worker k runs arrivals k, k+N, k+2N, … of every journey's schedule, so
//! the union is the single-process schedule exactly, and starts at the
//! instant the coordinator gives, read on its own clock through the
//! measured offset (`skew`). What the workers measure comes back window
//! by window over `wire` and is merged without loss (HDR histograms add
//! exactly). A worker lost, restarted or behind makes the run invalid.
//!
//! - [`contract`]: how a worker learns who it is (the same for every engine);
//! - [`crew`]: the coordinator's workers of one run, from start to merge;
//! - [`worker`]: `faultline worker`, which runs a slice;
//! - `wire`: the framed messages between them;
//! - `skew`: clock offsets and the bound on them;
//! - [`engine`]: where workers run beyond this machine (Swarm, Kubernetes).

pub mod contract;
pub mod coordinator;
pub mod crew;
pub mod engine;
pub(crate) mod messages;
pub(crate) mod skew;
pub(crate) mod wire;
pub mod worker;
