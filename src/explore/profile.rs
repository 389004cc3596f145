//! Platform profiles of the reference stack: what its services are set up
//! like for an exploration.

use std::fmt::Write as _;

use reference_stack::{Defects, Downstream, ServiceKind};

/// One `--defect SERVICE=DEFECTS` argument, checked as the reference stack
/// checks its `DEFECTS` setting (known defects, clients the service has).
pub fn parse_defect(arg: &str) -> Result<(ServiceKind, String), String> {
    let (service, list) = arg.split_once('=').ok_or_else(|| {
        format!("--defect {arg}: expected SERVICE=DEFECTS, e.g. payment-gateway=no_breaker@order")
    })?;
    let service: ServiceKind = service
        .trim()
        .parse()
        .map_err(|e| format!("--defect {arg}: {e}"))?;
    let setting = format!("--defect {}", service.name());
    Defects::parse(&setting, list)
        .and_then(|d| d.check_for(&setting, service))
        .map_err(|e| e.to_string())?;
    Ok((service, list.trim().to_string()))
}

/// How the reference stack's clients are configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The platform's reports: every client retries within a breaker.
    AsDesigned,
    /// The platform's code (PLATFORM.md): the gateway builds breakers but
    /// calls its downstreams with a plain HTTP client (30 s, no retry, no
    /// breaker); every other client retries 4xx answers too.
    AsCoded,
    /// The designed platform with these defect switches, by service
    /// (`no_breaker@order`).
    Custom {
        /// Name in reports.
        name: String,
        /// Defect lists by service.
        defects: Vec<(ServiceKind, String)>,
    },
}

impl Profile {
    /// The profile named on the command line.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "as-designed" => Some(Self::AsDesigned),
            "as-coded" => Some(Self::AsCoded),
            _ => None,
        }
    }

    /// This profile with `extra` defect switches added, by service (the
    /// defect test: one client's breaker removed).
    pub fn with_defects(self, extra: Vec<(ServiceKind, String)>) -> Self {
        if extra.is_empty() {
            return self;
        }
        let mut defects = self.defects();
        for (service, list) in &extra {
            match defects.iter_mut().find(|(s, _)| s == service) {
                Some((_, have)) => {
                    have.push(',');
                    have.push_str(list);
                }
                None => defects.push((*service, list.clone())),
            }
        }
        let added: Vec<String> = extra
            .iter()
            .map(|(s, list)| format!("{}={list}", s.name()))
            .collect();
        Self::Custom {
            name: format!("{}+{}", self.name(), added.join("+")),
            defects,
        }
    }

    /// Its name in reports.
    pub fn name(&self) -> &str {
        match self {
            Self::AsDesigned => "as-designed",
            Self::AsCoded => "as-coded",
            Self::Custom { name, .. } => name,
        }
    }

    /// The defect lists by service.
    fn defects(&self) -> Vec<(ServiceKind, String)> {
        match self {
            Self::AsDesigned => Vec::new(),
            Self::AsCoded => ServiceKind::ALL
                .into_iter()
                .map(|s| {
                    let defects = match s {
                        ServiceKind::PaymentGateway => "no_breaker,no_retry",
                        _ => "retry_4xx",
                    };
                    (s, defects.to_string())
                })
                .collect(),
            Self::Custom { defects, .. } => defects.clone(),
        }
    }

    /// Whether `caller`'s client of `downstream` has a per-attempt timeout
    /// (so a hang ends as the same timeout as a long delay).
    pub fn times_out(&self, caller: ServiceKind, downstream: Downstream) -> bool {
        !self.defects().iter().any(|(s, list)| {
            *s == caller
                && list.split(',').any(|d| {
                    let mut parts = d.trim().splitn(2, '@');
                    parts.next() == Some("no_client_timeout")
                        && parts.next().is_none_or(|c| c == downstream.name())
                })
        })
    }

    /// The profile's `[stack.defects]` table, if it has defects.
    pub fn stack_toml(&self) -> String {
        let defects = self.defects();
        if defects.is_empty() {
            return String::new();
        }
        let mut s = String::from("[stack.defects]\n");
        for (service, list) in defects {
            let _ = writeln!(s, "{} = \"{list}\"", service.name());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_coded_removes_the_gateways_breakers_and_retries() {
        let toml = Profile::AsCoded.stack_toml();
        assert!(
            toml.contains("payment-gateway = \"no_breaker,no_retry\""),
            "{toml}"
        );
        assert!(toml.contains("merchant-service = \"retry_4xx\""), "{toml}");
        assert_eq!(Profile::AsDesigned.stack_toml(), "");
    }

    #[test]
    fn defect_arguments_are_checked() {
        assert_eq!(
            parse_defect("payment-gateway=no_breaker@order").unwrap(),
            (ServiceKind::PaymentGateway, "no_breaker@order".to_string())
        );
        let e = parse_defect("payment-gateway").unwrap_err();
        assert!(e.contains("SERVICE=DEFECTS"), "{e}");
        let e = parse_defect("nope=no_breaker").unwrap_err();
        assert!(e.contains("unknown service"), "{e}");
        let e = parse_defect("payment-gateway=no_brakes").unwrap_err();
        assert!(e.contains("no_brakes"), "{e}");
    }

    #[test]
    fn defects_add_to_the_profile() {
        let profile = Profile::AsCoded.with_defects(vec![(
            ServiceKind::PaymentGateway,
            "no_client_timeout".into(),
        )]);
        assert_eq!(profile.name(), "as-coded+payment-gateway=no_client_timeout");
        let toml = profile.stack_toml();
        assert!(
            toml.contains("payment-gateway = \"no_breaker,no_retry,no_client_timeout\""),
            "{toml}"
        );
        assert!(toml.contains("merchant-service = \"retry_4xx\""), "{toml}");
        assert_eq!(
            Profile::AsDesigned.with_defects(Vec::new()),
            Profile::AsDesigned
        );
    }

    #[test]
    fn a_client_without_its_timeout_is_known() {
        let profile = Profile::Custom {
            name: "no-timeout".into(),
            defects: vec![(
                ServiceKind::PaymentGateway,
                "no_client_timeout@channel".into(),
            )],
        };
        assert!(!profile.times_out(ServiceKind::PaymentGateway, Downstream::Channel));
        assert!(profile.times_out(ServiceKind::PaymentGateway, Downstream::Order));
        assert!(Profile::AsCoded.times_out(ServiceKind::PaymentGateway, Downstream::Order));
    }
}
