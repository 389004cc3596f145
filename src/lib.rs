//! faultline: a chaos and load-testing harness that decides, with evidence,
//! whether a service stack's circuit breakers protect it.
//!
//! One run follows the pipeline the folders are named after:
//! [`scenario`] → [`stack`] → [`load`] → [`observe`] → [`verdict`] → [`report`].
//!
//! The library surface is what the binary, the integration tests and the
//! benches use; everything else is `pub(crate)`:
//! - [`run::run`] with [`run::RunOptions`] runs a scenario end to end;
//!   [`replay::replay`] and [`explore::explore`] are the other entry points,
//!   [`control`] drives a live run's faults, [`cli`] is the command line.
//! - [`scenario`] parses and validates scenario files ([`scenario::Model`]),
//!   [`verdict::Plan`] is a validated scenario with its checks resolved, and
//!   [`verdict::evaluate`] judges observations again (black-box, for one).
//! - [`load::driver`], [`load::recorder`](mod@load::recorder) and [`load::schedule`] are the load
//!   path the harness bench measures; [`observe::sut`] reads the SUT's
//!   breaker gauge; [`spill`] reads a run's spilled request records.
//! - [`report`] renders and compares run folders; [`stack::docker`] builds the
//!   images and sweeps leftovers; [`distribute`] runs the load on workers
//!   (local, Docker swarm, Kubernetes); [`platform`] names the platform's
//!   services and injectors.

#![warn(missing_docs)]

pub mod cli;
mod clock;
pub mod control;
pub mod distribute;
pub mod explore;
mod faults;
pub mod load;
pub mod observe;
pub mod platform;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod spill;
pub mod stack;
pub mod verdict;
