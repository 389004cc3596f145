//! Response bodies that misbehave on purpose: dribbled slowly, or cut off.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep};

/// Pause between the last byte sent before a cut and the reset, so the bytes
/// leave the socket before the RST overtakes them.
const CUT_FLUSH: Duration = Duration::from_millis(10);

/// Most chunks a slow body is cut into.
const MAX_DRIBBLE_CHUNKS: usize = 100;

/// The body of an injector response.
pub(crate) enum FaultBody {
    /// Everything at once.
    Full(Option<Bytes>),
    /// Chunks, one every `interval`, the last one `duration` after the
    /// headers.
    Dribble {
        chunks: VecDeque<Bytes>,
        interval: Duration,
        sleep: Pin<Box<Sleep>>,
        len: u64,
    },
    /// `head`, then an error that makes hyper drop the connection (reset).
    Cut {
        head: Option<Bytes>,
        sleep: Pin<Box<Sleep>>,
        len: u64,
    },
}

impl FaultBody {
    pub(crate) fn full(bytes: Bytes) -> Self {
        FaultBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    pub(crate) fn empty() -> Self {
        FaultBody::Full(None)
    }

    /// Spreads `bytes` evenly over `duration`.
    pub(crate) fn dribble(bytes: Bytes, duration: Duration) -> Self {
        let len = bytes.len();
        let n = len.clamp(1, MAX_DRIBBLE_CHUNKS);
        let size = len.div_ceil(n).max(1);
        let chunks: VecDeque<Bytes> = (0..len)
            .step_by(size)
            .map(|start| bytes.slice(start..(start + size).min(len)))
            .collect();
        let interval = duration / chunks.len().max(1) as u32;
        FaultBody::Dribble {
            chunks,
            interval,
            sleep: Box::pin(sleep(interval)),
            len: len as u64,
        }
    }

    /// Sends the first half of `bytes`, then fails (the connection resets).
    pub(crate) fn cut(bytes: Bytes) -> Self {
        let half = bytes.len() / 2;
        FaultBody::Cut {
            head: (half > 0).then(|| bytes.slice(..half)),
            sleep: Box::pin(sleep(CUT_FLUSH)),
            len: bytes.len() as u64,
        }
    }
}

impl Body for FaultBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            FaultBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            FaultBody::Dribble {
                chunks,
                interval,
                sleep,
                ..
            } => {
                if chunks.is_empty() {
                    return Poll::Ready(None);
                }
                ready!(sleep.as_mut().poll(cx));
                let deadline = Instant::now() + *interval;
                sleep.as_mut().reset(deadline);
                Poll::Ready(chunks.pop_front().map(|c| Ok(Frame::data(c))))
            }
            FaultBody::Cut { head, sleep, .. } => {
                if let Some(head) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "injected reset mid-response",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            FaultBody::Full(bytes) => bytes.is_none(),
            FaultBody::Dribble { chunks, .. } => chunks.is_empty(),
            FaultBody::Cut { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FaultBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            // The full length is announced, so the client waits for bytes that
            // come late (dribble) or never (cut).
            FaultBody::Dribble { len, .. } | FaultBody::Cut { len, .. } => {
                SizeHint::with_exact(*len)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn dribble_delivers_every_byte_over_the_duration() {
        let bytes = Bytes::from(vec![b'x'; 1000]);
        let started = std::time::Instant::now();
        let collected = FaultBody::dribble(bytes.clone(), Duration::from_millis(200))
            .collect()
            .await
            .expect("no error")
            .to_bytes();
        assert_eq!(collected, bytes);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn cut_yields_half_then_an_error() {
        let mut body = FaultBody::cut(Bytes::from_static(b"0123456789"));
        assert_eq!(body.size_hint().exact(), Some(10));
        let first = body.frame().await.expect("frame").expect("data");
        assert_eq!(first.into_data().ok(), Some(Bytes::from_static(b"01234")));
        let err = body.frame().await.expect("frame").expect_err("cut");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
