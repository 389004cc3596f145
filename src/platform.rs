//! What faultline knows of the payment platform: the journeys its users make,
//! the service each enters by, the downstreams each reaches, and the names of
//! the injectors that stand in for those downstreams.

use std::fmt;

use reference_stack::{Downstream, ServiceKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One kind of user traffic.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JourneyKind {
    /// A merchant creates a payment: signed `POST /api/v1/payments` on the
    /// gateway (risk → order → channel), optionally followed by the channel's
    /// webhook callback.
    Payment,
    /// A merchant opens the dashboard: `GET /api/v1/merchants/{id}/dashboard`
    /// on merchant-service (five parts fetched in parallel).
    Dashboard,
    /// A settlement run: `POST /api/v1/settlements` on settlement-service
    /// (accounting, then a withdrawal).
    Settlement,
    /// A merchant logs in: `POST /api/v1/auth/login` on merchant-auth-service.
    Login,
}

impl JourneyKind {
    /// Every journey kind.
    pub const ALL: [JourneyKind; 4] = [
        JourneyKind::Payment,
        JourneyKind::Dashboard,
        JourneyKind::Settlement,
        JourneyKind::Login,
    ];

    /// The word used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            JourneyKind::Payment => "payment",
            JourneyKind::Dashboard => "dashboard",
            JourneyKind::Settlement => "settlement",
            JourneyKind::Login => "login",
        }
    }

    /// The service the journey's requests go to.
    pub fn entry(self) -> ServiceKind {
        match self {
            JourneyKind::Payment => ServiceKind::PaymentGateway,
            JourneyKind::Dashboard => ServiceKind::MerchantService,
            JourneyKind::Settlement => ServiceKind::SettlementService,
            JourneyKind::Login => ServiceKind::MerchantAuthService,
        }
    }

    /// Downstreams every request of the journey reaches on its request path
    /// (directly or through another service of the stack).
    pub fn downstreams(self) -> &'static [Downstream] {
        use Downstream::*;
        match self {
            JourneyKind::Payment => &[Risk, Order, Channel],
            JourneyKind::Dashboard => &[Analytics, Accounting, Risk, Notification, Gateway],
            JourneyKind::Settlement => &[Accounting, Withdrawal, Bank],
            JourneyKind::Login => &[Merchant],
        }
    }

    /// Downstreams reached off the request path (after the answer), when the
    /// journey includes its follow-up (the payment's webhook).
    pub fn async_downstreams(self, webhook: bool) -> &'static [Downstream] {
        match self {
            JourneyKind::Payment if webhook => &[Downstream::Notification, Downstream::Analytics],
            _ => &[],
        }
    }
}

impl fmt::Display for JourneyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The injector standing for `downstream`: the platform's name of that
/// service (`order-service`, `channel-adapter`, ...).
pub fn injector_name(downstream: Downstream) -> &'static str {
    match downstream {
        Downstream::Risk => "risk-service",
        Downstream::Order => "order-service",
        Downstream::Channel => "channel-adapter",
        Downstream::Notification => "notification-service",
        Downstream::Analytics => "analytics-service",
        Downstream::Accounting => "accounting-service",
        Downstream::Withdrawal => "withdrawal-service",
        Downstream::Merchant => "merchant-service",
        Downstream::Gateway => "payment-gateway",
        Downstream::Bank => "bank-api",
    }
}

/// The downstream an injector name stands for.
pub fn downstream_named(injector: &str) -> Option<Downstream> {
    Downstream::ALL
        .into_iter()
        .find(|d| injector_name(*d) == injector)
}

/// Every injector name of the platform, in a stable order.
pub fn injector_names() -> Vec<&'static str> {
    Downstream::ALL.into_iter().map(injector_name).collect()
}

/// The journeys (by kind) whose requests reach `downstream` on their
/// request path.
pub fn journeys_reaching(downstream: Downstream) -> Vec<JourneyKind> {
    JourneyKind::ALL
        .into_iter()
        .filter(|k| k.downstreams().contains(&downstream))
        .collect()
}

/// (De)serializes a downstream as its injector name, for reports:
/// `#[serde(with = "crate::platform::injector_serde")]`.
pub mod injector_serde {
    use reference_stack::Downstream;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the injector name.
    pub fn serialize<S: Serializer>(d: &Downstream, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::injector_name(*d))
    }

    /// Reads an injector name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Downstream, D::Error> {
        let name = String::deserialize(d)?;
        super::downstream_named(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown injector `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_names_round_trip() {
        for d in Downstream::ALL {
            assert_eq!(downstream_named(injector_name(d)), Some(d));
        }
        assert_eq!(downstream_named("nope"), None);
    }

    #[test]
    fn every_journey_enters_a_service_that_calls_its_first_downstreams() {
        for kind in JourneyKind::ALL {
            let direct = kind.entry().downstreams();
            assert!(
                kind.downstreams().iter().any(|d| direct.contains(d)),
                "{kind}"
            );
        }
        assert_eq!(
            journeys_reaching(Downstream::Order),
            vec![JourneyKind::Payment]
        );
    }
}
