//! Service configuration: builder, env parsing, validation.
//!
//! A [`ServiceConfig`] is cheap to build and never fails while building; everything is
//! checked by [`ServiceConfig::resolve`] (called by [`crate::start`]), which names the
//! offending setting in a [`ConfigError`].

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::client::{BreakerConfig, BreakerFlavour, BreakerSettings};
use crate::defects::{Defect, Defects};
use crate::topology::{Downstream, ServiceKind, names};

/// A configuration mistake, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A downstream URL does not parse or is not http(s).
    #[error("{setting}: {value:?} is not a usable base URL: {reason}")]
    InvalidUrl {
        /// The setting (env var or builder field).
        setting: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value is out of range or unparsable.
    #[error("{setting}: {value:?} is invalid: expected {expected}")]
    InvalidValue {
        /// The setting (env var or builder field).
        setting: String,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A defect name that does not exist.
    #[error("{setting}: unknown defect {name:?} (known defects: {known})")]
    UnknownDefect {
        /// The setting (env var or builder field).
        setting: String,
        /// The unknown name.
        name: String,
        /// The known names.
        known: String,
    },
    /// A client name that does not exist, or that this service does not have.
    #[error("{setting}: {} has no client {client:?} (known: {known})", service.unwrap_or("the platform"))]
    UnknownClient {
        /// The setting (env var or builder field).
        setting: String,
        /// The service, when the name exists but the service lacks that client.
        service: Option<&'static str>,
        /// The name given.
        client: String,
        /// The clients that would have been accepted.
        known: String,
    },
    /// A defect that cannot apply to this service or client.
    #[error("{setting}: defect {defect} cannot be set on {service}: {why}")]
    DefectNotApplicable {
        /// The setting (env var or builder field).
        setting: String,
        /// The defect.
        defect: &'static str,
        /// The service.
        service: &'static str,
        /// Why not.
        why: String,
    },
}

/// Breaker, retry and timeout numbers for one client. Defaults are the platform's.
///
/// Durations are multiplied by the service's `time_scale` when the service starts.
/// The breaker numbers are gobreaker's; another [`BreakerFlavour`] maps them onto its
/// library's parameters ([`BreakerConfig::from_settings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// Which library's breaker the client behaves like (gobreaker).
    pub breaker: BreakerFlavour,
    /// Half-open admission limit and consecutive successes needed to close (3).
    pub max_requests: u32,
    /// Closed-state count reset period (60 s); zero never resets.
    pub interval: Duration,
    /// Open → half-open after this long (30 s).
    pub open_timeout: Duration,
    /// ReadyToTrip: minimum requests in the generation (5).
    pub min_requests: u32,
    /// ReadyToTrip: minimum failure share, in (0, 1] (0.6).
    pub failure_ratio: f64,
    /// Attempts per logical call, first one included (1 + 3 = 4).
    pub max_attempts: u32,
    /// Base retry delay: the sleep after attempt `n` (from 0) is `retry_delay × (n+1)` (1 s).
    pub retry_delay: Duration,
    /// Per-attempt timeout (30 s).
    pub attempt_timeout: Duration,
    /// Timeout of a fire-and-forget call made from a background task (10 s).
    pub async_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self::platform()
    }
}

impl ClientSettings {
    /// The platform's numbers (PLATFORM.md "Client semantics").
    pub fn platform() -> Self {
        let breaker = BreakerSettings::platform();
        Self {
            breaker: BreakerFlavour::Gobreaker,
            max_requests: breaker.max_requests,
            interval: breaker.interval,
            open_timeout: breaker.timeout,
            min_requests: breaker.min_requests,
            failure_ratio: breaker.failure_ratio,
            max_attempts: 4,
            retry_delay: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(30),
            async_timeout: Duration::from_secs(10),
        }
    }

    /// The same settings with every duration multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        let scale = |d: Duration| d.mul_f64(factor);
        Self {
            interval: scale(self.interval),
            open_timeout: scale(self.open_timeout),
            retry_delay: scale(self.retry_delay),
            attempt_timeout: scale(self.attempt_timeout),
            async_timeout: scale(self.async_timeout),
            ..self.clone()
        }
    }

    /// The gobreaker part of these settings (whatever the flavour).
    pub fn breaker(&self, limit_half_open: bool) -> BreakerSettings {
        BreakerSettings {
            max_requests: self.max_requests,
            interval: self.interval,
            timeout: self.open_timeout,
            min_requests: self.min_requests,
            failure_ratio: self.failure_ratio,
            limit_half_open,
        }
    }

    fn validate(&self, client: Downstream) -> Result<(), ConfigError> {
        let invalid = |field: &str, value: String, expected: &str| ConfigError::InvalidValue {
            setting: format!("client {client}: {field}"),
            value,
            expected: expected.to_string(),
        };
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(invalid(
                "failure_ratio",
                self.failure_ratio.to_string(),
                "a ratio in (0, 1]",
            ));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "0".into(), "at least 1"));
        }
        if self.max_requests == 0 {
            return Err(invalid("max_requests", "0".into(), "at least 1"));
        }
        if self.open_timeout.is_zero() {
            return Err(invalid("open_timeout", "0".into(), "a positive duration"));
        }
        if self.attempt_timeout.is_zero() {
            return Err(invalid(
                "attempt_timeout",
                "0".into(),
                "a positive duration (use the no_client_timeout defect to disable it)",
            ));
        }
        if self.async_timeout.is_zero() {
            return Err(invalid("async_timeout", "0".into(), "a positive duration"));
        }
        Ok(())
    }
}

/// One merchant the gateway accepts signed requests from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantCredentials {
    /// The merchant's id (must match the payment body's `merchant_id`).
    pub merchant_id: String,
    /// The value of `X-API-Key`.
    pub api_key: String,
    /// The HMAC secret signatures are made with.
    pub api_secret: String,
}

impl MerchantCredentials {
    /// The default merchant: `M001`, key `test-api-key`, secret `test-api-secret`.
    pub fn default_merchant() -> Self {
        Self {
            merchant_id: "M001".into(),
            api_key: "test-api-key".into(),
            api_secret: "test-api-secret".into(),
        }
    }
}

/// How one service is run. Build with [`ServiceConfig::new`] (or the per-service
/// shorthands), [`ServiceConfig::from_env`], then hand it to [`crate::start`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    kind: ServiceKind,
    listen: SocketAddr,
    downstream_urls: BTreeMap<Downstream, String>,
    client_defaults: ClientSettings,
    client_overrides: BTreeMap<Downstream, ClientSettings>,
    time_scale: f64,
    defects: Defects,
    merchants: Vec<MerchantCredentials>,
    signature_window: Duration,
    store_capacity: usize,
    transition_history: usize,
}

impl ServiceConfig {
    /// Defaults for in-process use: listen on `127.0.0.1:0`, platform numbers, no
    /// defects, downstreams at their platform default URLs until set.
    pub fn new(kind: ServiceKind) -> Self {
        Self {
            kind,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            downstream_urls: BTreeMap::new(),
            client_defaults: ClientSettings::platform(),
            client_overrides: BTreeMap::new(),
            time_scale: 1.0,
            defects: Defects::none(),
            merchants: vec![MerchantCredentials::default_merchant()],
            signature_window: Duration::from_secs(120),
            store_capacity: 4_000_000,
            transition_history: 1024,
        }
    }

    /// payment-gateway defaults.
    pub fn gateway() -> Self {
        Self::new(ServiceKind::PaymentGateway)
    }

    /// merchant-service defaults.
    pub fn merchant() -> Self {
        Self::new(ServiceKind::MerchantService)
    }

    /// settlement-service defaults.
    pub fn settlement() -> Self {
        Self::new(ServiceKind::SettlementService)
    }

    /// withdrawal-service defaults.
    pub fn withdrawal() -> Self {
        Self::new(ServiceKind::WithdrawalService)
    }

    /// merchant-auth-service defaults.
    pub fn merchant_auth() -> Self {
        Self::new(ServiceKind::MerchantAuthService)
    }

    /// The service this config runs.
    pub fn kind(&self) -> ServiceKind {
        self.kind
    }

    /// Listen on this address (port 0 picks a free port; see `RunningService::addr`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Base URL of a downstream (checked at start).
    pub fn downstream_url(mut self, downstream: Downstream, url: impl Into<String>) -> Self {
        self.downstream_urls.insert(downstream, url.into());
        self
    }

    /// Whether a base URL was set for `downstream`.
    pub fn has_downstream_url(&self, downstream: Downstream) -> bool {
        self.downstream_urls.contains_key(&downstream)
    }

    /// Settings for every client without its own override.
    pub fn client_settings(mut self, settings: ClientSettings) -> Self {
        self.client_defaults = settings;
        self
    }

    /// Settings for one client.
    pub fn client_settings_for(mut self, downstream: Downstream, settings: ClientSettings) -> Self {
        self.client_overrides.insert(downstream, settings);
        self
    }

    /// Multiply every client duration (breaker interval and open timeout, retry delay,
    /// attempt and async timeouts) by `factor`, e.g. 0.01 turns 30 s into 300 ms.
    pub fn time_scale(mut self, factor: f64) -> Self {
        self.time_scale = factor;
        self
    }

    /// Replace the defect set.
    pub fn defects(mut self, defects: Defects) -> Self {
        self.defects = defects;
        self
    }

    /// Switch one defect on (client defects: for every client).
    pub fn defect(mut self, defect: Defect) -> Self {
        self.defects = self.defects.with(defect);
        self
    }

    /// Switch one client defect on for one client.
    pub fn defect_for(mut self, defect: Defect, client: Downstream) -> Self {
        self.defects = self.defects.with_for(defect, client);
        self
    }

    /// The merchants the gateway accepts (default: [`MerchantCredentials::default_merchant`]).
    pub fn merchants(mut self, merchants: Vec<MerchantCredentials>) -> Self {
        self.merchants = merchants;
        self
    }

    /// How far `X-Timestamp` may be from the gateway's clock (default 2 min; not scaled).
    pub fn signature_window(mut self, window: Duration) -> Self {
        self.signature_window = window;
        self
    }

    /// How many records (payments, settlements, withdrawals) a store keeps before the
    /// oldest are evicted (default 1,000,000).
    pub fn store_capacity(mut self, capacity: usize) -> Self {
        self.store_capacity = capacity;
        self
    }

    /// How many breaker transitions the in-process history keeps (default 1024).
    pub fn transition_history(mut self, capacity: usize) -> Self {
        self.transition_history = capacity;
        self
    }

    /// Check everything and produce what the service runs with.
    pub fn resolve(&self) -> Result<ResolvedConfig, ConfigError> {
        let kind = self.kind;
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ConfigError::InvalidValue {
                setting: "time_scale (TIME_SCALE)".into(),
                value: self.time_scale.to_string(),
                expected: "a positive number".into(),
            });
        }
        self.defects.check_for("defects", kind)?;
        let unknown_client = |setting: &str, d: Downstream| ConfigError::UnknownClient {
            setting: setting.to_string(),
            service: Some(kind.name()),
            client: d.name().to_string(),
            known: names(kind.downstreams()),
        };
        for &d in self.downstream_urls.keys() {
            if !kind.downstreams().contains(&d) {
                return Err(unknown_client(d.url_env_var(), d));
            }
        }
        for &d in self.client_overrides.keys() {
            if !kind.downstreams().contains(&d) {
                return Err(unknown_client("client settings", d));
            }
        }
        if kind == ServiceKind::PaymentGateway && self.merchants.is_empty() {
            return Err(ConfigError::InvalidValue {
                setting: "MERCHANTS".into(),
                value: String::new(),
                expected: "at least one merchant".into(),
            });
        }
        if self.store_capacity == 0 {
            return Err(ConfigError::InvalidValue {
                setting: "STORE_CAPACITY".into(),
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        let mut clients = Vec::new();
        for &downstream in kind.downstreams() {
            let raw = self
                .downstream_urls
                .get(&downstream)
                .cloned()
                .unwrap_or_else(|| downstream.default_url());
            let base_url = parse_base_url(downstream.url_env_var(), &raw)?;
            let settings = self
                .client_overrides
                .get(&downstream)
                .unwrap_or(&self.client_defaults);
            settings.validate(downstream)?;
            let settings = settings.scaled(self.time_scale);
            let defects = ClientDefects::of(&self.defects, downstream);
            let breaker = BreakerConfig::from_settings(
                &settings,
                self.time_scale,
                !defects.unlimited_half_open,
            );
            clients.push(ClientPlan {
                downstream,
                base_url,
                settings,
                defects,
                breaker,
            });
        }
        Ok(ResolvedConfig {
            kind,
            listen: self.listen,
            clients,
            sync_notification: self.defects.has(Defect::SyncNotification),
            delete_failed_payments: self.defects.has(Defect::DeleteFailedPayments),
            defects: self.defects.clone(),
            merchants: self.merchants.clone(),
            signature_window: self.signature_window,
            store_capacity: self.store_capacity,
            transition_history: self.transition_history,
        })
    }

    /// Read the platform's env vars (see the crate README) on top of the binary's
    /// defaults: listen on `0.0.0.0:<platform port>`.
    pub fn from_env(kind: ServiceKind) -> Result<Self, ConfigError> {
        Self::from_env_vars(kind, std::env::vars())
    }

    /// [`ServiceConfig::from_env`] from a given set of variables (for tests and tools).
    pub fn from_env_vars(
        kind: ServiceKind,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let mut config = Self::new(kind).listen(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            kind.default_port(),
        )));
        if let Some(port) = vars.get("PORT") {
            let port: u16 = parse_env("PORT", port, "a port number")?;
            config.listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        }
        if let Some(addr) = vars.get("LISTEN_ADDR") {
            config.listen = parse_env("LISTEN_ADDR", addr, "an address like 0.0.0.0:40003")?;
        }
        for &d in kind.downstreams() {
            if let Some(url) = vars.get(d.url_env_var()) {
                config.downstream_urls.insert(d, url.clone());
            }
        }
        if let Some(scale) = vars.get("TIME_SCALE") {
            config.time_scale = parse_env("TIME_SCALE", scale, "a positive number")?;
        }
        if let Some(text) = vars.get("DEFECTS") {
            config.defects = Defects::parse("DEFECTS", text)?;
        }
        if let Some(text) = vars.get("MERCHANTS") {
            config.merchants = parse_merchants(text)?;
        }
        if let Some(secs) = vars.get("SIGNATURE_WINDOW_SECS") {
            config.signature_window =
                Duration::from_secs(parse_env("SIGNATURE_WINDOW_SECS", secs, "whole seconds")?);
        }
        if let Some(n) = vars.get("STORE_CAPACITY") {
            config.store_capacity = parse_env("STORE_CAPACITY", n, "a record count")?;
        }
        config.client_defaults = apply_client_env(ClientSettings::platform(), &vars, "")?;
        for &d in kind.downstreams() {
            let suffix = format!("_{}", d.name().to_uppercase());
            if CLIENT_ENV
                .iter()
                .any(|v| vars.contains_key(&format!("{v}{suffix}")))
            {
                let settings = apply_client_env(config.client_defaults.clone(), &vars, &suffix)?;
                config.client_overrides.insert(d, settings);
            }
        }
        reject_foreign_client_env(kind, &vars)?;
        Ok(config)
    }
}

impl ServiceConfig {
    /// The env vars [`ServiceConfig::from_env`] reads back into this
    /// configuration (listen address, downstream URLs, time scale, defects,
    /// every client setting), for running the service as a process or a
    /// container. Merchants, signature window and store capacity are not
    /// carried: the binary's defaults apply.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("LISTEN_ADDR".to_string(), self.listen.to_string()),
            ("TIME_SCALE".to_string(), self.time_scale.to_string()),
        ];
        if !self.defects.is_empty() {
            env.push(("DEFECTS".into(), self.defects.to_string()));
        }
        for (d, url) in &self.downstream_urls {
            env.push((d.url_env_var().into(), url.clone()));
        }
        client_env(&self.client_defaults, "", &mut env);
        for (d, settings) in &self.client_overrides {
            client_env(settings, &format!("_{}", d.name().to_uppercase()), &mut env);
        }
        env
    }
}

/// `settings` as the [`CLIENT_ENV`] variables with `suffix`.
fn client_env(s: &ClientSettings, suffix: &str, env: &mut Vec<(String, String)>) {
    let ms = |d: Duration| d.as_millis().to_string();
    let values = [
        s.breaker.name().to_string(),
        s.max_requests.to_string(),
        ms(s.interval),
        ms(s.open_timeout),
        s.min_requests.to_string(),
        s.failure_ratio.to_string(),
        s.max_attempts.to_string(),
        ms(s.retry_delay),
        ms(s.attempt_timeout),
        ms(s.async_timeout),
    ];
    for (name, value) in CLIENT_ENV.iter().zip(values) {
        env.push((format!("{name}{suffix}"), value));
    }
}

/// The env vars holding client settings; a `_<CLIENT>` suffix sets one client only.
pub const CLIENT_ENV: [&str; 10] = [
    "BREAKER_FLAVOUR",
    "BREAKER_MAX_REQUESTS",
    "BREAKER_INTERVAL_MS",
    "BREAKER_OPEN_TIMEOUT_MS",
    "BREAKER_MIN_REQUESTS",
    "BREAKER_FAILURE_RATIO",
    "RETRY_MAX_ATTEMPTS",
    "RETRY_DELAY_MS",
    "ATTEMPT_TIMEOUT_MS",
    "ASYNC_TIMEOUT_MS",
];

fn apply_client_env(
    mut s: ClientSettings,
    vars: &HashMap<String, String>,
    suffix: &str,
) -> Result<ClientSettings, ConfigError> {
    let get = |name: &str| {
        let key = format!("{name}{suffix}");
        vars.get(&key).map(|v| (key, v.as_str()))
    };
    let ms = |key: &str, v: &str| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(parse_env(key, v, "milliseconds")?))
    };
    if let Some((k, v)) = get("BREAKER_FLAVOUR") {
        s.breaker = v.trim().parse().map_err(|_| ConfigError::InvalidValue {
            setting: k,
            value: v.to_string(),
            expected: format!("one of {}", BreakerFlavour::names()),
        })?;
    }
    if let Some((k, v)) = get("BREAKER_MAX_REQUESTS") {
        s.max_requests = parse_env(&k, v, "a count")?;
    }
    if let Some((k, v)) = get("BREAKER_INTERVAL_MS") {
        s.interval = ms(&k, v)?;
    }
    if let Some((k, v)) = get("BREAKER_OPEN_TIMEOUT_MS") {
        s.open_timeout = ms(&k, v)?;
    }
    if let Some((k, v)) = get("BREAKER_MIN_REQUESTS") {
        s.min_requests = parse_env(&k, v, "a count")?;
    }
    if let Some((k, v)) = get("BREAKER_FAILURE_RATIO") {
        s.failure_ratio = parse_env(&k, v, "a ratio in (0, 1]")?;
        if !(s.failure_ratio > 0.0 && s.failure_ratio <= 1.0) {
            return Err(ConfigError::InvalidValue {
                setting: k,
                value: v.to_string(),
                expected: "a ratio in (0, 1]".into(),
            });
        }
    }
    if let Some((k, v)) = get("RETRY_MAX_ATTEMPTS") {
        s.max_attempts = parse_env(&k, v, "a count of at least 1")?;
        if s.max_attempts == 0 {
            return Err(ConfigError::InvalidValue {
                setting: k,
                value: v.to_string(),
                expected: "a count of at least 1".into(),
            });
        }
    }
    if let Some((k, v)) = get("RETRY_DELAY_MS") {
        s.retry_delay = ms(&k, v)?;
    }
    if let Some((k, v)) = get("ATTEMPT_TIMEOUT_MS") {
        s.attempt_timeout = ms(&k, v)?;
    }
    if let Some((k, v)) = get("ASYNC_TIMEOUT_MS") {
        s.async_timeout = ms(&k, v)?;
    }
    Ok(s)
}

/// A per-client setting for a client this service does not have is a mistake worth
/// reporting: it would otherwise be silently ignored.
fn reject_foreign_client_env(
    kind: ServiceKind,
    vars: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    for key in vars.keys() {
        for base in CLIENT_ENV {
            let Some(suffix) = key.strip_prefix(base).and_then(|s| s.strip_prefix('_')) else {
                continue;
            };
            let known = kind
                .downstreams()
                .iter()
                .any(|d| d.name().eq_ignore_ascii_case(suffix));
            if !known {
                return Err(ConfigError::UnknownClient {
                    setting: key.clone(),
                    service: Some(kind.name()),
                    client: suffix.to_lowercase(),
                    known: names(kind.downstreams()),
                });
            }
        }
    }
    Ok(())
}

fn parse_env<T: std::str::FromStr>(
    setting: &str,
    value: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::InvalidValue {
        setting: setting.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    })
}

/// `MERCHANTS=id:key:secret,id:key:secret`.
fn parse_merchants(text: &str) -> Result<Vec<MerchantCredentials>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let parts: Vec<&str> = item.split(':').collect();
            match parts.as_slice() {
                [id, key, secret] if !id.is_empty() && !key.is_empty() && !secret.is_empty() => {
                    Ok(MerchantCredentials {
                        merchant_id: id.to_string(),
                        api_key: key.to_string(),
                        api_secret: secret.to_string(),
                    })
                }
                _ => Err(ConfigError::InvalidValue {
                    setting: "MERCHANTS".into(),
                    value: item.to_string(),
                    expected: "merchant_id:api_key:api_secret, comma-separated".into(),
                }),
            }
        })
        .collect()
}

fn parse_base_url(setting: &str, raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl {
        setting: setting.to_string(),
        value: raw.to_string(),
        reason,
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    Ok(url)
}

/// Defect switches as they concern one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientDefects {
    /// No breaker at all.
    pub no_breaker: bool,
    /// No per-attempt timeout.
    pub no_client_timeout: bool,
    /// Each attempt is its own breaker call.
    pub retries_outside_breaker: bool,
    /// Half-open admits every request.
    pub unlimited_half_open: bool,
    /// 4xx other than 429 are retried.
    pub retry_4xx: bool,
    /// One attempt per call.
    pub no_retry: bool,
    /// Idempotency keys are not sent.
    pub drop_idempotency_key: bool,
}

impl ClientDefects {
    fn of(defects: &Defects, client: Downstream) -> Self {
        Self {
            no_breaker: defects.has_for(Defect::NoBreaker, client),
            no_client_timeout: defects.has_for(Defect::NoClientTimeout, client),
            retries_outside_breaker: defects.has_for(Defect::RetriesOutsideBreaker, client),
            unlimited_half_open: defects.has_for(Defect::UnlimitedHalfOpen, client),
            retry_4xx: defects.has_for(Defect::Retry4xx, client),
            no_retry: defects.has_for(Defect::NoRetry, client),
            drop_idempotency_key: defects.has_for(Defect::OrderRetryWithoutIdempotency, client),
        }
    }
}

/// Everything one client is built from.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Which downstream.
    pub downstream: Downstream,
    /// Its base URL.
    pub base_url: Url,
    /// Its numbers, time scale applied.
    pub settings: ClientSettings,
    /// Its defect switches.
    pub defects: ClientDefects,
    /// Its breaker: the flavour's parameters mapped from `settings`, time scale applied.
    pub breaker: BreakerConfig,
}

/// A checked configuration, ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The service.
    pub kind: ServiceKind,
    /// Where to listen.
    pub listen: SocketAddr,
    /// One plan per downstream of the service.
    pub clients: Vec<ClientPlan>,
    /// `sync_notification` is on.
    pub sync_notification: bool,
    /// `delete_failed_payments` is on.
    pub delete_failed_payments: bool,
    /// The defect set as given (for logs and `/debug/breakers`).
    pub defects: Defects,
    /// Gateway merchants.
    pub merchants: Vec<MerchantCredentials>,
    /// Gateway timestamp window.
    pub signature_window: Duration,
    /// Store capacity.
    pub store_capacity: usize,
    /// Transition history capacity.
    pub transition_history: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_platforms() {
        let resolved = ServiceConfig::gateway().resolve().unwrap();
        assert_eq!(resolved.clients.len(), 5);
        let order = &resolved.clients[1];
        assert_eq!(order.downstream, Downstream::Order);
        assert_eq!(order.base_url.as_str(), "http://localhost:40004/");
        assert_eq!(order.settings, ClientSettings::platform());
        assert_eq!(order.defects, ClientDefects::default());
    }

    #[test]
    fn env_sets_urls_listen_scale_and_per_client_overrides() {
        let config = ServiceConfig::from_env_vars(
            ServiceKind::PaymentGateway,
            env(&[
                ("ORDER_SERVICE_URL", "http://127.0.0.1:9000"),
                ("PORT", "5000"),
                ("TIME_SCALE", "0.01"),
                ("RETRY_DELAY_MS", "500"),
                ("BREAKER_OPEN_TIMEOUT_MS_ORDER", "1000"),
                ("DEFECTS", "no_breaker@risk"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        let resolved = config.resolve().unwrap();
        assert_eq!(resolved.listen.port(), 5000);
        let risk = &resolved.clients[0];
        let order = &resolved.clients[1];
        assert_eq!(order.base_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(order.settings.open_timeout, Duration::from_millis(10));
        assert_eq!(risk.settings.open_timeout, Duration::from_millis(300));
        assert_eq!(order.settings.retry_delay, Duration::from_millis(5));
        assert!(risk.defects.no_breaker && !order.defects.no_breaker);
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ORDER_SERVICE_URL", "not a url")], "ORDER_SERVICE_URL"),
            (&[("ORDER_SERVICE_URL", "ftp://x")], "ORDER_SERVICE_URL"),
            (&[("BREAKER_FAILURE_RATIO", "1.5")], "BREAKER_FAILURE_RATIO"),
            (&[("BREAKER_FAILURE_RATIO", "0")], "BREAKER_FAILURE_RATIO"),
            (&[("RETRY_MAX_ATTEMPTS", "0")], "RETRY_MAX_ATTEMPTS"),
            (&[("BREAKER_FLAVOUR", "hystrix")], "BREAKER_FLAVOUR"),
            (&[("BREAKER_FLAVOUR_BANK", "envoy")], "BREAKER_FLAVOUR_BANK"),
            (&[("RETRY_DELAY_MS_BANK", "5")], "RETRY_DELAY_MS_BANK"),
            (&[("DEFECTS", "nope")], "DEFECTS"),
            (&[("DEFECTS", "no_breaker@nowhere")], "DEFECTS"),
            (&[("TIME_SCALE", "-1")], "time_scale"),
            (&[("MERCHANTS", "M1:key")], "MERCHANTS"),
            (&[("PORT", "http")], "PORT"),
        ];
        for (vars, setting) in cases {
            let err = ServiceConfig::from_env_vars(ServiceKind::PaymentGateway, env(vars))
                .and_then(|c| c.resolve().map(|_| ()))
                .expect_err(&format!("{vars:?} must be refused"))
                .to_string();
            assert!(err.contains(setting), "{vars:?}: {err}");
        }
    }

    #[test]
    fn breaker_flavour_is_read_per_service_and_per_client() {
        let config = ServiceConfig::from_env_vars(
            ServiceKind::PaymentGateway,
            env(&[
                ("BREAKER_FLAVOUR", "resilience4j"),
                ("BREAKER_FLAVOUR_ORDER", " pybreaker "),
                ("TIME_SCALE", "0.5"),
            ]),
        )
        .unwrap();
        let resolved = config.resolve().unwrap();
        let flavours: Vec<BreakerFlavour> = resolved
            .clients
            .iter()
            .map(|c| c.settings.breaker)
            .collect();
        use BreakerFlavour::{Pybreaker, Resilience4j};
        assert_eq!(
            flavours,
            [
                Resilience4j,
                Pybreaker,
                Resilience4j,
                Resilience4j,
                Resilience4j
            ]
        );
        // The plan carries the mapped, scaled parameters of the flavour.
        let order = &resolved.clients[1];
        assert_eq!(order.breaker.flavour(), Pybreaker);
        assert_eq!(
            order.breaker,
            BreakerConfig::from_settings(&order.settings, 0.5, true)
        );

        let err = ServiceConfig::from_env_vars(
            ServiceKind::PaymentGateway,
            env(&[("BREAKER_FLAVOUR", "hystrix")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("gobreaker, pybreaker, resilience4j, opossum, envoy"),
            "{err}"
        );
    }

    #[test]
    fn builder_settings_are_checked_at_resolve() {
        let err = ServiceConfig::gateway()
            .client_settings_for(
                Downstream::Order,
                ClientSettings {
                    failure_ratio: 0.0,
                    ..ClientSettings::platform()
                },
            )
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("order") && err.contains("failure_ratio"),
            "{err}"
        );
        let err = ServiceConfig::gateway()
            .downstream_url(Downstream::Bank, "http://127.0.0.1:1")
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("BANK_API_URL"), "{err}");
    }

    #[test]
    fn merchants_parse() {
        let config = ServiceConfig::from_env_vars(
            ServiceKind::PaymentGateway,
            env(&[("MERCHANTS", "M1:k1:s1, M2:k2:s2")]),
        )
        .unwrap();
        let resolved = config.resolve().unwrap();
        assert_eq!(resolved.merchants.len(), 2);
        assert_eq!(resolved.merchants[1].api_secret, "s2");
    }

    #[test]
    fn to_env_is_read_back_as_the_same_configuration() {
        let mut retry_fast = ClientSettings::platform();
        retry_fast.retry_delay = Duration::from_millis(7);
        retry_fast.failure_ratio = 0.75;
        retry_fast.breaker = BreakerFlavour::Opossum;
        let config = ServiceConfig::new(ServiceKind::PaymentGateway)
            .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)))
            .downstream_url(Downstream::Order, "http://order-service:8102")
            .time_scale(0.01)
            .defect(Defect::NoClientTimeout)
            .defect_for(Defect::NoBreaker, Downstream::Risk)
            .client_settings_for(Downstream::Channel, retry_fast)
            .client_settings(ClientSettings {
                breaker: BreakerFlavour::Envoy,
                ..ClientSettings::platform()
            });
        let env = config.to_env();
        assert!(env.contains(&("DEFECTS".into(), "no_client_timeout,no_breaker@risk".into())));
        let back = ServiceConfig::from_env_vars(ServiceKind::PaymentGateway, env).expect("valid");
        assert_eq!(
            format!("{:?}", back.resolve().expect("resolves")),
            format!("{:?}", config.resolve().expect("resolves"))
        );
    }
}
