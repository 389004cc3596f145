//! Load with goose.
//!
//! Each journey is a goose scenario whose users form a worker pool. In the
//! open model a user takes the next arrival from the journey's [`Schedule`],
//! waits for its intended time and sends it; latency is measured from the
//! intended time, so a stalled SUT shows up as latency instead of silently
//! lowering the rate (coordinated omission). A request that cannot start
//! within `max_lag` of its time is counted as dropped. In the closed model
//! each user loops: request, think, request.
//!
//! Goose's own metrics and printing are off; every measurement goes to the
//! [`Recorder`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio_util::sync::CancellationToken;

use super::journeys::{Answer, Call, Caller, PaymentAnswer, read_payment};
use super::recorder::{Outcome, Recorder};
use super::requests::RequestRecord;
use super::schedule::Schedule;
use crate::platform::JourneyKind;
use crate::scenario::{Journey, Model};
use crate::spill::Spill;

/// A request starting later than this after its intended time is "late".
const LATE: Duration = Duration::from_millis(10);

/// How long an idle user waits before goose runs it again.
const IDLE: Duration = Duration::from_millis(20);

/// Most goose users per journey in the open model.
const MAX_WORKERS: usize = 2000;

/// Why the load could not run.
#[derive(Debug, thiserror::Error)]
#[error("goose could not run the load: {0}")]
pub struct LoadError(String);

/// Where a journey sends its requests and which series it records into.
pub struct Lane {
    /// The journey.
    pub journey: Journey,
    /// Its index among the scenario's journeys.
    pub index: usize,
    /// Base URL of the service it calls.
    pub target: String,
    /// Its series in the recorder.
    pub series: usize,
    /// Its webhook series, when it follows payments with the webhook.
    pub webhook_series: Option<usize>,
}

/// Settings shared by every lane.
pub struct LoadSettings {
    /// Open or closed.
    pub model: Model,
    /// Run length.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Open model: drop requests later than this.
    pub max_lag: Duration,
    /// Where every request's record goes (flushed by the caller).
    pub requests: Option<Arc<Spill<RequestRecord>>>,
}

/// What the driver reports besides the recorder.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverStats {
    /// Goose users that ran.
    pub workers: usize,
}

struct Worker {
    lane_index: usize,
    kind: JourneyKind,
    series: usize,
    webhook_series: Option<usize>,
    success: Vec<u16>,
    schedule: Option<Schedule>,
    think: Duration,
    next: AtomicU64,
    caller: Arc<Caller>,
    recorder: Arc<Recorder>,
    load_start: Instant,
    end: Instant,
    max_lag: Duration,
    timeout: Duration,
    in_flight: Arc<AtomicUsize>,
    cancel: CancellationToken,
    requests: Option<Arc<Spill<RequestRecord>>>,
}

impl Worker {
    async fn step(&self, user: &mut GooseUser) -> TransactionResult {
        if self.cancel.is_cancelled() {
            return self.idle().await;
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let intended = match &self.schedule {
            Some(schedule) => match schedule.at(k) {
                Some(offset) => self.load_start + offset,
                None => return self.idle().await,
            },
            None if Instant::now() >= self.end => return self.idle().await,
            None => Instant::now().max(self.load_start),
        };
        // A timer costs more than a request to a fast target: only wait when
        // there is something to wait for. A user may hold a ticket far ahead,
        // so the wait gives way to cancellation.
        if intended > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(intended.into()) => {}
                _ = self.cancel.cancelled() => return self.idle().await,
            }
        }
        let offset = intended - self.load_start;
        let lag = Instant::now().saturating_duration_since(intended);
        if self.schedule.is_some() && lag > self.max_lag {
            self.recorder.dropped(self.series, offset);
            return Ok(());
        }
        if lag > LATE {
            self.recorder.late(self.series);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let call = self.caller.first(self.kind, self.lane_index, k);
        let sent = Instant::now();
        let answer = send(user, &call, self.timeout, &self.success).await;
        let done = Instant::now();
        self.recorder
            .record(self.series, offset, done - intended, &answer.outcome);
        let payment = match self.kind {
            JourneyKind::Payment => read_payment(&answer),
            _ => None,
        };
        self.log(
            self.series,
            (intended, sent, done),
            &call,
            &answer,
            payment.as_ref(),
        );
        if let Some(payment) = payment {
            self.follow_payment(user, payment).await;
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.schedule.is_none() && !self.think.is_zero() {
            let wake = (Instant::now() + self.think).min(self.end);
            tokio::time::sleep_until(wake.into()).await;
        }
        Ok(())
    }

    /// Spills one request's record, with the id the SUT answered with.
    fn log(
        &self,
        series: usize,
        (intended, sent, done): (Instant, Instant, Instant),
        call: &Call,
        answer: &Answer,
        payment: Option<&PaymentAnswer>,
    ) {
        let Some(requests) = &self.requests else {
            return;
        };
        let us = |t: Instant| -> i64 {
            i64::try_from(t.saturating_duration_since(self.load_start).as_micros())
                .unwrap_or(i64::MAX)
        };
        requests.push(RequestRecord {
            series: u16::try_from(series).unwrap_or(u16::MAX),
            intended_us: us(intended),
            sent_us: us(sent),
            done_us: us(done),
            outcome: answer.outcome,
            id: call.id,
            answer_id: payment.map_or(0, |p| fault_injectors::id_hash(&p.ack.payment_no)),
        });
    }

    /// Records the acknowledgement and, when asked, sends the webhook.
    async fn follow_payment(&self, user: &mut GooseUser, mut payment: PaymentAnswer) {
        if let (Some(series), Some(trade_no)) = (self.webhook_series, payment.trade_no.as_deref()) {
            let started = Instant::now();
            let call = self.caller.webhook(&payment.ack.payment_no, trade_no);
            let hook = send(user, &call, self.timeout, &self.success).await;
            let done = Instant::now();
            let offset = started.saturating_duration_since(self.load_start);
            self.recorder
                .record(series, offset, done - started, &hook.outcome);
            self.log(series, (started, started, done), &call, &hook, None);
            if hook.outcome.is_ok() {
                payment.ack.expect = vec!["succeeded".into()];
            }
        }
        self.recorder.ack(self.series, payment.ack);
    }

    /// Nothing to send (schedule done, run over or cancelled): wait without
    /// spinning until goose stops the user. Always sleeping a little matters:
    /// a user that returned at once would loop without ever yielding and
    /// starve the goose task that is about to stop it.
    async fn idle(&self) -> TransactionResult {
        let wake = if self.cancel.is_cancelled() {
            Instant::now() + IDLE
        } else {
            Instant::now().max(self.end) + IDLE
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = self.cancel.cancelled(), if !self.cancel.is_cancelled() => {}
        }
        Ok(())
    }
}

/// Sends `call` through goose's client.
async fn send(user: &mut GooseUser, call: &Call, timeout: Duration, success: &[u16]) -> Answer {
    let broken = || Answer {
        outcome: Outcome::Broken,
        body: Vec::new(),
    };
    let method = match call.method {
        http::Method::GET => GooseMethod::Get,
        http::Method::PUT => GooseMethod::Put,
        http::Method::DELETE => GooseMethod::Delete,
        _ => GooseMethod::Post,
    };
    let Ok(mut builder) = user.get_request_builder(&method, &call.path) else {
        return broken();
    };
    builder = builder.timeout(timeout);
    for (name, value) in &call.headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = &call.body {
        builder = builder.body(body.clone());
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(call.path.as_str())
        .set_request_builder(builder)
        .build();
    let response = match user.request(request).await {
        Ok(goose_response) => goose_response.response,
        Err(_) => return broken(),
    };
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => Answer {
                    outcome: if success.contains(&status) {
                        Outcome::Ok(status)
                    } else {
                        Outcome::Status(status)
                    },
                    body: body.to_vec(),
                },
                Err(e) => Answer {
                    outcome: classify(&e),
                    body: Vec::new(),
                },
            }
        }
        Err(e) => Answer {
            outcome: classify(&e),
            body: Vec::new(),
        },
    }
}

/// The outcome of a request that got no usable answer.
pub(crate) fn classify(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Broken
    }
}

/// How many goose users a journey needs.
fn workers(journey: &Journey, schedule: Option<&Schedule>, timeout: Duration) -> usize {
    match schedule {
        // Enough to keep every request of the peak rate in flight for the
        // whole timeout, with half again as headroom: a slow SUT is measured,
        // not waited for.
        Some(s) => ((s.peak_rate() * timeout.as_secs_f64() * 1.5).ceil() as usize + 16)
            .clamp(4, MAX_WORKERS),
        None => journey.users as usize,
    }
}

/// Runs the load: returns once every journey's time is up and the requests
/// in flight have finished (or timed out), or at once when `cancel` fires.
pub async fn drive(
    lanes: Vec<Lane>,
    settings: &LoadSettings,
    caller: Arc<Caller>,
    recorder: Arc<Recorder>,
    load_start: Instant,
    cancel: CancellationToken,
) -> Result<DriverStats, LoadError> {
    let end = load_start + settings.duration;
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Goose prints through the `log` crate with a logger of its own unless
    // one is installed: route its records into `tracing`, where the
    // application's filter decides (faultline's CLI keeps them off).
    let _ = tracing_log::LogTracer::init();
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(|e| LoadError(e.to_string()))?;
    let mut total_users = 0;
    for lane in lanes {
        let schedule = (settings.model == Model::Open)
            .then(|| Schedule::new(&lane.journey.rate, settings.duration));
        let users = workers(&lane.journey, schedule.as_ref(), settings.timeout);
        total_users += users;
        let worker = Arc::new(Worker {
            lane_index: lane.index,
            kind: lane.journey.kind,
            series: lane.series,
            webhook_series: lane.webhook_series,
            success: lane.journey.success_statuses.clone(),
            schedule,
            think: lane.journey.think,
            next: AtomicU64::new(0),
            caller: Arc::clone(&caller),
            recorder: Arc::clone(&recorder),
            load_start,
            end,
            max_lag: settings.max_lag,
            timeout: settings.timeout,
            in_flight: Arc::clone(&in_flight),
            cancel: cancel.clone(),
            requests: settings.requests.clone(),
        });
        let step: TransactionFunction = Arc::new(move |user: &mut GooseUser| {
            let worker = Arc::clone(&worker);
            Box::pin(async move { worker.step(user).await })
        });
        let scenario = Scenario::new(&lane.journey.name)
            .set_host(&lane.target)
            .set_weight(users)
            .map_err(|e| LoadError(e.to_string()))?
            .register_transaction(Transaction::new(step).set_name(&lane.journey.name));
        attack = attack.register_scenario(scenario);
    }
    let run_time =
        (settings.duration + settings.timeout + Duration::from_secs(30)).as_secs() as usize;
    let defaults = |a: GooseAttack| -> Result<GooseAttack, goose::GooseError> {
        let a = *a.set_default(GooseDefault::Users, total_users)?;
        let a = *a.set_default(
            GooseDefault::IncreaseRate,
            (total_users * 20).max(1000).to_string().as_str(),
        )?;
        let a = *a.set_default(GooseDefault::RunTime, run_time)?;
        let a = *a.set_default(GooseDefault::Quiet, 1)?;
        let a = *a.set_default(GooseDefault::NoPrintMetrics, true)?;
        let a = *a.set_default(GooseDefault::NoMetrics, true)?;
        // No Telnet controller on a fixed port: faultline controls the run.
        let a = *a.set_default(GooseDefault::NoTelnet, true)?;
        a.set_client_builder_without_cookies(
            GooseClientBuilder::new()
                .without_cookies()
                .timeout(settings.timeout),
        )
    };
    attack = defaults(attack).map_err(|e| LoadError(e.to_string()))?;

    let stopper = {
        let (in_flight, cancel, timeout) =
            (Arc::clone(&in_flight), cancel.clone(), settings.timeout);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(end.into()) => {
                    // Let requests in flight finish (they have their timeout).
                    let deadline = Instant::now() + timeout + Duration::from_secs(1);
                    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline && !cancel.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                _ = cancel.cancelled() => {}
            }
            goose::trigger_killswitch("faultline: load finished");
        })
    };
    let result = attack.execute().await;
    stopper.abort();
    result.map_err(|e| LoadError(e.to_string()))?;
    Ok(DriverStats {
        workers: total_users,
    })
}
