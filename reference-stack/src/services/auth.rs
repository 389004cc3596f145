//! merchant-auth-service: `POST /api/v1/auth/login` and `POST /api/v1/auth/password`,
//! both backed by the merchant lookup `GET /api/v1/merchants/{id}/with-password`.
//!
//! Passwords are compared as lowercase hex SHA-256 digests. An unknown merchant (the
//! lookup answers 404) or a wrong password is a 401; any other lookup failure is a
//! 502, or a 503 when the breaker refused the call.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::{self, ApiError, Fields, check_id};
use crate::client::{CallError, DownstreamClient, Request};
use crate::services::{Core, MissingClient};
use crate::topology::Downstream;

/// Lifetime of a login token, in seconds.
const TOKEN_TTL_SECS: u64 = 3600;

#[derive(Debug)]
struct Auth {
    merchant: Arc<DownstreamClient>,
}

#[derive(Debug, Deserialize)]
struct MerchantRecord {
    password_hash: String,
    #[serde(default)]
    status: Option<String>,
}

/// merchant-auth-service's routes.
pub(crate) fn routes(core: Arc<Core>) -> Result<Router, MissingClient> {
    let auth = Arc::new(Auth {
        merchant: core.client(Downstream::Merchant)?,
    });
    Ok(Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/password", post(change_password))
        .with_state(auth))
}

/// Lowercase hex SHA-256, the platform's password hash.
pub fn password_hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// Equality that takes the same time wherever the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Look the merchant up and check the password.
    async fn authenticate(&self, merchant_id: &str, password: &str) -> Result<(), ApiError> {
        let record: MerchantRecord = self
            .merchant
            .call(&Request::get(format!(
                "/api/v1/merchants/{merchant_id}/with-password"
            )))
            .await
            .map_err(|err| match err {
                CallError::Status { status: 404, .. } => invalid_credentials(),
                other => ApiError::downstream(&other),
            })?;
        let expected = record.password_hash.to_ascii_lowercase();
        if !constant_time_eq(password_hash(password).as_bytes(), expected.as_bytes()) {
            return Err(invalid_credentials());
        }
        match record.status.as_deref() {
            None | Some("active") => Ok(()),
            Some(status) => Err(ApiError::unauthorized(format!(
                "merchant account is {status}"
            ))),
        }
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid merchant_id or password")
}

async fn login(State(auth): State<Arc<Auth>>, body: Bytes) -> Response {
    let result = async {
        let fields = Fields::parse(&body)?;
        let merchant_id = fields.string("merchant_id", 64)?;
        check_id("merchant_id", &merchant_id)?;
        let password = fields.string("password", 128)?;
        auth.authenticate(&merchant_id, &password).await?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        Ok::<_, ApiError>(json!({
            "token": token,
            "merchant_id": merchant_id,
            "expires_in": TOKEN_TTL_SECS,
        }))
    }
    .await;
    match result {
        Ok(data) => api::ok(data),
        Err(err) => err.into_response(),
    }
}

async fn change_password(State(auth): State<Arc<Auth>>, body: Bytes) -> Response {
    let result = async {
        let fields = Fields::parse(&body)?;
        let merchant_id = fields.string("merchant_id", 64)?;
        check_id("merchant_id", &merchant_id)?;
        let old_password = fields.string("old_password", 128)?;
        let new_password = fields.string("new_password", 128)?;
        if new_password.chars().count() < 8 {
            return Err(ApiError::bad_request(
                "new_password must be at least 8 characters",
            ));
        }
        auth.authenticate(&merchant_id, &old_password).await?;
        auth.merchant
            .call_value(&Request::put(
                format!("/api/v1/merchants/{merchant_id}/password"),
                json!({"password_hash": password_hash(&new_password)}),
            ))
            .await
            .map_err(|err| ApiError::downstream(&err))?;
        Ok::<_, ApiError>(json!({"merchant_id": merchant_id, "updated": true}))
    }
    .await;
    match result {
        Ok(data) => api::ok(data),
        Err(err) => err.into_response(),
    }
}
