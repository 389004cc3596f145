//! Preflight: before any load, prove every wire. Each service the journeys
//! call must answer, and one request of each journey must reach every
//! injector it is expected to reach. A SUT pointed at a wrong port fails
//! here, with the wire named, instead of producing a misleading verdict.

use std::time::{Duration, Instant};

use platform_contract::Downstream;

use super::{Stack, StackError};
use crate::load::journeys::{Call, Caller};
use crate::platform::injector_name;
use crate::scenario::Scenario;

/// How long arrivals at the injectors are awaited.
const WAIT: Duration = Duration::from_secs(5);

/// Checks every service and wire the scenario's journeys use.
pub async fn check(stack: &Stack, scenario: &Scenario, caller: &Caller) -> Result<(), StackError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(scenario.load.timeout)
        .build()
        .map_err(|e| StackError::Wires(vec![format!("cannot build an HTTP client: {e}")]))?;
    let mut problems = Problems::default();
    for journey in &scenario.load.journeys {
        let service = journey.kind.entry();
        let Some(base) = stack.services.get(&service) else {
            problems.wiring.push(format!(
                "no URL for {} (journey `{}`)",
                service.name(),
                journey.name
            ));
            continue;
        };
        let ready = &scenario.sut.ready_path;
        match client.get(format!("{base}{ready}")).send().await {
            Err(e) => {
                return Err(StackError::Unreachable {
                    service: service.name(),
                    url: base.clone(),
                    reason: e.to_string(),
                });
            }
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => problems.wiring.push(format!(
                "{} answers 404 on its readiness path {ready} ({base}{ready}); set [sut] ready_path to the path it serves",
                service.name()
            )),
            Ok(r) if !r.status().is_success() => problems.wiring.push(format!(
                "{} is not ready: {base}{ready} answered HTTP {}",
                service.name(),
                r.status().as_u16()
            )),
            Ok(_) => {}
        }
        let call = match journey.kind {
            crate::platform::JourneyKind::Payment => {
                caller.payment(&format!("preflight-{}", journey.name), 100)
            }
            kind => caller.first(kind, usize::MAX, 0),
        };
        let (status, body) = wire_check(
            stack,
            &client,
            base,
            &call,
            &journey.expects,
            service.name(),
            &mut problems,
        )
        .await;
        if journey.webhook {
            let trade = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|b| {
                    let payment_no = b["data"]["payment_no"].as_str()?.to_string();
                    let trade_no = b["data"]["channel_trade_no"].as_str()?.to_string();
                    Some((payment_no, trade_no))
                });
            let async_downstreams: Vec<Downstream> = journey
                .kind
                .async_downstreams(true)
                .iter()
                .copied()
                .filter(|d| stack.injector(*d).is_some())
                .collect();
            match trade {
                Some((payment_no, trade_no)) => {
                    let hook = caller.webhook(&payment_no, &trade_no);
                    wire_check(stack, &client, base, &hook, &async_downstreams, service.name(), &mut problems).await;
                }
                None => problems.wiring.push(format!(
                    "{} did not create the preflight payment (HTTP {}), so its webhook could not be checked",
                    service.name(),
                    status.map_or("-".into(), |s| s.to_string())
                )),
            }
        }
    }
    problems.into_result()
}

/// What preflight found wrong, by the part at fault.
#[derive(Default)]
struct Problems {
    /// The SUT does not reach an injector it should (or does not answer).
    wiring: Vec<String>,
    /// An injector's admin API could not be read: its wire was not judged.
    admin: Vec<String>,
}

impl Problems {
    /// An unreadable admin API is named first: until it answers, a silent
    /// wire says nothing about the SUT.
    fn into_result(self) -> Result<(), StackError> {
        match (self.admin.is_empty(), self.wiring.is_empty()) {
            (true, true) => Ok(()),
            (true, false) => Err(StackError::Wires(self.wiring)),
            (false, _) => Err(StackError::InjectorAdmin(
                self.admin
                    .into_iter()
                    .chain(
                        self.wiring
                            .into_iter()
                            .map(|w| format!("also (SUT wiring): {w}")),
                    )
                    .collect(),
            )),
        }
    }

    /// `injector`'s arrivals could not be read.
    fn unreadable(&mut self, injector: &str, why: &str) {
        let problem = format!(
            "cannot read the arrivals of injector {injector} ({why}); the SUT's wire to it was not judged. Check that the injectors (their container, or the fault-injector process) are up and their admin API answers"
        );
        if !self.admin.contains(&problem) {
            self.admin.push(problem);
        }
    }
}

/// Sends `call` to `base` and, while it is in flight, waits until every
/// injector of `expects` saw a new arrival; records a problem per injector
/// that saw nothing. The request itself may take long (a miswired SUT retries
/// before it degrades), so arrivals decide, not the answer.
async fn wire_check(
    stack: &Stack,
    client: &reqwest::Client,
    base: &str,
    call: &Call,
    expects: &[Downstream],
    service: &str,
    problems: &mut Problems,
) -> (Option<u16>, Vec<u8>) {
    let mut before: Vec<(Downstream, u64)> = Vec::new();
    for d in expects {
        if let Some(i) = stack.injector(*d) {
            match i.read_counters().await {
                Ok(c) => before.push((*d, c.attempts)),
                Err(why) => problems.unreadable(i.name(), &why),
            }
        }
    }
    let mut request = client.request(call.method.clone(), format!("{base}{}", call.path));
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    let answer = tokio::spawn(async move {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Ok::<_, String>((status, body))
    });
    let deadline = Instant::now() + WAIT;
    let mut unreadable: Vec<Downstream> = Vec::new();
    let missing = loop {
        let mut missing: Vec<Downstream> = Vec::new();
        for (d, n) in &before {
            let Some(i) = stack.injector(*d) else {
                continue;
            };
            match i.read_counters().await {
                Ok(c) if c.attempts <= *n => missing.push(*d),
                Ok(_) => {}
                Err(why) => {
                    // Not the SUT's fault: the wire is judged no further.
                    problems.unreadable(i.name(), &why);
                    unreadable.push(*d);
                }
            }
        }
        before.retain(|(d, _)| !unreadable.contains(d));
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let answered = if missing.is_empty() {
        answer.await.unwrap_or_else(|e| Err(e.to_string()))
    } else {
        // The verdict on the wires is in; do not wait for a slow answer.
        answer.abort();
        Err("no answer yet".into())
    };
    let (status, body) = match answered {
        Ok((status, body)) => (Some(status), body),
        Err(e) => {
            if missing.is_empty() && unreadable.is_empty() {
                problems.wiring.push(format!(
                    "{} {} on {service} failed: {e}",
                    call.method, call.path
                ));
            }
            (None, Vec::new())
        }
    };
    for d in missing {
        let injector_url = stack.injector(d).map(|i| i.url()).unwrap_or_default();
        let wired = stack.wiring.get(&d).cloned().unwrap_or_default();
        let hint = if !wired.is_empty() && wired != injector_url {
            format!(" It was given {wired}.")
        } else {
            String::new()
        };
        problems.wiring.push(format!(
            "{service} never called {}: {} {} ({}) sent nothing to its injector at {injector_url} within {}s. Point {service}'s {} at {injector_url}.{hint}",
            injector_name(d),
            call.method,
            call.path,
            status.map_or("no answer yet".into(), |s| format!("answered HTTP {s}")),
            WAIT.as_secs(),
            d.url_env_var(),
        ));
    }
    (status, body)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fault_injectors::{AdminClient, Clock, Injector, InjectorSet, admin};
    use platform_contract::ServiceKind;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::scenario::StackKind;
    use crate::stack::injectors::{InjectorHandle, RemoteInjector};

    /// A payment journey that must reach order-service, on an external SUT
    /// that answers every request 200 and calls nobody.
    async fn setup() -> (MockServer, Scenario, Caller) {
        let sut = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .mount(&sut)
            .await;
        let text = format!(
            r#"duration = "10s"
[stack]
kind = "external"
[stack.services]
payment-gateway = "{}"
[stack.injectors.order-service]
listen = "127.0.0.1:0"
[load]
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 1
expects = ["order-service"]
"#,
            sut.uri()
        );
        let scenario = Scenario::parse(std::path::Path::new("preflight.toml"), &text, None)
            .and_then(crate::scenario::Parsed::finish)
            .unwrap_or_else(|e| panic!("{e}"));
        let caller = Caller::new(scenario.merchant.clone(), "FLTEST");
        (sut, scenario, caller)
    }

    /// The order-service injector behind a running admin API, as a Docker
    /// stack's injectors are.
    async fn remote_stack(sut: &MockServer) -> (Stack, admin::AdminServer, Injector) {
        let injector = Injector::builder("order-service")
            .start()
            .await
            .expect("injector");
        let set = InjectorSet::new(vec![injector.clone()]).expect("set");
        let server = admin::serve(set, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("admin API");
        let clock = Clock::start();
        let remote = RemoteInjector::connect(
            "order-service",
            injector.url(),
            AdminClient::new(server.url()),
            clock,
        )
        .await
        .expect("admin API answers");
        let stack = Stack {
            kind: StackKind::External,
            services: BTreeMap::from([(ServiceKind::PaymentGateway, sut.uri())]),
            injectors: vec![InjectorHandle::Remote(remote)],
            clock,
            wiring: BTreeMap::new(),
            embedded: None,
            docker: None,
        };
        (stack, server, injector)
    }

    #[tokio::test]
    async fn an_unreadable_admin_api_is_named_and_the_sut_is_not_blamed() {
        let (sut, scenario, caller) = setup().await;
        let (stack, server, injector) = remote_stack(&sut).await;
        let admin_url = server.url();
        server.shutdown().await;
        let err = check(&stack, &scenario, &caller)
            .await
            .expect_err("nothing can prove the wire");
        let text = err.to_string();
        assert!(
            matches!(err, StackError::InjectorAdmin(_)),
            "wrong part blamed: {text}"
        );
        assert!(text.contains("injectors' admin API"), "{text}");
        assert!(
            text.contains(&admin_url),
            "the admin URL is not named: {text}"
        );
        assert!(!text.contains("never called"), "the SUT is blamed: {text}");
        injector.shutdown().await;
    }

    #[tokio::test]
    async fn a_readable_admin_api_and_a_silent_wire_blame_the_sut_wiring() {
        let (sut, scenario, caller) = setup().await;
        let (stack, server, injector) = remote_stack(&sut).await;
        let err = check(&stack, &scenario, &caller)
            .await
            .expect_err("the SUT never calls order-service");
        let text = err.to_string();
        assert!(matches!(err, StackError::Wires(_)), "{text}");
        assert!(text.contains("SUT wiring"), "{text}");
        assert!(
            text.contains("payment-gateway never called order-service"),
            "{text}"
        );
        server.shutdown().await;
        injector.shutdown().await;
    }
}
