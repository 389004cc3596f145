//! Starting and stopping services in-process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{DownstreamClient, State};
use crate::config::{ConfigError, ServiceConfig};
use crate::observe::{self, BreakerTransition, Observer};
use crate::services::{self, Core, MissingClient};
use crate::topology::{Downstream, ServiceKind};

/// How long `shutdown` lets in-flight requests and background calls finish before it
/// aborts them (a request held by a hanging downstream would otherwise block it).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often [`RunningService::wait_for_breaker`] looks at the state between
/// transitions, so that a timer-driven change nobody else noticed is seen.
const TIMER_POLL: Duration = Duration::from_millis(5);

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is wrong (the message names the setting).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address cannot be bound.
    #[error("{service}: cannot listen on {addr}: {source}")]
    Bind {
        /// The service.
        service: ServiceKind,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// An HTTP client could not be built.
    #[error("{service}: cannot build the HTTP client for {downstream}: {source}")]
    HttpClient {
        /// The service.
        service: ServiceKind,
        /// The downstream.
        downstream: Downstream,
        /// The reason.
        source: reqwest::Error,
    },
    /// A wiring bug inside this crate.
    #[error(transparent)]
    Internal(#[from] MissingClient),
}

/// A service running in this process. Dropping it stops the server without waiting;
/// [`RunningService::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct RunningService {
    kind: ServiceKind,
    addr: SocketAddr,
    core: Arc<Core>,
    stop: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Start one service: check the config, bind, serve. Returns once the listener is bound,
/// so requests can be sent at once.
pub async fn start(config: ServiceConfig) -> Result<RunningService, StartError> {
    let resolved = config.resolve()?;
    let kind = resolved.kind;
    let observer = Arc::new(Observer::new(kind, resolved.transition_history));
    let mut clients = Vec::with_capacity(resolved.clients.len());
    for plan in &resolved.clients {
        let client =
            DownstreamClient::new(kind, plan, Arc::clone(&observer)).map_err(|source| {
                StartError::HttpClient {
                    service: kind,
                    downstream: plan.downstream,
                    source,
                }
            })?;
        clients.push(Arc::new(client));
    }
    let core = Arc::new(Core {
        kind,
        observer: Arc::clone(&observer),
        clients,
        tasks: TaskTracker::new(),
        cancel: CancellationToken::new(),
        defects: resolved.defects.to_string(),
    });
    let app = services::routes(Arc::clone(&core), &resolved)?
        .merge(observe::health::routes().with_state(Arc::clone(&core)))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&observer),
            observe::http::track,
        ));
    let listener = TcpListener::bind(resolved.listen)
        .await
        .map_err(|source| StartError::Bind {
            service: kind,
            addr: resolved.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        service: kind,
        addr: resolved.listen,
        source,
    })?;
    let stop = CancellationToken::new();
    let serve = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let server = tokio::spawn(async move { serve.await });
    tracing::info!(
        service = kind.name(),
        %addr,
        defects = %resolved.defects,
        "listening"
    );
    Ok(RunningService {
        kind,
        addr,
        core,
        stop,
        server: Some(server),
    })
}

impl RunningService {
    /// Which service this is.
    pub fn kind(&self) -> ServiceKind {
        self.kind
    }

    /// The bound address (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` usable from this machine (an unspecified IP becomes 127.0.0.1).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// The breaker transitions kept so far (bounded), in the order they were recorded.
    /// Timer-driven transitions due by now (opossum, Envoy) are recorded first.
    pub fn breaker_transitions(&self) -> Vec<BreakerTransition> {
        self.settle_breakers();
        self.core.observer.transitions.snapshot()
    }

    /// Receive every breaker transition from now on.
    pub fn subscribe_transitions(&self) -> broadcast::Receiver<BreakerTransition> {
        self.core.observer.transitions.subscribe()
    }

    /// The stored breaker state of a client (`None`: no such client, or no breaker).
    /// Reading it never makes a change only a request would; due timers fire (see
    /// [`crate::DownstreamClient::settle`]).
    pub fn breaker_state(&self, downstream: Downstream) -> Option<State> {
        self.core
            .clients
            .iter()
            .find(|c| c.downstream() == downstream)
            .and_then(|c| c.status().state)
    }

    /// Wait until the client's breaker is in `state` (at once if it already is), or
    /// `timeout` passes. Returns whether the state was reached.
    pub async fn wait_for_breaker(
        &self,
        downstream: Downstream,
        state: State,
        timeout: Duration,
    ) -> bool {
        let mut events = self.subscribe_transitions();
        if self.breaker_state(downstream) == Some(state) {
            return true;
        }
        let wait = async {
            loop {
                // A timer-driven transition is recorded only when something looks, so
                // look now and then as well as listening.
                match tokio::time::timeout(TIMER_POLL, events.recv()).await {
                    Ok(Ok(t)) if t.downstream == downstream && t.to == state => return true,
                    Ok(Ok(_)) => {}
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                        if self.breaker_state(downstream) == Some(state) {
                            return true;
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => return false,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// The `/metrics` text, without going through HTTP (due breaker timers fire first,
    /// as for a scrape).
    pub fn metrics_text(&self) -> String {
        self.settle_breakers();
        self.core.observer.metrics.render()
    }

    fn settle_breakers(&self) {
        for client in &self.core.clients {
            client.settle();
        }
    }

    /// Stop accepting, let in-flight requests and background calls finish (up to a
    /// few seconds, then abort them), and wait.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    tracing::warn!(service = self.kind.name(), %err, "server error")
                }
                Ok(Err(err)) => {
                    tracing::warn!(service = self.kind.name(), %err, "server task failed")
                }
                Err(_) => server.abort(),
            }
        }
        self.core.cancel.cancel();
        self.core.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.core.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = self.kind.name(),
                "background tasks still running at shutdown"
            );
        }
        tracing::info!(service = self.kind.name(), "stopped");
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.cancel();
        self.core.cancel.cancel();
    }
}

/// How to start all five services together.
///
/// Every service gets the shared downstream URLs that concern it. merchant-service's
/// `gateway` and settlement-service's `withdrawal` default to the payment-gateway and
/// withdrawal-service started here, unless a URL is given for them.
#[derive(Debug, Clone, Default)]
pub struct StackConfig {
    downstream_urls: BTreeMap<Downstream, String>,
    time_scale: Option<f64>,
    services: BTreeMap<ServiceKind, ServiceConfig>,
}

impl StackConfig {
    /// Nothing set: platform numbers, downstreams at their default URLs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Base URL of a downstream, for every service that calls it.
    pub fn downstream_url(mut self, downstream: Downstream, url: impl Into<String>) -> Self {
        self.downstream_urls.insert(downstream, url.into());
        self
    }

    /// Base URLs of several downstreams.
    pub fn downstream_urls(mut self, urls: impl IntoIterator<Item = (Downstream, String)>) -> Self {
        self.downstream_urls.extend(urls);
        self
    }

    /// Time scale for every service (replaces each service config's own).
    pub fn time_scale(mut self, factor: f64) -> Self {
        self.time_scale = Some(factor);
        self
    }

    /// Use this config for its service (defects, client settings, its own URLs, which
    /// win over the shared ones).
    pub fn service(mut self, config: ServiceConfig) -> Self {
        self.services.insert(config.kind(), config);
        self
    }
}

/// The five services running in this process.
#[derive(Debug)]
pub struct RunningStack {
    services: Vec<RunningService>,
}

/// Start all five services (gateway and withdrawal-service first, so the services that
/// call them can be wired to them). If one fails to start, the others are stopped.
pub async fn start_all(config: StackConfig) -> Result<RunningStack, StartError> {
    let mut started: Vec<RunningService> = Vec::new();
    for kind in ServiceKind::ALL {
        let mut service = config
            .services
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| ServiceConfig::new(kind));
        if let Some(scale) = config.time_scale {
            service = service.time_scale(scale);
        }
        for &downstream in kind.downstreams() {
            if service.has_downstream_url(downstream) {
                continue;
            }
            let url = config
                .downstream_urls
                .get(&downstream)
                .cloned()
                .or_else(|| {
                    downstream.fronts().and_then(|k| {
                        started
                            .iter()
                            .find(|s| s.kind() == k)
                            .map(RunningService::url)
                    })
                });
            if let Some(url) = url {
                service = service.downstream_url(downstream, url);
            }
        }
        match start(service).await {
            Ok(running) => started.push(running),
            Err(err) => {
                for running in started {
                    running.shutdown().await;
                }
                return Err(err);
            }
        }
    }
    Ok(RunningStack { services: started })
}

impl RunningStack {
    /// The running service of `kind`.
    pub fn service(&self, kind: ServiceKind) -> Option<&RunningService> {
        self.services.iter().find(|s| s.kind() == kind)
    }

    /// All five, in start order.
    pub fn services(&self) -> &[RunningService] {
        &self.services
    }

    /// Stop all five.
    pub async fn shutdown(self) {
        for service in self.services {
            service.shutdown().await;
        }
    }
}
