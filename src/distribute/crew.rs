//! The coordinator's workers for one run: started on an engine, gathered,
//! their clocks measured, sent the plan, their measurements merged into the
//! run's recorder as they stream in, and stopped.
//!
//! A worker lost (its connection closed or silent), refused, or fallen
//! behind (requests it could not start within `max_lag`) makes the run
//! invalid: the other workers are stopped at once, and the error names the
//! worker, with what its engine says happened to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::coordinator::{DistributeError, Joined, gather, measure};
use super::engine::kubernetes::{KubeOptions, KubernetesWorkers};
use super::engine::local::LocalWorkers;
use super::engine::swarm::SwarmWorkers;
use super::engine::{EngineError, LostWorker, WorkerSpec};
use super::messages::{FromWorker, PROGRESS_EVERY, ToWorker, WorkPlan};
use super::skew::{Offset, SkewBound};
use super::worker::decode_records;
use crate::load::acks::AckRecord;
use crate::load::driver::DriverStats;
use crate::load::recorder::Recorder;
use crate::load::requests::RequestRecord;
use crate::spill::Spill;

/// A worker silent this long (twenty progress reports missed) is lost.
const SILENT_AFTER: Duration = PROGRESS_EVERY.saturating_mul(20);
/// How long a worker may take to read the plan and set up its load.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How far a worker's clock may be off, or drift during the run: beyond
/// it, its intended times and the fault timeline no longer line up.
pub const SKEW: SkewBound = SkewBound {
    max: Duration::from_millis(25),
};

/// Where the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Processes on this machine.
    Local,
    /// A Docker Swarm service on this machine's engine.
    Swarm,
    /// An Indexed Job on the cluster of the user's kubeconfig.
    Kubernetes,
}

impl EngineKind {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Local => "local",
            EngineKind::Swarm => "swarm",
            EngineKind::Kubernetes => "kubernetes",
        }
    }
}

/// How a run's load is spread over workers.
#[derive(Clone, Debug)]
pub struct Distribution {
    /// How many workers.
    pub workers: usize,
    /// Where they run.
    pub engine: EngineKind,
    /// Kubernetes: where the pods reach the coordinator, `host:port` (it
    /// listens on every interface at that port).
    pub advertise: Option<String>,
    /// Swarm and Kubernetes: the image the workers run.
    pub image: Option<String>,
    /// Kubernetes: namespace and resources.
    pub kube: KubeOptions,
    /// Local: the program the workers run (default: this one).
    pub program: Option<PathBuf>,
}

/// One worker's figures, next to the merged ones in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerFigures {
    /// Its index.
    pub index: usize,
    /// Where it ran.
    pub host: String,
    /// Requests it sent.
    pub sent: u64,
    /// Of those, sent late (more than 10 ms after their intended time).
    pub late: u64,
    /// Requests it dropped (could not start within `max_lag`).
    pub dropped: u64,
    /// Goose users it ran.
    pub users: usize,
    /// Connections it opened to the SUT.
    pub connections: u64,
    /// Its clock minus the coordinator's at the start, ms.
    pub clock_offset_ms: f64,
    /// How well that offset is known, ± ms (half the best round trip).
    pub clock_uncertainty_ms: f64,
    /// How far the offset moved from the start of the run to its end, ms.
    pub clock_drift_ms: f64,
}

impl WorkerFigures {
    /// Its clock offset as the report prints it: `+0.12 ms ±0.05`.
    pub fn clock_text(&self) -> String {
        format!(
            "{:+.2} ms ±{:.2}",
            self.clock_offset_ms, self.clock_uncertainty_ms
        )
    }

    /// Its clock drift as the report prints it: `-0.03 ms`.
    pub fn drift_text(&self) -> String {
        format!("{:+.2} ms", self.clock_drift_ms)
    }
}

enum Engine {
    Local(LocalWorkers),
    Swarm(SwarmWorkers),
    Kubernetes(KubernetesWorkers),
}

impl Engine {
    async fn lost(&mut self) -> Vec<LostWorker> {
        let lost = match self {
            Engine::Local(w) => Ok(w.lost()),
            Engine::Swarm(w) => w.lost().await,
            Engine::Kubernetes(w) => w.lost().await,
        };
        lost.unwrap_or_else(|e| {
            tracing::warn!("cannot ask the engine about its workers: {e}");
            Vec::new()
        })
    }

    async fn stop(self) {
        let stopped = match self {
            Engine::Local(w) => {
                w.stop().await;
                Ok(())
            }
            Engine::Swarm(w) => w.stop().await,
            Engine::Kubernetes(w) => w.stop().await,
        };
        if let Err(e) = stopped {
            tracing::warn!("cannot stop the workers: {e}");
        }
    }
}

/// A worker of this run, joined.
struct Member {
    joined: Joined,
    offset: Offset,
}

/// What one worker's stream brought, once it said `Done`.
struct Tally {
    member: Member,
    sent: u64,
    late: u64,
    dropped: u64,
    users: usize,
    connections: u64,
}

/// The workers of a run.
pub struct Crew {
    engine: Engine,
    members: Vec<Member>,
}

/// Per worker and series: every window below this was handed over.
struct Watermarks {
    through: Mutex<Vec<Vec<u64>>>,
}

impl Watermarks {
    /// Records worker `w`'s marks; returns the lowest mark of every series.
    fn update(&self, w: usize, marks: &[u64]) -> Vec<u64> {
        let mut through = self.through.lock().unwrap_or_else(|p| p.into_inner());
        through[w] = marks.to_vec();
        let series = through.iter().map(Vec::len).max().unwrap_or(0);
        (0..series)
            .map(|s| {
                through
                    .iter()
                    .map(|t| t.get(s).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Crew {
    /// Starts `distribution.workers` workers of run `run_id` (`dir` holds
    /// their logs or manifests), waits for every one to join and measures
    /// its clock. Nothing is left running when this fails.
    pub async fn start(
        distribution: &Distribution,
        run_id: &str,
        dir: &Path,
    ) -> Result<Self, DistributeError> {
        let n = distribution.workers;
        let (bind, advertise) = match (distribution.engine, &distribution.advertise) {
            (EngineKind::Kubernetes, Some(advertise)) => {
                let port = advertise
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .ok_or_else(|| {
                        DistributeError::Engine(EngineError::Invalid(format!(
                            "--advertise {advertise:?} is not host:port"
                        )))
                    })?;
                (format!("0.0.0.0:{port}"), Some(advertise.clone()))
            }
            (EngineKind::Kubernetes, None) => {
                return Err(DistributeError::Engine(EngineError::Invalid(
                    "--engine kubernetes needs --advertise HOST:PORT: where the pods reach this process".into(),
                )));
            }
            _ => ("127.0.0.1:0".to_string(), None),
        };
        let listener = TcpListener::bind(&bind)
            .await
            .map_err(DistributeError::Accept)?;
        let address = listener.local_addr().map_err(DistributeError::Accept)?;
        let spec = WorkerSpec {
            count: n,
            coordinator: advertise.unwrap_or_else(|| address.to_string()),
            run_id: run_id.to_string(),
            image: distribution.image.clone(),
        };
        let (mut engine, within) = match distribution.engine {
            EngineKind::Local => {
                let program = match &distribution.program {
                    Some(p) => p.clone(),
                    None => LocalWorkers::this_program()?,
                };
                let workers = LocalWorkers::start(&spec, &program, &dir.join("workers"))?;
                (Engine::Local(workers), Duration::from_secs(30))
            }
            EngineKind::Swarm => (
                Engine::Swarm(SwarmWorkers::start(&spec).await?),
                Duration::from_secs(120),
            ),
            EngineKind::Kubernetes => (
                Engine::Kubernetes(
                    KubernetesWorkers::start(&spec, &distribution.kube, &dir.join("k8s")).await?,
                ),
                Duration::from_secs(300),
            ),
        };
        let gathered = async {
            let mut members = Vec::with_capacity(n);
            for mut joined in gather(&listener, n, within).await? {
                let offset = measure(&mut joined).await?;
                if let Some(why) = SKEW.broken(&offset, None) {
                    return Err(DistributeError::Skew {
                        worker: joined.name(),
                        why,
                    });
                }
                members.push(Member { joined, offset });
            }
            Ok(members)
        }
        .await;
        match gathered {
            Ok(members) => Ok(Self { engine, members }),
            Err(e) => {
                let e = with_engine_story(e, engine.lost().await);
                engine.stop().await;
                Err(e)
            }
        }
    }

    /// How many workers.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sends every worker the plan, its start (`start_ns`, coordinator
    /// clock) converted to the worker's clock, and waits until each is set
    /// up.
    pub async fn plan(&mut self, plan: &WorkPlan) -> Result<(), DistributeError> {
        for member in &mut self.members {
            let mut mine = plan.clone();
            mine.start_ns = member.offset.to_worker(plan.start_ns);
            let name = member.joined.name();
            let lost = |source| DistributeError::Lost {
                worker: name.clone(),
                during: "while it was sent the plan",
                source,
            };
            member
                .joined
                .link
                .send(&ToWorker::Plan(Box::new(mine)))
                .await
                .map_err(lost)?;
        }
        for member in &mut self.members {
            let name = member.joined.name();
            match member.joined.link.recv_within(READY_WITHIN).await {
                Ok(FromWorker::Ready) => {}
                Ok(FromWorker::Refused { reason }) => {
                    return Err(DistributeError::Refused {
                        worker: name,
                        reason,
                    });
                }
                Ok(other) => {
                    return Err(DistributeError::Stranger {
                        peer: name,
                        why: format!("expected it to be ready, got {other:?}"),
                    });
                }
                Err(source) => {
                    return Err(DistributeError::Lost {
                        worker: name,
                        during: "while it set up its load",
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Merges what the workers measure into `recorder`, `requests` and
    /// `acks` until every one is done. `cancel` (the run interrupted) stops them; a
    /// worker lost cancels `abort` (the fault timeline) and stops the
    /// others, and is the error.
    pub async fn pump(
        &mut self,
        recorder: &Arc<Recorder>,
        requests: &Arc<Spill<RequestRecord>>,
        acks: &Arc<Spill<AckRecord>>,
        cancel: CancellationToken,
        abort: CancellationToken,
    ) -> Result<(DriverStats, Vec<WorkerFigures>), DistributeError> {
        let series = recorder.specs().len();
        let marks = Arc::new(Watermarks {
            through: Mutex::new(vec![vec![0; series]; self.members.len()]),
        });
        let stop = CancellationToken::new();
        let mut streams: FuturesUnordered<_> = std::mem::take(&mut self.members)
            .into_iter()
            .enumerate()
            .map(|(w, member)| {
                let sinks = Sinks {
                    recorder: Arc::clone(recorder),
                    requests: Arc::clone(requests),
                    acks: Arc::clone(acks),
                    marks: Arc::clone(&marks),
                };
                let (stop, cancel) = (stop.clone(), cancel.clone());
                async move { stream(w, member, &sinks, stop, cancel).await }
            })
            .collect();
        let mut tallies = Vec::new();
        let mut first_error = None;
        while let Some(result) = streams.next().await {
            match result {
                Ok(tally) => tallies.push(tally),
                Err(e) => {
                    if first_error.is_none() {
                        abort.cancel();
                        stop.cancel();
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(with_engine_story(e, self.engine.lost().await));
        }
        tallies.sort_by_key(|t| t.member.joined.index);
        let mut stats = DriverStats::default();
        let mut figures = Vec::new();
        for mut tally in tallies {
            stats.workers += tally.users;
            stats.connections += tally.connections;
            let name = tally.member.joined.name();
            // The clock again at the end: how far it drifted in the run.
            let end = measure(&mut tally.member.joined).await?;
            if let Some(why) = SKEW.broken(&tally.member.offset, Some(&end)) {
                return Err(DistributeError::Skew { worker: name, why });
            }
            if tally.dropped > 0 {
                return Err(DistributeError::Behind {
                    worker: name,
                    dropped: tally.dropped,
                });
            }
            figures.push(WorkerFigures {
                index: tally.member.joined.index,
                host: tally.member.joined.host.clone(),
                sent: tally.sent,
                late: tally.late,
                dropped: tally.dropped,
                users: tally.users,
                connections: tally.connections,
                clock_offset_ms: tally.member.offset.offset_ms,
                clock_uncertainty_ms: tally.member.offset.uncertainty_ms,
                clock_drift_ms: end.offset_ms - tally.member.offset.offset_ms,
            });
            self.members.push(tally.member);
        }
        Ok((stats, figures))
    }

    /// Closes every connection (the workers exit) and stops the engine.
    pub async fn stop(self) {
        drop(self.members);
        self.engine.stop().await;
    }
}

/// Where a worker's stream is merged.
struct Sinks {
    recorder: Arc<Recorder>,
    requests: Arc<Spill<RequestRecord>>,
    acks: Arc<Spill<AckRecord>>,
    marks: Arc<Watermarks>,
}

/// Reads one worker's stream until its `Done`, merging as it goes.
async fn stream(
    w: usize,
    mut member: Member,
    sinks: &Sinks,
    stop: CancellationToken,
    cancel: CancellationToken,
) -> Result<Tally, DistributeError> {
    let Sinks {
        recorder,
        requests,
        acks,
        marks,
    } = sinks;
    let name = member.joined.name();
    let mut stopping = false;
    loop {
        if !stopping && (stop.is_cancelled() || cancel.is_cancelled()) {
            stopping = true;
            // A worker that cannot be told is found lost below.
            let _ = member.joined.link.send(&ToWorker::Stop).await;
        }
        let received = tokio::select! {
            received = member.joined.link.recv_within::<FromWorker>(SILENT_AFTER) => received,
            _ = stop.cancelled(), if !stopping => continue,
            _ = cancel.cancelled(), if !stopping => continue,
        };
        let message = received.map_err(|source| DistributeError::Lost {
            worker: name.clone(),
            during: "during the load",
            source,
        })?;
        let merge = |measured, sent: &str, acked: &str| -> Result<(), DistributeError> {
            let garbled = |why: String| DistributeError::Stranger {
                peer: name.clone(),
                why,
            };
            recorder
                .absorb(measured)
                .map_err(|e| garbled(e.to_string()))?;
            for record in decode_records::<RequestRecord>(sent)
                .ok_or_else(|| garbled("request records that do not decode".into()))?
            {
                requests.push(record);
            }
            for record in decode_records::<AckRecord>(acked)
                .ok_or_else(|| garbled("acknowledgements that do not decode".into()))?
            {
                acks.push(record);
            }
            Ok(())
        };
        match message {
            FromWorker::Progress {
                measured,
                requests: sent,
                acks: acked,
            } => {
                merge(&measured, &sent, &acked)?;
                for (series, through) in marks.update(w, &measured.through).iter().enumerate() {
                    recorder.settle_before(series, *through);
                }
            }
            FromWorker::Done {
                measured,
                requests: sent,
                acks: acked,
                totals,
                users,
                connections,
            } => {
                merge(&measured, &sent, &acked)?;
                marks.update(w, &measured.through);
                let mut tally = Tally {
                    member,
                    sent: 0,
                    late: 0,
                    dropped: 0,
                    users,
                    connections,
                };
                for series in &totals {
                    recorder
                        .absorb_series(series)
                        .map_err(|e| DistributeError::Stranger {
                            peer: name.clone(),
                            why: e.to_string(),
                        })?;
                    tally.sent += series.total.requests;
                    tally.late += series.late;
                    tally.dropped += series.total.dropped;
                }
                return Ok(tally);
            }
            FromWorker::Refused { reason } => {
                return Err(DistributeError::Refused {
                    worker: name,
                    reason,
                });
            }
            FromWorker::Pong { .. } => {}
            other @ (FromWorker::Hello { .. } | FromWorker::Ready) => {
                return Err(DistributeError::Stranger {
                    peer: name,
                    why: format!("unexpected during the load: {other:?}"),
                });
            }
        }
    }
}

/// Adds what the engine knows about the lost workers to `e`.
fn with_engine_story(e: DistributeError, lost: Vec<LostWorker>) -> DistributeError {
    if lost.is_empty() {
        return e;
    }
    let story: Vec<String> = lost.iter().map(ToString::to_string).collect();
    DistributeError::Explained {
        source: Box::new(e),
        story: story.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_s_story_is_added_to_the_failure_it_explains() {
        let behind = || DistributeError::Behind {
            worker: "worker 1 (vm)".into(),
            dropped: 7,
        };
        assert!(matches!(
            with_engine_story(behind(), Vec::new()),
            DistributeError::Behind { dropped: 7, .. }
        ));
        let lost = vec![LostWorker {
            index: 1,
            place: "swarm task slot 2".into(),
            what: "killed by signal 9".into(),
        }];
        let explained = with_engine_story(behind(), lost);
        let DistributeError::Explained { source, story } = &explained else {
            panic!("{explained:?}");
        };
        assert!(matches!(
            **source,
            DistributeError::Behind { dropped: 7, .. }
        ));
        assert_eq!(story, "worker 1 (swarm task slot 2): killed by signal 9");
        assert!(
            explained
                .to_string()
                .ends_with(": the engine reports worker 1 (swarm task slot 2): killed by signal 9"),
            "{explained}"
        );
    }
}
