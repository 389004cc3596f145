//! Controls injectors running in another process — a container, a
//! standalone `fault-injector` — through their HTTP admin API: the same
//! operations as the in-process [`crate::Injector`].

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fault::Fault;
use crate::injector::InjectorStatus;
use crate::observe::{ArrivalPage, BucketPage, Counters};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nothing answered at the admin URL.
    #[error("no injector admin API answers at {url}: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The API refused the call (unknown injector, invalid fault, ...).
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The answer was not what the API sends.
    #[error("{url}: unexpected answer: {reason}")]
    BadAnswer {
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// A client of one admin API.
#[derive(Clone, Debug)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the admin API at `base` (`http://127.0.0.1:9400`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The admin API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: String,
    ) -> Result<T, AdminError> {
        let response = request
            .send()
            .await
            .map_err(|source| AdminError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| AdminError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(AdminError::Refused {
                url,
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| AdminError::BadAnswer {
            url,
            reason: e.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every injector's status.
    pub async fn list(&self) -> Result<Vec<InjectorStatus>, AdminError> {
        let url = self.url("/injectors");
        self.call(self.http.get(&url), url).await
    }

    /// One injector's status.
    pub async fn status(&self, name: &str) -> Result<InjectorStatus, AdminError> {
        let url = self.url(&format!("/injectors/{name}"));
        self.call(self.http.get(&url), url).await
    }

    /// Adds a fault (or replaces the one with its id); returns its id.
    pub async fn inject(&self, name: &str, fault: &Fault) -> Result<String, AdminError> {
        let url = self.url(&format!("/injectors/{name}/faults"));
        let answer: Value = self
            .call(self.http.post(&url).json(fault), url.clone())
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| AdminError::BadAnswer {
                url,
                reason: "no fault id".into(),
            })
    }

    /// Clears the fault `id`; false when there was none.
    pub async fn clear_fault(&self, name: &str, id: &str) -> Result<bool, AdminError> {
        let url = self.url(&format!("/injectors/{name}/faults/{id}"));
        match self.call::<Value>(self.http.delete(&url), url).await {
            Ok(_) => Ok(true),
            Err(AdminError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Clears every fault of `name`.
    pub async fn clear_faults(&self, name: &str) -> Result<(), AdminError> {
        let url = self.url(&format!("/injectors/{name}/faults"));
        self.call::<Value>(self.http.delete(&url), url)
            .await
            .map(|_| ())
    }

    /// Totals so far.
    pub async fn counters(&self, name: &str) -> Result<Counters, AdminError> {
        let url = self.url(&format!("/injectors/{name}/counters"));
        self.call(self.http.get(&url), url).await
    }

    /// The injector's clock reading now, seconds from its origin.
    pub async fn now_s(&self, name: &str) -> Result<f64, AdminError> {
        let url = self.url(&format!("/injectors/{name}/clock"));
        let answer: Value = self.call(self.http.get(&url), url.clone()).await?;
        answer["now_s"]
            .as_f64()
            .ok_or_else(|| AdminError::BadAnswer {
                url,
                reason: "no now_s".into(),
            })
    }

    /// Arrival buckets from index `from` on.
    pub async fn buckets_since(&self, name: &str, from: u64) -> Result<BucketPage, AdminError> {
        let url = self.url(&format!("/injectors/{name}/buckets?since={from}"));
        self.call(self.http.get(&url), url).await
    }

    /// Arrival records from `cursor` on; the injector forgets those before.
    pub async fn arrivals_since(&self, name: &str, cursor: u64) -> Result<ArrivalPage, AdminError> {
        let url = self.url(&format!("/injectors/{name}/arrivals?since={cursor}"));
        self.call(self.http.get(&url), url).await
    }
}
