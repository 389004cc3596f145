//! payment-gateway: payment creation (risk → order → channel), queries, channel
//! webhooks with asynchronous notification and analytics.

mod idempotency;
mod payments;
pub mod signature;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde_json::json;

use crate::client::{CallError, DownstreamClient, Request};
use crate::config::ResolvedConfig;
use crate::services::{Core, IdGen, MissingClient};
use crate::store::{Payment, PaymentStore};
use crate::topology::Downstream;

use idempotency::Idempotency;
use signature::Verifier;

/// The gateway's state, shared by its handlers.
#[derive(Debug)]
pub(crate) struct Gateway {
    core: Arc<Core>,
    risk: Arc<DownstreamClient>,
    order: Arc<DownstreamClient>,
    channel: Arc<DownstreamClient>,
    notification: Arc<DownstreamClient>,
    analytics: Arc<DownstreamClient>,
    payments: PaymentStore,
    idempotency: Idempotency,
    verifier: Verifier,
    ids: IdGen,
    sync_notification: bool,
    delete_failed_payments: bool,
}

/// The gateway's routes.
pub(crate) fn routes(core: Arc<Core>, config: &ResolvedConfig) -> Result<Router, MissingClient> {
    let gateway = Arc::new(Gateway {
        risk: core.client(Downstream::Risk)?,
        order: core.client(Downstream::Order)?,
        channel: core.client(Downstream::Channel)?,
        notification: core.client(Downstream::Notification)?,
        analytics: core.client(Downstream::Analytics)?,
        payments: PaymentStore::new(config.store_capacity),
        idempotency: Idempotency::new(config.store_capacity),
        verifier: Verifier::new(&config.merchants, config.signature_window),
        ids: IdGen::new("PAY"),
        sync_notification: config.sync_notification,
        delete_failed_payments: config.delete_failed_payments,
        core,
    });
    Ok(Router::new()
        .route(
            "/api/v1/payments",
            post(payments::create).get(payments::list),
        )
        .route("/api/v1/payments/{payment_no}", get(payments::get))
        .route("/api/v1/webhooks/{channel}", post(webhooks::receive))
        .with_state(gateway))
}

impl Gateway {
    /// Tell the merchant and analytics about `payment`: in the background with each
    /// client's async timeout (the platform's way), or awaited on the request path when
    /// the `sync_notification` defect is on (then the first failure is returned).
    async fn announce(
        &self,
        payment: &Payment,
        event: &str,
        with_analytics: bool,
    ) -> Result<(), CallError> {
        let notification = Request::post(
            "/api/v1/notifications",
            json!({
                "merchant_id": payment.merchant_id,
                "type": event,
                "payment_no": payment.payment_no,
                "message": format!("payment {} is {}", payment.payment_no, payment.status.as_str()),
            }),
        );
        let analytics = with_analytics.then(|| {
            Request::post(
                "/api/v1/events",
                json!({
                    "type": event,
                    "merchant_id": payment.merchant_id,
                    "payment_no": payment.payment_no,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "status": payment.status.as_str(),
                }),
            )
        });
        let sync = self.sync_notification;
        self.core
            .deliver("notification", &self.notification, notification, sync)
            .await?;
        if let Some(analytics) = analytics {
            self.core
                .deliver("analytics", &self.analytics, analytics, sync)
                .await?;
        }
        Ok(())
    }
}
