//! The services' own HTTP contract: the envelope, errors, and body field checks.
//!
//! Success: `200 {"code":0,"message":"success","data":{..}}`.
//! Error: `<status> {"code":<status>,"message":"..","data"?:{..}}` — `data` is added
//! where it helps the caller (e.g. the `payment_no` of a failed payment).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::CallError;

/// A 200 envelope around `data`.
pub(crate) fn ok(data: impl Serialize) -> Response {
    (StatusCode::OK, Json(ok_body(data))).into_response()
}

/// The success envelope's body.
pub(crate) fn ok_body(data: impl Serialize) -> Value {
    json!({"code": 0, "message": "success", "data": data})
}

/// An error answered as an envelope.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub data: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            data: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// A downstream failure: 503 when a breaker refused the call, 502 otherwise.
    pub fn downstream(err: &CallError) -> Self {
        let status = if err.is_rejection() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        Self::new(status, err.to_string())
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The status and the error envelope's body.
    pub fn into_parts(self) -> (StatusCode, Value) {
        let mut body = json!({"code": self.status.as_u16(), "message": self.message});
        if let (Some(data), Some(object)) = (self.data, body.as_object_mut()) {
            object.insert("data".into(), data);
        }
        (self.status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.into_parts();
        (status, Json(body)).into_response()
    }
}

/// A JSON object body whose fields are checked one by one, so every validation error
/// names its field.
pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!(
                "request body is not valid JSON: {e}"
            ))),
        }
    }

    /// A required non-empty string of at most `max` characters.
    pub fn string(&self, name: &str, max: usize) -> Result<String, ApiError> {
        self.optional_string(name, max)?
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
    }

    /// An optional string; present means non-empty and at most `max` characters.
    pub fn optional_string(&self, name: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(ApiError::bad_request(format!("{name} must not be empty")))
            }
            Some(Value::String(s)) if s.chars().count() > max => Err(ApiError::bad_request(
                format!("{name} must be at most {max} characters"),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
        }
    }

    /// A required integer greater than zero.
    pub fn positive_int(&self, name: &str) -> Result<i64, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(ApiError::bad_request(format!("{name} is required"))),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if v > 0 => Ok(v),
                _ => Err(ApiError::bad_request(format!(
                    "{name} must be an integer greater than 0 (minor units)"
                ))),
            },
            Some(_) => Err(ApiError::bad_request(format!("{name} must be an integer"))),
        }
    }
}

/// Check a currency code: three ASCII uppercase letters.
pub(crate) fn check_currency(name: &str, value: &str) -> Result<(), ApiError> {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{name} must be a 3-letter ISO code like USD"
        )))
    }
}

/// Check an id used in paths and bodies: 1–64 of `[A-Za-z0-9_-]`.
pub(crate) fn check_id(name: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{name} must be 1-64 characters of letters, digits, '-' or '_'"
        )))
    }
}
