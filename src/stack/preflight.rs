//! Preflight: before any load, prove every wire. Each service the journeys
//! call must answer, and one request of each journey must reach every
//! injector it is expected to reach. A SUT pointed at a wrong port fails
//! here, with the wire named, instead of producing a misleading verdict.

use std::time::{Duration, Instant};

use reference_stack::Downstream;

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
    let mut problems = Vec::new();
    for journey in &scenario.load.journeys {
        let service = journey.kind.entry();
        let Some(base) = stack.services.get(&service) else {
            problems.push(format!(
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
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => problems.push(format!(
                "{} answers 404 on its readiness path {ready} ({base}{ready}); set [sut] ready_path to the path it serves",
                service.name()
            )),
            Ok(r) if !r.status().is_success() => problems.push(format!(
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
                None => problems.push(format!(
                    "{} did not create the preflight payment (HTTP {}), so its webhook could not be checked",
                    service.name(),
                    status.map_or("-".into(), |s| s.to_string())
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StackError::Wires(problems))
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
    problems: &mut Vec<String>,
) -> (Option<u16>, Vec<u8>) {
    let mut before: Vec<(Downstream, u64)> = Vec::new();
    for d in expects {
        if let Some(i) = stack.injector(*d) {
            before.push((*d, i.counters().await.attempts));
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
    let missing = loop {
        let mut missing: Vec<Downstream> = Vec::new();
        for (d, n) in &before {
            if let Some(i) = stack.injector(*d)
                && i.counters().await.attempts <= *n
            {
                missing.push(*d);
            }
        }
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
            if missing.is_empty() {
                problems.push(format!(
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
        problems.push(format!(
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
