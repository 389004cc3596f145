//! The HTTP admin API: list injectors, set, change and clear faults, read
//! counters, arrival buckets and the fault timeline.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | `/injectors` | | every injector's status |
//! | GET | `/injectors/{name}` | | one injector's status |
//! | GET | `/injectors/{name}/faults` | | faults in force |
//! | PUT | `/injectors/{name}/faults` | `[fault, ...]` | replaces all; `{"ids":[...]}` |
//! | POST | `/injectors/{name}/faults` | `fault` | adds or replaces by id; 201 `{"id":...}` |
//! | DELETE | `/injectors/{name}/faults` | | clears all |
//! | DELETE | `/injectors/{name}/faults/{id}` | | clears one (404 if unknown) |
//! | GET | `/injectors/{name}/counters` | | totals |
//! | GET | `/injectors/{name}/buckets?since=N` | | arrival buckets |
//! | GET | `/injectors/{name}/changes` | | fault changes with times |
//! | GET | `/injectors/{name}/clock` | | `{"now_s": ...}` on the injector's clock |
//!
//! Bad input (unknown injector, malformed JSON, an invalid fault, a value
//! beyond its bound — see [`crate::fault`]) is answered 400 with
//! `{"error": "..."}` naming the field (or its line and column) and changes
//! nothing.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::fault::Fault;
use crate::injector::{Injector, InjectorSet};

/// A running admin server; stops when dropped or shut down.
pub struct AdminServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _stop_on_drop: DropGuard,
}

impl AdminServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Serves the admin API for `set` on `addr` (use 127.0.0.1 unless the API
/// must be reachable from elsewhere, e.g. from a container's host).
pub async fn serve(set: InjectorSet, addr: SocketAddr) -> std::io::Result<AdminServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router(set))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!("admin server failed: {e}");
        }
    });
    Ok(AdminServer {
        addr,
        shutdown: shutdown.clone(),
        task,
        _stop_on_drop: shutdown.drop_guard(),
    })
}

/// The admin API as an axum router (to mount inside another server).
pub fn router(set: InjectorSet) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/injectors", get(list))
        .route("/injectors/{name}", get(status))
        .route(
            "/injectors/{name}/faults",
            get(faults).put(replace).post(upsert).delete(clear),
        )
        .route(
            "/injectors/{name}/faults/{id}",
            axum::routing::delete(remove),
        )
        .route("/injectors/{name}/counters", get(counters))
        .route("/injectors/{name}/buckets", get(buckets))
        .route("/injectors/{name}/arrivals", get(arrivals))
        .route("/injectors/{name}/changes", get(changes))
        .route("/injectors/{name}/clock", get(clock))
        .fallback(|| async {
            ApiError(
                StatusCode::NOT_FOUND,
                "no such endpoint; see GET /injectors".into(),
            )
        })
        .with_state(set)
}

/// An error answer: status and message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn find<'a>(set: &'a InjectorSet, name: &str) -> Result<&'a Injector, ApiError> {
    set.get(name).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown injector `{name}`; known: {}",
                set.names().join(", ")
            ),
        )
    })
}

/// Parses a JSON body with serde's message (line and column; a fault's own
/// checks name the field) instead of axum's generic rejection. Where the
/// message does not name the field (a wrong type, a number out of range),
/// the key written just before the error is added.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let field = (e.line() > 0)
            .then(|| key_before(body, e.line(), e.column()))
            .flatten()
            .filter(|key| !e.to_string().contains(key.as_str()))
            .map_or(String::new(), |key| format!(" (field `{key}`)"));
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid fault: {e}{field}"),
        )
    })
}

/// The last JSON object key (`"name":`) written before `line`:`column`
/// (1-based, as serde_json counts) of `body`.
fn key_before(body: &[u8], line: usize, column: usize) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += column.min(l.len());
            break;
        }
        offset += l.len();
    }
    let before = text.get(..offset.min(text.len()))?;
    // Scan back for `"key"` followed by `:`.
    let mut rest = before;
    while let Some(colon) = rest.rfind(':') {
        let head = rest[..colon].trim_end();
        if let Some(stripped) = head.strip_suffix('"')
            && let Some(open) = stripped.rfind('"')
        {
            let key = &stripped[open + 1..];
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Some(key.to_string());
            }
        }
        rest = &rest[..colon];
    }
    None
}

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

async fn list(State(set): State<InjectorSet>) -> ApiResult {
    ok(set.iter().map(Injector::status).collect::<Vec<_>>())
}

async fn status(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    ok(find(&set, &name)?.status())
}

async fn faults(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    ok(find(&set, &name)?.faults())
}

async fn replace(
    State(set): State<InjectorSet>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let injector = find(&set, &name)?;
    let faults: Vec<Fault> = parse(&body)?;
    let ids = injector
        .set_faults(faults)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    ok(json!({ "ids": ids }))
}

async fn upsert(
    State(set): State<InjectorSet>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let injector = find(&set, &name)?;
    let fault: Fault = parse(&body)?;
    let id = injector
        .inject(fault)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response())
}

async fn clear(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    let injector = find(&set, &name)?;
    let cleared = injector.faults().len();
    injector.clear_faults();
    ok(json!({ "cleared": cleared }))
}

async fn remove(
    State(set): State<InjectorSet>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    let injector = find(&set, &name)?;
    if injector.clear_fault(&id) {
        ok(json!({ "cleared": 1 }))
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("injector `{name}` has no fault `{id}`"),
        ))
    }
}

async fn counters(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    ok(find(&set, &name)?.counters())
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn buckets(
    State(set): State<InjectorSet>,
    Path(name): Path<String>,
    query: Result<Query<Since>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let injector = find(&set, &name)?;
    let Query(since) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    ok(injector.buckets_since(since.since))
}

async fn arrivals(
    State(set): State<InjectorSet>,
    Path(name): Path<String>,
    query: Result<Query<Since>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let injector = find(&set, &name)?;
    let Query(since) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    ok(injector.arrivals_since(since.since))
}

/// Lets a remote reader put bucket and change times on its own clock.
async fn clock(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    let clock = find(&set, &name)?.clock();
    ok(json!({ "now_s": clock.since_origin(std::time::Instant::now()).as_secs_f64() }))
}

async fn changes(State(set): State<InjectorSet>, Path(name): Path<String>) -> ApiResult {
    ok(find(&set, &name)?.fault_changes())
}
