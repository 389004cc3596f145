//! One request through an injector: resolve the route, decide the fault,
//! count the arrival, then delay, fail, hold or serve as decided.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::body::FaultBody;
use super::conn::ResetSwitch;
use crate::backend::{Forward, Resolved};
use crate::decide::{Action, Decision, Outcome};
use crate::identity::decision_identity;
use crate::injector::Core;
use crate::observe::{Arrival, Pending, RouteRef, extract_ids, id_hash};
use crate::program::{FaultControl, deadline_or_far};

/// Largest request body read; bigger ones get 413.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Returned to hyper to close the connection without a response (and, with
/// the reset switch pulled, with RST).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Aborted(&'static str);

pub(crate) async fn handle(
    core: Arc<Core>,
    reset: ResetSwitch,
    request: hyper::Request<Incoming>,
) -> Result<Response<FaultBody>, Aborted> {
    let arrived = Instant::now();
    // A request on a connection opened before a refuse outage started: the
    // accept loop is about to drop it; make sure it is not served meanwhile.
    if core.control.peek().refusing(Instant::now()) {
        reset.pull();
        return Err(Aborted("outage: refusing"));
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body unreadable or over {MAX_BODY} bytes: {e}"),
            ));
        }
    };
    let path = parts.uri.path();
    let wiremock_request = match core.backend.needs_request() {
        true => match to_wiremock(&parts, &body) {
            Some(r) => Some(r),
            None => return Ok(plain(StatusCode::BAD_REQUEST, "request URI unreadable")),
        },
        false => None,
    };
    let resolved = core.backend.resolve(wiremock_request.as_ref());
    let route = match &resolved {
        Resolved::StandIn(Some(r)) => r
            .name()
            .map_or(RouteRef::Request(&parts.method, path), RouteRef::Named),
        _ => RouteRef::Request(&parts.method, path),
    };

    let ids = match is_mutating(&parts.method) {
        true => extract_ids(core.observer.id_fields(), &body),
        false => Vec::new(),
    };
    // The first configured id field present names the call.
    let first = ids.iter().min_by_key(|(field, _)| *field);
    let id = first.map_or(0, |(_, value)| id_hash(value));
    // Its decision is keyed without the run tag, so a replay draws alike.
    let key = first.map_or(0, |(_, value)| id_hash(decision_identity(value)));
    let decision = core.decide(&parts.method, &parts.uri, key);
    // Logged when this request is done with, or abandoned by its client.
    let mut pending = core
        .observing
        .then(|| observe(&core, &parts, ids, id, route, &decision, arrived));
    let action = decision.action;
    let response = async {
        if !decision.delay.is_zero() {
            super::timer::sleep(decision.delay).await;
        }
        match &action {
            Action::Status { code, body } => return Ok(injected_status(*code, body.as_deref())),
            Action::Reset {
                mid_response: false,
            } => {
                reset.pull();
                return Err(Aborted("injected reset"));
            }
            Action::EmptyResponse => return Err(Aborted("injected empty response")),
            Action::Hang { fault_id } => hold(&core.control, fault_id).await,
            _ => {}
        }

        let answer = core
            .backend
            .answer(
                &resolved,
                wiremock_request.as_ref(),
                Forward {
                    method: &parts.method,
                    uri: &parts.uri,
                    headers: &parts.headers,
                    body,
                },
            )
            .await;
        if answer.upstream_failed {
            core.observer.record_upstream_error();
            if let Some(pending) = pending.as_mut() {
                pending.outcome(Outcome::UpstreamError);
            }
        }
        let body = match action {
            Action::EmptyBody => FaultBody::empty(),
            Action::MalformedBody => FaultBody::full(malformed(&answer.body)),
            Action::SlowBody { duration } => FaultBody::dribble(answer.body, duration),
            Action::Reset { mid_response: true } => {
                reset.pull();
                FaultBody::cut(answer.body)
            }
            _ => FaultBody::full(answer.body),
        };
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        Ok(response)
    }
    .await;
    if let Some(pending) = pending {
        pending.answered();
    }
    response
}

/// Counts the arrival and starts its record.
fn observe<'a>(
    core: &'a Core,
    parts: &Parts,
    ids: Vec<(usize, String)>,
    id: u64,
    route: RouteRef<'_>,
    decision: &Decision,
    arrived: Instant,
) -> Pending<'a> {
    let action = &decision.action;
    let pending = core
        .observer
        .arrivals()
        .begin(decision.seq, arrived, id, action.outcome());
    core.observer.record(Arrival {
        route,
        outcome: action.outcome(),
        delayed: !decision.delay.is_zero(),
        reaches_downstream: action.reaches_downstream(),
        ids,
        idempotency_key: parts
            .headers
            .get(core.observer.idempotency_header())
            .and_then(|v| v.to_str().ok()),
    });
    pending
}

/// Waits while the hang fault `id` is in force; returns when it is cleared,
/// replaced without it, or flaps off.
async fn hold(control: &FaultControl, id: &str) {
    let mut changes = control.subscribe();
    loop {
        let now = Instant::now();
        let wake = {
            let program = control.peek();
            if !program.is_on(id, now) {
                return;
            }
            program
                .faults
                .iter()
                .find(|f| f.id() == id)
                .and_then(|f| f.next_toggle(now))
        };
        tokio::select! {
            // The sender lives as long as the injector this request runs in.
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline_or_far(wake).into()) => {}
        }
    }
}

fn is_mutating(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// The request in wiremock's form, for its matchers.
fn to_wiremock(parts: &Parts, body: &Bytes) -> Option<wiremock::Request> {
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = url::Url::parse(&format!("http://injector{path_and_query}")).ok()?;
    Some(wiremock::Request {
        url,
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    })
}

fn plain(status: StatusCode, message: &str) -> Response<FaultBody> {
    json_response(
        status,
        json!({"code": status.as_u16(), "message": message}).to_string(),
    )
}

fn injected_status(code: u16, body: Option<&str>) -> Response<FaultBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.map_or_else(
        || json!({"code": code, "message": "injected fault"}).to_string(),
        str::to_string,
    );
    let mut response = json_response(status, body);
    if code == 429 || code == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn json_response(status: StatusCode, body: String) -> Response<FaultBody> {
    let mut response = Response::new(FaultBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The first half of the real body followed by bytes no JSON parser accepts.
fn malformed(body: &Bytes) -> Bytes {
    let mut out = body[..body.len() / 2].to_vec();
    out.extend_from_slice(b"\x00<<malformed>>");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_never_parse() {
        for body in ["", "{}", r#"{"code":0,"data":{"x":1}}"#, "[1,2,3]"] {
            let bad = malformed(&Bytes::from(body));
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bad).is_err(),
                "{body}"
            );
        }
    }
}
