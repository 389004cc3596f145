//! Observation without retention: what arrived at an injector, when, on which
//! route and with which outcome, in bounded memory.

mod arrivals;
mod buckets;
mod duplicates;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use arrivals::{ArrivalPage, ArrivalRecord, id_hash};
pub use buckets::{BucketReport, CellReport};
pub use duplicates::IdCounters;

use crate::clock::Clock;
use crate::decide::Outcome;
pub(crate) use arrivals::{ArrivalLog, Pending};
use buckets::{Buckets, Marks};
use duplicates::IdTracker;
pub(crate) use duplicates::extract_ids;

/// How an injector observes its traffic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveConfig {
    /// Width of one arrival bucket, milliseconds.
    pub bucket_ms: u64,
    /// Buckets kept; older ones are dropped (36 000 × 100 ms = one hour).
    pub bucket_capacity: usize,
    /// Top-level JSON body fields whose repeats count as duplicates.
    pub id_fields: Vec<String>,
    /// Header whose equal value marks a repeat as an idempotent replay.
    pub idempotency_header: String,
    /// How long ids are remembered, seconds.
    pub id_window_s: u64,
    /// Distinct routes tracked; further ones are counted as `other`.
    pub max_routes: usize,
    /// Arrival records held until a reader pages them out; beyond it, new
    /// ones are dropped and counted.
    pub arrival_capacity: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        Self {
            bucket_ms: 100,
            bucket_capacity: 36_000,
            id_fields: platform_contract::ID_FIELDS.map(String::from).into(),
            idempotency_header: "idempotency-key".into(),
            id_window_s: 300,
            max_routes: 64,
            arrival_capacity: 500_000,
        }
    }
}

/// Totals of one injector since it started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// Requests that arrived (connections refused by an outage never arrive).
    pub attempts: u64,
    /// First arrival, seconds from the clock's origin.
    pub first_arrival_s: Option<f64>,
    /// Latest arrival, seconds from the clock's origin.
    pub last_arrival_s: Option<f64>,
    /// Arrivals by outcome (`served`, `status_503`, ...).
    pub by_outcome: BTreeMap<String, u64>,
    /// Arrivals by route.
    pub by_route: BTreeMap<String, u64>,
    /// Arrivals delayed by a latency fault.
    pub delayed: u64,
    /// Front mode: requests whose upstream could not be reached.
    pub upstream_errors: u64,
    /// Repeated business ids, by field.
    pub ids: BTreeMap<String, IdCounters>,
}

/// A page of arrival buckets.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BucketPage {
    /// The clock's origin, milliseconds since the Unix epoch.
    pub origin_unix_ms: u128,
    /// Bucket width, milliseconds.
    pub width_ms: u64,
    /// Ask for buckets from this index next time (the open bucket is
    /// returned again until it closes).
    pub next: u64,
    /// Non-empty buckets, oldest first; missing indices had no arrivals.
    pub buckets: Vec<BucketReport>,
}

/// Counts an injector's arrivals.
#[derive(Debug)]
pub struct Observer {
    clock: Clock,
    width: Duration,
    max_routes: usize,
    idempotency_header: http::HeaderName,
    id_fields: Vec<String>,
    attempts: AtomicU64,
    upstream_errors: AtomicU64,
    state: Mutex<State>,
    ids: Mutex<IdTracker>,
    arrivals: ArrivalLog,
}

#[derive(Debug)]
struct State {
    /// Route names by id.
    routes: Vec<String>,
    /// Route ids by name: found by hashing, never by a scan.
    route_ids: HashMap<Box<str>, u16>,
    /// Where an unnamed route's key is folded, reused: no allocation per
    /// request.
    key: String,
    by_route: Vec<u64>,
    by_outcome: BTreeMap<Outcome, u64>,
    delayed: u64,
    first: Option<Duration>,
    last: Option<Duration>,
    buckets: Buckets,
}

/// Route name used once `max_routes` distinct routes were seen.
const OTHER_ROUTE: &str = "other";

/// The route of a request: a stand-in route's name, or the request's method
/// and path (folded with [`route_key`] when counted).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RouteRef<'a> {
    Named(&'a str),
    Request(&'a http::Method, &'a str),
}

/// What the observer needs to know of one request.
pub(crate) struct Arrival<'a> {
    pub(crate) route: RouteRef<'a>,
    pub(crate) outcome: Outcome,
    pub(crate) delayed: bool,
    pub(crate) reaches_downstream: bool,
    pub(crate) ids: Vec<(usize, String)>,
    pub(crate) idempotency_key: Option<&'a str>,
}

impl Observer {
    /// A fresh observer on `clock`.
    pub fn new(clock: Clock, config: &ObserveConfig) -> Result<Self, String> {
        if config.bucket_ms == 0 {
            return Err("bucket_ms must be > 0".into());
        }
        let idempotency_header =
            http::HeaderName::from_bytes(config.idempotency_header.to_ascii_lowercase().as_bytes())
                .map_err(|_| {
                    format!(
                        "idempotency_header `{}` is not a header name",
                        config.idempotency_header
                    )
                })?;
        Ok(Self {
            clock,
            width: Duration::from_millis(config.bucket_ms),
            max_routes: config.max_routes.max(1),
            idempotency_header,
            id_fields: config.id_fields.clone(),
            attempts: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            state: Mutex::new(State {
                routes: Vec::new(),
                route_ids: HashMap::new(),
                key: String::new(),
                by_route: Vec::new(),
                by_outcome: BTreeMap::new(),
                delayed: 0,
                first: None,
                last: None,
                buckets: Buckets::new(config.bucket_capacity),
            }),
            ids: Mutex::new(IdTracker::new(
                config.id_fields.clone(),
                Duration::from_secs(config.id_window_s.max(1)),
            )),
            arrivals: ArrivalLog::new(clock, config.arrival_capacity),
        })
    }

    /// The clock observations are reported on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Every arrival's record.
    pub(crate) fn arrivals(&self) -> &ArrivalLog {
        &self.arrivals
    }

    /// Arrival records from `cursor` on; those before it are forgotten.
    pub fn arrivals_since(&self, cursor: u64) -> ArrivalPage {
        self.arrivals.since(cursor)
    }

    /// The header that marks idempotent replays.
    pub(crate) fn idempotency_header(&self) -> &http::HeaderName {
        &self.idempotency_header
    }

    /// The body fields whose repeats are counted.
    pub(crate) fn id_fields(&self) -> &[String] {
        &self.id_fields
    }

    /// Counts one arrival, timestamped now.
    pub(crate) fn record(&self, arrival: Arrival<'_>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let with_ids = !arrival.ids.is_empty();
        let fresh = with_ids
            && lock(&self.ids).observe(
                now,
                &arrival.ids,
                arrival.idempotency_key,
                arrival.reaches_downstream,
            );
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        // Read the clock under the lock so bucket indices never go backwards.
        let t = self.clock.since_origin(Instant::now());
        let route = match arrival.route {
            RouteRef::Named(name) => state.route_id(name, self.max_routes),
            RouteRef::Request(method, path) => {
                let mut key = std::mem::take(&mut state.key);
                key.clear();
                fold_route_key(&mut key, method, path);
                let id = state.route_id(&key, self.max_routes);
                state.key = key;
                id
            }
        };
        state.by_route[usize::from(route)] += 1;
        *state.by_outcome.entry(arrival.outcome).or_default() += 1;
        if arrival.delayed {
            state.delayed += 1;
        }
        state.first.get_or_insert(t);
        state.last = Some(t);
        let index = (t.as_nanos() / self.width.as_nanos()) as u64;
        let marks = Marks {
            delayed: arrival.delayed,
            with_ids,
            fresh,
        };
        state.buckets.record(index, route, arrival.outcome, marks);
    }

    /// Counts a front-mode request whose upstream failed.
    pub(crate) fn record_upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Totals so far.
    pub fn counters(&self) -> Counters {
        let ids = lock(&self.ids).report();
        let state = lock(&self.state);
        Counters {
            attempts: self.attempts.load(Ordering::Relaxed),
            first_arrival_s: state.first.map(|d| d.as_secs_f64()),
            last_arrival_s: state.last.map(|d| d.as_secs_f64()),
            by_outcome: state
                .by_outcome
                .iter()
                .map(|(o, n)| (o.to_string(), *n))
                .collect(),
            by_route: state
                .routes
                .iter()
                .cloned()
                .zip(state.by_route.iter().copied())
                .collect(),
            delayed: state.delayed,
            upstream_errors: self.upstream_errors.load(Ordering::Relaxed),
            ids,
        }
    }

    /// Buckets with index >= `from`.
    pub fn buckets_since(&self, from: u64) -> BucketPage {
        let state = lock(&self.state);
        let width_s = self.width.as_secs_f64();
        let buckets: Vec<BucketReport> = state
            .buckets
            .since(from)
            .map(|(b, open)| BucketReport {
                index: b.index,
                start_s: b.index as f64 * width_s,
                open,
                counts: b
                    .cells
                    .iter()
                    .map(|(route, outcome, count)| CellReport {
                        route: state.routes[usize::from(*route)].clone(),
                        outcome: outcome.to_string(),
                        count: *count,
                    })
                    .collect(),
                delayed: b.delayed,
                with_ids: b.with_ids,
                fresh: b.fresh,
            })
            .collect();
        let next = match buckets.last() {
            Some(b) if b.open => b.index,
            Some(b) => b.index + 1,
            None => from,
        };
        BucketPage {
            origin_unix_ms: self.clock.origin_unix_ms(),
            width_ms: self.width.as_millis() as u64,
            next,
            buckets,
        }
    }
}

impl State {
    /// The id of `route`, given one the first time it is seen (a route past
    /// `max_routes` counts as `other`).
    fn route_id(&mut self, route: &str, max_routes: usize) -> u16 {
        if let Some(id) = self.route_ids.get(route) {
            return *id;
        }
        let name = if self.routes.len() + 1 >= max_routes {
            OTHER_ROUTE
        } else {
            route
        };
        // Routes past the limit are not remembered (memory stays bounded):
        // they cost a second lookup, of `other`.
        if let Some(id) = self.route_ids.get(name) {
            return *id;
        }
        self.routes.push(name.to_string());
        self.by_route.push(0);
        let id = (self.routes.len() - 1) as u16;
        self.route_ids.insert(name.into(), id);
        id
    }
}

/// A route name for a request no stand-in route named: the method and the
/// path with id-like segments replaced by `{id}`, so
/// `GET /api/v1/payments/P0042` and `GET /api/v1/payments/P0043` count as one
/// route. A segment is id-like when it holds a digit and is 3+ characters
/// long, or is 16+ characters long.
pub fn route_key(method: &http::Method, path: &str) -> String {
    let mut key = String::with_capacity(method.as_str().len() + 1 + path.len());
    fold_route_key(&mut key, method, path);
    key
}

/// Appends [`route_key`]'s key to `key`.
fn fold_route_key(key: &mut String, method: &http::Method, path: &str) {
    let _ = write!(key, "{} ", method.as_str());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        let id_like = (segment.len() >= 3 && segment.bytes().any(|b| b.is_ascii_digit()))
            || segment.len() >= 16;
        key.push_str(if id_like { "{id}" } else { segment });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay meaningful after a panic elsewhere; never poison the run.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(route: &str, outcome: Outcome) -> Arrival<'_> {
        Arrival {
            route: RouteRef::Named(route),
            outcome,
            delayed: false,
            reaches_downstream: true,
            ids: Vec::new(),
            idempotency_key: None,
        }
    }

    #[test]
    fn route_keys_fold_ids() {
        let m = http::Method::GET;
        assert_eq!(
            route_key(&m, "/api/v1/payments/P0042"),
            "GET /api/v1/payments/{id}"
        );
        assert_eq!(
            route_key(&m, "/api/v1/merchants/M001/dashboard"),
            "GET /api/v1/merchants/{id}/dashboard"
        );
        assert_eq!(
            route_key(&http::Method::POST, "/api/v1/orders"),
            "POST /api/v1/orders"
        );
    }

    #[test]
    fn counters_and_buckets_agree() {
        let obs = Observer::new(Clock::start(), &ObserveConfig::default()).expect("config");
        for _ in 0..3 {
            obs.record(arrival("a", Outcome::Served));
        }
        obs.record(arrival("b", Outcome::Status(503)));
        let c = obs.counters();
        assert_eq!(c.attempts, 4);
        assert_eq!(c.by_outcome["served"], 3);
        assert_eq!(c.by_outcome["status_503"], 1);
        assert_eq!(c.by_route["a"], 3);
        let page = obs.buckets_since(0);
        let total: u64 = page.buckets.iter().map(BucketReport::total).sum();
        assert_eq!(total, 4);
        assert!(c.first_arrival_s <= c.last_arrival_s);
    }

    #[test]
    fn routes_beyond_the_limit_count_as_other() {
        let config = ObserveConfig {
            max_routes: 3,
            ..ObserveConfig::default()
        };
        let obs = Observer::new(Clock::start(), &config).expect("config");
        for name in ["a", "b", "c", "d", "a"] {
            obs.record(arrival(name, Outcome::Served));
        }
        let routes = obs.counters().by_route;
        assert_eq!(routes.len(), 3);
        assert_eq!(routes["other"], 2);
        assert_eq!(routes["a"], 2);
    }
}
