//! The coordinator's side: gather the workers, measure their clocks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::engine::EngineError;
use super::messages::{FromWorker, ToWorker};
use super::skew::{Exchange, Offset, now_ns};
use super::wire::{Link, WireError};

/// Exchanges per clock measurement.
const PINGS: u32 = 8;
/// How long a worker may take to answer anything once connected.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A worker that joined, with its connection.
pub struct Joined {
    /// Its index.
    pub index: usize,
    /// Where it runs.
    pub host: String,
    /// Its connection.
    pub link: Link<TcpStream>,
}

impl Joined {
    /// `worker 2 (host)`, for messages.
    pub fn name(&self) -> String {
        format!("worker {} ({})", self.index, self.host)
    }
}

/// Why the workers could not be gathered or lost.
#[derive(Debug, thiserror::Error)]
pub enum DistributeError {
    /// Not every worker joined in time.
    #[error("workers {missing:?} of {workers} did not join within {}s", .within.as_secs())]
    Missing {
        /// The indices that never came.
        missing: Vec<usize>,
        /// How many were expected.
        workers: usize,
        /// How long they had.
        within: Duration,
    },
    /// A worker introduced itself wrongly.
    #[error("a worker from {peer} is not part of this run: {why}")]
    Stranger {
        /// Its address.
        peer: String,
        /// What was wrong.
        why: String,
    },
    /// A worker's connection failed.
    #[error("{worker} was lost {during}: {source}")]
    Lost {
        /// Which.
        worker: String,
        /// What was going on.
        during: &'static str,
        /// The failure.
        source: WireError,
    },
    /// The listening socket failed.
    #[error("cannot accept workers: {0}")]
    Accept(std::io::Error),
    /// The engine could not start or watch the workers.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A worker would not run the plan.
    #[error("{worker} refused the plan: {reason}")]
    Refused {
        /// Which.
        worker: String,
        /// Why.
        reason: String,
    },
    /// A worker's clock is too far off, or drifted too far.
    #[error("{worker}: {why}")]
    Skew {
        /// Which.
        worker: String,
        /// How.
        why: String,
    },
    /// A worker could not keep up with its slice of the schedule.
    #[error(
        "{worker} fell behind its share of the schedule: it dropped {dropped} requests it could not start within max_lag, so the merged load is not the scenario's"
    )]
    Behind {
        /// Which.
        worker: String,
        /// Requests it dropped.
        dropped: u64,
    },
    /// A failure with what the engine saw of the workers it lost (killed
    /// by a signal, exited, evicted).
    #[error("{source}: the engine reports {story}")]
    Explained {
        /// The failure as the coordinator saw it.
        source: Box<DistributeError>,
        /// The engine's account of each lost worker.
        story: String,
    },
}

/// Waits for `workers` workers on `listener`, within `within` in all, and
/// returns them by index. A connection that does not introduce itself as a
/// worker of this run with the same version is refused (and the run fails:
/// a stranger on the port means a misconfigured engine).
pub async fn gather(
    listener: &TcpListener,
    workers: usize,
    within: Duration,
) -> Result<Vec<Joined>, DistributeError> {
    let deadline = Instant::now() + within;
    let mut joined: BTreeMap<usize, Joined> = BTreeMap::new();
    while joined.len() < workers {
        let left = deadline.saturating_duration_since(Instant::now());
        let accepted = tokio::time::timeout(left, listener.accept()).await;
        let (stream, peer) = match accepted {
            Err(_) => {
                return Err(DistributeError::Missing {
                    missing: (0..workers).filter(|i| !joined.contains_key(i)).collect(),
                    workers,
                    within,
                });
            }
            Ok(accepted) => accepted.map_err(DistributeError::Accept)?,
        };
        let _ = stream.set_nodelay(true);
        let stranger = |why: String| DistributeError::Stranger {
            peer: peer.to_string(),
            why,
        };
        let mut link = Link::new(stream);
        let hello: FromWorker = link
            .recv_within(ANSWER_WITHIN)
            .await
            .map_err(|e| stranger(format!("no introduction ({e})")))?;
        let FromWorker::Hello {
            index,
            workers: told,
            version,
            host,
        } = hello
        else {
            return Err(stranger(format!(
                "it spoke before introducing itself: {hello:?}"
            )));
        };
        if version != env!("CARGO_PKG_VERSION") {
            return Err(stranger(format!(
                "worker {index} runs faultline {version}, the coordinator {}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        if told != workers || index >= workers {
            return Err(stranger(format!(
                "worker {index} of {told}, but this run has {workers} workers"
            )));
        }
        if joined.contains_key(&index) {
            return Err(stranger(format!(
                "a second worker {index} (the first runs on {}): a restarted worker or two with the same index",
                joined[&index].host
            )));
        }
        joined.insert(index, Joined { index, host, link });
    }
    Ok(joined.into_values().collect())
}

/// Measures `worker`'s clock against this one.
pub async fn measure(worker: &mut Joined) -> Result<Offset, DistributeError> {
    let name = worker.name();
    let lost = |source| DistributeError::Lost {
        worker: name.clone(),
        during: "while its clock was measured",
        source,
    };
    let mut exchanges = Vec::with_capacity(PINGS as usize);
    for seq in 0..PINGS {
        let sent_ns = now_ns();
        worker
            .link
            .send(&ToWorker::Ping { seq })
            .await
            .map_err(lost)?;
        let answer: FromWorker = worker.link.recv_within(ANSWER_WITHIN).await.map_err(lost)?;
        let received_ns = now_ns();
        match answer {
            FromWorker::Pong { seq: s, worker_ns } if s == seq => exchanges.push(Exchange {
                sent_ns,
                worker_ns,
                received_ns,
            }),
            other => {
                return Err(DistributeError::Stranger {
                    peer: name,
                    why: format!("expected the answer to ping {seq}, got {other:?}"),
                });
            }
        }
    }
    Ok(Offset::of(&exchanges).unwrap_or(Offset {
        offset_ms: 0.0,
        uncertainty_ms: f64::INFINITY,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribute::contract::WorkerIdentity;
    use crate::distribute::worker;

    fn spawn_worker(index: usize, workers: usize, port: u16) -> tokio::task::JoinHandle<()> {
        let identity = WorkerIdentity {
            index,
            workers,
            coordinator: format!("127.0.0.1:{port}"),
        };
        tokio::spawn(async move {
            let _ = worker::serve(&identity).await;
        })
    }

    #[tokio::test]
    async fn workers_join_by_index_and_their_clocks_are_measured() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Vec<_> = [2, 0, 1].map(|i| spawn_worker(i, 3, port)).into();
        let mut joined = gather(&listener, 3, Duration::from_secs(30)).await.unwrap();
        assert_eq!(
            joined.iter().map(|j| j.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        for worker in &mut joined {
            let offset = measure(worker).await.unwrap();
            // Same machine, same clock: the offset is within the round trip.
            assert!(
                offset.offset_ms.abs() <= offset.uncertainty_ms + 1.0,
                "{offset:?}"
            );
            assert!(offset.uncertainty_ms < 100.0, "{offset:?}");
        }
        // Closing the connections ends the workers.
        drop(joined);
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the worker ends when the coordinator closes")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_duplicate_index_and_a_missing_worker_are_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _a = spawn_worker(1, 2, port);
        let _b = spawn_worker(1, 2, port);
        let e = gather(&listener, 2, Duration::from_secs(30))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("a second worker 1"), "{e}");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _c = spawn_worker(0, 2, port);
        let e = gather(&listener, 2, Duration::from_millis(500))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&e, DistributeError::Missing { missing, .. } if missing == &[1]),
            "{e}"
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _d = spawn_worker(0, 3, port);
        let e = gather(&listener, 2, Duration::from_secs(30))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("this run has 2 workers"), "{e}");
    }
}
