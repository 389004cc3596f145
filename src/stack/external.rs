//! The external stack: the SUT runs elsewhere (started by you, configured to
//! call its downstreams at fixed loopback ports); faultline starts the
//! injectors on those ports and drives the SUT at the URLs the scenario gives.

use super::{Injectors, Stack, StackError};
use crate::scenario::{Scenario, StackKind};

pub(super) async fn start(
    scenario: &Scenario,
    injectors: &Injectors<'_>,
) -> Result<Stack, StackError> {
    let mut started = Vec::new();
    for (downstream, placement) in &scenario.stack.injectors {
        started.push(
            injectors
                .start(*downstream, placement.listen, placement.upstream.as_deref())
                .await?,
        );
    }
    let wiring = started
        .iter()
        .filter_map(|i| crate::platform::downstream_named(i.name()).map(|d| (d, i.url())))
        .collect();
    Ok(Stack {
        kind: StackKind::External,
        services: scenario.stack.services.clone(),
        injectors: super::local(started)?,
        clock: injectors.clock,
        wiring,
        embedded: None,
        docker: None,
    })
}
