//! settlement-service: `POST /api/v1/settlements` (accounting transactions → sum →
//! withdrawal) and `GET /api/v1/settlements/{settlement_no}`.
//!
//! A period whose transactions sum to zero or less completes without a withdrawal
//! (`withdrawal_no: null`). A failed settlement is kept with status `failed` and its error.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, ApiError, Fields, check_currency, check_id};
use crate::client::{CallError, DownstreamClient, Request};
use crate::config::ResolvedConfig;
use crate::services::{Core, IdGen, MissingClient, now_rfc3339};
use crate::store::RecordStore;
use crate::topology::Downstream;

/// A settlement as kept by the service.
#[derive(Debug, Clone, Serialize)]
struct Settlement {
    settlement_no: String,
    merchant_id: String,
    start: String,
    end: String,
    currency: String,
    amount: Option<i64>,
    withdrawal_no: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug)]
struct Settlements {
    core: Arc<Core>,
    accounting: Arc<DownstreamClient>,
    withdrawal: Arc<DownstreamClient>,
    store: RecordStore<Settlement>,
    ids: IdGen,
}

#[derive(Debug, Deserialize)]
struct Transactions {
    #[serde(default)]
    transactions: Vec<Transaction>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    amount: i64,
}

#[derive(Debug, Deserialize)]
struct WithdrawalAnswer {
    withdrawal_no: String,
}

/// settlement-service's routes.
pub(crate) fn routes(core: Arc<Core>, config: &ResolvedConfig) -> Result<Router, MissingClient> {
    let state = Arc::new(Settlements {
        accounting: core.client(Downstream::Accounting)?,
        withdrawal: core.client(Downstream::Withdrawal)?,
        store: RecordStore::new(config.store_capacity),
        ids: IdGen::new("STL"),
        core,
    });
    Ok(Router::new()
        .route("/api/v1/settlements", post(create))
        .route("/api/v1/settlements/{settlement_no}", get(fetch))
        .with_state(state))
}

fn check_date(name: &str, value: &str) -> Result<(), ApiError> {
    let is_date = NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
        || DateTime::parse_from_rfc3339(value).is_ok();
    if is_date {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{name} must be a date (YYYY-MM-DD) or an RFC 3339 time"
        )))
    }
}

async fn create(State(s): State<Arc<Settlements>>, body: Bytes) -> Response {
    let parsed = (|| {
        let fields = Fields::parse(&body)?;
        let merchant_id = fields.string("merchant_id", 64)?;
        check_id("merchant_id", &merchant_id)?;
        let start = fields.string("start", 64)?;
        check_date("start", &start)?;
        let end = fields.string("end", 64)?;
        check_date("end", &end)?;
        let currency = fields
            .optional_string("currency", 3)?
            .unwrap_or_else(|| "CNY".to_string());
        check_currency("currency", &currency)?;
        Ok::<_, ApiError>((merchant_id, start, end, currency))
    })();
    let (merchant_id, start, end, currency) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return err.into_response(),
    };
    let now = now_rfc3339();
    let settlement = Settlement {
        settlement_no: s.ids.next(),
        merchant_id,
        start,
        end,
        currency,
        amount: None,
        withdrawal_no: None,
        status: "processing",
        error: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let worker = Arc::clone(&s);
    match s
        .core
        .run_detached(async move { worker.settle(settlement).await })
        .await
    {
        Ok(Ok(data)) => api::ok(data),
        Ok(Err(err)) | Err(err) => err.into_response(),
    }
}

impl Settlements {
    async fn settle(&self, mut settlement: Settlement) -> Result<Value, ApiError> {
        let no = settlement.settlement_no.clone();
        self.store.put(no.clone(), settlement.clone());
        let transactions: Transactions = self
            .accounting
            .call(&Request::get("/api/v1/transactions").query(&[
                ("merchant_id", &settlement.merchant_id),
                ("start", &settlement.start),
                ("end", &settlement.end),
            ]))
            .await
            .map_err(|err| self.fail(&no, &err))?;
        let amount = transactions
            .transactions
            .iter()
            .fold(0i64, |sum, t| sum.saturating_add(t.amount));
        settlement.amount = Some(amount);
        if amount > 0 {
            let withdrawal: WithdrawalAnswer = self
                .withdrawal
                .call(
                    &Request::post(
                        "/api/v1/withdrawals",
                        json!({
                            "merchant_id": settlement.merchant_id,
                            "amount": amount,
                            "currency": settlement.currency,
                            "settlement_no": no,
                        }),
                    )
                    .idempotency_key(no.clone()),
                )
                .await
                .map_err(|err| self.fail(&no, &err))?;
            settlement.withdrawal_no = Some(withdrawal.withdrawal_no);
        }
        settlement.status = "completed";
        settlement.updated_at = now_rfc3339();
        self.store.put(no, settlement.clone());
        Ok(json!({
            "settlement_no": settlement.settlement_no,
            "merchant_id": settlement.merchant_id,
            "amount": amount,
            "currency": settlement.currency,
            "withdrawal_no": settlement.withdrawal_no,
            "status": settlement.status,
        }))
    }

    fn fail(&self, settlement_no: &str, err: &CallError) -> ApiError {
        tracing::warn!(settlement_no, %err, "settlement failed");
        self.store.update(settlement_no, |s| {
            s.status = "failed";
            s.error = Some(err.to_string());
            s.updated_at = now_rfc3339();
        });
        ApiError::downstream(err)
            .with_data(json!({"settlement_no": settlement_no, "status": "failed"}))
    }
}

async fn fetch(State(s): State<Arc<Settlements>>, Path(no): Path<String>) -> Response {
    match s.store.get(&no) {
        Some(settlement) => api::ok(settlement),
        None => ApiError::not_found(format!("settlement {no} not found")).into_response(),
    }
}
