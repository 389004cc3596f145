//! Stand-ins: what answers in place of a downstream service.
//!
//! A [`StandIn`] is an ordered list of [`Route`]s. Routes match with
//! wiremock's own matchers (`method("POST")`, `path("/api/v1/orders")`,
//! `path_regex`, `header`, `body_partial_json`, ... or any `wiremock::Match`)
//! evaluated in-process, and answer with a [`Reply`]. Keeping the hot path out
//! of wiremock's server matters: that server runs on one thread and keeps a
//! copy of every request it matched (see the crate docs).
//!
//! The platform's downstreams come built in: [`StandIn::platform`].

mod platform;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use wiremock::{Match, Request};

pub use platform::PLATFORM_STAND_INS;

/// A response produced by a stand-in route.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: StatusCode, value: &Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: Bytes::from(value.to_string()),
        }
    }

    /// 200 with the platform's success envelope around `data`:
    /// `{"code":0,"message":"success","data":...}`.
    pub fn ok(data: Value) -> Self {
        Self::json(
            StatusCode::OK,
            &json!({"code": 0, "message": "success", "data": data}),
        )
    }

    /// An error in the platform's shape: `{"code":<status>,"message":...}`.
    pub fn error(status: StatusCode, message: &str) -> Self {
        Self::json(
            status,
            &json!({"code": status.as_u16(), "message": message}),
        )
    }
}

/// Shared state a responder may use: a counter for generated ids.
#[derive(Debug, Default)]
pub struct ReplyContext {
    next: AtomicU64,
}

impl ReplyContext {
    /// A fresh id with a prefix, e.g. `ORD000000000017`; unique per stand-in.
    pub fn next_id(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{prefix}{n:012}")
    }
}

/// Produces a [`Reply`] for a matched request.
pub trait Responder: Send + Sync + 'static {
    /// Answers `request`.
    fn reply(&self, request: &Request, ctx: &ReplyContext) -> Reply;
}

impl<F> Responder for F
where
    F: Fn(&Request, &ReplyContext) -> Reply + Send + Sync + 'static,
{
    fn reply(&self, request: &Request, ctx: &ReplyContext) -> Reply {
        self(request, ctx)
    }
}

impl Responder for Reply {
    fn reply(&self, _: &Request, _: &ReplyContext) -> Reply {
        self.clone()
    }
}

/// One route of a stand-in: matchers and a responder.
pub struct Route {
    name: Option<String>,
    matchers: Vec<Box<dyn Match>>,
    responder: Box<dyn Responder>,
}

/// A route being built: add matchers, then a responder.
pub struct RouteBuilder {
    matchers: Vec<Box<dyn Match>>,
}

impl Route {
    /// Starts a route with its first matcher, as `wiremock::Mock::given` does.
    pub fn given(matcher: impl Match + 'static) -> RouteBuilder {
        RouteBuilder {
            matchers: vec![Box::new(matcher)],
        }
    }

    /// Names the route in counters (default: method and path with ids folded).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The route's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether every matcher accepts `request`.
    pub fn matches(&self, request: &Request) -> bool {
        self.matchers.iter().all(|m| m.matches(request))
    }

    /// Answers `request`.
    pub fn reply(&self, request: &Request, ctx: &ReplyContext) -> Reply {
        self.responder.reply(request, ctx)
    }
}

impl RouteBuilder {
    /// Adds a matcher; all must match.
    pub fn and(mut self, matcher: impl Match + 'static) -> Self {
        self.matchers.push(Box::new(matcher));
        self
    }

    /// Finishes the route with its responder.
    pub fn reply_with(self, responder: impl Responder) -> Route {
        Route {
            name: None,
            matchers: self.matchers,
            responder: Box::new(responder),
        }
    }
}

/// A stand-in for one downstream service: routes tried in order, the first
/// match answers; no match answers 404 in the platform's error shape.
pub struct StandIn {
    service: String,
    routes: Vec<Route>,
    context: ReplyContext,
}

impl StandIn {
    /// An empty stand-in for `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            routes: Vec::new(),
            context: ReplyContext::default(),
        }
    }

    /// Adds a route after the existing ones.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The built-in stand-in of a platform service (see
    /// [`PLATFORM_STAND_INS`]), or `None` for an unknown name.
    pub fn platform(service: &str) -> Option<Self> {
        platform::stand_in(service)
    }

    /// The service this stands in for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The first route matching `request`.
    pub fn find(&self, request: &Request) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(request))
    }

    /// Answers with `route` (or 404 when no route matched).
    pub fn reply(&self, route: Option<&Route>, request: &Request) -> Reply {
        match route {
            Some(route) => route.reply(request, &self.context),
            None => Reply::error(
                StatusCode::NOT_FOUND,
                &format!(
                    "{} stand-in has no route for {} {}",
                    self.service,
                    request.method,
                    request.url.path()
                ),
            ),
        }
    }
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("service", &self.service)
            .field("routes", &self.routes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};

    fn request(m: &str, p: &str, body: &str) -> Request {
        Request {
            url: url::Url::parse(&format!("http://stand.in{p}")).expect("url"),
            method: m.parse().expect("method"),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn first_matching_route_answers_and_unmatched_is_404() {
        let stand_in = StandIn::new("x")
            .route(
                Route::given(method("GET"))
                    .and(path("/a"))
                    .reply_with(Reply::ok(json!({"which": 1}))),
            )
            .route(Route::given(method("GET")).reply_with(Reply::ok(json!({"which": 2}))));
        let a = request("GET", "/a", "");
        let b = request("GET", "/b", "");
        let post = request("POST", "/a", "");
        let body = |r: &Request| {
            let reply = stand_in.reply(stand_in.find(r), r);
            (
                reply.status,
                String::from_utf8_lossy(&reply.body).into_owned(),
            )
        };
        assert!(body(&a).1.contains(r#""which":1"#));
        assert!(body(&b).1.contains(r#""which":2"#));
        assert_eq!(body(&post).0, StatusCode::NOT_FOUND);
        assert!(body(&post).1.contains("no route for POST /a"));
    }

    #[test]
    fn context_ids_are_unique() {
        let ctx = ReplyContext::default();
        assert_eq!(ctx.next_id("ORD"), "ORD000000000001");
        assert_eq!(ctx.next_id("ORD"), "ORD000000000002");
    }
}
