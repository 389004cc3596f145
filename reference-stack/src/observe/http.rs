//! Per-request HTTP metrics, labelled by route template (not raw path, which would
//! give one series per payment number).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::observe::Observer;

/// Middleware: count and time every request.
pub(crate) async fn track(
    State(observer): State<Arc<Observer>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    observer.metrics.observe_http(
        &method,
        &path,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
