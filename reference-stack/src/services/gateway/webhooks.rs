//! `POST /api/v1/webhooks/{channel}`: the channel reports a payment's outcome.
//!
//! The status is updated and the answer sent at once; the notification and analytics
//! event follow in the background (own timeout, failures only logged). A repeated
//! callback with the same outcome is answered 200 without side effects; a contradicting
//! one (e.g. `failed` after `succeeded`) is a 409.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::Gateway;
use crate::api::{self, ApiError, Fields, check_id};
use crate::services::now_rfc3339;
use crate::store::PaymentStatus;

pub(super) async fn receive(
    State(gw): State<Arc<Gateway>>,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    match handle(&gw, &channel, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(gw: &Gateway, channel: &str, body: &[u8]) -> Result<Response, ApiError> {
    check_id("channel", channel)?;
    let fields = Fields::parse(body)?;
    let payment_no = fields.string("payment_no", 64)?;
    let target = match fields.string("status", 16)?.as_str() {
        "success" => PaymentStatus::Succeeded,
        "failed" => PaymentStatus::Failed,
        _ => {
            return Err(ApiError::bad_request(
                "status must be \"success\" or \"failed\"",
            ));
        }
    };
    let trade_no = fields.optional_string("channel_trade_no", 128)?;
    // Check and change under one lock, so two racing callbacks cannot both apply.
    let mut previous = None;
    let updated = gw
        .payments
        .update(&payment_no, |p| {
            previous = Some(p.status);
            if p.status != PaymentStatus::AwaitingPayment {
                return;
            }
            p.status = target;
            if target == PaymentStatus::Failed {
                p.error = Some(format!("channel {channel} reported failure"));
            }
            if let Some(trade_no) = &trade_no {
                p.channel_trade_no = Some(trade_no.clone());
            }
            p.updated_at = now_rfc3339();
        })
        .ok_or_else(|| ApiError::not_found(format!("payment {payment_no} not found")))?;
    match previous {
        Some(PaymentStatus::AwaitingPayment) => {}
        Some(status) if status == target => {
            return Ok(api::ok(
                json!({"payment_no": payment_no, "status": target.as_str()}),
            ));
        }
        Some(status) => {
            return Err(ApiError::conflict(format!(
                "payment {payment_no} is {}, cannot become {}",
                status.as_str(),
                target.as_str()
            )));
        }
        None => {
            return Err(ApiError::not_found(format!(
                "payment {payment_no} not found"
            )));
        }
    }
    if target == PaymentStatus::Failed && gw.delete_failed_payments {
        gw.payments.remove(&payment_no);
    }
    gw.core
        .observer
        .metrics
        .payment(target.as_str(), &updated.channel, &updated.currency);
    let event = match target {
        PaymentStatus::Succeeded => "payment.succeeded",
        _ => "payment.failed",
    };
    if let Err(err) = gw.announce(&updated, event, true).await {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("notification failed: {err}"),
        ));
    }
    Ok(api::ok(
        json!({"payment_no": payment_no, "status": target.as_str()}),
    ))
}
