//! The payment platform's facts, written down once: what every other crate of
//! the workspace reads instead of keeping its own copy.
//!
//! - [`ServiceKind`]: the services of the stack under test (name, port, metric
//!   prefix, the routes each serves);
//! - [`Downstream`]: the services they call (injector name, short name, env
//!   var, default port and URL), and [`FRONTS`], the downstreams that are
//!   services of the stack itself;
//! - [`HOPS`]: who calls whom, on which route, awaited or in the background;
//!   [`Reach`] follows them from an entry route through the fronts;
//! - [`routes`]: every route as method, path pattern and name;
//! - [`BreakerState`]: the breaker states' names and gobreaker's numbers, and
//!   the gauge that carries them;
//! - [`ID_FIELDS`]: the business ids a downstream sees in request bodies.
//!
//! The reference stack, the fault injectors' stand-ins and the harness all
//! read these; their tests prove they agree with them (routes answered, hops
//! called, ports and env vars in `docker-compose.yml`).
//!
//! ```
//! use platform_contract::{Downstream, Reach, ServiceKind, routes};
//!
//! assert_eq!(Downstream::Order.injector_name(), "order-service");
//! assert_eq!(Downstream::Order.url_env_var(), "ORDER_SERVICE_URL");
//! // A settlement reaches withdrawal-service through its front, and the bank
//! // through withdrawal-service.
//! let reach = Reach::of(ServiceKind::SettlementService, routes::SETTLEMENT_CREATE);
//! assert_eq!(
//!     reach.on_request_path(),
//!     [Downstream::Accounting, Downstream::Withdrawal, Downstream::Bank]
//! );
//! assert_eq!(reach.in_background(), [Downstream::Notification]);
//! ```

#![warn(missing_docs)]

mod breaker;
mod downstream;
mod hop;
pub mod routes;
mod service;

pub use breaker::{BREAKER_GAUGE, BREAKER_GAUGE_DOWNSTREAM_LABEL, BreakerState};
pub use downstream::{Downstream, FRONTS};
pub use hop::{HOPS, Hop, Mode, Reach, Reached};
pub use routes::{Method, Route};
pub use service::ServiceKind;

/// The body field carrying a merchant's order number (unique per payment).
pub const ORDER_NO: &str = "order_no";
/// The body field carrying the gateway's payment number.
pub const PAYMENT_NO: &str = "payment_no";
/// The business ids the platform forwards in top-level JSON body fields: a
/// repeat of one at a downstream is a repeated side effect unless it is an
/// idempotent replay.
pub const ID_FIELDS: [&str; 2] = [ORDER_NO, PAYMENT_NO];
