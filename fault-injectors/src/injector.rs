//! An injector (one downstream) and a set of them.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::{Method, Uri};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::attempts::{self, Attempts};
use crate::backend::{Backend, Mode, Override};
use crate::clock::Clock;
use crate::decide::{Decision, Key, decide, injector_seed};
use crate::decision_log::{DecisionLog, Entry};
use crate::fault::{Fault, FaultError};
use crate::front;
use crate::observe::{ArrivalPage, BucketPage, Counters, ObserveConfig, Observer};
use crate::program::{Change, FaultControl};
use crate::stand_in::{PLATFORM_STAND_INS, StandIn};

/// Why an injector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address is taken or not ours.
    #[error("injector `{name}`: cannot listen on {addr}: {source}")]
    Bind {
        /// Injector name.
        name: String,
        /// Requested address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Neither a stand-in nor an upstream was given, and the name is not a
    /// built-in stand-in.
    #[error(
        "injector `{0}`: no built-in stand-in has this name (built-in: {list}); give it a stand-in or an upstream URL",
        list = PLATFORM_STAND_INS.join(", ")
    )]
    NoBackend(String),
    /// The upstream URL is unusable.
    #[error("injector `{name}`: upstream `{url}` is not an http://host:port URL")]
    Upstream {
        /// Injector name.
        name: String,
        /// The URL given.
        url: String,
    },
    /// A setting is out of range.
    #[error("injector `{name}`: {message}")]
    Config {
        /// Injector name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An initial fault was refused.
    #[error("injector `{name}`: {source}")]
    Fault {
        /// Injector name.
        name: String,
        /// Why.
        source: FaultError,
    },
    /// The decision log could not be created.
    #[error("injector `{name}`: cannot create decision log {path}: {source}")]
    DecisionLog {
        /// Injector name.
        name: String,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Two injectors of a set share a name.
    #[error("two injectors are named `{0}`")]
    DuplicateName(String),
}

/// The shared state of a running injector.
pub(crate) struct Core {
    pub(crate) name: String,
    seed: u64,
    seq: AtomicU64,
    attempts: Attempts,
    pub(crate) control: FaultControl,
    pub(crate) observer: Observer,
    pub(crate) backend: Backend,
    pub(crate) gate: front::Gate,
    log: Option<DecisionLog>,
    /// False when built [`InjectorBuilder::without_observation`].
    pub(crate) observing: bool,
}

impl Core {
    /// Opens or closes the listening socket to match the program now, so a
    /// refuse fault is in force (or gone) when the call that set it returns.
    pub(crate) fn sync_gate(&self) {
        let refusing = self.control.peek().refusing(Instant::now());
        if let Err(e) = self.gate.apply(refusing) {
            // The accept loop keeps retrying the bind.
            tracing::warn!(injector = %self.name, "cannot listen on {} again yet: {e}", self.gate.addr());
        }
    }

    /// Numbers the request (an atomic counter, no lock), keys it by the
    /// identity hash `id` its decision is keyed by (0: none; see
    /// [`crate::identity`]) and its attempt number, and
    /// decides its fault; with a decision log, queues the decision for the
    /// log's writer in the same call, so every number reaches the log.
    pub(crate) fn decide(&self, method: &Method, uri: &Uri, id: u64) -> Decision {
        let program = self.control.peek();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let key = match id {
            0 => Key::Arrival,
            hash => Key::Id {
                hash,
                attempt: self.attempts.next(hash),
            },
        };
        let decision = decide(
            self.seed,
            seq,
            key,
            &program,
            Instant::now(),
            method,
            uri.path(),
        );
        if let Some(log) = &self.log {
            log.push(Entry::new(&decision, method, uri));
        }
        decision
    }
}

/// Configures and starts an [`Injector`].
pub struct InjectorBuilder {
    name: String,
    stand_in: Option<StandIn>,
    upstream: Option<String>,
    listen: SocketAddr,
    seed: u64,
    clock: Option<Clock>,
    observe: ObserveConfig,
    decision_log: Option<PathBuf>,
    rotate_every: u64,
    faults: Vec<Fault>,
    observing: bool,
}

impl InjectorBuilder {
    /// Answers with this stand-in (default: the built-in one of the same
    /// name).
    pub fn stand_in(mut self, stand_in: StandIn) -> Self {
        self.stand_in = Some(stand_in);
        self.upstream = None;
        self
    }

    /// Front mode: passes served requests to the real service at `url`
    /// (`http://host:port`).
    pub fn front(mut self, url: impl Into<String>) -> Self {
        self.upstream = Some(url.into());
        self.stand_in = None;
        self
    }

    /// Where to listen (default `127.0.0.1:0`, an ephemeral port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The run seed; the injector draws from it mixed with its name.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The clock observations are reported on (default: starts now).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Observation settings.
    pub fn observe(mut self, observe: ObserveConfig) -> Self {
        self.observe = observe;
        self
    }

    /// Counts nothing: no buckets, counters, ids or arrival records (the
    /// admin API then reports zeros). For a fault proxy nobody reads, and for
    /// measuring what observation costs; a faultline run always observes.
    pub fn without_observation(mut self) -> Self {
        self.observing = false;
        self
    }

    /// Writes every fault decision to this file.
    pub fn decision_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.decision_log = Some(path.into());
        self
    }

    /// Replace the wiremock server behind overrides after this many
    /// forwarded requests (default 10 000), bounding its memory.
    pub fn rotate_every(mut self, requests: u64) -> Self {
        self.rotate_every = requests;
        self
    }

    /// Faults in force from the first request.
    pub fn faults(mut self, faults: Vec<Fault>) -> Self {
        self.faults = faults;
        self
    }

    /// Binds the port and starts serving.
    pub async fn start(self) -> Result<Injector, StartError> {
        let name = self.name;
        let mode = match (self.stand_in, self.upstream) {
            (Some(stand_in), _) => Mode::StandIn(stand_in),
            (None, Some(url)) => Mode::Front(parse_upstream(&name, &url)?),
            (None, None) => Mode::StandIn(
                StandIn::platform(&name).ok_or_else(|| StartError::NoBackend(name.clone()))?,
            ),
        };
        let clock = self.clock.unwrap_or_default();
        let observer =
            Observer::new(clock, &self.observe).map_err(|message| StartError::Config {
                name: name.clone(),
                message,
            })?;
        let control = FaultControl::new(clock);
        if !self.faults.is_empty() {
            control
                .set(self.faults)
                .map_err(|source| StartError::Fault {
                    name: name.clone(),
                    source,
                })?;
        }
        let log = match &self.decision_log {
            Some(path) => {
                Some(
                    DecisionLog::create(path).map_err(|source| StartError::DecisionLog {
                        name: name.clone(),
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let shutdown = CancellationToken::new();
        let gate = front::bind(self.listen)
            .and_then(|listener| front::Gate::new(listener, &shutdown))
            .map_err(|source| StartError::Bind {
                name: name.clone(),
                addr: self.listen,
                source,
            })?;
        let addr = gate.addr();
        let core = Arc::new(Core {
            seed: injector_seed(self.seed, &name),
            name,
            seq: AtomicU64::new(0),
            attempts: Attempts::new(clock),
            control,
            observer,
            backend: Backend::new(mode, self.rotate_every),
            gate,
            log,
            observing: self.observing,
        });
        core.sync_gate();
        if core.log.is_some() {
            tokio::spawn(write_decisions(Arc::downgrade(&core), shutdown.clone()));
        }
        tokio::spawn(forget_idle_ids(Arc::downgrade(&core), shutdown.clone()));
        let task = tokio::spawn(front::serve(Arc::clone(&core), shutdown.clone()));
        Ok(Injector {
            inner: Arc::new(Inner {
                core,
                addr,
                shutdown: shutdown.clone(),
                task: std::sync::Mutex::new(Some(task)),
                _stop_on_drop: shutdown.drop_guard(),
            }),
        })
    }
}

/// How often the decision log's writer drains its queue.
const DECISION_WRITES: Duration = Duration::from_millis(10);

/// The decision log's writer: off the request path, until shutdown (which
/// flushes what is left).
async fn write_decisions(core: Weak<Core>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(DECISION_WRITES) => {}
        }
        let Some(core) = core.upgrade() else { return };
        if let Some(log) = &core.log
            && let Err(e) = log.drain()
        {
            tracing::warn!(injector = %core.name, "decision log write failed: {e}");
        }
    }
}

/// How often identities idle past [`attempts::WINDOW`] are forgotten.
const ID_SWEEPS: Duration = Duration::from_secs(10);

/// Keeps the attempt counters to the identities in flight, off the request
/// path, until shutdown.
async fn forget_idle_ids(core: Weak<Core>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ID_SWEEPS) => {}
        }
        let Some(core) = core.upgrade() else { return };
        core.attempts.forget_idle(attempts::WINDOW);
    }
}

fn parse_upstream(name: &str, url: &str) -> Result<Uri, StartError> {
    let bad = || StartError::Upstream {
        name: name.to_string(),
        url: url.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(bad());
    }
    Ok(uri)
}

struct Inner {
    core: Arc<Core>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Stops the injector when the last handle is dropped.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// A running injector: stands where one downstream would be. Cheap to clone;
/// it stops when the last clone is dropped or [`Injector::shutdown`] is
/// called.
#[derive(Clone)]
pub struct Injector {
    inner: Arc<Inner>,
}

/// What an injector is and what it is doing, as the admin API lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InjectorStatus {
    /// Name (the downstream it stands for).
    pub name: String,
    /// Where it listens.
    pub url: String,
    /// `stand-in` or `front`.
    pub mode: String,
    /// Front mode: the upstream URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The faults in force.
    pub faults: Vec<Fault>,
    /// Totals so far.
    pub counters: Counters,
    /// How often the wiremock server behind overrides was replaced.
    pub override_rotations: u64,
}

impl Injector {
    /// Starts configuring an injector named after the downstream it stands
    /// for, e.g. `order-service`.
    pub fn builder(name: impl Into<String>) -> InjectorBuilder {
        InjectorBuilder {
            name: name.into(),
            stand_in: None,
            upstream: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 0,
            clock: None,
            observe: ObserveConfig::default(),
            decision_log: None,
            rotate_every: 10_000,
            faults: Vec::new(),
            observing: true,
        }
    }

    /// The injector's name.
    pub fn name(&self) -> &str {
        &self.inner.core.name
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://<addr>`: what the SUT's `*_SERVICE_URL` should point at.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Replaces every fault. All are checked first; on error nothing changes.
    pub fn set_faults(&self, faults: Vec<Fault>) -> Result<Vec<String>, FaultError> {
        let ids = self.inner.core.control.set(faults)?;
        self.inner.core.sync_gate();
        Ok(ids)
    }

    /// Adds a fault (or replaces the one with its id); returns its id.
    pub fn inject(&self, fault: Fault) -> Result<String, FaultError> {
        let id = self.inner.core.control.upsert(fault)?;
        self.inner.core.sync_gate();
        Ok(id)
    }

    /// Clears the fault `id`; false if there is none.
    pub fn clear_fault(&self, id: &str) -> bool {
        let removed = self.inner.core.control.remove(id);
        self.inner.core.sync_gate();
        removed
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        self.inner.core.control.clear();
        self.inner.core.sync_gate();
    }

    /// The faults in force, with their ids.
    pub fn faults(&self) -> Vec<Fault> {
        self.inner
            .core
            .control
            .program()
            .faults
            .iter()
            .map(|f| f.fault.clone())
            .collect()
    }

    /// Every change of the fault program, on the injector's clock.
    pub fn fault_changes(&self) -> Vec<Change> {
        self.inner.core.control.history()
    }

    /// Totals so far.
    pub fn counters(&self) -> Counters {
        self.inner.core.observer.counters()
    }

    /// Arrival buckets from index `from` on.
    pub fn buckets_since(&self, from: u64) -> BucketPage {
        self.inner.core.observer.buckets_since(from)
    }

    /// Arrival records from `cursor` on (0 at first, then the page's
    /// `next`); the records before `cursor` are forgotten.
    pub fn arrivals_since(&self, cursor: u64) -> ArrivalPage {
        self.inner.core.observer.arrivals_since(cursor)
    }

    /// The clock times are reported on.
    pub fn clock(&self) -> Clock {
        *self.inner.core.observer.clock()
    }

    /// Mounts a wiremock override: requests it matches are answered by it,
    /// before any stand-in route (or instead of the upstream).
    pub async fn mount(&self, over: Override) {
        self.inner.core.backend.mount(over).await;
    }

    /// Removes every override.
    pub async fn clear_overrides(&self) {
        self.inner.core.backend.clear_overrides().await;
    }

    /// Writes buffered decision-log lines to disk.
    pub fn flush_decision_log(&self) -> io::Result<()> {
        match &self.inner.core.log {
            Some(log) => log.flush(),
            None => Ok(()),
        }
    }

    /// The decision log's path, if one is written.
    pub fn decision_log_path(&self) -> Option<PathBuf> {
        self.inner.core.log.as_ref().map(|l| l.path().to_path_buf())
    }

    /// A snapshot for listings.
    pub fn status(&self) -> InjectorStatus {
        let (mode, upstream) = match self.inner.core.backend.mode() {
            Mode::StandIn(_) => ("stand-in", None),
            Mode::Front(uri) => ("front", Some(uri.to_string())),
        };
        InjectorStatus {
            name: self.name().to_string(),
            url: self.url(),
            mode: mode.to_string(),
            upstream,
            faults: self.faults(),
            counters: self.counters(),
            override_rotations: self.inner.core.backend.rotations(),
        }
    }

    /// Stops accepting, closes every connection, flushes the decision log
    /// and waits for the accept loop to end.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // The gate refuses once shut down: the port is released now, not
        // when the last handle is dropped.
        self.inner.core.sync_gate();
        if let Err(e) = self.flush_decision_log() {
            tracing::warn!(injector = %self.name(), "decision log flush failed: {e}");
        }
    }
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("name", &self.name())
            .field("addr", &self.addr())
            .finish()
    }
}

/// Several injectors by name: what the admin API serves.
#[derive(Clone, Debug, Default)]
pub struct InjectorSet {
    injectors: Arc<BTreeMap<String, Injector>>,
}

impl InjectorSet {
    /// A set of injectors with distinct names.
    pub fn new(injectors: impl IntoIterator<Item = Injector>) -> Result<Self, StartError> {
        let mut map = BTreeMap::new();
        for injector in injectors {
            let name = injector.name().to_string();
            if map.insert(name.clone(), injector).is_some() {
                return Err(StartError::DuplicateName(name));
            }
        }
        Ok(Self {
            injectors: Arc::new(map),
        })
    }

    /// The injector named `name`.
    pub fn get(&self, name: &str) -> Option<&Injector> {
        self.injectors.get(name)
    }

    /// All injectors, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Injector> {
        self.injectors.values()
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.injectors.keys().cloned().collect()
    }

    /// Shuts every injector down.
    pub async fn shutdown(&self) {
        for injector in self.iter() {
            injector.shutdown().await;
        }
    }
}
