//! What faultline knows of the payment platform: the journeys its users make,
//! the service and route each enters by, and the downstreams each reaches —
//! derived from the platform contract's hops ([`platform_contract::HOPS`]) —
//! and the names of the injectors that stand in for those downstreams.

use std::fmt;
use std::sync::LazyLock;

use platform_contract::{Downstream, Reach, Route, ServiceKind, routes};
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

    /// The route of the journey's request on its entry service.
    pub fn route(self) -> Route {
        match self {
            JourneyKind::Payment => routes::PAYMENT_CREATE,
            JourneyKind::Dashboard => routes::DASHBOARD,
            JourneyKind::Settlement => routes::SETTLEMENT_CREATE,
            JourneyKind::Login => routes::LOGIN,
        }
    }

    /// The route of the journey's follow-up on its entry service, when it
    /// has one: the channel's callback after a payment.
    pub fn follow_up(self) -> Option<Route> {
        match self {
            JourneyKind::Payment => Some(routes::WEBHOOK),
            JourneyKind::Dashboard | JourneyKind::Settlement | JourneyKind::Login => None,
        }
    }

    /// Downstreams every request of the journey reaches on its request path
    /// (directly or through another service of the stack): the awaited hops
    /// from its route, through the fronts.
    pub fn downstreams(self) -> &'static [Downstream] {
        &reach(self).on_path
    }

    /// Downstreams reached off the request path (after the answer), with the
    /// journey's follow-up (the payment's webhook) when `webhook` is set.
    pub fn async_downstreams(self, webhook: bool) -> &'static [Downstream] {
        let reach = reach(self);
        if webhook {
            &reach.with_follow_up
        } else {
            &reach.background
        }
    }
}

/// What a journey reaches, derived once from the contract.
struct JourneyReach {
    kind: JourneyKind,
    on_path: Vec<Downstream>,
    background: Vec<Downstream>,
    /// `background`, then everything the follow-up reaches.
    with_follow_up: Vec<Downstream>,
}

impl JourneyReach {
    fn of(kind: JourneyKind) -> Self {
        let main = Reach::of(kind.entry(), kind.route());
        let background = main.in_background();
        let mut with_follow_up = background.clone();
        if let Some(route) = kind.follow_up() {
            let follow_up = Reach::of(kind.entry(), route);
            for d in follow_up
                .on_request_path()
                .into_iter()
                .chain(follow_up.in_background())
            {
                if !with_follow_up.contains(&d) {
                    with_follow_up.push(d);
                }
            }
        }
        Self {
            kind,
            on_path: main.on_request_path(),
            background,
            with_follow_up,
        }
    }
}

fn reach(kind: JourneyKind) -> &'static JourneyReach {
    static REACH: LazyLock<Vec<JourneyReach>> =
        LazyLock::new(|| JourneyKind::ALL.into_iter().map(JourneyReach::of).collect());
    REACH
        .iter()
        .find(|r| r.kind == kind)
        .expect("JourneyKind::ALL holds every kind")
}

impl fmt::Display for JourneyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The injector standing for `downstream`: the platform's name of that
/// service (`order-service`, `channel-adapter`, ...), as the contract's
/// [`Downstream::injector_name`] (a function, for `map(injector_name)`).
pub fn injector_name(downstream: Downstream) -> &'static str {
    downstream.injector_name()
}

/// The downstream an injector name stands for.
pub fn downstream_named(injector: &str) -> Option<Downstream> {
    Downstream::from_injector_name(injector)
}

/// Every injector name of the platform, in a stable order.
pub fn injector_names() -> Vec<&'static str> {
    Downstream::INJECTOR_NAMES.to_vec()
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
    use platform_contract::Downstream;
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

    /// The lists written by hand before they were derived from the contract;
    /// the one addition is a settlement's background reach.
    #[test]
    fn derived_reaches_equal_the_lists_once_written_by_hand() {
        use Downstream::*;
        // (journey, on its request path, in the background, with the webhook)
        type Reaches = (
            JourneyKind,
            &'static [Downstream],
            &'static [Downstream],
            &'static [Downstream],
        );
        let expected: [Reaches; 4] = [
            (
                JourneyKind::Payment,
                &[Risk, Order, Channel],
                &[],
                &[Notification, Analytics],
            ),
            (
                JourneyKind::Dashboard,
                &[Analytics, Accounting, Risk, Notification, Gateway],
                &[],
                &[],
            ),
            // withdrawal-service tells the merchant in the background: a
            // settlement reaches notification-service after its answer.
            (
                JourneyKind::Settlement,
                &[Accounting, Withdrawal, Bank],
                &[Notification],
                &[Notification],
            ),
            (JourneyKind::Login, &[Merchant], &[], &[]),
        ];
        for (kind, on_path, background, with_webhook) in expected {
            assert_eq!(kind.downstreams(), on_path, "{kind}");
            assert_eq!(kind.async_downstreams(false), background, "{kind}");
            assert_eq!(kind.async_downstreams(true), with_webhook, "{kind}");
        }
    }

    #[test]
    fn every_journey_enters_by_a_route_its_service_serves() {
        for kind in JourneyKind::ALL {
            let served = kind.entry().routes();
            assert!(served.contains(&kind.route()), "{kind}");
            assert!(
                kind.follow_up().is_none_or(|r| served.contains(&r)),
                "{kind}"
            );
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
