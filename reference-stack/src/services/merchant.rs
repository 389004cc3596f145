//! merchant-service: `GET /api/v1/merchants/{id}/dashboard`.
//!
//! The five parts are fetched in parallel; a part that fails is `null` and named in
//! `degraded`. The page is always 200 unless the id is invalid: it degrades, never fails.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value};

use crate::api::{self, check_id};
use crate::client::{DownstreamClient, Request};
use crate::services::{Core, MissingClient};
use crate::topology::Downstream;

#[derive(Debug)]
struct Dashboard {
    analytics: Arc<DownstreamClient>,
    accounting: Arc<DownstreamClient>,
    risk: Arc<DownstreamClient>,
    notification: Arc<DownstreamClient>,
    gateway: Arc<DownstreamClient>,
}

/// merchant-service's routes.
pub(crate) fn routes(core: Arc<Core>) -> Result<Router, MissingClient> {
    let dashboard = Arc::new(Dashboard {
        analytics: core.client(Downstream::Analytics)?,
        accounting: core.client(Downstream::Accounting)?,
        risk: core.client(Downstream::Risk)?,
        notification: core.client(Downstream::Notification)?,
        gateway: core.client(Downstream::Gateway)?,
    });
    Ok(Router::new()
        .route("/api/v1/merchants/{id}/dashboard", get(dashboard_page))
        .with_state(dashboard))
}

async fn dashboard_page(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Response {
    if let Err(err) = check_id("merchant id", &id) {
        return err.into_response();
    }
    let statistics = Request::get(format!("/api/v1/statistics/merchant/{id}"));
    let balance = Request::get(format!("/api/v1/balances/merchants/{id}/summary"));
    let risk = Request::get(format!("/api/v1/risk/merchants/{id}/summary"));
    let notifications = Request::get(format!("/api/v1/notifications/merchants/{id}/unread/count"));
    let payments = Request::get("/api/v1/payments").query(&[("merchant_id", &id)]);
    let (statistics, balance, risk, notifications, payments) = tokio::join!(
        d.analytics.call_value(&statistics),
        d.accounting.call_value(&balance),
        d.risk.call_value(&risk),
        d.notification.call_value(&notifications),
        d.gateway.call_value(&payments),
    );
    let mut page = Map::new();
    page.insert("merchant_id".into(), Value::String(id.clone()));
    let mut degraded = Vec::new();
    for (name, part) in [
        ("statistics", statistics),
        ("balance", balance),
        ("risk", risk),
        ("notifications", notifications),
        ("payments", payments),
    ] {
        let value = part.unwrap_or_else(|err| {
            tracing::warn!(merchant_id = %id, part = name, %err, "dashboard part degraded");
            degraded.push(Value::String(name.to_string()));
            Value::Null
        });
        page.insert(name.into(), value);
    }
    page.insert("degraded".into(), Value::Array(degraded));
    api::ok(Value::Object(page))
}
