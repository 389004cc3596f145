//! The load's HTTP client: keep-alive HTTP/1.1 connections to one target in
//! a bounded pool, requests assembled from parts prepared once per lane.
//!
//! Why not a general client: a load generator's cost per request is what
//! limits how close to the machine's limit it gets. A general client parses
//! a URL (and runs IDNA on its host), merges a default header map and keeps
//! an unbounded pool per request; here the target is parsed once, the path
//! becomes the request URI without a copy, bodies are shared (`Bytes`), and
//! the response body is taken as it came off the wire.
//!
//! **The pool is bounded.** At most `limit` requests hold a connection at
//! once (a semaphore), so at most `limit` connections exist: a stall of the
//! process followed by a burst of due requests queues them for a connection
//! — which shows as lateness — instead of opening thousands of connections
//! at once (the connection storm that made the open model lose its
//! schedule). The limit grows ([`Pool::want`]) when the SUT holds
//! connections longer, never because the generator is late.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::journeys::{Answer, Call};
use super::recorder::Outcome;

type Sender = SendRequest<Full<Bytes>>;

/// Why a target URL is unusable.
#[derive(Debug, thiserror::Error)]
#[error("load target `{0}` is not an http://host:port URL")]
pub struct BadTarget(String);

/// A pool of connections to one target.
pub struct Pool {
    host: String,
    port: u16,
    authority: HeaderValue,
    /// The target URL's path, prefixed to every request path ("" for none).
    prefix: String,
    idle: ArrayQueue<Sender>,
    permits: Semaphore,
    granted: AtomicUsize,
    max: usize,
    opened: AtomicU64,
}

/// What went wrong on the way, before any answer.
enum Failure {
    /// No connection could be opened.
    Connect,
    /// Anything else on the wire.
    Broken,
}

impl Pool {
    /// A pool for `target` (`http://host:port[/prefix]`) allowing `limit`
    /// connections now and growing to `max` at most.
    pub fn new(target: &str, limit: usize, max: usize) -> Result<Self, BadTarget> {
        let bad = || BadTarget(target.to_string());
        let uri: Uri = target.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        let host = authority.host().trim_matches(|c| c == '[' || c == ']');
        let max = max.max(1);
        let limit = limit.clamp(1, max);
        Ok(Self {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: HeaderValue::from_str(authority.as_str()).map_err(|_| bad())?,
            prefix: uri.path().trim_end_matches('/').to_string(),
            idle: ArrayQueue::new(max),
            permits: Semaphore::new(limit),
            granted: AtomicUsize::new(limit),
            max,
            opened: AtomicU64::new(0),
        })
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connections allowed now.
    pub fn limit(&self) -> usize {
        self.granted.load(Ordering::Relaxed)
    }

    /// Whether every allowed connection is in use (requests are waiting).
    pub fn exhausted(&self) -> bool {
        self.permits.available_permits() == 0
    }

    /// Allows `n` connections (up to the maximum); never shrinks.
    pub fn want(&self, n: usize) {
        let n = n.min(self.max);
        let mut granted = self.granted.load(Ordering::Relaxed);
        while granted < n {
            match self
                .granted
                .compare_exchange(granted, n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.permits.add_permits(n - granted);
                    return;
                }
                Err(now) => granted = now,
            }
        }
    }

    /// Sends `call` and reads its answer within `timeout` (a status in
    /// `success` counts as a success); returns the answer and the instant the
    /// request went out, a connection in hand.
    pub async fn send(&self, call: Call, success: &[u16], timeout: Duration) -> (Answer, Instant) {
        let mut sent = Instant::now();
        let exchange = self.exchange(call, success, &mut sent);
        let outcome = tokio::time::timeout(timeout, exchange).await;
        let (outcome, body) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(Failure::Connect)) => (Outcome::Connect, Bytes::new()),
            Ok(Err(Failure::Broken)) => (Outcome::Broken, Bytes::new()),
            Err(_) => (Outcome::Timeout, Bytes::new()),
        };
        (Answer { outcome, body }, sent)
    }

    async fn exchange(
        &self,
        call: Call,
        success: &[u16],
        sent: &mut Instant,
    ) -> Result<(Outcome, Bytes), Failure> {
        // The semaphore is never closed.
        let _permit = self.permits.acquire().await.map_err(|_| Failure::Broken)?;
        let request = self.request(call)?;
        let (mut sender, reused) = self.checkout().await?;
        *sent = Instant::now();
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            // A kept-alive connection the server closed before our request
            // left: send it again on a fresh one.
            Err(mut e) => match (reused, e.take_message()) {
                (true, Some(request)) => {
                    sender = self.connect().await?;
                    *sent = Instant::now();
                    sender
                        .send_request(request)
                        .await
                        .map_err(|_| Failure::Broken)?
                }
                _ => return Err(Failure::Broken),
            },
        };
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Broken)?
            .to_bytes();
        if !sender.is_closed() {
            // Full only past the limit's worth of idle connections: let it close.
            let _ = self.idle.push(sender);
        }
        let outcome = match success.contains(&status) {
            true => Outcome::Ok(status),
            false => Outcome::Status(status),
        };
        Ok((outcome, body))
    }

    /// The request for `call`, its path and headers moved in without copies.
    fn request(&self, call: Call) -> Result<Request<Full<Bytes>>, Failure> {
        let path = match self.prefix.is_empty() {
            true => Bytes::from(call.path),
            false => Bytes::from(format!("{}{}", self.prefix, call.path)),
        };
        let uri = Uri::from_maybe_shared(path).map_err(|_| Failure::Broken)?;
        let mut request = Request::new(Full::new(call.body.unwrap_or_default()));
        *request.method_mut() = call.method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.authority.clone());
        for (name, value) in call.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Failure::Broken)?;
            let value =
                HeaderValue::from_maybe_shared(Bytes::from(value)).map_err(|_| Failure::Broken)?;
            headers.insert(name, value);
        }
        Ok(request)
    }

    /// An idle connection ready for a request, or a new one; and whether it
    /// was reused.
    async fn checkout(&self) -> Result<(Sender, bool), Failure> {
        while let Some(mut sender) = self.idle.pop() {
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        self.connect().await.map(|sender| (sender, false))
    }

    async fn connect(&self) -> Result<Sender, Failure> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection);
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A server answering 200 after `delay`, counting its connections.
    async fn server(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, accepted)
    }

    fn get() -> Call {
        Call {
            method: http::Method::GET,
            path: "/x".into(),
            headers: vec![("X-Test", "1".into())],
            body: None,
            id: 0,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_a_bounded_set_of_connections() {
        let (url, accepted) = server(Duration::from_millis(20)).await;
        let pool = Arc::new(Pool::new(&url, 4, 8).expect("target"));
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.send(get(), &[200], Duration::from_secs(5)).await })
            })
            .collect();
        for task in tasks {
            let (answer, _) = task.await.expect("task");
            assert_eq!(answer.outcome, Outcome::Ok(200));
            assert_eq!(&answer.body[..], b"{}");
        }
        assert!(pool.opened() <= 4, "{} connections", pool.opened());
        assert_eq!(accepted.load(Ordering::Relaxed) as u64, pool.opened());
        pool.want(100);
        assert_eq!(pool.limit(), 8, "never past the maximum");
    }

    #[tokio::test]
    async fn failures_are_told_apart() {
        let (url, _) = server(Duration::from_millis(500)).await;
        let pool = Pool::new(&url, 1, 1).expect("target");
        let (slow, _) = pool.send(get(), &[200], Duration::from_millis(50)).await;
        assert_eq!(slow.outcome, Outcome::Timeout);
        let (wrong, _) = pool.send(get(), &[201], Duration::from_secs(5)).await;
        assert_eq!(wrong.outcome, Outcome::Status(200));
        // A port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        let pool = Pool::new(&url, 1, 1).expect("target");
        let (refused, _) = pool.send(get(), &[200], Duration::from_secs(5)).await;
        assert_eq!(refused.outcome, Outcome::Connect);
        assert!(Pool::new("https://example.test", 1, 1).is_err());
        assert!(Pool::new("not a url", 1, 1).is_err());
    }
}
