//! The payment platform's services, modelled as a system under test whose behaviour is
//! known exactly: payment-gateway, merchant-service, settlement-service,
//! withdrawal-service and merchant-auth-service.
//!
//! Their clients behave like the platform's shared client library: one gobreaker-style
//! breaker per downstream wrapping a retry loop ([`client`]). Every number is
//! configurable per client ([`ClientSettings`], [`ServiceConfig::time_scale`]) and
//! defect switches ([`Defect`]) reproduce the mistakes real teams ship.
//!
//! ```no_run
//! use std::time::Duration;
//! use reference_stack::{Downstream, ServiceConfig, State};
//!
//! # async fn demo() -> Result<(), reference_stack::StartError> {
//! let gateway = reference_stack::start(
//!     ServiceConfig::gateway()
//!         .downstream_url(Downstream::Order, "http://127.0.0.1:9004")
//!         .time_scale(0.01),
//! )
//! .await?;
//! println!("gateway at {}", gateway.url());
//! gateway
//!     .wait_for_breaker(Downstream::Order, State::Open, Duration::from_secs(5))
//!     .await;
//! for t in gateway.breaker_transitions() {
//!     println!("{} {} -> {} at {}", t.downstream, t.from, t.to, t.timestamp());
//! }
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod defects;
pub mod observe;
pub mod store;
pub mod topology;

mod api;
mod server;
mod services;

pub use client::{
    Breaker, BreakerConfig, BreakerFlavour, BreakerSettings, CallError, DownstreamClient,
    FlavouredBreaker, Request, State,
};
pub use config::{ClientSettings, ConfigError, MerchantCredentials, ServiceConfig};
pub use defects::{Defect, Defects};
pub use observe::BreakerTransition;
pub use server::{RunningService, RunningStack, StackConfig, StartError, start, start_all};
pub use services::auth::password_hash;
pub use services::gateway::signature::{SignatureVersion, sign};
pub use topology::{Downstream, ServiceKind};
