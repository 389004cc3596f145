//! Defect switches: the mistakes real teams ship, off by default.
//!
//! A defect list reads `name[@client],...`, e.g. `no_breaker@order,sync_notification`.
//! Client defects without `@client` apply to every client of the service; service
//! defects take no `@client`. Whether a defect and its target make sense for a given
//! service is checked when the service starts ([`Defects::check_for`]).

use std::fmt;
use std::str::FromStr;

use crate::config::ConfigError;
use crate::topology::{Downstream, ServiceKind, names};

/// One defect switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    /// The client calls its downstream with retries but no breaker.
    NoBreaker,
    /// The per-attempt timeout is disabled: a hanging downstream holds the call.
    NoClientTimeout,
    /// Each attempt is its own breaker call, so one logical call counts up to
    /// `max_attempts` times and trips the breaker after fewer logical calls.
    RetriesOutsideBreaker,
    /// Half-open admits every request instead of `max_requests`.
    UnlimitedHalfOpen,
    /// 4xx answers (other than 429) are retried too, as the platform's code does.
    Retry4xx,
    /// One attempt per call, no retry: the plain HTTP client the platform's gateway
    /// calls its downstreams with, bypassing the retrying client it builds.
    NoRetry,
    /// Order creation is sent (and retried) without an `Idempotency-Key`, so a retry can
    /// create a duplicate order downstream. Order client only.
    OrderRetryWithoutIdempotency,
    /// Notifications (and analytics events) are awaited on the request path and their
    /// failure fails the request (gateway payments and webhooks, withdrawals).
    SyncNotification,
    /// Failed payments are deleted instead of being marked failed (gateway).
    DeleteFailedPayments,
}

/// Whether a defect is set per client or for the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Client,
    Service,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 9] = [
        Defect::NoBreaker,
        Defect::NoClientTimeout,
        Defect::RetriesOutsideBreaker,
        Defect::UnlimitedHalfOpen,
        Defect::Retry4xx,
        Defect::NoRetry,
        Defect::OrderRetryWithoutIdempotency,
        Defect::SyncNotification,
        Defect::DeleteFailedPayments,
    ];

    /// The switch's name as written in `DEFECTS`.
    pub fn name(self) -> &'static str {
        match self {
            Defect::NoBreaker => "no_breaker",
            Defect::NoClientTimeout => "no_client_timeout",
            Defect::RetriesOutsideBreaker => "retries_outside_breaker",
            Defect::UnlimitedHalfOpen => "unlimited_half_open",
            Defect::Retry4xx => "retry_4xx",
            Defect::NoRetry => "no_retry",
            Defect::OrderRetryWithoutIdempotency => "order_retry_without_idempotency",
            Defect::SyncNotification => "sync_notification",
            Defect::DeleteFailedPayments => "delete_failed_payments",
        }
    }

    fn scope(self) -> Scope {
        match self {
            Defect::SyncNotification | Defect::DeleteFailedPayments => Scope::Service,
            Defect::NoBreaker
            | Defect::NoClientTimeout
            | Defect::RetriesOutsideBreaker
            | Defect::UnlimitedHalfOpen
            | Defect::Retry4xx
            | Defect::NoRetry
            | Defect::OrderRetryWithoutIdempotency => Scope::Client,
        }
    }

    /// The services a defect can be set on, or `None` when any service will do.
    fn services(self) -> Option<&'static [ServiceKind]> {
        match self {
            Defect::SyncNotification => {
                Some(&[ServiceKind::PaymentGateway, ServiceKind::WithdrawalService])
            }
            Defect::DeleteFailedPayments | Defect::OrderRetryWithoutIdempotency => {
                Some(&[ServiceKind::PaymentGateway])
            }
            _ => None,
        }
    }

    /// The only client a defect can target, if it is tied to one.
    fn only_client(self) -> Option<Downstream> {
        match self {
            Defect::OrderRetryWithoutIdempotency => Some(Downstream::Order),
            _ => None,
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Defect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Defect::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| s.to_string())
    }
}

/// A switched-on defect and, for client defects, the client it targets (`None` = all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DefectSpec {
    defect: Defect,
    client: Option<Downstream>,
}

/// The set of defects switched on for one service. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defects {
    specs: Vec<DefectSpec>,
}

impl Defects {
    /// No defects: the correct behaviour.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no defect is switched on.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Parse `name[@client],...`; `setting` names the source in errors (e.g. `DEFECTS`).
    pub fn parse(setting: &str, text: &str) -> Result<Self, ConfigError> {
        let mut defects = Self::none();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, client) = match item.split_once('@') {
                Some((name, client)) => (name.trim(), Some(client.trim())),
                None => (item, None),
            };
            let defect = name
                .parse::<Defect>()
                .map_err(|name| ConfigError::UnknownDefect {
                    setting: setting.to_string(),
                    name,
                    known: Defect::ALL.map(Defect::name).join(", "),
                })?;
            let client = client
                .map(|c| {
                    c.parse::<Downstream>()
                        .map_err(|_| ConfigError::UnknownClient {
                            setting: setting.to_string(),
                            service: None,
                            client: c.to_string(),
                            known: names(&Downstream::ALL),
                        })
                })
                .transpose()?;
            defects.specs.push(DefectSpec { defect, client });
        }
        Ok(defects)
    }

    /// Switch a defect on for the whole service (client defects: for every client).
    pub fn with(mut self, defect: Defect) -> Self {
        self.specs.push(DefectSpec {
            defect,
            client: None,
        });
        self
    }

    /// Switch a client defect on for one client.
    pub fn with_for(mut self, defect: Defect, client: Downstream) -> Self {
        self.specs.push(DefectSpec {
            defect,
            client: Some(client),
        });
        self
    }

    /// Refuse a defect that cannot apply to `service`: wrong service, a client the
    /// service does not have, a client target on a service defect.
    pub fn check_for(&self, setting: &str, service: ServiceKind) -> Result<(), ConfigError> {
        for spec in &self.specs {
            let not_applicable = |why: String| ConfigError::DefectNotApplicable {
                setting: setting.to_string(),
                defect: spec.defect.name(),
                service: service.name(),
                why,
            };
            if let Some(services) = spec.defect.services()
                && !services.contains(&service)
            {
                let names: Vec<&str> = services.iter().map(|s| s.name()).collect();
                return Err(not_applicable(format!(
                    "it applies only to {}",
                    names.join(", ")
                )));
            }
            match (spec.defect.scope(), spec.client) {
                (Scope::Service, Some(client)) => {
                    return Err(not_applicable(format!(
                        "it is a service defect and takes no @client (got @{client})"
                    )));
                }
                (Scope::Client, Some(client)) => {
                    if !service.downstreams().contains(&client) {
                        return Err(ConfigError::UnknownClient {
                            setting: setting.to_string(),
                            service: Some(service.name()),
                            client: client.name().to_string(),
                            known: names(service.downstreams()),
                        });
                    }
                    if let Some(only) = spec.defect.only_client()
                        && only != client
                    {
                        return Err(not_applicable(format!(
                            "it targets only the {only} client (got @{client})"
                        )));
                    }
                }
                (Scope::Service | Scope::Client, None) => {}
            }
        }
        Ok(())
    }

    /// Whether `defect` is on for `client` (targeted at it, or at every client).
    pub fn has_for(&self, defect: Defect, client: Downstream) -> bool {
        self.specs
            .iter()
            .any(|s| s.defect == defect && s.client.is_none_or(|c| c == client))
    }

    /// Whether the service defect `defect` is on.
    pub fn has(&self, defect: Defect) -> bool {
        self.specs.iter().any(|s| s.defect == defect)
    }
}

impl fmt::Display for Defects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .specs
            .iter()
            .map(|s| match s.client {
                Some(client) => format!("{}@{client}", s.defect),
                None => s.defect.to_string(),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_targets() {
        let d = Defects::parse("DEFECTS", " no_breaker@order, sync_notification ,,").unwrap();
        assert_eq!(d.to_string(), "no_breaker@order,sync_notification");
        assert!(d.has_for(Defect::NoBreaker, Downstream::Order));
        assert!(!d.has_for(Defect::NoBreaker, Downstream::Risk));
        assert!(d.has(Defect::SyncNotification));
        assert!(d.check_for("DEFECTS", ServiceKind::PaymentGateway).is_ok());
    }

    #[test]
    fn untargeted_client_defect_applies_to_every_client() {
        let d = Defects::parse("DEFECTS", "no_client_timeout").unwrap();
        assert!(d.has_for(Defect::NoClientTimeout, Downstream::Risk));
        assert!(d.has_for(Defect::NoClientTimeout, Downstream::Bank));
    }

    #[test]
    fn unknown_defect_is_named() {
        let err = Defects::parse("DEFECTS", "no_braker")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DEFECTS") && err.contains("no_braker"),
            "{err}"
        );
        assert!(err.contains("no_breaker"), "lists the known ones: {err}");
    }

    #[test]
    fn unknown_client_is_named() {
        let err = Defects::parse("DEFECTS", "no_breaker@ordr")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ordr"), "{err}");
        let err = Defects::parse("DEFECTS", "no_breaker@bank")
            .unwrap()
            .check_for("DEFECTS", ServiceKind::PaymentGateway)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("payment-gateway") && err.contains("bank"),
            "{err}"
        );
    }

    #[test]
    fn defect_on_the_wrong_service_or_client_is_refused() {
        for (text, service) in [
            ("delete_failed_payments", ServiceKind::SettlementService),
            (
                "sync_notification@notification",
                ServiceKind::PaymentGateway,
            ),
            (
                "order_retry_without_idempotency@risk",
                ServiceKind::PaymentGateway,
            ),
            (
                "order_retry_without_idempotency",
                ServiceKind::MerchantAuthService,
            ),
        ] {
            let defects = Defects::parse("DEFECTS", text).unwrap();
            assert!(
                defects.check_for("DEFECTS", service).is_err(),
                "{text} on {service}"
            );
        }
    }
}
