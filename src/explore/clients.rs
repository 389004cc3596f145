//! The clients an exploration covers: each caller's calls to one
//! downstream, grouped from the platform contract's hops, each with a
//! journey that makes them and one that never reaches the downstream.

use std::collections::BTreeSet;
use std::path::Path;

use platform_contract::{HOPS, Mode, Reach};
use reference_stack::{Downstream, ServiceKind};

use super::{Client, ExploreError};
use crate::platform::{JourneyKind, downstream_named};

/// The platform's clients that a journey exercises, in the contract's
/// order; with `only`, those whose caller and downstream are among the
/// given services and injectors (an external stack).
pub fn clients(only: Option<(&BTreeSet<ServiceKind>, &BTreeSet<Downstream>)>) -> Vec<Client> {
    let mut out: Vec<Client> = Vec::new();
    for hop in HOPS {
        if only.is_some_and(|(services, injectors)| {
            !services.contains(&hop.caller) || !injectors.contains(&hop.downstream)
        }) {
            continue;
        }
        // A journey whose request (or its follow-up) makes this call.
        let Some((journey, follow_up, background)) = exercised_by(hop) else {
            continue;
        };
        let route = (
            hop.route.method().as_str().to_string(),
            hop.route.path().to_string(),
        );
        match out
            .iter_mut()
            .find(|c| c.caller == hop.caller && c.downstream == hop.downstream)
        {
            Some(client) => {
                if !client.routes.contains(&route) {
                    client.routes.push(route);
                }
            }
            None => out.push(Client {
                caller: hop.caller,
                downstream: hop.downstream,
                routes: vec![route],
                background: background || hop.mode == Mode::Background,
                journey,
                follow_up,
                // Cheap, stateless journeys first.
                unaffected: [
                    JourneyKind::Login,
                    JourneyKind::Dashboard,
                    JourneyKind::Payment,
                    JourneyKind::Settlement,
                ]
                .into_iter()
                .find(|j| !reaches(*j, hop.downstream)),
            }),
        }
    }
    out
}

/// The first journey whose request or follow-up reaches `hop`: whether
/// through the follow-up, and whether after the request was answered.
fn exercised_by(hop: &platform_contract::Hop) -> Option<(JourneyKind, bool, bool)> {
    JourneyKind::ALL.into_iter().find_map(|journey| {
        let routes =
            std::iter::once((journey.route(), false)).chain(journey.follow_up().map(|r| (r, true)));
        routes.into_iter().find_map(|(route, follow_up)| {
            Reach::of(journey.entry(), route)
                .hops()
                .iter()
                .find(|reached| reached.hop == hop)
                .map(|reached| (journey, follow_up, reached.in_background))
        })
    })
}

/// Whether any request of `journey` (or its follow-up) reaches `downstream`.
fn reaches(journey: JourneyKind, downstream: Downstream) -> bool {
    std::iter::once(journey.route())
        .chain(journey.follow_up())
        .any(|route| {
            Reach::of(journey.entry(), route)
                .hops()
                .iter()
                .any(|r| r.hop.downstream == downstream)
        })
}

/// An external stack's base scenario: its `[stack]`, `[sut]` and
/// `[merchant]` tables as TOML, and the services and injectors it lists.
pub(super) fn base(
    path: &Path,
) -> Result<(String, BTreeSet<ServiceKind>, BTreeSet<Downstream>), ExploreError> {
    let input = |why: String| ExploreError::Input(format!("--base {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| input(e.to_string()))?;
    let stack = table
        .get("stack")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| input("has no [stack] table".into()))?;
    let names = |key: &str| -> Vec<String> {
        stack
            .get(key)
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    let services: BTreeSet<ServiceKind> = names("services")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let injectors: BTreeSet<Downstream> = names("injectors")
        .iter()
        .filter_map(|n| downstream_named(n))
        .collect();
    let mut kept = toml::Table::new();
    for key in ["stack", "sut", "merchant"] {
        if let Some(v) = table.get(key) {
            kept.insert(key.into(), v.clone());
        }
    }
    let tables = toml::to_string(&kept).map_err(|e| input(e.to_string()))?;
    Ok((tables, services, injectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_of_the_platform_is_exercised_by_a_journey() {
        let all = clients(None);
        let names: Vec<String> = all.iter().map(Client::name).collect();
        assert_eq!(all.len(), 16, "{names:#?}");
        let order = all
            .iter()
            .find(|c| c.caller == ServiceKind::PaymentGateway && c.downstream == Downstream::Order)
            .expect("gateway → order");
        assert_eq!(order.journey, JourneyKind::Payment);
        assert!(!order.background);
        assert_eq!(
            order.routes,
            [("POST".to_string(), "/api/v1/orders".to_string())]
        );
        assert!(
            order
                .unaffected
                .is_some_and(|j| !reaches(j, Downstream::Order))
        );
        let push = all
            .iter()
            .find(|c| {
                c.caller == ServiceKind::PaymentGateway && c.downstream == Downstream::Notification
            })
            .expect("gateway → notification");
        assert!(push.background, "the callback's push is fire-and-forget");
        let ledger = all
            .iter()
            .find(|c| {
                c.caller == ServiceKind::WithdrawalService && c.downstream == Downstream::Accounting
            })
            .expect("withdrawal → accounting");
        assert_eq!(
            ledger.routes.len(),
            2,
            "balance and transaction: {ledger:?}"
        );
    }
}
