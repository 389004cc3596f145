//! Built-in stand-ins for the payment platform's downstream services.
//!
//! Each answers the platform's routes with plausible bodies in the platform's
//! envelope (`{"code":0,"message":"success","data":...}`), echoing what the
//! caller sent (order_no, payment_no, amount, ...) and generating ids. Every
//! stand-in also answers `/health`, `/health/live` and `/health/ready`.
//! The wire contract is written down in the reference stack's README.

use serde_json::{Value, json};
use wiremock::Request;
use wiremock::matchers::{method, path, path_regex};

use super::{Reply, ReplyContext, Route, StandIn};

/// Names of the built-in stand-ins.
pub const PLATFORM_STAND_INS: &[&str] = &[
    "risk-service",
    "order-service",
    "channel-adapter",
    "notification-service",
    "analytics-service",
    "accounting-service",
    "withdrawal-service",
    "merchant-service",
    "payment-gateway",
    "bank-api",
];

/// SHA-256 of "password123", the password every stand-in merchant has.
const PASSWORD123_SHA256: &str = "ef92b778bafe771e89245b89ecbc08a44a4e166c06659911881f383d4473e94f";

pub(super) fn stand_in(service: &str) -> Option<StandIn> {
    let stand_in = StandIn::new(service);
    let stand_in = match service {
        "risk-service" => stand_in
            .route(post("/api/v1/risk/check", risk_check))
            .route(get(
                r"^/api/v1/risk/merchants/[^/]+/summary$",
                "GET /api/v1/risk/merchants/{id}/summary",
                risk_summary,
            )),
        "order-service" => stand_in.route(post("/api/v1/orders", order_create)),
        "channel-adapter" => stand_in.route(post("/api/v1/channel/payment", channel_payment)),
        "notification-service" => stand_in
            .route(post("/api/v1/notifications", notification_create))
            .route(get(
                r"^/api/v1/notifications/merchants/[^/]+/unread/count$",
                "GET /api/v1/notifications/merchants/{id}/unread/count",
                unread_count,
            )),
        "analytics-service" => stand_in
            .route(post("/api/v1/events", |_: &Request, _: &ReplyContext| {
                Reply::ok(json!({"accepted": true}))
            }))
            .route(get(
                r"^/api/v1/statistics/merchant/[^/]+$",
                "GET /api/v1/statistics/merchant/{id}",
                statistics,
            )),
        "accounting-service" => stand_in
            .route(get(
                r"^/api/v1/balances/merchants/[^/]+/summary$",
                "GET /api/v1/balances/merchants/{id}/summary",
                balance_summary,
            ))
            .route(get(
                r"^/api/v1/transactions$",
                "GET /api/v1/transactions",
                transactions,
            ))
            .route(post("/api/v1/transactions", transaction_create)),
        "withdrawal-service" => stand_in.route(post("/api/v1/withdrawals", withdrawal_create)),
        "merchant-service" => stand_in
            .route(get(
                r"^/api/v1/merchants/[^/]+/with-password$",
                "GET /api/v1/merchants/{id}/with-password",
                merchant_with_password,
            ))
            .route(
                Route::given(method("PUT"))
                    .and(path_regex(r"^/api/v1/merchants/[^/]+/password$"))
                    .reply_with(|_: &Request, _: &ReplyContext| Reply::ok(json!({"updated": true})))
                    .named("PUT /api/v1/merchants/{id}/password"),
            ),
        "payment-gateway" => stand_in.route(get(
            r"^/api/v1/payments$",
            "GET /api/v1/payments",
            payments_list,
        )),
        "bank-api" => stand_in.route(post("/api/v1/bank/transfers", bank_transfer)),
        _ => return None,
    };
    Some(with_health(stand_in))
}

fn post(
    route: &'static str,
    responder: impl Fn(&Request, &ReplyContext) -> Reply + Send + Sync + 'static,
) -> Route {
    Route::given(method("POST"))
        .and(path(route))
        .reply_with(responder)
        .named(format!("POST {route}"))
}

fn get(
    regex: &'static str,
    name: &'static str,
    responder: impl Fn(&Request, &ReplyContext) -> Reply + Send + Sync + 'static,
) -> Route {
    Route::given(method("GET"))
        .and(path_regex(regex))
        .reply_with(responder)
        .named(name)
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
        .route(
            Route::given(method("GET"))
                .and(path("/health"))
                .reply_with(health)
                .named("GET /health"),
        )
        .route(
            Route::given(method("GET"))
                .and(path("/health/live"))
                .reply_with(Reply::json(
                    http::StatusCode::OK,
                    &json!({"status": "alive"}),
                ))
                .named("GET /health/live"),
        )
        .route(
            Route::given(method("GET"))
                .and(path("/health/ready"))
                .reply_with(Reply::json(
                    http::StatusCode::OK,
                    &json!({"status": "ready"}),
                ))
                .named("GET /health/ready"),
        )
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
