//! faultline: a chaos and load-testing harness that decides, with evidence,
//! whether a service stack's circuit breakers protect it.
//!
//! One run follows the pipeline the folders are named after:
//! [`scenario`] → [`stack`] → [`load`] → [`observe`] → [`verdict`] → [`report`].

#![warn(missing_docs)]

pub mod cli;
pub mod clock;
pub mod control;
pub mod distribute;
pub mod explore;
pub mod faults;
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
