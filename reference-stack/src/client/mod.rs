//! The platform's shared client library, modelled: one client per downstream, whose
//! breaker wraps the whole retry loop (one logical call = one breaker count).
//!
//! Success is a 2xx answer carrying the envelope `{"code":0,"message":..,"data":..}`;
//! `data` is decoded leniently. Network errors, timeouts, 5xx and 429 are retried; other
//! 4xx are not (unless the `retry_4xx` defect is on). Every error, 4xx included, counts
//! as a breaker failure, as gobreaker counts any error returned from `Execute`. A 2xx
//! whose body cannot be decoded is a failure of the call (not retried).
//!
//! The breaker is gobreaker's unless the client's [`BreakerFlavour`] says otherwise
//! ([`flavour`]). Two flavours change how the breaker wraps the call:
//! - pybreaker holds its breaker's lock for the whole guarded call, so the client holds
//!   an async mutex per breaker across the guarded retry loop: calls through one breaker
//!   run one at a time, and a call made while the breaker is open waits for the lock,
//!   then is refused at once;
//! - Envoy's outlier detection sits in a proxy that sees each attempt, so each attempt
//!   is its own breaker request, counted as a failure only when Envoy would count a 5xx
//!   (an answer ≥ 500, a connect failure as 503, a timeout as 504). While the host is
//!   ejected the proxy answers at once: the attempt is refused like a breaker refusal,
//!   which ends the call (refusals are not retried).

pub mod breaker;
pub mod envoy;
pub mod flavour;
pub mod opossum;
pub mod pybreaker;
pub mod resilience4j;
pub mod retry;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub use breaker::{Breaker, BreakerSettings, Counts, Rejection, State, Ticket, Transition};
pub use flavour::{BreakerConfig, BreakerFlavour, FlavourTicket, FlavouredBreaker};
pub use retry::RetryPolicy;

use crate::config::{ClientDefects, ClientPlan, ClientSettings};
use crate::observe::metrics::AttemptOutcome;
use crate::observe::{BreakerTransition, Observer};
use crate::topology::{Downstream, ServiceKind};

/// Why a logical call to a downstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The breaker refused the call; nothing was sent.
    #[error("{downstream}: {rejection}")]
    Rejected {
        /// The downstream.
        downstream: Downstream,
        /// Open, or half-open and full.
        rejection: Rejection,
    },
    /// The downstream answered with an error status (after any retries).
    #[error("{downstream} answered HTTP {status}: {message}")]
    Status {
        /// The downstream.
        downstream: Downstream,
        /// The HTTP status.
        status: u16,
        /// The envelope's message, or the start of the body.
        message: String,
    },
    /// The last attempt timed out.
    #[error("{downstream} did not answer within {timeout:?}")]
    Timeout {
        /// The downstream.
        downstream: Downstream,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// The last attempt failed to connect, send or read.
    #[error("{downstream} unreachable: {reason}")]
    Network {
        /// The downstream.
        downstream: Downstream,
        /// The transport error.
        reason: String,
    },
    /// A 2xx answer that is not the expected envelope/data.
    #[error("{downstream} sent an unusable answer: {reason}")]
    Decode {
        /// The downstream.
        downstream: Downstream,
        /// What was wrong.
        reason: String,
    },
}

impl CallError {
    /// Whether the breaker refused the call (services answer 503 for these).
    pub fn is_rejection(&self) -> bool {
        matches!(self, CallError::Rejected { .. })
    }
}

/// One request to a downstream.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    body: Option<Value>,
    idempotency_key: Option<String>,
}

impl Request {
    /// `GET path` (path may carry a query string; build it with [`Request::query`]).
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            idempotency_key: None,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            body: Some(body),
            idempotency_key: None,
        }
    }

    /// `PUT path` with a JSON body.
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: Method::PUT,
            path: path.into(),
            body: Some(body),
            idempotency_key: None,
        }
    }

    /// Append URL-encoded query parameters.
    pub fn query(mut self, params: &[(&str, &str)]) -> Self {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.path
            .push(if self.path.contains('?') { '&' } else { '?' });
        self.path.push_str(&query);
        self
    }

    /// Send `Idempotency-Key: key` (dropped by the `order_retry_without_idempotency` defect).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What readiness knows about one client, without sending anything.
#[derive(Debug, Clone)]
pub struct ClientStatus {
    /// The downstream.
    pub downstream: Downstream,
    /// Stored breaker state (`None` when the `no_breaker` defect removed it).
    pub state: Option<State>,
    /// The breaker's current counts (zero without a breaker).
    pub counts: Counts,
    /// The transport error of the most recent attempt, if it failed to connect/send/read.
    pub unreachable: Option<String>,
    /// The most recent attempt's outcome, if any attempt was made.
    pub last_outcome: Option<AttemptOutcome>,
}

#[derive(Debug, Default)]
struct LastAttempt {
    outcome: Option<AttemptOutcome>,
    network_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

/// A client for one downstream: breaker + retry loop + per-attempt timeout.
#[derive(Debug)]
pub struct DownstreamClient {
    service: ServiceKind,
    downstream: Downstream,
    base_url: Url,
    http: reqwest::Client,
    settings: ClientSettings,
    defects: ClientDefects,
    breaker: Option<Mutex<FlavouredBreaker>>,
    /// Held across each guarded call when the flavour serialises calls (pybreaker).
    call_lock: Option<tokio::sync::Mutex<()>>,
    observer: Arc<Observer>,
    last_attempt: Mutex<LastAttempt>,
}

impl DownstreamClient {
    /// Build a client from its plan. Fails only if the HTTP client cannot be built.
    pub fn new(
        service: ServiceKind,
        plan: &ClientPlan,
        observer: Arc<Observer>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().build()?;
        let breaker = (!plan.defects.no_breaker)
            .then(|| Mutex::new(FlavouredBreaker::new(plan.breaker.clone(), Instant::now())));
        let call_lock = (breaker.is_some() && plan.breaker.flavour().serialises_calls())
            .then(|| tokio::sync::Mutex::new(()));
        Ok(Self {
            service,
            downstream: plan.downstream,
            base_url: plan.base_url.clone(),
            http,
            settings: plan.settings.clone(),
            defects: plan.defects,
            breaker,
            call_lock,
            observer,
            last_attempt: Mutex::new(LastAttempt::default()),
        })
    }

    /// The downstream this client calls.
    pub fn downstream(&self) -> Downstream {
        self.downstream
    }

    /// The numbers this client runs with (time scale applied).
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// One logical call; decodes the envelope's `data` into `T` (unknown fields ignored).
    pub async fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, CallError> {
        let data = self.call_value(request).await?;
        serde_json::from_value(data).map_err(|e| self.decode_error(e.to_string()))
    }

    /// One logical call returning the envelope's `data` as JSON.
    pub async fn call_value(&self, request: &Request) -> Result<Value, CallError> {
        let per_attempt_breaker =
            self.defects.retries_outside_breaker || self.settings.breaker.sees_each_attempt();
        if per_attempt_breaker || self.breaker.is_none() {
            self.retrying(request, per_attempt_breaker).await
        } else {
            self.guarded(|| self.retrying(request, false)).await
        }
    }

    /// A snapshot for health checks; never sends anything. It fires the breaker's timers
    /// that are due ([`DownstreamClient::settle`]) but never makes a change that only a
    /// request would make.
    pub fn status(&self) -> ClientStatus {
        let (state, counts) = match &self.breaker {
            Some(breaker) => {
                let mut breaker = lock(breaker);
                self.settle_locked(&mut breaker);
                (Some(breaker.peek_state()), breaker.counts())
            }
            None => (None, Counts::default()),
        };
        let last = lock(&self.last_attempt);
        ClientStatus {
            downstream: self.downstream,
            state,
            counts,
            unreachable: last.network_error.clone(),
            last_outcome: last.outcome,
        }
    }

    /// Apply the breaker's timer-driven changes due by now (opossum's reset timer,
    /// Envoy's sweeps) and publish them, stamped with their timers' instants. Observers
    /// call this before reading so that a timer nobody's request noticed still shows;
    /// gobreaker's, pybreaker's and resilience4j's lazy changes are left to requests.
    pub fn settle(&self) {
        if let Some(breaker) = &self.breaker {
            self.settle_locked(&mut lock(breaker));
        }
    }

    fn settle_locked(&self, breaker: &mut FlavouredBreaker) {
        breaker.settle(Instant::now());
        self.publish(breaker);
    }

    async fn retrying(
        &self,
        request: &Request,
        per_attempt_breaker: bool,
    ) -> Result<Value, CallError> {
        let policy = RetryPolicy {
            max_attempts: if self.defects.no_retry {
                1
            } else {
                self.settings.max_attempts
            },
            retry_delay: self.settings.retry_delay,
        };
        let body = retry::run(
            policy,
            |_| async {
                if per_attempt_breaker {
                    self.guarded(|| self.attempt(request)).await
                } else {
                    self.attempt(request).await
                }
            },
            |err| self.retryable(err),
        )
        .await?;
        self.decode(&body)
    }

    fn retryable(&self, err: &CallError) -> bool {
        match err {
            CallError::Network { .. } | CallError::Timeout { .. } => true,
            CallError::Status { status, .. } => {
                *status >= 500 || *status == 429 || (self.defects.retry_4xx && *status >= 400)
            }
            CallError::Rejected { .. } | CallError::Decode { .. } => false,
        }
    }

    /// Run `call` as one breaker request (gobreaker's `Execute`, pybreaker's `call`, ...).
    async fn guarded<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let Some(breaker) = &self.breaker else {
            return call().await;
        };
        // pybreaker: `with self._lock:` around the whole call, the refusal included.
        // Declared before `pending` so that the outcome is reported before it is released.
        let _serialised = match &self.call_lock {
            Some(call_lock) => Some(call_lock.lock().await),
            None => None,
        };
        let ticket = {
            let mut b = lock(breaker);
            let admitted = b.before_request(Instant::now());
            self.publish(&mut b);
            admitted
        };
        let ticket = match ticket {
            Ok(ticket) => ticket,
            Err(rejection) => {
                let reason = match rejection {
                    Rejection::Open => "open",
                    Rejection::TooManyRequests => "too_many_requests",
                };
                self.observer.metrics.rejection(self.downstream, reason);
                return Err(CallError::Rejected {
                    downstream: self.downstream,
                    rejection,
                });
            }
        };
        let mut pending = PendingOutcome {
            client: self,
            breaker,
            ticket: Some(ticket),
        };
        let result = call().await;
        pending.finish(self.counts_as_success(&result));
        result
    }

    /// What the breaker is told about a finished request. Envoy judges an attempt by its
    /// status as the proxy sees it: only a 5xx fails, with a connect failure mapped to 503
    /// and a timeout to 504 (`split_external_local_origin_errors: false`); a 4xx or an
    /// unusable 2xx body is a success. Every library modelled at the call level counts any
    /// error.
    fn counts_as_success<T>(&self, result: &Result<T, CallError>) -> bool {
        match result {
            Ok(_) => true,
            Err(err) if self.settings.breaker.sees_each_attempt() => match err {
                CallError::Status { status, .. } => *status < 500,
                CallError::Timeout { .. } | CallError::Network { .. } => false,
                CallError::Rejected { .. } | CallError::Decode { .. } => true,
            },
            Err(_) => false,
        }
    }

    /// Hand the breaker's new transitions to the observer while still holding the lock,
    /// so the history's order is the breaker's order.
    fn publish(&self, breaker: &mut FlavouredBreaker) {
        let transitions = breaker.take_transitions();
        if transitions.is_empty() {
            return;
        }
        // Both clocks are read together so `wall` and `at` describe the same moment.
        let (now, wall) = (Instant::now(), SystemTime::now());
        for t in transitions {
            let wall = wall
                .checked_sub(now.saturating_duration_since(t.at))
                .unwrap_or(wall);
            self.observer
                .metrics
                .transition(self.downstream, t.from, t.to);
            self.observer.transitions.record(BreakerTransition {
                service: self.service,
                downstream: self.downstream,
                from: t.from,
                to: t.to,
                at: t.at,
                wall,
            });
        }
    }

    /// One HTTP attempt, with the per-attempt timeout unless the defect removed it.
    async fn attempt(&self, request: &Request) -> Result<Bytes, CallError> {
        let url = format!(
            "{}{}",
            self.base_url.as_str().trim_end_matches('/'),
            request.path
        );
        let mut builder = self.http.request(request.method.clone(), url);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if let Some(key) = &request.idempotency_key
            && !self.defects.drop_idempotency_key
        {
            builder = builder.header("Idempotency-Key", key);
        }
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let result = if self.defects.no_client_timeout {
            Some(exchange.await)
        } else {
            tokio::time::timeout(self.settings.attempt_timeout, exchange)
                .await
                .ok()
        };
        let (result, outcome) = match result {
            None => (
                Err(CallError::Timeout {
                    downstream: self.downstream,
                    timeout: self.settings.attempt_timeout,
                }),
                AttemptOutcome::Timeout,
            ),
            Some(Err(err)) => (
                Err(CallError::Network {
                    downstream: self.downstream,
                    reason: transport_reason(&err),
                }),
                AttemptOutcome::Network,
            ),
            Some(Ok((status, body))) if status.is_success() => (Ok(body), AttemptOutcome::Success),
            Some(Ok((status, body))) => (
                Err(CallError::Status {
                    downstream: self.downstream,
                    status: status.as_u16(),
                    message: error_message(&body),
                }),
                match status.as_u16() {
                    500.. => AttemptOutcome::Http5xx,
                    429 => AttemptOutcome::Http429,
                    _ => AttemptOutcome::Http4xx,
                },
            ),
        };
        self.note_attempt(&result, outcome);
        result
    }

    fn note_attempt(&self, result: &Result<Bytes, CallError>, outcome: AttemptOutcome) {
        self.observer.metrics.attempt(self.downstream, outcome);
        let mut last = lock(&self.last_attempt);
        last.outcome = Some(outcome);
        last.network_error = match result {
            Err(CallError::Network { reason, .. }) => Some(reason.clone()),
            _ => None,
        };
    }

    fn decode(&self, body: &[u8]) -> Result<Value, CallError> {
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|e| self.decode_error(format!("not a JSON envelope: {e}")))?;
        let code_ok = match &envelope.code {
            None => true,
            Some(code) => code.as_i64() == Some(0),
        };
        if !code_ok {
            return Err(self.decode_error(format!(
                "envelope code {} ({})",
                envelope.code.unwrap_or(Value::Null),
                envelope.message.unwrap_or_default()
            )));
        }
        Ok(envelope.data.unwrap_or(Value::Null))
    }

    fn decode_error(&self, reason: String) -> CallError {
        CallError::Decode {
            downstream: self.downstream,
            reason,
        }
    }
}

/// An admitted breaker request whose outcome is still owed. If the call is abandoned
/// (its caller went away and the future was dropped), the drop reports a failure, as a
/// cancelled context does in Go; otherwise the request would hold a half-open slot
/// forever and wedge the breaker.
struct PendingOutcome<'a> {
    client: &'a DownstreamClient,
    breaker: &'a Mutex<FlavouredBreaker>,
    ticket: Option<FlavourTicket>,
}

impl PendingOutcome<'_> {
    fn finish(&mut self, success: bool) {
        if let Some(ticket) = self.ticket.take() {
            let mut b = lock(self.breaker);
            b.after_request(ticket, success, Instant::now());
            self.client.publish(&mut b);
        }
    }
}

impl Drop for PendingOutcome<'_> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Lock a mutex, carrying on after a panic elsewhere: the guarded data stays consistent
/// because every critical section here is a handful of plain assignments.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn transport_reason(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    reason
}

/// The envelope's message, or the first 200 characters of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(Envelope {
        message: Some(message),
        ..
    }) = serde_json::from_slice::<Envelope>(body)
    {
        return message;
    }
    String::from_utf8_lossy(body).chars().take(200).collect()
}
