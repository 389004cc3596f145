//! User mocks written with the normal wiremock API, served by a real
//! `wiremock::MockServer` behind the injector, with bounded memory.
//!
//! wiremock 0.6 keeps a clone of every request a mounted mock matched, even
//! with recording disabled (~4.5 KB a request), and only `reset()` frees it,
//! with a 404 gap while mocks are remounted. So the injector owns the port
//! and *rotates* servers instead: after `rotate_every` forwarded requests it
//! starts a fresh server, mounts every override on it, and only then swaps it
//! in. Requests in flight finish on the old server, which is dropped when the
//! last of them releases it. There is never a moment without the mocks.
//!
//! Matchers and responders are shared (`Arc`) between the injector, which
//! decides whether an override applies, and every server generation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

/// A mock that overrides (or adds to) a stand-in's routes, in wiremock's
/// words: `Override::given(method("GET")).and(path("/x")).respond_with(
/// ResponseTemplate::new(418))`.
#[derive(Clone)]
pub struct Override {
    matchers: Vec<Arc<dyn Match>>,
    responder: Arc<dyn Respond>,
}

/// An override being built.
pub struct OverrideBuilder {
    matchers: Vec<Arc<dyn Match>>,
}

impl Override {
    /// Starts an override with its first matcher.
    pub fn given(matcher: impl Match + 'static) -> OverrideBuilder {
        OverrideBuilder {
            matchers: vec![Arc::new(matcher)],
        }
    }

    fn matches(&self, request: &Request) -> bool {
        self.matchers.iter().all(|m| m.matches(request))
    }

    fn to_mock(&self) -> Mock {
        Mock::given(AllOf(self.matchers.clone())).respond_with(Shared(self.responder.clone()))
    }
}

impl OverrideBuilder {
    /// Adds a matcher; all must match.
    pub fn and(mut self, matcher: impl Match + 'static) -> Self {
        self.matchers.push(Arc::new(matcher));
        self
    }

    /// Finishes with any wiremock responder (a `ResponseTemplate`, a closure,
    /// your own `Respond`).
    pub fn respond_with(self, responder: impl Respond + 'static) -> Override {
        Override {
            matchers: self.matchers,
            responder: Arc::new(responder),
        }
    }
}

struct AllOf(Vec<Arc<dyn Match>>);

impl Match for AllOf {
    fn matches(&self, request: &Request) -> bool {
        self.0.iter().all(|m| m.matches(request))
    }
}

struct Shared(Arc<dyn Respond>);

impl Respond for Shared {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// The overrides of one injector and the wiremock server generation that
/// serves them.
pub(crate) struct Overrides {
    list: ArcSwap<Vec<Override>>,
    server: ArcSwapOption<MockServer>,
    /// Serialises mounts and rotations.
    writer: tokio::sync::Mutex<()>,
    forwarded: AtomicU64,
    rotate_every: u64,
    rotating: AtomicBool,
    rotations: AtomicU64,
}

impl Overrides {
    pub(crate) fn new(rotate_every: u64) -> Self {
        Self {
            list: ArcSwap::from_pointee(Vec::new()),
            server: ArcSwapOption::empty(),
            writer: tokio::sync::Mutex::new(()),
            forwarded: AtomicU64::new(0),
            rotate_every: rotate_every.max(1),
            rotating: AtomicBool::new(false),
            rotations: AtomicU64::new(0),
        }
    }

    /// Whether any override matches `request`.
    pub(crate) fn matches(&self, request: &Request) -> bool {
        self.list.load().iter().any(|o| o.matches(request))
    }

    /// True when there are overrides at all (saves building a request).
    pub(crate) fn any(&self) -> bool {
        !self.list.load().is_empty()
    }

    /// Adds an override after the existing ones. It is mounted on the live
    /// server before the injector starts routing to it.
    pub(crate) async fn mount(&self, over: Override) {
        let _guard = self.writer.lock().await;
        match self.server.load_full() {
            Some(server) => server.register(over.to_mock()).await,
            None => {
                let server = fresh_server(std::slice::from_ref(&over)).await;
                self.server.store(Some(Arc::new(server)));
            }
        }
        let mut list = Vec::clone(&self.list.load());
        list.push(over);
        self.list.store(Arc::new(list));
    }

    /// Removes every override; requests go back to the stand-in at once.
    pub(crate) async fn clear(&self) {
        let _guard = self.writer.lock().await;
        self.list.store(Arc::new(Vec::new()));
        self.server.store(None);
    }

    /// The server to forward to, counting the request; starts a rotation in
    /// the background when due.
    pub(crate) fn server_for_request(self: &Arc<Self>) -> Option<Arc<MockServer>> {
        let server = self.server.load_full()?;
        let n = self.forwarded.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.rotate_every) && !self.rotating.swap(true, Ordering::AcqRel) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                this.rotate().await;
                this.rotating.store(false, Ordering::Release);
            });
        }
        Some(server)
    }

    /// How many times the server was replaced.
    pub(crate) fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    async fn rotate(&self) {
        let _guard = self.writer.lock().await;
        let list = self.list.load_full();
        if list.is_empty() {
            return;
        }
        let server = fresh_server(&list).await;
        self.server.store(Some(Arc::new(server)));
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }
}

async fn fresh_server(overrides: &[Override]) -> MockServer {
    // Not from wiremock's pool: a pooled server is reset and kept on drop,
    // we want the old generation gone.
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    for over in overrides {
        server.register(over.to_mock()).await;
    }
    server
}
