//! `faultline worker`: joins the coordinator named in the environment,
//! answers its clock measurements and runs the slice of the load it is
//! given.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::contract::WorkerIdentity;
use super::messages::{FromWorker, PROGRESS_EVERY, ToWorker, WorkPlan};
use super::skew::now_ns;
use super::wire::{Link, WireError};
use crate::load::acks::AckRecord;
use crate::load::journeys::Caller;
use crate::load::requests::RequestRecord;
use crate::load::schedule::Slice;
use crate::load::{self, driver};
use crate::scenario::Scenario;
use crate::spill::{self, Record, Spill};
use crate::verdict::Plan;

/// How long a worker keeps trying to reach its coordinator (an engine may
/// start it before the coordinator's address resolves).
const JOIN_WITHIN: Duration = Duration::from_secs(60);

/// Why a worker stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The coordinator could not be reached.
    #[error("cannot reach the coordinator at {address} within {}s: {last}", .within.as_secs())]
    Unreachable {
        /// Where it was looked for.
        address: String,
        /// How long.
        within: Duration,
        /// The last failure.
        last: std::io::Error,
    },
    /// The connection failed.
    #[error("lost the coordinator: {0}")]
    Lost(#[from] WireError),
}

/// Joins the coordinator and serves it until it closes the connection:
/// answers its clock measurements and runs the plan it is sent.
pub async fn serve(identity: &WorkerIdentity) -> Result<(), WorkerError> {
    let mut link = Link::new(connect(&identity.coordinator).await?);
    link.send(&FromWorker::Hello {
        index: identity.index,
        workers: identity.workers,
        version: env!("CARGO_PKG_VERSION").into(),
        host: host_name(),
    })
    .await?;
    loop {
        let message: ToWorker = match link.recv().await {
            Ok(m) => m,
            Err(WireError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match message {
            ToWorker::Ping { seq } => pong(&mut link, seq).await?,
            ToWorker::Plan(plan) => match Prepared::new(identity, &plan) {
                Ok(prepared) => prepared.run(&mut link).await?,
                Err(reason) => link.send(&FromWorker::Refused { reason }).await?,
            },
            // Nothing runs yet: nothing to stop.
            ToWorker::Stop => {}
        }
    }
}

async fn pong(link: &mut Link<TcpStream>, seq: u32) -> Result<(), WireError> {
    link.send(&FromWorker::Pong {
        seq,
        worker_ns: now_ns(),
    })
    .await
}

/// A plan read and checked, ready to run.
struct Prepared {
    scenario: Scenario,
    slice: Slice,
    index: usize,
    run_tag: String,
    targets: Vec<String>,
    load_start: Instant,
}

impl Prepared {
    /// Checks the plan as `faultline run` checks a scenario; the reason to
    /// refuse it otherwise.
    fn new(identity: &WorkerIdentity, plan: &WorkPlan) -> Result<Self, String> {
        let path = Path::new(&plan.scenario_path);
        let mut scenario = Plan::parse(path, &plan.scenario_source, Some(plan.stack))
            .map_err(|e| format!("the scenario does not check here: {e}"))?
            .scenario;
        scenario.seed = plan.seed;
        if plan.targets.len() != scenario.load.journeys.len() {
            return Err(format!(
                "{} targets for {} journeys",
                plan.targets.len(),
                scenario.load.journeys.len()
            ));
        }
        let ahead = plan.start_ns.saturating_sub(now_ns());
        let ahead = u64::try_from(ahead).map_err(|_| {
            format!(
                "the load was to start {:.0} ms ago on this worker's clock: it joined too late",
                -ahead as f64 / 1e6
            )
        })?;
        Ok(Self {
            scenario,
            slice: Slice {
                index: identity.index as u64,
                of: identity.workers as u64,
            },
            index: identity.index,
            run_tag: plan.run_tag.clone(),
            targets: plan.targets.clone(),
            load_start: Instant::now() + Duration::from_nanos(ahead),
        })
    }

    /// Runs the slice, reporting progress as it goes and `Done` at the end;
    /// stops the load at once when told to or when the coordinator is gone.
    async fn run(self, link: &mut Link<TcpStream>) -> Result<(), WireError> {
        let scenario = &self.scenario;
        let recorder = Arc::new(load::recorder(scenario, true));
        let requests = Arc::new(Spill::<RequestRecord>::detached());
        let acks = Arc::new(Spill::<AckRecord>::detached());
        let caller = Arc::new(
            Caller::new(scenario.merchant.clone(), self.run_tag.clone()).for_worker(self.index),
        );
        let mut targets = self.targets.iter();
        let lanes = load::lanes(scenario, |_| targets.next().cloned().unwrap_or_default());
        let settings = load::settings(
            scenario,
            self.slice,
            Arc::clone(&requests),
            Arc::clone(&acks),
        );
        let cancel = CancellationToken::new();
        link.send(&FromWorker::Ready).await?;
        let drive = driver::drive(
            lanes,
            &settings,
            caller,
            Arc::clone(&recorder),
            self.load_start,
            cancel.clone(),
        );
        tokio::pin!(drive);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let driven = loop {
            tokio::select! {
                driven = &mut drive => break driven,
                _ = tick.tick() => {
                    link.send(&FromWorker::Progress {
                        measured: recorder.forward(),
                        requests: encode_records(&requests.take()),
                        acks: encode_records(&acks.take()),
                    })
                    .await?;
                }
                message = link.recv::<ToWorker>() => match message {
                    Ok(ToWorker::Stop) => cancel.cancel(),
                    Ok(ToWorker::Ping { seq }) => pong(link, seq).await?,
                    Ok(ToWorker::Plan(_)) => {
                        cancel.cancel();
                        return link
                            .send(&FromWorker::Refused {
                                reason: "a second plan while running one".into(),
                            })
                            .await;
                    }
                    // The coordinator is gone: its run is over, so is the load.
                    Err(e) => {
                        cancel.cancel();
                        return Err(e);
                    }
                },
            }
        };
        let stats = match driven {
            Ok(stats) => stats,
            Err(e) => {
                return link
                    .send(&FromWorker::Refused {
                        reason: e.to_string(),
                    })
                    .await;
            }
        };
        let (measured, totals) = recorder.forward_rest();
        link.send(&FromWorker::Done {
            measured,
            requests: encode_records(&requests.take()),
            acks: encode_records(&acks.take()),
            totals,
            users: stats.workers,
            connections: stats.connections,
        })
        .await
    }
}

/// Records as `FromWorker::Progress` carries them: their file encoding,
/// base64.
pub fn encode_records<T: Record>(records: &[T]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(spill::encode_all(records))
}

/// The records of [`encode_records`]; None when `text` is not such.
pub fn decode_records<T: Record>(text: &str) -> Option<Vec<T>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    spill::decode_all(&bytes)
}

/// Dials `address` until it answers or [`JOIN_WITHIN`] passes.
async fn connect(address: &str) -> Result<TcpStream, WorkerError> {
    let deadline = Instant::now() + JOIN_WITHIN;
    let mut pause = Duration::from_millis(50);
    loop {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(last) if Instant::now() >= deadline => {
                return Err(WorkerError::Unreachable {
                    address: address.into(),
                    within: JOIN_WITHIN,
                    last,
                });
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// This machine's name (a container's is its id), or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
