//! `faultline worker`: joins the coordinator named in the environment,
//! answers its clock measurements and runs the slice of the load it is
//! given.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::contract::WorkerIdentity;
use super::messages::{FromWorker, ToWorker};
use super::skew::now_ns;
use super::wire::{Link, WireError};

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

/// Joins the coordinator and serves it until it closes the connection.
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
            ToWorker::Ping { seq } => {
                link.send(&FromWorker::Pong {
                    seq,
                    worker_ns: now_ns(),
                })
                .await?;
            }
        }
    }
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
