//! Who calls whom: every call a service of the stack makes to a downstream,
//! on which of its own routes, and whether the caller waits for it.

use crate::downstream::Downstream;
use crate::routes::{self, Route};
use crate::service::ServiceKind;

/// How a caller waits for a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Awaited on the request path; its failure fails the request, so the
    /// downstream is a hard dependency of the caller.
    Required,
    /// Awaited on the request path; its failure degrades the answer instead
    /// of failing it (a dashboard part left empty).
    Optional,
    /// Sent after the answer, fire-and-forget with the client's own async
    /// timeout; its failure is only logged. (The `sync_notification` defect
    /// awaits it instead: a mistake, not the contract.)
    Background,
}

impl Mode {
    /// Whether the caller waits for the hop before it answers.
    pub fn is_awaited(self) -> bool {
        self != Mode::Background
    }
}

/// One call a service of the stack makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The calling service.
    pub caller: ServiceKind,
    /// The caller's route whose handling makes the call.
    pub on: Route,
    /// The downstream called.
    pub downstream: Downstream,
    /// The route called on it.
    pub route: Route,
    /// Whether the caller waits for it.
    pub mode: Mode,
}

const fn hop(
    caller: ServiceKind,
    on: Route,
    downstream: Downstream,
    route: Route,
    mode: Mode,
) -> Hop {
    Hop {
        caller,
        on,
        downstream,
        route,
        mode,
    }
}

/// Every hop of the platform, each caller's in the order it makes them.
pub const HOPS: &[Hop] = {
    use Downstream::*;
    use Mode::*;
    use ServiceKind::*;
    use routes::*;
    &[
        // A payment: risk → order → channel, each awaited.
        hop(PaymentGateway, PAYMENT_CREATE, Risk, RISK_CHECK, Required),
        hop(
            PaymentGateway,
            PAYMENT_CREATE,
            Order,
            ORDER_CREATE,
            Required,
        ),
        hop(
            PaymentGateway,
            PAYMENT_CREATE,
            Channel,
            CHANNEL_PAYMENT,
            Required,
        ),
        // The channel's callback: the merchant and analytics are told in the
        // background; their outage must not slow or fail payments.
        hop(
            PaymentGateway,
            WEBHOOK,
            Notification,
            NOTIFICATION_CREATE,
            Background,
        ),
        hop(
            PaymentGateway,
            WEBHOOK,
            Analytics,
            ANALYTICS_EVENT,
            Background,
        ),
        // The dashboard: five parts fetched at once; a failed part degrades
        // the page.
        hop(
            MerchantService,
            DASHBOARD,
            Analytics,
            MERCHANT_STATISTICS,
            Optional,
        ),
        hop(
            MerchantService,
            DASHBOARD,
            Accounting,
            BALANCE_SUMMARY,
            Optional,
        ),
        hop(MerchantService, DASHBOARD, Risk, RISK_SUMMARY, Optional),
        hop(
            MerchantService,
            DASHBOARD,
            Notification,
            UNREAD_COUNT,
            Optional,
        ),
        hop(MerchantService, DASHBOARD, Gateway, PAYMENT_LIST, Optional),
        // A settlement: the period's transactions, then (when they add up to
        // more than zero) a withdrawal.
        hop(
            SettlementService,
            SETTLEMENT_CREATE,
            Accounting,
            TRANSACTIONS,
            Required,
        ),
        hop(
            SettlementService,
            SETTLEMENT_CREATE,
            Withdrawal,
            WITHDRAWAL_CREATE,
            Required,
        ),
        // A withdrawal: balance, debit, bank transfer; the merchant is told
        // in the background.
        hop(
            WithdrawalService,
            WITHDRAWAL_CREATE,
            Accounting,
            BALANCE_SUMMARY,
            Required,
        ),
        hop(
            WithdrawalService,
            WITHDRAWAL_CREATE,
            Accounting,
            TRANSACTION_CREATE,
            Required,
        ),
        hop(
            WithdrawalService,
            WITHDRAWAL_CREATE,
            Bank,
            BANK_TRANSFER,
            Required,
        ),
        hop(
            WithdrawalService,
            WITHDRAWAL_CREATE,
            Notification,
            NOTIFICATION_CREATE,
            Background,
        ),
        // Login and password change look the merchant up; a change then
        // stores the new hash.
        hop(
            MerchantAuthService,
            LOGIN,
            Merchant,
            MERCHANT_WITH_PASSWORD,
            Required,
        ),
        hop(
            MerchantAuthService,
            PASSWORD_CHANGE,
            Merchant,
            MERCHANT_WITH_PASSWORD,
            Required,
        ),
        hop(
            MerchantAuthService,
            PASSWORD_CHANGE,
            Merchant,
            MERCHANT_PASSWORD,
            Required,
        ),
    ]
};

/// A hop reached from an entry route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// The hop.
    pub hop: &'static Hop,
    /// Whether it happens after the entry request is answered: the hop is
    /// [`Mode::Background`] or comes after one on the way.
    pub in_background: bool,
}

/// Every hop one request reaches: the hops of its route, and through every
/// front ([`crate::FRONTS`]) the hops of the route the front forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    hops: Vec<Reached>,
}

impl Reach {
    /// What a request on `service`'s `route` reaches.
    pub fn of(service: ServiceKind, route: Route) -> Self {
        let mut hops = Vec::new();
        follow(service, route, false, &mut hops);
        Self { hops }
    }

    /// The hops reached, depth first in table order.
    pub fn hops(&self) -> &[Reached] {
        &self.hops
    }

    /// The downstreams the request reaches before it is answered, in the
    /// order first reached.
    pub fn on_request_path(&self) -> Vec<Downstream> {
        distinct(self.hops.iter().filter(|r| !r.in_background))
    }

    /// The downstreams the request reaches after it is answered.
    pub fn in_background(&self) -> Vec<Downstream> {
        distinct(self.hops.iter().filter(|r| r.in_background))
    }
}

fn follow(service: ServiceKind, route: Route, in_background: bool, out: &mut Vec<Reached>) {
    for hop in HOPS.iter().filter(|h| h.caller == service && h.on == route) {
        let in_background = in_background || !hop.mode.is_awaited();
        out.push(Reached { hop, in_background });
        // A front forwards the request as it is: the service behind it
        // handles the same route. Fronts point back in start order (a test
        // proves it), so this ends.
        if let Some(behind) = hop.downstream.fronts() {
            follow(behind, hop.route, in_background, out);
        }
    }
}

fn distinct<'a>(reached: impl Iterator<Item = &'a Reached>) -> Vec<Downstream> {
    let mut downstreams = Vec::new();
    for r in reached {
        if !downstreams.contains(&r.hop.downstream) {
            downstreams.push(r.hop.downstream);
        }
    }
    downstreams
}

#[cfg(test)]
mod tests {
    use super::*;
    use Downstream::*;

    #[test]
    fn every_hop_starts_on_a_route_its_caller_serves() {
        for hop in HOPS {
            assert!(
                hop.caller.routes().contains(&hop.on),
                "{} serves no {}",
                hop.caller,
                hop.on
            );
            assert!(hop.downstream.routes().contains(&hop.route));
        }
    }

    #[test]
    fn a_front_is_called_only_on_routes_its_service_serves() {
        for hop in HOPS {
            if let Some(service) = hop.downstream.fronts() {
                assert!(service.routes().contains(&hop.route), "{}", hop.route);
            }
        }
    }

    #[test]
    fn services_start_after_the_services_they_reach_through_fronts() {
        let position = |kind: ServiceKind| ServiceKind::ALL.iter().position(|k| *k == kind);
        for hop in HOPS {
            if let Some(behind) = hop.downstream.fronts() {
                assert!(position(behind) < position(hop.caller), "{}", hop.caller);
            }
        }
    }

    #[test]
    fn a_settlement_reaches_the_bank_through_the_withdrawal_front() {
        let reach = Reach::of(ServiceKind::SettlementService, routes::SETTLEMENT_CREATE);
        assert_eq!(reach.on_request_path(), [Accounting, Withdrawal, Bank]);
        assert_eq!(reach.in_background(), [Notification]);
        let routes: Vec<&str> = reach.hops().iter().map(|r| r.hop.route.name()).collect();
        assert_eq!(
            routes,
            [
                "GET /api/v1/transactions",
                "POST /api/v1/withdrawals",
                "GET /api/v1/balances/merchants/{id}/summary",
                "POST /api/v1/transactions",
                "POST /api/v1/bank/transfers",
                "POST /api/v1/notifications",
            ]
        );
    }

    #[test]
    fn the_dashboard_reaches_the_gateway_list_and_nothing_behind_it() {
        let reach = Reach::of(ServiceKind::MerchantService, routes::DASHBOARD);
        assert_eq!(
            reach.on_request_path(),
            [Analytics, Accounting, Risk, Notification, Gateway]
        );
        assert!(reach.in_background().is_empty());
    }

    #[test]
    fn a_webhook_reaches_everything_in_the_background() {
        let reach = Reach::of(ServiceKind::PaymentGateway, routes::WEBHOOK);
        assert!(reach.on_request_path().is_empty());
        assert_eq!(reach.in_background(), [Notification, Analytics]);
        assert!(
            Reach::of(ServiceKind::PaymentGateway, routes::PAYMENT_GET)
                .hops()
                .is_empty()
        );
    }
}
