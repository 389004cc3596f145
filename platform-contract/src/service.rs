//! The services of the stack under test: the platform's services that the
//! reference stack models and faultline drives.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use crate::downstream::Downstream;
use crate::hop::{HOPS, Mode};
use crate::routes::{self, Route};

/// A service of the stack under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// payment-gateway (40003): payments, webhooks.
    PaymentGateway,
    /// merchant-service (40002): the merchant dashboard.
    MerchantService,
    /// settlement-service (40013): settlements.
    SettlementService,
    /// withdrawal-service (40014): withdrawals.
    WithdrawalService,
    /// merchant-auth-service (40011): login and password change.
    MerchantAuthService,
}

/// What the platform says of one service.
struct Facts {
    name: &'static str,
    metric_prefix: &'static str,
    port: u16,
    routes: &'static [Route],
}

impl ServiceKind {
    /// Every service, in start order: a service reached through a front
    /// ([`crate::FRONTS`]) comes before the services that call it.
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::PaymentGateway,
        ServiceKind::WithdrawalService,
        ServiceKind::MerchantService,
        ServiceKind::SettlementService,
        ServiceKind::MerchantAuthService,
    ];

    const fn facts(self) -> Facts {
        use routes::*;
        match self {
            ServiceKind::PaymentGateway => Facts {
                name: "payment-gateway",
                metric_prefix: "payment_gateway",
                port: 40003,
                routes: &[PAYMENT_CREATE, PAYMENT_LIST, PAYMENT_GET, WEBHOOK],
            },
            ServiceKind::MerchantService => Facts {
                name: "merchant-service",
                metric_prefix: "merchant_service",
                port: 40002,
                routes: &[DASHBOARD],
            },
            ServiceKind::SettlementService => Facts {
                name: "settlement-service",
                metric_prefix: "settlement_service",
                port: 40013,
                routes: &[SETTLEMENT_CREATE, SETTLEMENT_GET],
            },
            ServiceKind::WithdrawalService => Facts {
                name: "withdrawal-service",
                metric_prefix: "withdrawal_service",
                port: 40014,
                routes: &[WITHDRAWAL_CREATE, WITHDRAWAL_GET],
            },
            ServiceKind::MerchantAuthService => Facts {
                name: "merchant-auth-service",
                metric_prefix: "merchant_auth_service",
                port: 40011,
                routes: &[LOGIN, PASSWORD_CHANGE],
            },
        }
    }

    /// The platform's name for the service (`payment-gateway`, ...).
    pub const fn name(self) -> &'static str {
        self.facts().name
    }

    /// The metric name prefix: the name with `-` turned into `_`.
    pub const fn metric_prefix(self) -> &'static str {
        self.facts().metric_prefix
    }

    /// The platform's default listen port.
    pub const fn default_port(self) -> u16 {
        self.facts().port
    }

    /// The business routes the service serves (health and metrics aside).
    pub const fn routes(self) -> &'static [Route] {
        self.facts().routes
    }

    /// The downstreams this service calls, each through its own client and
    /// breaker: every callee of its [`HOPS`], in the order the table first
    /// names them.
    pub fn downstreams(self) -> &'static [Downstream] {
        static DOWNSTREAMS: LazyLock<Vec<(ServiceKind, Vec<Downstream>)>> =
            LazyLock::new(|| callees(|_| true));
        of(&DOWNSTREAMS, self)
    }

    /// The downstreams without which the service cannot do its job: those it
    /// awaits on a request path with [`Mode::Required`]. Readiness fails while
    /// one of them is unreachable or its breaker is not closed.
    pub fn hard_dependencies(self) -> &'static [Downstream] {
        static HARD: LazyLock<Vec<(ServiceKind, Vec<Downstream>)>> =
            LazyLock::new(|| callees(|mode| mode == Mode::Required));
        of(&HARD, self)
    }
}

/// For every service, the distinct downstreams of its hops whose mode
/// passes `keep`, in table order.
fn callees(keep: impl Fn(Mode) -> bool) -> Vec<(ServiceKind, Vec<Downstream>)> {
    ServiceKind::ALL
        .into_iter()
        .map(|kind| {
            let mut downstreams = Vec::new();
            for hop in HOPS.iter().filter(|h| h.caller == kind && keep(h.mode)) {
                if !downstreams.contains(&hop.downstream) {
                    downstreams.push(hop.downstream);
                }
            }
            (kind, downstreams)
        })
        .collect()
}

fn of(
    table: &'static [(ServiceKind, Vec<Downstream>)],
    kind: ServiceKind,
) -> &'static [Downstream] {
    table
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, downstreams)| downstreams.as_slice())
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown service {s:?} (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Downstream::*;

    #[test]
    fn downstreams_and_hard_dependencies_follow_the_hops() {
        let expected: [(ServiceKind, &[Downstream], &[Downstream]); 5] = [
            (
                ServiceKind::PaymentGateway,
                &[Risk, Order, Channel, Notification, Analytics],
                &[Risk, Order, Channel],
            ),
            (
                ServiceKind::MerchantService,
                &[Analytics, Accounting, Risk, Notification, Gateway],
                &[],
            ),
            (
                ServiceKind::SettlementService,
                &[Accounting, Withdrawal],
                &[Accounting, Withdrawal],
            ),
            (
                ServiceKind::WithdrawalService,
                &[Accounting, Bank, Notification],
                &[Accounting, Bank],
            ),
            (ServiceKind::MerchantAuthService, &[Merchant], &[Merchant]),
        ];
        for (kind, downstreams, hard) in expected {
            assert_eq!(kind.downstreams(), downstreams, "{kind}");
            assert_eq!(kind.hard_dependencies(), hard, "{kind}");
        }
    }

    #[test]
    fn names_parse_back_and_prefixes_follow_names() {
        for kind in ServiceKind::ALL {
            assert_eq!(kind.name().parse::<ServiceKind>(), Ok(kind));
            assert_eq!(kind.metric_prefix(), kind.name().replace('-', "_"));
        }
        let err = "nope".parse::<ServiceKind>().expect_err("unknown");
        assert!(
            err.contains("known: payment-gateway, withdrawal-service"),
            "{err}"
        );
    }

    #[test]
    fn ports_are_distinct() {
        let mut ports: Vec<u16> = ServiceKind::ALL.map(ServiceKind::default_port).to_vec();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), ServiceKind::ALL.len());
    }
}
