//! withdrawal-service: `POST /api/v1/withdrawals` (accounting balance → accounting
//! debit → bank transfer → notification in the background) and
//! `GET /api/v1/withdrawals/{withdrawal_no}`.
//!
//! Answers: 200 `pending` (the bank accepted the transfer); 400 validation; 422
//! insufficient balance (kept as `rejected`); 502/503 a downstream failed (kept as
//! `failed` with its error); 500 the notification failed under `sync_notification`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, ApiError, Fields, check_currency, check_id};
use crate::client::{CallError, DownstreamClient, Request};
use crate::config::ResolvedConfig;
use crate::services::{Core, IdGen, MissingClient, now_rfc3339};
use crate::store::RecordStore;
use crate::topology::Downstream;

/// A withdrawal as kept by the service.
#[derive(Debug, Clone, Serialize)]
struct Withdrawal {
    withdrawal_no: String,
    merchant_id: String,
    amount: i64,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement_no: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_id: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug)]
struct Withdrawals {
    core: Arc<Core>,
    accounting: Arc<DownstreamClient>,
    bank: Arc<DownstreamClient>,
    notification: Arc<DownstreamClient>,
    store: RecordStore<Withdrawal>,
    ids: IdGen,
    sync_notification: bool,
}

#[derive(Debug, Deserialize)]
struct Balance {
    available: i64,
}

#[derive(Debug, Deserialize)]
struct Posted {
    #[serde(default)]
    transaction_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Transfer {
    #[serde(default)]
    transfer_id: Option<Value>,
}

/// withdrawal-service's routes.
pub(crate) fn routes(core: Arc<Core>, config: &ResolvedConfig) -> Result<Router, MissingClient> {
    let state = Arc::new(Withdrawals {
        accounting: core.client(Downstream::Accounting)?,
        bank: core.client(Downstream::Bank)?,
        notification: core.client(Downstream::Notification)?,
        store: RecordStore::new(config.store_capacity),
        ids: IdGen::new("WD"),
        sync_notification: config.sync_notification,
        core,
    });
    Ok(Router::new()
        .route("/api/v1/withdrawals", post(create))
        .route("/api/v1/withdrawals/{withdrawal_no}", get(fetch))
        .with_state(state))
}

fn text(value: Option<Value>) -> Option<String> {
    value.map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

async fn create(State(w): State<Arc<Withdrawals>>, body: Bytes) -> Response {
    let parsed = (|| {
        let fields = Fields::parse(&body)?;
        let merchant_id = fields.string("merchant_id", 64)?;
        check_id("merchant_id", &merchant_id)?;
        let amount = fields.positive_int("amount")?;
        let currency = fields.string("currency", 3)?;
        check_currency("currency", &currency)?;
        let settlement_no = fields.optional_string("settlement_no", 64)?;
        Ok::<_, ApiError>((merchant_id, amount, currency, settlement_no))
    })();
    let (merchant_id, amount, currency, settlement_no) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return err.into_response(),
    };
    let now = now_rfc3339();
    let withdrawal = Withdrawal {
        withdrawal_no: w.ids.next(),
        merchant_id,
        amount,
        currency,
        settlement_no,
        status: "processing",
        error: None,
        transaction_id: None,
        transfer_id: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let worker = Arc::clone(&w);
    match w
        .core
        .run_detached(async move { worker.withdraw(withdrawal).await })
        .await
    {
        Ok(Ok(data)) => api::ok(data),
        Ok(Err(err)) | Err(err) => err.into_response(),
    }
}

impl Withdrawals {
    async fn withdraw(&self, mut w: Withdrawal) -> Result<Value, ApiError> {
        let no = w.withdrawal_no.clone();
        self.store.put(no.clone(), w.clone());
        let balance: Balance = self
            .accounting
            .call(&Request::get(format!(
                "/api/v1/balances/merchants/{}/summary",
                w.merchant_id
            )))
            .await
            .map_err(|err| self.fail(&no, &err))?;
        if balance.available < w.amount {
            self.store.update(&no, |r| {
                r.status = "rejected";
                r.error = Some(format!(
                    "insufficient balance: available {}, requested {}",
                    balance.available, r.amount
                ));
                r.updated_at = now_rfc3339();
            });
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "insufficient balance: available {}, requested {}",
                    balance.available, w.amount
                ),
            )
            .with_data(json!({"withdrawal_no": no, "status": "rejected"})));
        }
        let posted: Posted = self
            .accounting
            .call(
                &Request::post(
                    "/api/v1/transactions",
                    json!({
                        "merchant_id": w.merchant_id,
                        "amount": w.amount,
                        "type": "debit",
                        "reference": no,
                    }),
                )
                .idempotency_key(no.clone()),
            )
            .await
            .map_err(|err| self.fail(&no, &err))?;
        w.transaction_id = text(posted.transaction_id);
        let transfer: Transfer = self
            .bank
            .call(
                &Request::post(
                    "/api/v1/bank/transfers",
                    json!({"withdrawal_no": no, "amount": w.amount, "currency": w.currency}),
                )
                .idempotency_key(no.clone()),
            )
            .await
            .map_err(|err| self.fail(&no, &err))?;
        w.transfer_id = text(transfer.transfer_id);
        w.status = "pending";
        w.updated_at = now_rfc3339();
        self.store.put(no.clone(), w.clone());
        let notification = Request::post(
            "/api/v1/notifications",
            json!({
                "merchant_id": w.merchant_id,
                "type": "withdrawal.created",
                "message": format!("withdrawal {no} of {} {} is pending", w.amount, w.currency),
            }),
        );
        if let Err(err) = self
            .core
            .deliver(
                "notification",
                &self.notification,
                notification,
                self.sync_notification,
            )
            .await
        {
            self.fail(&no, &err);
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("notification failed: {err}"),
            )
            .with_data(json!({"withdrawal_no": no, "status": "failed"})));
        }
        Ok(json!({
            "withdrawal_no": no,
            "merchant_id": w.merchant_id,
            "amount": w.amount,
            "currency": w.currency,
            "status": w.status,
        }))
    }

    fn fail(&self, withdrawal_no: &str, err: &CallError) -> ApiError {
        tracing::warn!(withdrawal_no, %err, "withdrawal failed");
        self.store.update(withdrawal_no, |r| {
            r.status = "failed";
            r.error = Some(err.to_string());
            r.updated_at = now_rfc3339();
        });
        ApiError::downstream(err)
            .with_data(json!({"withdrawal_no": withdrawal_no, "status": "failed"}))
    }
}

async fn fetch(State(w): State<Arc<Withdrawals>>, Path(no): Path<String>) -> Response {
    match w.store.get(&no) {
        Some(withdrawal) => api::ok(withdrawal),
        None => ApiError::not_found(format!("withdrawal {no} not found")).into_response(),
    }
}
