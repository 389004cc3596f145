//! `/health`, `/health/live`, `/health/ready`, `/metrics` and `/debug/breakers`.
//!
//! Health is passive: it is derived from each client's breaker state and the outcome
//! of its most recent attempt, and never sends a probe (the harness counts every
//! arrival at a downstream). Reading it never makes a change only a request would: a
//! gobreaker, pybreaker or resilience4j breaker whose open timeout has passed stays
//! "open" here until a request moves it to half-open. Timers do fire: an opossum breaker
//! past its reset timeout reads half-open, an Envoy host past its un-ejection sweep reads
//! closed, each transition stamped with its timer's instant ([`DownstreamClient::settle`]).
//!
//! [`DownstreamClient::settle`]: crate::client::DownstreamClient::settle
//!
//! Only hard dependencies decide the status: `unhealthy` when one is unreachable (its
//! last attempt failed to connect) or its breaker is open, `degraded` when one is
//! half-open, `healthy` otherwise. Soft dependencies are listed for information.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{ClientStatus, State as BreakerState};
use crate::observe::transitions::{TransitionJson, rfc3339_micros};
use crate::services::Core;

/// How many recent transitions `/debug/breakers` shows.
const DEBUG_TRANSITIONS: usize = 100;

/// A check's or the service's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    message: String,
    duration: String,
    metadata: Value,
}

#[derive(Debug, Serialize)]
struct Report {
    status: Status,
    timestamp: String,
    duration: String,
    checks: Vec<Check>,
}

/// The observation routes every service has.
pub(crate) fn routes() -> Router<Arc<Core>> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/debug/breakers", get(debug_breakers))
}

fn check(core: &Core, status: &ClientStatus) -> Check {
    let started = Instant::now();
    let hard = core.kind.hard_dependencies().contains(&status.downstream);
    let (raw, message) = match (status.state, &status.unreachable) {
        (Some(BreakerState::Open), _) => (Status::Unhealthy, "circuit breaker open".to_string()),
        (_, Some(reason)) => (Status::Unhealthy, format!("unreachable: {reason}")),
        (Some(BreakerState::HalfOpen), _) => {
            (Status::Degraded, "circuit breaker half-open".to_string())
        }
        _ => (Status::Healthy, "ok".to_string()),
    };
    // A soft dependency's trouble degrades the page it feeds, never the service.
    let status_of_check = if hard { raw } else { raw.min(Status::Degraded) };
    Check {
        name: status.downstream.name(),
        status: status_of_check,
        message,
        duration: format!("{:?}", started.elapsed()),
        metadata: json!({
            "hard_dependency": hard,
            "breaker_state": status.state.map(BreakerState::as_str),
            "requests": status.counts.requests,
            "total_failures": status.counts.total_failures,
            "consecutive_failures": status.counts.consecutive_failures,
            "last_attempt": status.last_outcome.map(|o| o.as_str()),
        }),
    }
}

fn report(core: &Core) -> Report {
    let started = Instant::now();
    let checks: Vec<Check> = core
        .clients
        .iter()
        .map(|client| check(core, &client.status()))
        .collect();
    let status = checks
        .iter()
        .filter(|c| {
            core.kind
                .hard_dependencies()
                .iter()
                .any(|d| d.name() == c.name)
        })
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Healthy);
    Report {
        status,
        timestamp: rfc3339_micros(SystemTime::now()),
        duration: format!("{:?}", started.elapsed()),
        checks,
    }
}

async fn health(State(core): State<Arc<Core>>) -> Response {
    let report = report(&core);
    let code = match report.status {
        Status::Healthy | Status::Degraded => StatusCode::OK,
        Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(report)).into_response()
}

async fn live() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

async fn ready(State(core): State<Arc<Core>>) -> Response {
    let report = report(&core);
    if report.status == Status::Healthy {
        return (StatusCode::OK, Json(json!({"status": "ready"}))).into_response();
    }
    let reason = report
        .checks
        .iter()
        .filter(|c| c.status != Status::Healthy)
        .filter(|c| {
            core.kind
                .hard_dependencies()
                .iter()
                .any(|d| d.name() == c.name)
        })
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect::<Vec<_>>()
        .join("; ");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not_ready", "reason": reason})),
    )
        .into_response()
}

async fn metrics(State(core): State<Arc<Core>>) -> Response {
    // Fire due breaker timers first, so the gauge shows what the libraries would.
    for client in &core.clients {
        client.settle();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        core.observer.metrics.render(),
    )
        .into_response()
}

/// Current breakers and recent transitions. The real platform has no such endpoint:
/// it exists so the harness can compare its black-box inference with the truth.
async fn debug_breakers(State(core): State<Arc<Core>>) -> Json<Value> {
    let breakers: Vec<Value> = core
        .clients
        .iter()
        .map(|client| {
            let status = client.status();
            let settings = client.settings();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            json!({
                "downstream": status.downstream.name(),
                "state": status.state.map(BreakerState::as_str),
                "settings": {
                    "breaker": settings.breaker.name(),
                    "max_requests": settings.max_requests,
                    "interval_ms": ms(settings.interval),
                    "open_timeout_ms": ms(settings.open_timeout),
                    "min_requests": settings.min_requests,
                    "failure_ratio": settings.failure_ratio,
                    "max_attempts": settings.max_attempts,
                    "retry_delay_ms": ms(settings.retry_delay),
                    "attempt_timeout_ms": ms(settings.attempt_timeout),
                    "async_timeout_ms": ms(settings.async_timeout),
                },
                "counts": {
                    "requests": status.counts.requests,
                    "total_successes": status.counts.total_successes,
                    "total_failures": status.counts.total_failures,
                    "consecutive_successes": status.counts.consecutive_successes,
                    "consecutive_failures": status.counts.consecutive_failures,
                },
            })
        })
        .collect();
    let history = core.observer.transitions.snapshot();
    let recent: Vec<TransitionJson> = history
        .iter()
        .skip(history.len().saturating_sub(DEBUG_TRANSITIONS))
        .map(TransitionJson::from)
        .collect();
    Json(json!({
        "service": core.kind.name(),
        "note": "debug endpoint of the reference stack; the real platform has none",
        "defects": core.defects,
        "breakers": breakers,
        "transitions": recent,
    }))
}
