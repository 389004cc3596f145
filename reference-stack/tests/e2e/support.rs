//! Wiremock stand-ins answering the downstream wire contract, signed merchant
//! requests, and waiting on conditions (never bare sleeps).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reference_stack::{ClientSettings, Downstream, ServiceConfig, SignatureVersion, sign};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A success envelope around `data`.
pub fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"code": 0, "message": "success", "data": data}))
}

/// An error envelope with `status`.
pub fn fail(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"code": status, "message": "injected"}))
}

/// Answers from a script by arrival order (the last answer repeats) and records when
/// each request arrived.
#[derive(Clone)]
pub struct Script {
    answers: Arc<Vec<ResponseTemplate>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    pub fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self {
            answers: Arc::new(answers),
            arrivals: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        let n = (arrivals.len() - 1).min(self.answers.len() - 1);
        self.answers[n].clone()
    }
}

/// Answers with one of several templates, chosen live by `set`.
#[derive(Clone)]
pub struct Switch {
    answers: Arc<Vec<ResponseTemplate>>,
    mode: Arc<AtomicUsize>,
}

impl Switch {
    pub fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self {
            answers: Arc::new(answers),
            mode: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn set(&self, mode: usize) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl Respond for Switch {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.answers[self.mode.load(Ordering::SeqCst)].clone()
    }
}

/// Requests a stand-in received on `route`.
pub async fn received(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .collect()
}

/// How many requests a stand-in received on `route`.
pub async fn arrivals(server: &MockServer, route: &str) -> usize {
    received(server, route).await.len()
}

/// Poll `condition` every 5 ms until it holds; panic naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Let a configured duration of the system under test elapse (e.g. a breaker's open
/// timeout). This is the behaviour under test, not synchronisation.
pub async fn let_elapse(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Client settings for tests: platform rules, short times, an open timeout long
/// enough that no test sees an unplanned half-open.
pub fn fast() -> ClientSettings {
    ClientSettings {
        retry_delay: Duration::from_millis(5),
        attempt_timeout: Duration::from_secs(2),
        open_timeout: Duration::from_secs(60),
        async_timeout: Duration::from_secs(2),
        ..ClientSettings::platform()
    }
}

/// A URL where nothing listens (bound then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET `url`, returning status and JSON body (Null if not JSON).
pub async fn get_json(url: &str) -> (u16, Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POST JSON to `url`, returning status and JSON body.
pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let response = http().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh nonce.
pub fn nonce() -> String {
    format!(
        "n{}-{}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A valid payment body for merchant M001.
pub fn payment_body(order_no: &str) -> Value {
    json!({
        "merchant_id": "M001",
        "order_no": order_no,
        "amount": 1250,
        "currency": "USD",
        "customer_email": "payer@example.com",
        "notify_url": "https://merchant.example/notify",
        "return_url": "https://merchant.example/return",
    })
}

/// A merchant's signed `POST /api/v1/payments`.
pub struct PaymentCall<'a> {
    pub body: &'a Value,
    pub idempotency_key: Option<&'a str>,
    pub version: SignatureVersion,
    pub secret: &'a str,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
}

impl<'a> PaymentCall<'a> {
    pub fn new(body: &'a Value) -> Self {
        Self {
            body,
            idempotency_key: None,
            version: SignatureVersion::V1,
            secret: "test-api-secret",
            timestamp: None,
            nonce: None,
        }
    }

    pub async fn send(&self, gateway: &str) -> (u16, Value) {
        let body = serde_json::to_vec(self.body).unwrap();
        let ts = self
            .timestamp
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
        let nonce = self.nonce.clone().unwrap_or_else(nonce);
        let path = "/api/v1/payments";
        let signature = sign(self.secret, self.version, "POST", path, &ts, &nonce, &body);
        let mut request = http()
            .post(format!("{gateway}{path}"))
            .header("Content-Type", "application/json")
            .header("X-API-Key", "test-api-key")
            .header("X-Timestamp", &ts)
            .header("X-Nonce", &nonce)
            .header("X-Signature", signature)
            .body(body);
        if self.version == SignatureVersion::V2 {
            request = request.header("X-Signature-Version", "v2");
        }
        if let Some(key) = self.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Create a payment with a valid signature.
pub async fn create_payment(gateway: &str, order_no: &str) -> (u16, Value) {
    PaymentCall::new(&payment_body(order_no))
        .send(gateway)
        .await
}

/// The gateway's five downstreams as healthy stand-ins.
pub struct GatewayStandIns {
    pub risk: MockServer,
    pub order: MockServer,
    pub channel: MockServer,
    pub notification: MockServer,
    pub analytics: MockServer,
}

impl GatewayStandIns {
    pub async fn healthy() -> Self {
        let s = Self {
            risk: MockServer::start().await,
            order: MockServer::start().await,
            channel: MockServer::start().await,
            notification: MockServer::start().await,
            analytics: MockServer::start().await,
        };
        Mock::given(method("POST"))
            .and(path("/api/v1/risk/check"))
            .respond_with(ok(
                json!({"decision": "approve", "score": 12, "risk_level": "low"}),
            ))
            .mount(&s.risk)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/orders"))
            .respond_with(ok(json!({"order_id": "ORD-1", "status": "created"})))
            .mount(&s.order)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/channel/payment"))
            .respond_with(ok(json!({
                "payment_url": "https://pay.example/checkout/1",
                "channel_trade_no": "CT-1",
                "status": "pending",
            })))
            .mount(&s.channel)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!({"notification_id": "N-1", "status": "queued"})))
            .mount(&s.notification)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/events"))
            .respond_with(ok(json!({"accepted": true})))
            .mount(&s.analytics)
            .await;
        s
    }

    /// A gateway config wired to these stand-ins, with [`fast`] client settings.
    pub fn config(&self) -> ServiceConfig {
        ServiceConfig::gateway()
            .client_settings(fast())
            .downstream_url(Downstream::Risk, self.risk.uri())
            .downstream_url(Downstream::Order, self.order.uri())
            .downstream_url(Downstream::Channel, self.channel.uri())
            .downstream_url(Downstream::Notification, self.notification.uri())
            .downstream_url(Downstream::Analytics, self.analytics.uri())
    }
}

/// A merchant stand-in answering the lookup for any id with password "password123".
pub async fn merchant_stand_in() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v1/merchants/[^/]+/with-password$"))
        .respond_with(ok(json!({
            "merchant_id": "M001",
            "username": "m001",
            "password_hash": reference_stack::password_hash("password123"),
            "status": "active",
        })))
        .mount(&server)
        .await;
    server
}

/// merchant-auth-service config wired to `merchant_url`.
pub fn auth_config(merchant_url: &str, settings: ClientSettings) -> ServiceConfig {
    ServiceConfig::merchant_auth()
        .client_settings(settings)
        .downstream_url(Downstream::Merchant, merchant_url)
}

/// `POST /api/v1/auth/login` with the stand-in's password.
pub async fn login(auth: &str) -> (u16, Value) {
    post_json(
        &format!("{auth}/api/v1/auth/login"),
        &json!({"merchant_id": "M001", "password": "password123"}),
    )
    .await
}

/// The route every merchant lookup uses.
pub const LOOKUP: &str = "/api/v1/merchants/M001/with-password";

/// Run `n` calls at once (each in its own task) and collect their statuses.
pub async fn concurrently<F, Fut>(n: usize, make: F) -> Vec<u16>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (u16, Value)> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(make())).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap().0);
    }
    statuses
}
