//! Every route of the platform that the stack serves or calls: a method, a
//! path pattern whose `{...}` segments stand for one path segment each, and a
//! name (`GET /api/v1/risk/merchants/{id}/summary`) that counters and
//! reports use.
//!
//! Downstream routes name their ids `{id}`, the way the injectors fold ids
//! in the routes they count, so a route's name reads the same everywhere.

use std::fmt;

/// An HTTP method the platform uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

impl Method {
    /// The method as HTTP writes it (`GET`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route: method and path pattern.
///
/// Routes are constants of this module, so code can match on them:
/// `match route { routes::ORDER_CREATE => ..., _ => ... }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    method: Method,
    path: &'static str,
    name: &'static str,
}

/// A route constant, its method written as HTTP writes it: the name is the
/// method and the path, written once.
macro_rules! route {
    (GET $path:literal) => {
        route!(@ Get "GET" $path)
    };
    (POST $path:literal) => {
        route!(@ Post "POST" $path)
    };
    (PUT $path:literal) => {
        route!(@ Put "PUT" $path)
    };
    (@ $method:ident $verb:literal $path:literal) => {
        Route {
            method: Method::$method,
            path: $path,
            name: concat!($verb, " ", $path),
        }
    };
}

impl Route {
    /// The method.
    pub const fn method(&self) -> Method {
        self.method
    }

    /// The path pattern (`/api/v1/risk/merchants/{id}/summary`).
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// The route's name: `METHOD path-pattern`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Whether a request with `method` on `path` (without its query) takes
    /// this route: every segment equal, a `{...}` segment matching any one
    /// non-empty segment.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if method != self.method.as_str() {
            return false;
        }
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if is_placeholder(w) && !g.is_empty() => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

fn is_placeholder(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

// --- Routes the stack's services serve -------------------------------------

/// payment-gateway: a merchant creates a payment (signed).
pub const PAYMENT_CREATE: Route = route!(POST "/api/v1/payments");
/// payment-gateway: a merchant's payments (`?merchant_id=`); the dashboard's
/// payments part.
pub const PAYMENT_LIST: Route = route!(GET "/api/v1/payments");
/// payment-gateway: one payment.
pub const PAYMENT_GET: Route = route!(GET "/api/v1/payments/{payment_no}");
/// payment-gateway: a channel's callback with a payment's outcome.
pub const WEBHOOK: Route = route!(POST "/api/v1/webhooks/{channel}");
/// merchant-service: the merchant dashboard.
pub const DASHBOARD: Route = route!(GET "/api/v1/merchants/{id}/dashboard");
/// settlement-service: settle a merchant's period.
pub const SETTLEMENT_CREATE: Route = route!(POST "/api/v1/settlements");
/// settlement-service: one settlement.
pub const SETTLEMENT_GET: Route = route!(GET "/api/v1/settlements/{settlement_no}");
/// withdrawal-service: withdraw a merchant's balance to the bank.
pub const WITHDRAWAL_CREATE: Route = route!(POST "/api/v1/withdrawals");
/// withdrawal-service: one withdrawal.
pub const WITHDRAWAL_GET: Route = route!(GET "/api/v1/withdrawals/{withdrawal_no}");
/// merchant-auth-service: a merchant logs in.
pub const LOGIN: Route = route!(POST "/api/v1/auth/login");
/// merchant-auth-service: a merchant changes the password.
pub const PASSWORD_CHANGE: Route = route!(POST "/api/v1/auth/password");

// --- Routes the services call on downstreams outside the stack -------------

/// risk-service: judge a payment.
pub const RISK_CHECK: Route = route!(POST "/api/v1/risk/check");
/// risk-service: a merchant's risk summary (dashboard).
pub const RISK_SUMMARY: Route = route!(GET "/api/v1/risk/merchants/{id}/summary");
/// order-service: create the order of a payment.
pub const ORDER_CREATE: Route = route!(POST "/api/v1/orders");
/// channel-adapter: start the payment at the channel.
pub const CHANNEL_PAYMENT: Route = route!(POST "/api/v1/channel/payment");
/// notification-service: notify a merchant.
pub const NOTIFICATION_CREATE: Route = route!(POST "/api/v1/notifications");
/// notification-service: a merchant's unread count (dashboard).
pub const UNREAD_COUNT: Route = route!(GET "/api/v1/notifications/merchants/{id}/unread/count");
/// analytics-service: record an event.
pub const ANALYTICS_EVENT: Route = route!(POST "/api/v1/events");
/// analytics-service: a merchant's statistics (dashboard).
pub const MERCHANT_STATISTICS: Route = route!(GET "/api/v1/statistics/merchant/{id}");
/// accounting-service: a merchant's balance.
pub const BALANCE_SUMMARY: Route = route!(GET "/api/v1/balances/merchants/{id}/summary");
/// accounting-service: a merchant's transactions in a period
/// (`?merchant_id&start&end`).
pub const TRANSACTIONS: Route = route!(GET "/api/v1/transactions");
/// accounting-service: post a transaction.
pub const TRANSACTION_CREATE: Route = route!(POST "/api/v1/transactions");
/// merchant-service (the platform's merchant records): a merchant with its
/// password hash.
pub const MERCHANT_WITH_PASSWORD: Route = route!(GET "/api/v1/merchants/{id}/with-password");
/// merchant-service (the platform's merchant records): set a password hash.
pub const MERCHANT_PASSWORD: Route = route!(PUT "/api/v1/merchants/{id}/password");
/// The bank's API: transfer a withdrawal.
pub const BANK_TRANSFER: Route = route!(POST "/api/v1/bank/transfers");

// --- Routes every service answers -------------------------------------------

/// Health with one check per client: 200 healthy or degraded, 503 unhealthy.
pub const HEALTH: Route = route!(GET "/health");
/// Liveness: always 200.
pub const HEALTH_LIVE: Route = route!(GET "/health/live");
/// Readiness: 200 only when healthy.
pub const HEALTH_READY: Route = route!(GET "/health/ready");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_method_and_path() {
        assert_eq!(
            RISK_SUMMARY.name(),
            "GET /api/v1/risk/merchants/{id}/summary"
        );
        assert_eq!(
            MERCHANT_PASSWORD.name(),
            "PUT /api/v1/merchants/{id}/password"
        );
        assert_eq!(RISK_SUMMARY.method(), Method::Get);
        assert_eq!(RISK_SUMMARY.to_string(), RISK_SUMMARY.name());
    }

    #[test]
    fn placeholders_match_one_non_empty_segment() {
        let r = RISK_SUMMARY;
        assert!(r.matches("GET", "/api/v1/risk/merchants/M001/summary"));
        assert!(!r.matches("POST", "/api/v1/risk/merchants/M001/summary"));
        assert!(!r.matches("GET", "/api/v1/risk/merchants//summary"));
        assert!(!r.matches("GET", "/api/v1/risk/merchants/M/1/summary"));
        assert!(!r.matches("GET", "/api/v1/risk/merchants/M001/summary/x"));
        assert!(!r.matches("GET", "/api/v1/risk/merchants/M001"));
        assert!(ORDER_CREATE.matches("POST", "/api/v1/orders"));
        assert!(!ORDER_CREATE.matches("POST", "/api/v1/orders/"));
        assert!(!PAYMENT_LIST.matches("GET", "/api/v1/payments/P1"));
    }
}
