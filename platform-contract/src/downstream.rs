//! The services the stack's services call, and which of them are services of
//! the stack itself.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use crate::hop::HOPS;
use crate::routes::Route;
use crate::service::ServiceKind;

/// A service that the stack's services call: where an injector stands in a
/// faultline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Downstream {
    /// risk-service (40006).
    Risk,
    /// order-service (40004).
    Order,
    /// channel-adapter (40005).
    Channel,
    /// notification-service (40008).
    Notification,
    /// analytics-service (40009).
    Analytics,
    /// accounting-service (40007).
    Accounting,
    /// withdrawal-service (40014), as called by settlement.
    Withdrawal,
    /// merchant-service (40002), the platform's merchant records, as called
    /// by merchant-auth.
    Merchant,
    /// payment-gateway (40003), as called by merchant-service.
    Gateway,
    /// The external bank API (40099), as called by withdrawal.
    Bank,
}

/// The downstreams that are services of the stack itself, each with that
/// service: their callers reach them through an injector in front mode, so
/// the hop can be faulted too. Every other downstream gets a stand-in.
pub const FRONTS: [(Downstream, ServiceKind); 2] = [
    (Downstream::Gateway, ServiceKind::PaymentGateway),
    (Downstream::Withdrawal, ServiceKind::WithdrawalService),
];

/// What the platform says of one downstream.
struct Facts {
    name: &'static str,
    injector: &'static str,
    env: &'static str,
    port: u16,
}

impl Downstream {
    /// Every downstream.
    pub const ALL: [Downstream; 10] = [
        Downstream::Risk,
        Downstream::Order,
        Downstream::Channel,
        Downstream::Notification,
        Downstream::Analytics,
        Downstream::Accounting,
        Downstream::Withdrawal,
        Downstream::Merchant,
        Downstream::Gateway,
        Downstream::Bank,
    ];

    /// [`Downstream::injector_name`] of every downstream, in [`Downstream::ALL`] order.
    pub const INJECTOR_NAMES: [&'static str; 10] = {
        let mut names = [""; 10];
        let mut i = 0;
        while i < names.len() {
            names[i] = Downstream::ALL[i].injector_name();
            i += 1;
        }
        names
    };

    const fn facts(self) -> Facts {
        let (name, injector, env, port) = match self {
            Downstream::Risk => ("risk", "risk-service", "RISK_SERVICE_URL", 40006),
            Downstream::Order => ("order", "order-service", "ORDER_SERVICE_URL", 40004),
            Downstream::Channel => ("channel", "channel-adapter", "CHANNEL_SERVICE_URL", 40005),
            Downstream::Notification => (
                "notification",
                "notification-service",
                "NOTIFICATION_SERVICE_URL",
                40008,
            ),
            Downstream::Analytics => (
                "analytics",
                "analytics-service",
                "ANALYTICS_SERVICE_URL",
                40009,
            ),
            Downstream::Accounting => (
                "accounting",
                "accounting-service",
                "ACCOUNTING_SERVICE_URL",
                40007,
            ),
            Downstream::Withdrawal => (
                "withdrawal",
                "withdrawal-service",
                "WITHDRAWAL_SERVICE_URL",
                40014,
            ),
            Downstream::Merchant => (
                "merchant",
                "merchant-service",
                "MERCHANT_SERVICE_URL",
                40002,
            ),
            Downstream::Gateway => ("gateway", "payment-gateway", "GATEWAY_SERVICE_URL", 40003),
            Downstream::Bank => ("bank", "bank-api", "BANK_API_URL", 40099),
        };
        Facts {
            name,
            injector,
            env,
            port,
        }
    }

    /// The short name a service of the stack gives its client of this
    /// downstream: defect targets (`no_breaker@order`), per-client env var
    /// suffixes (`RETRY_MAX_ATTEMPTS_ORDER`), health checks, logs.
    pub const fn name(self) -> &'static str {
        self.facts().name
    }

    /// The platform's name of the service (`order-service`): the name of the
    /// injector standing for it, and the `downstream` label of the stack's
    /// metrics.
    pub const fn injector_name(self) -> &'static str {
        self.facts().injector
    }

    /// The downstream an injector name stands for.
    pub fn from_injector_name(injector: &str) -> Option<Downstream> {
        Downstream::ALL
            .into_iter()
            .find(|d| d.injector_name() == injector)
    }

    /// The env var the platform reads the base URL from.
    pub const fn url_env_var(self) -> &'static str {
        self.facts().env
    }

    /// The platform's default port for this downstream.
    pub const fn default_port(self) -> u16 {
        self.facts().port
    }

    /// The platform's default base URL, `http://localhost:<port>`.
    pub fn default_url(self) -> String {
        format!("http://localhost:{}", self.default_port())
    }

    /// The service of the stack this downstream is, when it is one
    /// ([`FRONTS`]).
    pub fn fronts(self) -> Option<ServiceKind> {
        FRONTS
            .iter()
            .find(|(d, _)| *d == self)
            .map(|(_, service)| *service)
    }

    /// The routes the stack calls on this downstream: those of its [`HOPS`],
    /// in table order.
    pub fn routes(self) -> &'static [Route] {
        static ROUTES: LazyLock<Vec<(Downstream, Vec<Route>)>> = LazyLock::new(|| {
            Downstream::ALL
                .into_iter()
                .map(|d| {
                    let mut routes = Vec::new();
                    for hop in HOPS.iter().filter(|h| h.downstream == d) {
                        if !routes.contains(&hop.route) {
                            routes.push(hop.route);
                        }
                    }
                    (d, routes)
                })
                .collect()
        });
        ROUTES
            .iter()
            .find(|(d, _)| *d == self)
            .map_or(&[], |(_, routes)| routes.as_slice())
    }
}

impl fmt::Display for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Downstream {
    type Err = String;

    /// Reads the short name ([`Downstream::name`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Downstream::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown downstream {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for d in Downstream::ALL {
            assert_eq!(Downstream::from_injector_name(d.injector_name()), Some(d));
            assert_eq!(d.name().parse::<Downstream>(), Ok(d));
            assert_eq!(d.to_string(), d.name());
        }
        assert_eq!(Downstream::from_injector_name("order"), None);
        assert!("order-service".parse::<Downstream>().is_err());
        assert_eq!(
            Downstream::INJECTOR_NAMES.to_vec(),
            Downstream::ALL.map(Downstream::injector_name).to_vec()
        );
        let mut names = Downstream::INJECTOR_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Downstream::ALL.len());
    }

    #[test]
    fn env_vars_and_urls_follow_the_platform() {
        for d in Downstream::ALL {
            let env = d.url_env_var();
            assert!(
                env.ends_with("_SERVICE_URL") || env.ends_with("_API_URL"),
                "{env}"
            );
            assert_eq!(
                d.default_url(),
                format!("http://localhost:{}", d.default_port())
            );
        }
    }

    #[test]
    fn fronts_carry_their_service_name_port_and_routes() {
        assert_eq!(
            Downstream::Gateway.fronts(),
            Some(ServiceKind::PaymentGateway)
        );
        assert_eq!(Downstream::Order.fronts(), None);
        for (d, service) in FRONTS {
            assert_eq!(d.injector_name(), service.name());
            assert_eq!(d.default_port(), service.default_port());
            for route in d.routes() {
                assert!(
                    service.routes().contains(route),
                    "{service} serves no {route}"
                );
            }
        }
    }

    #[test]
    fn every_downstream_has_routes() {
        for d in Downstream::ALL {
            assert!(!d.routes().is_empty(), "{d}");
        }
        assert_eq!(
            Downstream::Accounting.routes(),
            [
                routes::BALANCE_SUMMARY,
                routes::TRANSACTIONS,
                routes::TRANSACTION_CREATE
            ]
        );
    }
}
