//! `POST /api/v1/payments`, `GET /api/v1/payments/{payment_no}`,
//! `GET /api/v1/payments?merchant_id=`.
//!
//! Creation answers: 200 awaiting_payment; 400 validation (names the field); 401 auth;
//! 409 duplicate order number or Idempotency-Key misuse; 422 rejected by the risk
//! check; 502 a downstream failed; 503 a breaker refused the call. 422/502/503 carry
//! `data.payment_no` so the caller can look the payment up.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Gateway;
use super::idempotency::Begin;
use crate::api::{self, ApiError, Fields, check_currency, check_id};
use crate::client::{CallError, Request};
use crate::services::now_rfc3339;
use crate::store::{Payment, PaymentStatus};

/// A validated payment request.
#[derive(Debug, Clone)]
struct NewPayment {
    merchant_id: String,
    order_no: String,
    amount: i64,
    currency: String,
    customer_email: String,
    channel: String,
}

impl NewPayment {
    fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let fields = Fields::parse(body)?;
        let merchant_id = fields.string("merchant_id", 64)?;
        check_id("merchant_id", &merchant_id)?;
        let order_no = fields.string("order_no", 64)?;
        check_id("order_no", &order_no)?;
        let amount = fields.positive_int("amount")?;
        let currency = fields.string("currency", 3)?;
        check_currency("currency", &currency)?;
        let customer_email = fields.string("customer_email", 254)?;
        if !customer_email.contains('@') {
            return Err(ApiError::bad_request(
                "customer_email must be an email address",
            ));
        }
        for url_field in ["notify_url", "return_url"] {
            let value = fields.string(url_field, 2048)?;
            if url::Url::parse(&value).is_err() {
                return Err(ApiError::bad_request(format!(
                    "{url_field} must be an absolute URL"
                )));
            }
        }
        let channel = fields
            .optional_string("channel", 32)?
            .unwrap_or_else(|| "card".to_string());
        check_id("channel", &channel)?;
        Ok(Self {
            merchant_id,
            order_no,
            amount,
            currency,
            customer_email,
            channel,
        })
    }
}

#[derive(Debug, Deserialize)]
struct RiskAnswer {
    decision: String,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    risk_level: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrderAnswer {
    #[serde(default)]
    order_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChannelAnswer {
    payment_url: String,
    channel_trade_no: String,
}

/// An answer as status + envelope body, so it can be kept for idempotent replay.
fn envelope(result: Result<Value, ApiError>) -> (StatusCode, Value) {
    match result {
        Ok(data) => (StatusCode::OK, api::ok_body(data)),
        Err(err) => err.into_parts(),
    }
}

pub(super) async fn create(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let merchant_id = match gw
        .verifier
        .verify(&headers, method.as_str(), uri.path(), &body)
    {
        Ok(merchant) => merchant.merchant_id.clone(),
        Err(err) => return err.into_response(),
    };
    let input = match NewPayment::from_body(&body) {
        Ok(input) => input,
        Err(err) => return err.into_response(),
    };
    if input.merchant_id != merchant_id {
        return ApiError::unauthorized("merchant_id does not match the X-API-Key").into_response();
    }
    let key = match headers.get("Idempotency-Key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.trim().is_empty() && key.len() <= 255 => Some(key.to_string()),
        Some(_) => {
            return ApiError::bad_request("Idempotency-Key must be 1-255 visible characters")
                .into_response();
        }
    };
    if let Some(key) = &key {
        match gw.idempotency.begin(&merchant_id, key, &body) {
            Begin::Fresh => {}
            Begin::Replay(status, body) => {
                return (status, [("Idempotent-Replayed", "true")], Json(body)).into_response();
            }
            Begin::Conflict(reason) => return ApiError::conflict(reason).into_response(),
        }
    }
    let worker = Arc::clone(&gw);
    let (status, body) = match gw
        .core
        .run_detached(async move { envelope(worker.process(input).await) })
        .await
    {
        Ok(answer) => answer,
        Err(err) => envelope(Err(err)),
    };
    if let Some(key) = &key {
        gw.idempotency.finish(&merchant_id, key, status, &body);
    }
    (status, Json(body)).into_response()
}

impl Gateway {
    /// The payment flow: record → risk → order → channel → awaiting_payment.
    async fn process(&self, input: NewPayment) -> Result<Value, ApiError> {
        let payment_no = self.ids.next();
        let now = now_rfc3339();
        let payment = Payment {
            payment_no: payment_no.clone(),
            order_no: input.order_no.clone(),
            merchant_id: input.merchant_id.clone(),
            amount: input.amount,
            currency: input.currency.clone(),
            channel: input.channel.clone(),
            status: PaymentStatus::Pending,
            error: None,
            payment_url: None,
            channel_trade_no: None,
            order_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        if let Err(dup) = self.payments.insert(payment) {
            return Err(ApiError::conflict(format!(
                "order_no {} already has payment {}",
                input.order_no, dup.payment_no
            )));
        }

        let risk: RiskAnswer = self
            .risk
            .call(&Request::post(
                "/api/v1/risk/check",
                json!({
                    "merchant_id": input.merchant_id,
                    "payment_no": payment_no,
                    "order_no": input.order_no,
                    "amount": input.amount,
                    "currency": input.currency,
                    "customer_email": input.customer_email,
                }),
            ))
            .await
            .map_err(|err| self.fail(&payment_no, &input, &err))?;
        match risk.decision.as_str() {
            "approve" => {}
            "reject" => return Err(self.reject(&payment_no, &input, &risk)),
            other => {
                let err = CallError::Decode {
                    downstream: self.risk.downstream(),
                    reason: format!("unknown risk decision {other:?}"),
                };
                return Err(self.fail(&payment_no, &input, &err));
            }
        }

        let order: OrderAnswer = self
            .order
            .call(
                &Request::post(
                    "/api/v1/orders",
                    json!({
                        "merchant_id": input.merchant_id,
                        "order_no": input.order_no,
                        "payment_no": payment_no,
                        "amount": input.amount,
                        "currency": input.currency,
                        "customer_email": input.customer_email,
                    }),
                )
                .idempotency_key(payment_no.clone()),
            )
            .await
            .map_err(|err| self.fail(&payment_no, &input, &err))?;

        let channel: ChannelAnswer = self
            .channel
            .call(&Request::post(
                "/api/v1/channel/payment",
                json!({
                    "payment_no": payment_no,
                    "order_no": input.order_no,
                    "amount": input.amount,
                    "currency": input.currency,
                    "channel": input.channel,
                }),
            ))
            .await
            .map_err(|err| self.fail(&payment_no, &input, &err))?;

        let updated = self.payments.update(&payment_no, |p| {
            p.status = PaymentStatus::AwaitingPayment;
            p.payment_url = Some(channel.payment_url.clone());
            p.channel_trade_no = Some(channel.channel_trade_no.clone());
            p.order_id = order.order_id.as_ref().map(value_text);
            p.updated_at = now_rfc3339();
        });
        let Some(payment) = updated else {
            // Only eviction of a store at capacity can get here; the answer stands.
            tracing::warn!(payment_no, "payment evicted while being processed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "payment record was evicted (store at capacity)",
            ));
        };
        if self.sync_notification
            && let Err(err) = self.announce(&payment, "payment.created", false).await
        {
            self.fail(&payment_no, &input, &err);
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("notification failed: {err}"),
            )
            .with_data(json!({"payment_no": payment_no, "status": "failed"})));
        }
        self.core.observer.metrics.payment(
            PaymentStatus::AwaitingPayment.as_str(),
            &input.channel,
            &input.currency,
        );
        Ok(json!({
            "payment_no": payment.payment_no,
            "order_no": payment.order_no,
            "status": payment.status.as_str(),
            "payment_url": payment.payment_url,
            "channel_trade_no": payment.channel_trade_no,
        }))
    }

    /// Mark the payment failed with the error (or delete it under the defect) and build
    /// the 502/503 answer.
    fn fail(&self, payment_no: &str, input: &NewPayment, err: &CallError) -> ApiError {
        tracing::warn!(payment_no, %err, "payment failed");
        if self.delete_failed_payments {
            self.payments.remove(payment_no);
        } else {
            self.payments.update(payment_no, |p| {
                p.status = PaymentStatus::Failed;
                p.error = Some(err.to_string());
                p.updated_at = now_rfc3339();
            });
        }
        self.core.observer.metrics.payment(
            PaymentStatus::Failed.as_str(),
            &input.channel,
            &input.currency,
        );
        ApiError::downstream(err).with_data(json!({"payment_no": payment_no, "status": "failed"}))
    }

    fn reject(&self, payment_no: &str, input: &NewPayment, risk: &RiskAnswer) -> ApiError {
        let reason = format!(
            "rejected by risk check (score {}, level {})",
            risk.score
                .map_or_else(|| "?".to_string(), |s| s.to_string()),
            risk.risk_level.as_deref().unwrap_or("?")
        );
        self.payments.update(payment_no, |p| {
            p.status = PaymentStatus::Rejected;
            p.error = Some(reason.clone());
            p.updated_at = now_rfc3339();
        });
        self.core.observer.metrics.payment(
            PaymentStatus::Rejected.as_str(),
            &input.channel,
            &input.currency,
        );
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("payment {reason}"),
        )
        .with_data(json!({"payment_no": payment_no, "status": "rejected"}))
    }
}

/// A JSON scalar as text (order ids may be numbers or strings).
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) async fn get(
    State(gw): State<Arc<Gateway>>,
    Path(payment_no): Path<String>,
) -> Response {
    match gw.payments.get(&payment_no) {
        Some(payment) => api::ok(payment),
        None => ApiError::not_found(format!("payment {payment_no} not found")).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    merchant_id: Option<String>,
}

pub(super) async fn list(
    State(gw): State<Arc<Gateway>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(merchant_id) = query.merchant_id else {
        return ApiError::bad_request("merchant_id query parameter is required").into_response();
    };
    if let Err(err) = check_id("merchant_id", &merchant_id) {
        return err.into_response();
    }
    let (payments, total) = gw.payments.list(&merchant_id);
    api::ok(json!({"payments": payments, "total": total}))
}
