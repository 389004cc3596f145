//! Fault injectors: what stands where a downstream service would be, answers
//! like it, and misbehaves exactly as told.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use fault_injectors::{Delay, Fault, Injector};
//!
//! // A stand-in for order-service on an ephemeral port, seeded.
//! let orders = Injector::builder("order-service").seed(42).start().await?;
//! // Point the system under test at it: ORDER_SERVICE_URL = orders.url()
//!
//! // 30 % of order creations fail with 503, all of them slowed down.
//! orders.inject(Fault::status(503).rate(0.3).path("/api/v1/orders"))?;
//! orders.inject(Fault::latency(Delay::LogNormal {
//!     median: Duration::from_millis(80),
//!     sigma: 0.5,
//! }))?;
//! // ... later: an outage, then recovery.
//! orders.set_faults(vec![Fault::refuse()])?;
//! orders.clear_faults();
//! println!("{:?}", orders.counters());
//! # Ok(()) }
//! ```
//!
//! # Design
//! - **The front owns the port.** Each injector is a small hyper server
//!   ([`front`]): it reads the request, asks the live fault program what to
//!   do, counts the arrival, then delays, fails, resets, holds or serves.
//!   Owning the socket is what gives connection faults (refuse, reset, hang,
//!   empty response, slow body) that a mock server cannot give.
//! - **Faults switch without gaps.** The program is swapped whole
//!   (`ArcSwap`), so the next request after a change sees it: no 404 gap, no
//!   stale fault, no wiremock scoped mocks (whose guards, dropped after
//!   traffic, deactivate the wrong mock in wiremock 0.6.5).
//! - **Stand-ins are wiremock routes evaluated in-process.** [`StandIn`]
//!   routes match with wiremock's matchers. wiremock's own server runs on a
//!   single thread and keeps a clone of every matched request (~4.5 KB each,
//!   forever), so built-in routes do not go through it.
//! - **User mocks use the real wiremock server, rotated.** [`Override`]s are
//!   mounted on a `wiremock::MockServer` behind the front; every
//!   `rotate_every` requests a fresh server is started with the same mocks and
//!   swapped in before the old one is dropped, so memory stays bounded without
//!   the 404 gap a `reset()` would open.
//! - **Deterministic by seed.** Each request's decision comes from an RNG
//!   seeded with (injector seed, arrival number) — see [`decide`]. An optional
//!   decision log records them for comparison.
//! - **Observation without retention.** Arrivals are counted in time buckets
//!   by route and outcome in a ring of fixed length; business ids are
//!   remembered for a sliding window only ([`observe`]).

#![warn(missing_docs)]

pub mod admin;
pub mod admin_client;
mod attempts;
mod backend;
pub mod clock;
pub mod config;
pub mod decide;
mod decision_log;
pub mod fault;
mod front;
pub mod identity;
mod injector;
pub mod observe;
pub mod program;
pub mod stand_in;

pub use admin_client::{AdminClient, AdminError};
pub use backend::{Mode, Override, OverrideBuilder};
pub use clock::Clock;
pub use fault::{Delay, Fault, FaultError, FaultKind, Flapping, PathPattern, Target};
pub use identity::{decision_identity, run_tag};
pub use injector::{Injector, InjectorBuilder, InjectorSet, InjectorStatus, StartError};
pub use observe::{
    ArrivalPage, ArrivalRecord, BucketPage, BucketReport, Counters, ObserveConfig, id_hash,
};
pub use stand_in::{Reply, Route, StandIn};
