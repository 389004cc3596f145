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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::time::{Duration, Instant};

    use fault_injectors::{Delay, Fault, PathPattern, Target};
    use http::Method;
    use platform_contract::{HOPS, Reach, Route, routes};
    use serde_json::{Value, json};

    use super::*;
    use crate::load::journeys::{Call, Caller};

    /// Arrivals by injector and route name.
    type Arrivals = BTreeMap<(String, String), u64>;

    /// The latency set on a hop the contract says its caller waits for: the
    /// answer takes at least that long.
    const HOLD_AWAITED: Duration = Duration::from_millis(100);
    /// The latency set on a hop the contract says runs in the background:
    /// the answer comes well before it ends, however loaded the machine.
    const HOLD_BACKGROUND: Duration = Duration::from_secs(2);

    async fn arrivals(stack: &Stack) -> Arrivals {
        let mut all = Arrivals::new();
        for injector in &stack.injectors {
            let counters = injector.read_counters().await.expect("counters");
            for (route, n) in counters.by_route {
                all.insert((injector.name().to_string(), route), n);
            }
        }
        all
    }

    /// Sends `call` to `service` and checks that the injectors then see
    /// exactly `expected` (background hops included: they are awaited
    /// here, so nothing of this request reaches the next one's count).
    /// Returns the answer and how long it took.
    async fn send(
        stack: &Stack,
        service: ServiceKind,
        call: &Call,
        expected: &Arrivals,
    ) -> (Value, Duration) {
        let before = arrivals(stack).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let url = format!("{}{}", stack.services[&service], call.path);
        let mut request = client.request(call.method.clone(), url);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let sent = Instant::now();
        let response = request.send().await.expect("an answer");
        let took = sent.elapsed();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{service} {}: {status} {body}",
            call.path
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen: Arrivals = arrivals(stack)
                .await
                .into_iter()
                .filter_map(|(key, n)| {
                    let new = n - before.get(&key).copied().unwrap_or(0);
                    (new > 0).then_some((key, new))
                })
                .collect();
            if seen == *expected || Instant::now() >= deadline {
                assert_eq!(seen, *expected, "{service} {}", call.path);
                return (body, took);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Checks `service`'s `route` against the contract with requests from
    /// `next`: each reaches exactly the routes the contract lists, each time,
    /// and with latency on one hop the answer waits for it exactly when the
    /// contract says the request path does. Returns the first answer.
    async fn exercise(
        stack: &Stack,
        covered: &mut BTreeSet<(ServiceKind, Route)>,
        service: ServiceKind,
        route: Route,
        mut next: impl FnMut() -> Call,
    ) -> Value {
        covered.insert((service, route));
        let reach = Reach::of(service, route);
        let mut expected = Arrivals::new();
        // (downstream, route) -> awaited on the request path
        let mut awaited: BTreeMap<(Downstream, Route), bool> = BTreeMap::new();
        for reached in reach.hops() {
            let hop = reached.hop;
            let key = (
                hop.downstream.injector_name().into(),
                hop.route.name().into(),
            );
            *expected.entry(key).or_default() += 1;
            *awaited.entry((hop.downstream, hop.route)).or_default() |= !reached.in_background;
        }
        let call = next();
        let path = call.path.split('?').next().unwrap_or_default();
        assert!(
            route.matches(call.method.as_str(), path),
            "{path} is not {route}"
        );
        let (answer, _) = send(stack, service, &call, &expected).await;
        for ((downstream, hop), on_path) in awaited {
            let hold = if on_path {
                HOLD_AWAITED
            } else {
                HOLD_BACKGROUND
            };
            let injector = stack.injector(downstream).expect("an injector");
            let target = Target {
                method: Some(hop.method().as_str().parse().expect("method")),
                path: Some(PathPattern::parse(hop.path()).expect("pattern")),
            };
            let id = injector
                .inject(Fault {
                    target,
                    ..Fault::latency(Delay::Fixed(hold))
                })
                .await
                .expect("latency set");
            let (_, took) = send(stack, service, &next(), &expected).await;
            assert!(injector.clear_fault(&id).await, "latency cleared");
            assert_eq!(
                took >= hold,
                on_path,
                "{service} {route} took {took:?} with {hold:?} on {} {hop}",
                downstream.injector_name()
            );
        }
        answer
    }

    fn json_call(path: &str, body: &Value) -> Call {
        Call {
            method: Method::POST,
            path: path.into(),
            headers: vec![("Content-Type", "application/json".into())],
            body: Some(body.to_string().into_bytes().into()),
            id: 0,
        }
    }

    /// The contract's hops are what the reference stack does: every route
    /// with hops, sent to the embedded stack, reaches exactly the routes the
    /// contract lists at the injectors standing for its downstreams, through
    /// the fronts too, waiting for exactly the hops on its request path —
    /// and the stand-ins answer each of them.
    #[tokio::test]
    async fn every_request_reaches_exactly_the_contracts_hops() {
        let text = "duration = \"10s\"\n[[load.journeys]]\nkind = \"login\"\nrate = 1\n";
        let scenario = Scenario::parse(Path::new("hops.toml"), text, None)
            .and_then(crate::scenario::Parsed::finish)
            .expect("valid");
        let out = std::env::temp_dir().join(format!("faultline-hops-{}", std::process::id()));
        let stack = Stack::start(&scenario, &out).await.expect("embedded stack");
        let caller = Caller::new(scenario.merchant.clone(), "HOPS");
        let merchant = &scenario.merchant;
        let mut covered = BTreeSet::new();
        let covered = &mut covered;
        use ServiceKind::*;

        let mut n = 0;
        let mut payment = || {
            n += 1;
            caller.payment(&format!("HOPS-{n}"), 100)
        };
        let created = Reach::of(PaymentGateway, routes::PAYMENT_CREATE);
        exercise(
            &stack,
            covered,
            PaymentGateway,
            routes::PAYMENT_CREATE,
            &mut payment,
        )
        .await;
        // One payment to call back per webhook request.
        let mut expected = Arrivals::new();
        for reached in created.hops() {
            let hop = reached.hop;
            expected.insert(
                (
                    hop.downstream.injector_name().into(),
                    hop.route.name().into(),
                ),
                1,
            );
        }
        let mut webhooks = Vec::new();
        for _ in 0..=Reach::of(PaymentGateway, routes::WEBHOOK).hops().len() {
            let (answer, _) = send(&stack, PaymentGateway, &payment(), &expected).await;
            let data = &answer["data"];
            let (Some(payment_no), Some(trade_no)) = (
                data["payment_no"].as_str(),
                data["channel_trade_no"].as_str(),
            ) else {
                panic!("no payment to call back: {answer}");
            };
            webhooks.push(caller.webhook(payment_no, trade_no));
        }
        let mut webhooks = webhooks.into_iter();
        let webhook = || webhooks.next().expect("a payment to call back");
        exercise(&stack, covered, PaymentGateway, routes::WEBHOOK, webhook).await;
        let dashboard = || caller.dashboard();
        exercise(
            &stack,
            covered,
            MerchantService,
            routes::DASHBOARD,
            dashboard,
        )
        .await;
        let settlement = || caller.settlement();
        exercise(
            &stack,
            covered,
            SettlementService,
            routes::SETTLEMENT_CREATE,
            settlement,
        )
        .await;
        let withdrawal = || {
            json_call(
                "/api/v1/withdrawals",
                &json!({"merchant_id": merchant.id, "amount": 500, "currency": "USD"}),
            )
        };
        exercise(
            &stack,
            covered,
            WithdrawalService,
            routes::WITHDRAWAL_CREATE,
            withdrawal,
        )
        .await;
        let login = || caller.login();
        exercise(&stack, covered, MerchantAuthService, routes::LOGIN, login).await;
        let change = || {
            json_call(
                "/api/v1/auth/password",
                &json!({"merchant_id": merchant.id, "old_password": merchant.password, "new_password": "a-new-password"}),
            )
        };
        exercise(
            &stack,
            covered,
            MerchantAuthService,
            routes::PASSWORD_CHANGE,
            change,
        )
        .await;

        let entries: BTreeSet<(ServiceKind, Route)> =
            HOPS.iter().map(|h| (h.caller, h.on)).collect();
        assert_eq!(*covered, entries, "a route with hops is not exercised here");
        stack.shutdown().await;
        let _ = std::fs::remove_dir_all(&out);
    }
}
