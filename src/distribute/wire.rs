//! What coordinator and workers say to each other: length-delimited JSON
//! frames over one TCP connection per worker, opened by the worker.
//!
//! The coordinator speaks first only to measure the clock (pings); the
//! worker introduces itself, is sent the plan and a start instant, then
//! streams what it measured window by window and ends with its totals. A
//! connection that closes before the totals is a worker lost.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Largest frame accepted: a window's request records at a few thousand
/// requests a second per worker fit many times over.
const MAX_FRAME: usize = 64 << 20;

/// One framed connection carrying messages of type `In` one way and
/// `Out` the other.
pub struct Link<S> {
    framed: Framed<S, LengthDelimitedCodec>,
}

/// Why a message could not be exchanged.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer closed the connection.
    #[error("the connection closed")]
    Closed,
    /// Nothing came in time.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame that is not a message of this protocol (another version?).
    #[error("a frame that is not a faultline message: {0}")]
    Garbled(#[from] serde_json::Error),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    /// A link over `stream`.
    pub fn new(stream: S) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME)
            .new_codec();
        Self {
            framed: Framed::new(stream, codec),
        }
    }

    /// Sends one message.
    pub async fn send<M: Serialize>(&mut self, message: &M) -> Result<(), WireError> {
        let bytes = serde_json::to_vec(message)?;
        self.framed.send(bytes::Bytes::from(bytes)).await?;
        Ok(())
    }

    /// The next message; `Closed` when the peer is gone.
    pub async fn recv<M: DeserializeOwned>(&mut self) -> Result<M, WireError> {
        match self.framed.next().await {
            Some(frame) => Ok(serde_json::from_slice(&frame?)?),
            None => Err(WireError::Closed),
        }
    }

    /// The next message within `limit`.
    pub async fn recv_within<M: DeserializeOwned>(
        &mut self,
        limit: Duration,
    ) -> Result<M, WireError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| WireError::Timeout(limit))?
    }
}
