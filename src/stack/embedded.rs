//! The embedded stack: the reference stack's five services and an injector
//! for every downstream, all in this process.
//!
//! External downstreams (risk, order, channel, ...) get stand-ins. The
//! downstreams that are services of the stack ([`FRONTS`]: merchant-service →
//! payment-gateway, settlement-service → withdrawal-service) get injectors in
//! front mode, so those hops can be faulted too.

use std::collections::BTreeMap;

use platform_contract::{Downstream, FRONTS, ServiceKind};
use reference_stack::{BreakerTransition, RunningService};

use super::{Injectors, Stack, StackError, service_config};
use crate::scenario::{Scenario, StackKind};

/// The services running in this process.
pub(super) struct Sut {
    services: Vec<RunningService>,
}

impl Sut {
    pub(super) fn transitions(&self) -> Vec<BreakerTransition> {
        let mut all: Vec<BreakerTransition> = self
            .services
            .iter()
            .flat_map(RunningService::breaker_transitions)
            .collect();
        all.sort_by_key(|t| t.at);
        all
    }

    pub(super) async fn shutdown(self) {
        for service in self.services {
            service.shutdown().await;
        }
    }
}

pub(super) async fn start(
    scenario: &Scenario,
    injectors: &Injectors<'_>,
) -> Result<Stack, StackError> {
    let plan = &scenario.stack;
    let mut started = Vec::new();
    for downstream in Downstream::ALL {
        if downstream.fronts().is_some() {
            continue;
        }
        let placement = plan.injectors.get(&downstream);
        started.push(
            injectors
                .start(
                    downstream,
                    placement.and_then(|p| p.listen),
                    placement.and_then(|p| p.upstream.as_deref()),
                )
                .await?,
        );
    }
    let mut wiring: BTreeMap<Downstream, String> = started
        .iter()
        .filter_map(|i| crate::platform::downstream_named(i.name()).map(|d| (d, i.url())))
        .collect();
    wiring.extend(plan.wiring.clone());

    // Services called by other services start first, then their front
    // injectors, then the services that call them.
    let mut services = Vec::new();
    for (downstream, kind) in FRONTS {
        let service = reference_stack::start(service_config(scenario, kind, &wiring)).await?;
        let placement = plan.injectors.get(&downstream);
        let front = injectors
            .start(
                downstream,
                placement.and_then(|p| p.listen),
                Some(&service.url()),
            )
            .await?;
        if !plan.wiring.contains_key(&downstream) {
            wiring.insert(downstream, front.url());
        }
        started.push(front);
        services.push(service);
    }
    for kind in ServiceKind::ALL {
        if FRONTS.iter().any(|(_, fronted)| *fronted == kind) {
            continue;
        }
        services.push(reference_stack::start(service_config(scenario, kind, &wiring)).await?);
    }
    let urls = services.iter().map(|s| (s.kind(), s.url())).collect();
    Ok(Stack {
        kind: StackKind::Embedded,
        services: urls,
        injectors: super::local(started)?,
        clock: injectors.clock,
        wiring,
        embedded: Some(Sut { services }),
        docker: None,
    })
}
