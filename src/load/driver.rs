//! Load with goose.
//!
//! Each journey is a goose scenario whose users form a worker pool. In the
//! open model one releaser task per journey lets arrivals out as they fall
//! due on the journey's [`Schedule`] (one timer for the journey, not one per
//! request); an idle user waits for the next one and sends it, and a user
//! that finishes behind schedule sends the next at once. Latency is measured
//! from the intended time, so a stalled SUT shows up as latency instead of silently
//! lowering the rate (coordinated omission). A request that cannot start
//! within `max_lag` of its time is counted as dropped. In the closed model
//! each user loops: request, think, request.
//!
//! Goose runs the users and their transactions; inside a transaction the
//! request goes through the lane's own lean client (`Pool`): a bounded
//! pool of keep-alive connections whose limit follows how long the SUT holds
//! a connection (Little's law on the peak rate), never how late the
//! generator is, so a stall cannot snowball into a connection storm.
//!
//! Goose's own metrics and printing are off; every measurement goes to the
//! [`Recorder`], whose settled windows a housekeeping task here summarises
//! off the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::acks::AckRecord;
use super::client::Pool;
use super::journeys::{Answer, Caller, PaymentAnswer, read_payment};
use super::recorder::{BEHIND_P99, Recorder};
use super::requests::RequestRecord;
use super::schedule::{Schedule, Slice};
use crate::platform::JourneyKind;
use crate::scenario::{Journey, Model};
use crate::spill::Spill;

/// How long an idle user waits before goose runs it again.
const IDLE: Duration = Duration::from_millis(20);

/// Most goose users (and connections) per journey in the open model.
const MAX_WORKERS: usize = 2000;

/// Connections an open-model lane starts with; more come as the SUT holds
/// them longer.
const FIRST_CONNECTIONS: usize = 32;

/// How often an open-model lane's connections may grow.
const TUNE_EVERY: Duration = Duration::from_millis(100);

/// Connections an open-model lane may add per [`TUNE_EVERY`].
const GROWTH: usize = 64;

/// How often settled recorder windows are summarised.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

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
    /// Where every acknowledged payment goes (flushed by the caller).
    pub acks: Option<Arc<Spill<AckRecord>>>,
    /// The share of every journey this process sends: [`Slice::WHOLE`],
    /// or a worker's slice of a distributed run.
    pub slice: Slice,
}

/// What the driver reports besides the recorder.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverStats {
    /// Goose users that ran.
    pub workers: usize,
    /// Connections opened to the SUT, all lanes together.
    pub connections: u64,
}

struct Worker {
    lane_index: usize,
    kind: JourneyKind,
    series: usize,
    webhook_series: Option<usize>,
    success: Vec<u16>,
    schedule: Option<Schedule>,
    /// Which of the schedule's arrivals are this process's.
    slice: Slice,
    /// Open model: one permit per arrival fallen due (closed when the
    /// schedule is done or the run cancelled).
    due: Option<Arc<Semaphore>>,
    think: Duration,
    next: AtomicU64,
    pool: Arc<Pool>,
    /// Open model: the schedule's peak rate, requests/s.
    peak_rate: f64,
    /// The shortest answer (sent → answered) since the last tuning, µs.
    shortest_us: AtomicU64,
    /// The longest wait between an arrival's time and its start (before
    /// any wait for a connection) since the last tuning, µs.
    longest_lag_us: AtomicU64,
    /// When the connections were last tuned, µs from the load start.
    tuned_at_us: AtomicU64,
    caller: Arc<Caller>,
    recorder: Arc<Recorder>,
    load_start: Instant,
    end: Instant,
    max_lag: Duration,
    timeout: Duration,
    in_flight: Arc<AtomicUsize>,
    cancel: CancellationToken,
    requests: Option<Arc<Spill<RequestRecord>>>,
    acks: Option<Arc<Spill<AckRecord>>>,
}

impl Worker {
    async fn step(&self) -> TransactionResult {
        if self.cancel.is_cancelled() {
            return self.idle().await;
        }
        if let Some(due) = &self.due {
            match due.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return self.idle().await,
            }
        }
        let k = self.slice.global(self.next.fetch_add(1, Ordering::Relaxed));
        let intended = match &self.schedule {
            Some(schedule) => match schedule.at(k) {
                Some(offset) => self.load_start + offset,
                None => return self.idle().await,
            },
            None if Instant::now() >= self.end => return self.idle().await,
            None => Instant::now().max(self.load_start),
        };
        // Released a hair early (rounding), or a closed-model user before the
        // start: wait, giving way to cancellation.
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
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let call = self.caller.first(self.kind, self.lane_index, k);
        let id = call.id;
        let (answer, sent) = self.pool.send(call, &self.success, self.timeout).await;
        let done = Instant::now();
        self.tune(done.saturating_duration_since(sent), lag);
        self.recorder.record(
            self.series,
            offset,
            sent.saturating_duration_since(intended),
            done - intended,
            &answer.outcome,
        );
        let payment = match self.kind {
            JourneyKind::Payment => read_payment(&answer),
            _ => None,
        };
        self.log(
            self.series,
            (intended, sent, done),
            id,
            &answer,
            payment.as_ref(),
        );
        if let Some(payment) = payment {
            self.follow_payment(payment).await;
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.schedule.is_none() && !self.think.is_zero() {
            let wake = (Instant::now() + self.think).min(self.end);
            tokio::time::sleep_until(wake.into()).await;
        }
        Ok(())
    }

    /// Open model: keeps enough connections for the peak rate at the time
    /// the SUT takes (twice Little's law, plus slack). It grows only while
    /// every connection is taken *and* the generator itself is on time, and
    /// by [`GROWTH`] connections per [`TUNE_EVERY`] at most. The SUT's time
    /// is the shortest answer since the last tuning; when the generator is
    /// late (a stall, a saturated runtime) even that is inflated by its own
    /// scheduling delays, so lateness never opens connections, and gradual
    /// growth keeps a burst of connects from overflowing the SUT's accept
    /// queue (a dropped SYN costs a one-second retransmission): a stall
    /// cannot snowball into a connection storm, while a slow SUT, met by a
    /// generator with time to spare, gets its connections within seconds.
    fn tune(&self, service: Duration, lag: Duration) {
        if self.schedule.is_none() {
            return;
        }
        let sample = u64::try_from(service.as_micros()).unwrap_or(u64::MAX);
        let shortest = self
            .shortest_us
            .fetch_min(sample, Ordering::Relaxed)
            .min(sample);
        let lag = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let latest = self
            .longest_lag_us
            .fetch_max(lag, Ordering::Relaxed)
            .max(lag);
        let now = u64::try_from(self.load_start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let last = self.tuned_at_us.load(Ordering::Relaxed);
        if now < last + TUNE_EVERY.as_micros() as u64
            || self
                .tuned_at_us
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.shortest_us.store(u64::MAX, Ordering::Relaxed);
        self.longest_lag_us.store(0, Ordering::Relaxed);
        let needed =
            (self.peak_rate * shortest as f64 / 1e6 * 2.0).ceil() as usize + FIRST_CONNECTIONS;
        let limit = self.pool.limit();
        let on_time = latest <= BEHIND_P99.as_micros() as u64;
        if on_time && needed > limit && self.pool.exhausted() {
            self.pool.want(needed.min(limit + GROWTH));
        }
    }

    /// Spills one request's record, with the id the SUT answered with.
    fn log(
        &self,
        series: usize,
        (intended, sent, done): (Instant, Instant, Instant),
        id: u64,
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
            id,
            answer_id: payment.map_or(0, |p| fault_injectors::id_hash(&p.ack.payment_no)),
        });
    }

    /// Records the acknowledgement and, when asked, sends the webhook.
    async fn follow_payment(&self, mut payment: PaymentAnswer) {
        if let (Some(series), Some(trade_no)) = (self.webhook_series, payment.trade_no.as_deref()) {
            let started = Instant::now();
            let call = self.caller.webhook(&payment.ack.payment_no, trade_no);
            let id = call.id;
            let (hook, sent) = self.pool.send(call, &self.success, self.timeout).await;
            let done = Instant::now();
            let offset = started.saturating_duration_since(self.load_start);
            self.recorder.record(
                series,
                offset,
                Duration::ZERO,
                done - started,
                &hook.outcome,
            );
            self.log(series, (started, sent, done), id, &hook, None);
            if hook.outcome.is_ok() {
                payment.ack.expect = vec!["succeeded".into()];
            }
        }
        if let Some(acks) = &self.acks {
            acks.push(AckRecord::of(self.series, &payment.ack));
        }
    }

    /// Open model: how many of the schedule's arrivals are this process's.
    fn total(&self) -> u64 {
        self.schedule
            .as_ref()
            .map_or(0, |s| self.slice.count(s.total()))
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

/// Open model: adds a permit to `due` for every arrival of `schedule` in
/// `slice` as it falls due. One timer wakes it for the next arrival;
/// arrivals due at once go out together. Once all are out, permits without
/// end let the users find the schedule done (and idle); `cancel` closes
/// `due` instead.
async fn release(
    schedule: Schedule,
    slice: Slice,
    due: Arc<Semaphore>,
    load_start: Instant,
    cancel: CancellationToken,
) {
    let total = slice.count(schedule.total());
    let mut released = 0;
    while released < total {
        let now = Instant::now();
        if now >= load_start {
            let count = slice.count(schedule.due_at(now - load_start));
            if count > released {
                due.add_permits(usize::try_from(count - released).unwrap_or(usize::MAX));
                released = count;
            }
        }
        let Some(next) = schedule.at(slice.global(released)) else {
            break;
        };
        tokio::select! {
            _ = tokio::time::sleep_until((load_start + next).into()) => {}
            _ = cancel.cancelled() => {
                due.close();
                return;
            }
        }
    }
    due.add_permits(Semaphore::MAX_PERMITS / 2);
}

/// How many goose users a journey needs for its `slice`.
fn workers(
    journey: &Journey,
    schedule: Option<&Schedule>,
    slice: Slice,
    timeout: Duration,
) -> usize {
    match schedule {
        // Enough to keep every request of the peak rate in flight for the
        // whole timeout, with half again as headroom: a slow SUT is measured,
        // not waited for.
        Some(s) => ((peak_rate(s, slice) * timeout.as_secs_f64() * 1.5).ceil() as usize + 16)
            .clamp(4, MAX_WORKERS),
        None => usize::try_from(slice.users(u64::from(journey.users))).unwrap_or(usize::MAX),
    }
}

/// The peak rate of `slice`'s share of `schedule`, requests/s.
fn peak_rate(schedule: &Schedule, slice: Slice) -> f64 {
    schedule.peak_rate() / slice.of.max(1) as f64
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
    // application's filter decides (faultline's CLI keeps them off). Its
    // per-transaction debug lines are cut at the source.
    let _ = tracing_log::LogTracer::init_with_filter(tracing_log::log::LevelFilter::Warn);
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(|e| LoadError(e.to_string()))?;
    let mut total_users = 0;
    let mut pools = Vec::new();
    let mut releasers = Vec::new();
    let mut open_lanes = Vec::new();
    for lane in lanes {
        let schedule = (settings.model == Model::Open)
            .then(|| Schedule::new(&lane.journey.rate, settings.duration));
        let users = workers(
            &lane.journey,
            schedule.as_ref(),
            settings.slice,
            settings.timeout,
        );
        if users == 0 {
            // A closed-model journey with fewer users than workers: this
            // worker has none of them.
            continue;
        }
        total_users += users;
        // Closed: one connection per user. Open: a few, more as the SUT
        // holds them longer, never more than there are users.
        let first = match schedule {
            Some(_) => FIRST_CONNECTIONS,
            None => users,
        };
        let pool =
            Arc::new(Pool::new(&lane.target, first, users).map_err(|e| LoadError(e.to_string()))?);
        pools.push(Arc::clone(&pool));
        let due = schedule.as_ref().map(|schedule| {
            let due = Arc::new(Semaphore::new(0));
            releasers.push(tokio::spawn(release(
                schedule.clone(),
                settings.slice,
                Arc::clone(&due),
                load_start,
                cancel.clone(),
            )));
            due
        });
        let worker = Arc::new(Worker {
            lane_index: lane.index,
            kind: lane.journey.kind,
            series: lane.series,
            webhook_series: lane.webhook_series,
            success: lane.journey.success_statuses.clone(),
            peak_rate: schedule
                .as_ref()
                .map_or(0.0, |s| peak_rate(s, settings.slice)),
            schedule,
            slice: settings.slice,
            due,
            think: lane.journey.think,
            next: AtomicU64::new(0),
            pool,
            shortest_us: AtomicU64::new(u64::MAX),
            longest_lag_us: AtomicU64::new(0),
            tuned_at_us: AtomicU64::new(0),
            caller: Arc::clone(&caller),
            recorder: Arc::clone(&recorder),
            load_start,
            end,
            max_lag: settings.max_lag,
            timeout: settings.timeout,
            in_flight: Arc::clone(&in_flight),
            cancel: cancel.clone(),
            requests: settings.requests.clone(),
            acks: settings.acks.clone(),
        });
        if worker.schedule.is_some() {
            open_lanes.push(Arc::clone(&worker));
        }
        let step: TransactionFunction = Arc::new(move |_: &mut GooseUser| {
            let worker = Arc::clone(&worker);
            Box::pin(async move { worker.step().await })
        });
        let scenario = Scenario::new(&lane.journey.name)
            .set_host(&lane.target)
            .set_weight(users)
            .map_err(|e| LoadError(e.to_string()))?
            .register_transaction(Transaction::new(step).set_name(&lane.journey.name));
        attack = attack.register_scenario(scenario);
    }
    if total_users == 0 {
        // A worker whose share of every closed-model journey is no user.
        return Ok(DriverStats::default());
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
        // Goose builds a client per user that sends nothing (every request
        // goes through the lane's pool, plain HTTP). Skipping certificate
        // checks spares it the system trust store, which a worker image
        // (FROM scratch) does not have: without one, building it fails.
        a.set_client_builder_without_cookies(
            GooseClientBuilder::new()
                .without_cookies()
                .accept_invalid_certs(true)
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
                    // Let the last arrivals be taken and the requests in
                    // flight finish (they have their timeout).
                    let deadline = Instant::now() + timeout + Duration::from_secs(1);
                    let busy = || {
                        in_flight.load(Ordering::Acquire) > 0
                            || open_lanes.iter().any(|w| w.next.load(Ordering::Acquire) < w.total())
                    };
                    while busy() && Instant::now() < deadline && !cancel.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                _ = cancel.cancelled() => {}
            }
            goose::trigger_killswitch("faultline: load finished");
        })
    };
    // Summarises the recorder's settled windows off the request path.
    let housekeeping = {
        let recorder = Arc::clone(&recorder);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING);
            loop {
                tick.tick().await;
                recorder.settle();
            }
        })
    };
    let result = attack.execute().await;
    stopper.abort();
    housekeeping.abort();
    for releaser in releasers {
        releaser.abort();
    }
    result.map_err(|e| LoadError(e.to_string()))?;
    Ok(DriverStats {
        workers: total_users,
        connections: pools.iter().map(|p| p.opened()).sum(),
    })
}
