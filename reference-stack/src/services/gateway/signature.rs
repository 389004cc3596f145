//! Merchant request authentication: API key, RFC 3339 timestamp within a window,
//! single-use nonce, HMAC-SHA256 signature (v1 or v2).
//!
//! v1 signs `timestamp + nonce + body`; v2 (`X-Signature-Version: v2`) signs
//! `METHOD + path + timestamp + nonce + body`. The signature is lowercase hex.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::api::ApiError;
use crate::config::MerchantCredentials;

type HmacSha256 = Hmac<Sha256>;

/// Which bytes are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    /// `timestamp + nonce + body`.
    V1,
    /// `METHOD + path + timestamp + nonce + body`.
    V2,
}

/// Lowercase hex HMAC-SHA256 of a request, as a merchant computes it.
pub fn sign(
    secret: &str,
    version: SignatureVersion,
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    hex::encode(
        mac(secret, version, method, path, timestamp, nonce, body)
            .finalize()
            .into_bytes(),
    )
}

fn mac(
    secret: &str,
    version: SignatureVersion,
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    if version == SignatureVersion::V2 {
        mac.update(method.as_bytes());
        mac.update(path.as_bytes());
    }
    mac.update(timestamp.as_bytes());
    mac.update(nonce.as_bytes());
    mac.update(body);
    mac
}

/// Nonces seen recently, forgotten once no timestamp they could pair with is valid.
#[derive(Debug, Default)]
struct NonceCache {
    seen: HashSet<String>,
    expiries: VecDeque<(Instant, String)>,
}

impl NonceCache {
    /// Returns false if the nonce was already used.
    fn claim(&mut self, nonce: String, now: Instant, keep: Duration) -> bool {
        while let Some((expiry, _)) = self.expiries.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, old)) = self.expiries.pop_front() {
                self.seen.remove(&old);
            }
        }
        if !self.seen.insert(nonce.clone()) {
            return false;
        }
        self.expiries.push_back((now + keep, nonce));
        true
    }
}

/// Checks merchant requests.
#[derive(Debug)]
pub struct Verifier {
    by_key: HashMap<String, MerchantCredentials>,
    window: Duration,
    nonces: Mutex<NonceCache>,
}

impl Verifier {
    /// A verifier for these merchants and this timestamp window.
    pub fn new(merchants: &[MerchantCredentials], window: Duration) -> Self {
        Self {
            by_key: merchants
                .iter()
                .map(|m| (m.api_key.clone(), m.clone()))
                .collect(),
            window,
            nonces: Mutex::new(NonceCache::default()),
        }
    }

    /// Authenticate a request; 401 with the reason otherwise.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<&MerchantCredentials, ApiError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::unauthorized(format!("{name} header is required")))
        };
        let merchant = self
            .by_key
            .get(header("X-API-Key")?)
            .ok_or_else(|| ApiError::unauthorized("unknown X-API-Key"))?;
        let timestamp = header("X-Timestamp")?;
        let sent = DateTime::parse_from_rfc3339(timestamp)
            .map_err(|_| ApiError::unauthorized("X-Timestamp must be an RFC 3339 time"))?;
        let skew = (Utc::now() - sent.with_timezone(&Utc)).abs();
        if skew.to_std().map_or(true, |skew| skew > self.window) {
            return Err(ApiError::unauthorized(format!(
                "X-Timestamp is more than {}s away from the server's clock",
                self.window.as_secs()
            )));
        }
        let nonce = header("X-Nonce")?;
        if nonce.len() > 128 {
            return Err(ApiError::unauthorized(
                "X-Nonce must be at most 128 characters",
            ));
        }
        let version = match headers.get("X-Signature-Version").map(|v| v.to_str()) {
            None => SignatureVersion::V1,
            Some(Ok(v)) if v.eq_ignore_ascii_case("v1") => SignatureVersion::V1,
            Some(Ok(v)) if v.eq_ignore_ascii_case("v2") => SignatureVersion::V2,
            Some(_) => {
                return Err(ApiError::unauthorized(
                    "X-Signature-Version must be v1 or v2",
                ));
            }
        };
        let signature = hex::decode(header("X-Signature")?)
            .map_err(|_| ApiError::unauthorized("X-Signature must be hex"))?;
        mac(
            &merchant.api_secret,
            version,
            method,
            path,
            timestamp,
            nonce,
            body,
        )
        .verify_slice(&signature)
        .map_err(|_| ApiError::unauthorized("invalid signature"))?;
        // Claimed only after the signature checks out, so nobody can burn another's nonces.
        let claimed = self.nonces.lock().unwrap_or_else(|e| e.into_inner()).claim(
            format!("{}:{nonce}", merchant.merchant_id),
            Instant::now(),
            // A timestamp may be up to `window` ahead, so its nonce must outlive 2 × window.
            self.window * 2,
        );
        if !claimed {
            return Err(ApiError::unauthorized("X-Nonce was already used"));
        }
        Ok(merchant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn signed(version: SignatureVersion, nonce: &str, body: &[u8]) -> HeaderMap {
        let ts = Utc::now().to_rfc3339();
        let sig = sign(
            "test-api-secret",
            version,
            "POST",
            "/api/v1/payments",
            &ts,
            nonce,
            body,
        );
        let mut pairs = vec![
            ("X-API-Key", "test-api-key".to_string()),
            ("X-Timestamp", ts),
            ("X-Nonce", nonce.to_string()),
            ("X-Signature", sig),
        ];
        if version == SignatureVersion::V2 {
            pairs.push(("X-Signature-Version", "v2".into()));
        }
        headers(&pairs)
    }

    fn verifier() -> Verifier {
        Verifier::new(
            &[MerchantCredentials::default_merchant()],
            Duration::from_secs(120),
        )
    }

    #[test]
    fn known_vector_v1() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        let sig = sign(
            "key",
            SignatureVersion::V1,
            "",
            "",
            "The quick brown fox ",
            "jumps over ",
            b"the lazy dog",
        );
        assert_eq!(
            sig,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn accepts_v1_and_v2_and_refuses_replayed_nonce() {
        let v = verifier();
        let body = br#"{"a":1}"#;
        let h = signed(SignatureVersion::V1, "n1", body);
        assert!(v.verify(&h, "POST", "/api/v1/payments", body).is_ok());
        let err = v.verify(&h, "POST", "/api/v1/payments", body).unwrap_err();
        assert!(err.message.contains("already used"), "{}", err.message);
        let h = signed(SignatureVersion::V2, "n2", body);
        assert!(v.verify(&h, "POST", "/api/v1/payments", body).is_ok());
    }

    #[test]
    fn v2_binds_method_and_path() {
        let v = verifier();
        let h = signed(SignatureVersion::V2, "n3", b"{}");
        let err = v.verify(&h, "POST", "/api/v1/other", b"{}").unwrap_err();
        assert_eq!(err.message, "invalid signature");
    }

    #[test]
    fn refuses_stale_timestamp_tampered_body_and_unknown_key() {
        let v = verifier();
        let old = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
        let sig = sign(
            "test-api-secret",
            SignatureVersion::V1,
            "",
            "",
            &old,
            "n4",
            b"{}",
        );
        let h = headers(&[
            ("X-API-Key", "test-api-key".into()),
            ("X-Timestamp", old),
            ("X-Nonce", "n4".into()),
            ("X-Signature", sig),
        ]);
        assert!(
            v.verify(&h, "POST", "/", b"{}")
                .unwrap_err()
                .message
                .contains("X-Timestamp")
        );

        let h = signed(SignatureVersion::V1, "n5", b"{}");
        assert_eq!(
            v.verify(&h, "POST", "/", b"{ }").unwrap_err().message,
            "invalid signature"
        );
        let mut h = signed(SignatureVersion::V1, "n6", b"{}");
        h.insert("X-API-Key", HeaderValue::from_static("nope"));
        assert!(
            v.verify(&h, "POST", "/", b"{}")
                .unwrap_err()
                .message
                .contains("X-API-Key")
        );
    }

    #[test]
    fn nonces_expire() {
        let mut cache = NonceCache::default();
        let t0 = Instant::now();
        let keep = Duration::from_secs(240);
        assert!(cache.claim("a".into(), t0, keep));
        assert!(!cache.claim("a".into(), t0 + Duration::from_secs(239), keep));
        assert!(cache.claim("a".into(), t0 + Duration::from_secs(241), keep));
        assert_eq!(cache.seen.len(), 1);
    }
}
