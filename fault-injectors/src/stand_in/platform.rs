//! Built-in stand-ins for the payment platform's downstream services.
//!
//! Each answers the platform's routes with plausible bodies in the platform's
//! envelope (`{"code":0,"message":"success","data":...}`), echoing what the
//! caller sent (order_no, payment_no, amount, ...) and generating ids. Every
//! stand-in also answers `/health`, `/health/live` and `/health/ready`.
//! Which stand-ins exist and the routes each answers come from the platform
//! contract ([`platform_contract`]); the canned answers live here.

use platform_contract::{Downstream, Route as ContractRoute, routes};
use serde_json::{Value, json};
use wiremock::{Match, Request};

use super::{Reply, ReplyContext, Route, StandIn};

/// Names of the built-in stand-ins: every downstream of the platform
/// contract, by its injector name.
pub const PLATFORM_STAND_INS: &[&str] = &Downstream::INJECTOR_NAMES;

/// SHA-256 of "password123", the password every stand-in merchant has.
const PASSWORD123_SHA256: &str = "ef92b778bafe771e89245b89ecbc08a44a4e166c06659911881f383d4473e94f";

/// A canned answer to one route.
type Answer = fn(&Request, &ReplyContext) -> Reply;

/// The stand-in for the downstream whose injector name is `service`: the
/// contract's routes of that downstream, each with its canned answer, and
/// the health routes.
pub(super) fn stand_in(service: &str) -> Option<StandIn> {
    let downstream = Downstream::from_injector_name(service)?;
    let stand_in = downstream
        .routes()
        .iter()
        .filter_map(|route| Some(route_to(*route, answer(route)?)))
        .fold(StandIn::new(service), StandIn::route);
    Some(with_health(stand_in))
}

/// The canned answer to a contract route; `None` for a route that only the
/// stack's own services serve.
fn answer(route: &ContractRoute) -> Option<Answer> {
    use routes::*;
    Some(match *route {
        RISK_CHECK => risk_check,
        RISK_SUMMARY => risk_summary,
        ORDER_CREATE => order_create,
        CHANNEL_PAYMENT => channel_payment,
        NOTIFICATION_CREATE => notification_create,
        UNREAD_COUNT => unread_count,
        ANALYTICS_EVENT => analytics_event,
        MERCHANT_STATISTICS => statistics,
        BALANCE_SUMMARY => balance_summary,
        TRANSACTIONS => transactions,
        TRANSACTION_CREATE => transaction_create,
        WITHDRAWAL_CREATE => withdrawal_create,
        MERCHANT_WITH_PASSWORD => merchant_with_password,
        MERCHANT_PASSWORD => password_updated,
        PAYMENT_LIST => payments_list,
        BANK_TRANSFER => bank_transfer,
        _ => return None,
    })
}

/// Matches the requests that take a contract route (method, and the path
/// with each `{...}` segment matching one segment).
struct Takes(ContractRoute);

impl Match for Takes {
    fn matches(&self, request: &Request) -> bool {
        self.0.matches(request.method.as_str(), request.url.path())
    }
}

/// A stand-in route for a contract route, named as the contract names it.
fn route_to(route: ContractRoute, responder: impl super::Responder) -> Route {
    Route::given(Takes(route))
        .reply_with(responder)
        .named(route.name())
}

fn with_health(stand_in: StandIn) -> StandIn {
    let service = stand_in.service().to_string();
    let health = move |_: &Request, _: &ReplyContext| {
        Reply::json(
            http::StatusCode::OK,
            &json!({"status": "healthy", "service": service, "checks": []}),
        )
    };
    stand_in
        .route(route_to(routes::HEALTH, health))
        .route(route_to(
            routes::HEALTH_LIVE,
            Reply::json(http::StatusCode::OK, &json!({"status": "alive"})),
        ))
        .route(route_to(
            routes::HEALTH_READY,
            Reply::json(http::StatusCode::OK, &json!({"status": "ready"})),
        ))
}

/// The request's JSON body, or `null` when it has none.
fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// The `{id}` segment that follows `after` in the path.
fn segment_after(request: &Request, after: &str) -> String {
    let mut segments = request.url.path().split('/');
    segments.by_ref().find(|s| *s == after);
    segments.next().unwrap_or_default().to_string()
}

fn query(request: &Request, key: &str) -> Value {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map_or(Value::Null, |(_, v)| Value::String(v.into_owned()))
}

fn risk_check(request: &Request, _: &ReplyContext) -> Reply {
    let b = body(request);
    Reply::ok(json!({
        "decision": "approve",
        "score": 12,
        "risk_level": "low",
        "payment_no": b["payment_no"],
    }))
}

fn risk_summary(request: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({
        "merchant_id": segment_after(request, "merchants"),
        "risk_level": "low",
        "flagged_payments": 0,
    }))
}

fn order_create(request: &Request, ctx: &ReplyContext) -> Reply {
    let b = body(request);
    Reply::ok(json!({
        "order_id": ctx.next_id("ORD"),
        "order_no": b["order_no"],
        "payment_no": b["payment_no"],
        "merchant_id": b["merchant_id"],
        "status": "created",
        "amount": b["amount"],
        "currency": b["currency"],
    }))
}

fn channel_payment(request: &Request, ctx: &ReplyContext) -> Reply {
    let b = body(request);
    let trade_no = ctx.next_id("CH");
    Reply::ok(json!({
        "payment_url": format!("https://pay.channel.example/checkout/{trade_no}"),
        "channel_trade_no": trade_no,
        "payment_no": b["payment_no"],
        "status": "pending",
    }))
}

fn notification_create(_: &Request, ctx: &ReplyContext) -> Reply {
    Reply::ok(json!({"notification_id": ctx.next_id("NTF"), "status": "queued"}))
}

fn analytics_event(_: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({"accepted": true}))
}

fn unread_count(request: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({"merchant_id": segment_after(request, "merchants"), "unread_count": 3}))
}

fn statistics(request: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({
        "merchant_id": segment_after(request, "merchant"),
        "total_payments": 1280,
        "total_amount": 5_412_300,
        "success_rate": 0.982,
    }))
}

fn balance_summary(request: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({
        "merchant_id": segment_after(request, "merchants"),
        "available": 10_000_000,
        "pending": 125_000,
        "currency": "USD",
    }))
}

fn transactions(request: &Request, _: &ReplyContext) -> Reply {
    let merchant = query(request, "merchant_id");
    Reply::ok(json!({
        "merchant_id": merchant,
        "start": query(request, "start"),
        "end": query(request, "end"),
        "transactions": [
            {"transaction_id": "TXN000000000001", "amount": 12_500, "type": "credit"},
            {"transaction_id": "TXN000000000002", "amount": 7_500, "type": "credit"},
        ],
        "total": 20_000,
    }))
}

fn transaction_create(request: &Request, ctx: &ReplyContext) -> Reply {
    let b = body(request);
    Reply::ok(json!({
        "transaction_id": ctx.next_id("TXN"),
        "status": "posted",
        "amount": b["amount"],
        "type": b["type"],
    }))
}

fn withdrawal_create(request: &Request, ctx: &ReplyContext) -> Reply {
    let b = body(request);
    Reply::ok(json!({
        "withdrawal_no": ctx.next_id("WD"),
        "merchant_id": b["merchant_id"],
        "amount": b["amount"],
        "status": "pending",
    }))
}

fn merchant_with_password(request: &Request, _: &ReplyContext) -> Reply {
    let id = segment_after(request, "merchants");
    Reply::ok(json!({
        "merchant_id": id,
        "username": format!("merchant-{id}"),
        "password_hash": PASSWORD123_SHA256,
        "status": "active",
    }))
}

fn password_updated(_: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({"updated": true}))
}

fn payments_list(request: &Request, _: &ReplyContext) -> Reply {
    Reply::ok(json!({
        "merchant_id": query(request, "merchant_id"),
        "payments": [],
        "total": 0,
    }))
}

fn bank_transfer(request: &Request, ctx: &ReplyContext) -> Reply {
    let b = body(request);
    Reply::ok(json!({
        "transfer_id": ctx.next_id("BT"),
        "withdrawal_no": b["withdrawal_no"],
        "status": "accepted",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, m: &str, p: &str, body: &str) -> (u16, Value) {
        let stand_in = StandIn::platform(service).expect("known stand-in");
        let request = Request {
            url: url::Url::parse(&format!("http://x{p}")).expect("url"),
            method: m.parse().expect("method"),
            headers: http::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let reply = stand_in.reply(stand_in.find(&request), &request);
        let value = serde_json::from_slice(&reply.body).expect("json body");
        (reply.status.as_u16(), value)
    }

    #[test]
    fn every_stand_in_exists_and_answers_health() {
        for name in PLATFORM_STAND_INS {
            let (status, body) = call(name, "GET", "/health/live", "");
            assert_eq!(status, 200, "{name}");
            assert_eq!(body["status"], "alive");
        }
        assert!(StandIn::platform("nope").is_none());
    }

    /// A path taking `route`, each `{...}` segment filled in.
    fn path_of(route: &ContractRoute) -> String {
        let segments: Vec<&str> = route
            .path()
            .split('/')
            .map(|s| if s.starts_with('{') { "M7" } else { s })
            .collect();
        segments.join("/")
    }

    #[test]
    fn every_contract_route_of_a_downstream_has_a_canned_answer_under_its_name() {
        for d in Downstream::ALL {
            let stand_in = StandIn::platform(d.injector_name()).expect("known stand-in");
            for route in d.routes() {
                assert!(answer(route).is_some(), "no canned answer for {route}");
                let (status, body) = call(
                    d.injector_name(),
                    route.method().as_str(),
                    &path_of(route),
                    "{}",
                );
                assert_eq!(status, 200, "{} {route}: {body}", d.injector_name());
                assert_eq!(body["code"], 0, "{} {route}: {body}", d.injector_name());
                let request = Request {
                    url: url::Url::parse(&format!("http://x{}", path_of(route))).expect("url"),
                    method: route.method().as_str().parse().expect("method"),
                    headers: http::HeaderMap::new(),
                    body: Vec::new(),
                };
                let taken = stand_in.find(&request).and_then(|r| r.name());
                assert_eq!(taken, Some(route.name()));
            }
        }
        assert!(answer(&routes::PAYMENT_CREATE).is_none());
    }

    #[test]
    fn order_create_echoes_the_caller() {
        let (status, body) = call(
            "order-service",
            "POST",
            "/api/v1/orders",
            r#"{"merchant_id":"M001","order_no":"O-1","payment_no":"P-1","amount":500,"currency":"USD"}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(body["code"], 0);
        assert_eq!(body["data"]["order_no"], "O-1");
        assert_eq!(body["data"]["payment_no"], "P-1");
        assert_eq!(body["data"]["status"], "created");
        assert!(
            body["data"]["order_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("ORD"))
        );
    }

    #[test]
    fn channel_returns_payment_url_and_trade_no() {
        let (_, body) = call(
            "channel-adapter",
            "POST",
            "/api/v1/channel/payment",
            r#"{"payment_no":"P-1"}"#,
        );
        let trade = body["data"]["channel_trade_no"].as_str().expect("trade no");
        assert!(
            body["data"]["payment_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(trade))
        );
    }

    #[test]
    fn dashboard_parts_carry_the_merchant_id() {
        let (_, b) = call(
            "analytics-service",
            "GET",
            "/api/v1/statistics/merchant/M7",
            "",
        );
        assert_eq!(b["data"]["merchant_id"], "M7");
        let (_, b) = call(
            "accounting-service",
            "GET",
            "/api/v1/balances/merchants/M7/summary",
            "",
        );
        assert_eq!(b["data"]["merchant_id"], "M7");
        let (_, b) = call(
            "notification-service",
            "GET",
            "/api/v1/notifications/merchants/M7/unread/count",
            "",
        );
        assert_eq!(b["data"]["merchant_id"], "M7");
        let (_, b) = call(
            "risk-service",
            "GET",
            "/api/v1/risk/merchants/M7/summary",
            "",
        );
        assert_eq!(b["data"]["merchant_id"], "M7");
        let (_, b) = call(
            "payment-gateway",
            "GET",
            "/api/v1/payments?merchant_id=M7",
            "",
        );
        assert_eq!(b["data"]["merchant_id"], "M7");
    }

    #[test]
    fn merchant_password_hash_is_sha256_of_password123() {
        let (_, b) = call(
            "merchant-service",
            "GET",
            "/api/v1/merchants/M1/with-password",
            "",
        );
        assert_eq!(b["data"]["password_hash"], PASSWORD123_SHA256);
    }
}
