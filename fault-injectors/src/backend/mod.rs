//! What answers a request the fault program lets through: the user's
//! wiremock overrides first, then the stand-in's routes, or the real upstream
//! in front mode.

mod overrides;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

pub use overrides::{Override, OverrideBuilder};

use crate::stand_in::{Reply, Route, StandIn};
use overrides::Overrides;

/// Where served requests go.
#[derive(Debug)]
pub enum Mode {
    /// Answered in-process by a stand-in.
    StandIn(StandIn),
    /// Passed through to a real service at this base URL (`http://host:port`).
    Front(Uri),
}

/// A response from the backend, before faults shape it.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Front mode: the upstream could not be reached.
    pub(crate) upstream_failed: bool,
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
            upstream_failed: false,
        }
    }
}

/// Which backend a request resolved to.
pub(crate) enum Resolved<'a> {
    Override,
    StandIn(Option<&'a Route>),
    Upstream,
}

/// The request as the backend needs it.
pub(crate) struct Forward<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) struct Backend {
    mode: Mode,
    overrides: Arc<Overrides>,
    /// To the upstream (front mode).
    client: Client<HttpConnector, Full<Bytes>>,
    /// To the wiremock server behind overrides. Idle connections close
    /// quickly: a replaced wiremock server shuts down gracefully, so it (and
    /// every request it retained) lives until its last connection closes.
    override_client: Client<HttpConnector, Full<Bytes>>,
}

fn client(idle: Duration) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(idle)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

impl Backend {
    pub(crate) fn new(mode: Mode, rotate_every: u64) -> Self {
        Self {
            mode,
            overrides: Arc::new(Overrides::new(rotate_every)),
            client: client(Duration::from_secs(30)),
            override_client: client(Duration::from_millis(250)),
        }
    }

    pub(crate) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Whether resolving needs a `wiremock::Request` (stand-in routes or
    /// overrides); plain front mode skips building one.
    pub(crate) fn needs_request(&self) -> bool {
        matches!(self.mode, Mode::StandIn(_)) || self.overrides.any()
    }

    pub(crate) fn resolve<'a>(&'a self, request: Option<&wiremock::Request>) -> Resolved<'a> {
        if let Some(request) = request {
            if self.overrides.any() && self.overrides.matches(request) {
                return Resolved::Override;
            }
            if let Mode::StandIn(stand_in) = &self.mode {
                return Resolved::StandIn(stand_in.find(request));
            }
        }
        Resolved::Upstream
    }

    pub(crate) async fn mount(&self, over: Override) {
        self.overrides.mount(over).await;
    }

    pub(crate) async fn clear_overrides(&self) {
        self.overrides.clear().await;
    }

    pub(crate) fn rotations(&self) -> u64 {
        self.overrides.rotations()
    }

    pub(crate) async fn answer(
        &self,
        resolved: &Resolved<'_>,
        request: Option<&wiremock::Request>,
        forward: Forward<'_>,
    ) -> Answer {
        match (resolved, &self.mode, request) {
            (Resolved::StandIn(route), Mode::StandIn(stand_in), Some(request)) => {
                stand_in.reply(*route, request).into()
            }
            (Resolved::Override, _, _) => match self.overrides.server_for_request() {
                Some(server) => {
                    let base: Uri = match server.uri().parse() {
                        Ok(uri) => uri,
                        Err(_) => return upstream_error("wiremock server URI unreadable"),
                    };
                    // `server` stays alive until the answer is in, so a
                    // rotation never pulls it from under this request.
                    let answer = send(&self.override_client, &base, forward).await;
                    drop(server);
                    answer
                }
                // Cleared between resolve and answer: fall back like no match.
                None => Reply::error(StatusCode::NOT_FOUND, "override removed").into(),
            },
            (_, Mode::Front(upstream), _) => send(&self.client, upstream, forward).await,
            _ => Reply::error(StatusCode::NOT_FOUND, "no backend for this request").into(),
        }
    }
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &Uri,
    forward: Forward<'_>,
) -> Answer {
    let path = forward.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri = match build_uri(base, path) {
        Ok(uri) => uri,
        Err(e) => return upstream_error(&e),
    };
    let mut request = hyper::Request::new(Full::new(forward.body));
    *request.method_mut() = forward.method.clone();
    *request.uri_mut() = uri;
    for (name, value) in forward.headers {
        if !is_hop_by_hop(name) && name != header::HOST {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    if let Some(host) = base
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, host);
    }
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => return upstream_error(&format!("upstream {base} unreachable: {e}")),
    };
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return upstream_error(&format!("upstream {base} body failed: {e}")),
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    Answer {
        status: parts.status,
        headers,
        body,
        upstream_failed: false,
    }
}

fn build_uri(base: &Uri, path_and_query: &str) -> Result<Uri, String> {
    let mut parts = base.clone().into_parts();
    let prefix = base.path().trim_end_matches('/');
    parts.path_and_query = Some(
        format!("{prefix}{path_and_query}")
            .parse()
            .map_err(|e| format!("bad upstream path: {e}"))?,
    );
    Uri::from_parts(parts).map_err(|e| format!("bad upstream URI: {e}"))
}

fn upstream_error(message: &str) -> Answer {
    let mut answer: Answer = Reply::error(StatusCode::BAD_GATEWAY, message).into();
    answer.upstream_failed = true;
    answer
}

/// Headers that describe one connection, not the message; never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_LENGTH
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_hop_by_hop(k))
        .cloned()
        .collect();
    for name in hop {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uri_keeps_base_path_and_query() {
        let base: Uri = "http://127.0.0.1:9000/prefix/".parse().expect("uri");
        let uri = build_uri(&base, "/api/v1/orders?x=1").expect("joins");
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:9000/prefix/api/v1/orders?x=1"
        );
    }
}
