//! The modelled services. Each module builds one service's routes on top of [`Core`],
//! the parts every service shares (clients, observer, background tasks).

pub mod auth;
pub mod gateway;
pub mod merchant;
pub mod settlement;
pub mod withdrawal;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::ApiError;
use crate::client::{CallError, DownstreamClient, Request};
use crate::config::ResolvedConfig;
use crate::observe::Observer;
use crate::topology::{Downstream, ServiceKind};

/// What every service has: its clients, its observer, its background tasks.
#[derive(Debug)]
pub(crate) struct Core {
    pub kind: ServiceKind,
    pub observer: Arc<Observer>,
    /// One client per downstream, in `kind.downstreams()` order.
    pub clients: Vec<Arc<DownstreamClient>>,
    pub tasks: TaskTracker,
    pub cancel: CancellationToken,
    pub defects: String,
}

/// A client that the topology promises but the core lacks: a bug, reported at start.
#[derive(Debug, thiserror::Error)]
#[error("{service} was built without a client for {downstream}")]
pub struct MissingClient {
    service: ServiceKind,
    downstream: Downstream,
}

impl Core {
    /// This service's client for `downstream`.
    pub fn client(&self, downstream: Downstream) -> Result<Arc<DownstreamClient>, MissingClient> {
        self.clients
            .iter()
            .find(|c| c.downstream() == downstream)
            .cloned()
            .ok_or(MissingClient {
                service: self.kind,
                downstream,
            })
    }

    /// Run a fire-and-forget call in the background with its own timeout; failures are
    /// only logged. Shutdown cancels what is still running.
    pub fn spawn_background<F>(&self, what: &'static str, timeout: Duration, call: F)
    where
        F: Future<Output = Result<(), CallError>> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let service = self.kind.name();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                result = tokio::time::timeout(timeout, call) => match result {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::warn!(service, what, %err, "background call failed"),
                    Err(_) => tracing::warn!(service, what, ?timeout, "background call timed out"),
                },
            }
        });
    }

    /// Deliver a fire-and-forget call (a notification, an analytics event): in the
    /// background with the client's async timeout, or awaited when `sync` (the
    /// `sync_notification` defect), in which case its failure is returned.
    pub async fn deliver(
        &self,
        what: &'static str,
        client: &Arc<DownstreamClient>,
        request: Request,
        sync: bool,
    ) -> Result<(), CallError> {
        if sync {
            return client.call_value(&request).await.map(drop);
        }
        let client = Arc::clone(client);
        let timeout = client.settings().async_timeout;
        self.spawn_background(what, timeout, async move {
            client.call_value(&request).await.map(drop)
        });
        Ok(())
    }

    /// Run a request's work in its own task and wait for it. If the caller hangs up,
    /// the work still runs to completion, so no record is left half-done ("pending").
    pub async fn run_detached<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        self.tasks.spawn(work).await.map_err(|err| {
            tracing::error!(service = self.kind.name(), %err, "request task failed");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
        })
    }
}

/// Unique record numbers: a prefix, the service's start time in milliseconds and a
/// sequence number (`PAY1735689600000000001`), unique across restarts too.
#[derive(Debug)]
pub(crate) struct IdGen {
    prefix: &'static str,
    start_ms: u128,
    seq: AtomicU64,
}

impl IdGen {
    pub fn new(prefix: &'static str) -> Self {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            prefix,
            start_ms,
            seq: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}{}{:06}", self.prefix, self.start_ms, seq)
    }
}

/// The current time as RFC 3339 (seconds precision is enough for records).
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Build the routes of the service `config.kind` on top of `core`.
pub(crate) fn routes(core: Arc<Core>, config: &ResolvedConfig) -> Result<Router, MissingClient> {
    Ok(match config.kind {
        ServiceKind::PaymentGateway => gateway::routes(core, config)?,
        ServiceKind::MerchantService => merchant::routes(core)?,
        ServiceKind::SettlementService => settlement::routes(core, config)?,
        ServiceKind::WithdrawalService => withdrawal::routes(core, config)?,
        ServiceKind::MerchantAuthService => auth::routes(core)?,
    })
}
