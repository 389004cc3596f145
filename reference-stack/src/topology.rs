//! Who is who: the modelled services, their downstreams, ports and env var names.

use std::fmt;
use std::str::FromStr;

/// A service of the platform that this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// payment-gateway (40003): payments, webhooks.
    PaymentGateway,
    /// merchant-service (40002): the merchant dashboard.
    MerchantService,
    /// settlement-service (40013): settlements.
    SettlementService,
    /// withdrawal-service (40014): withdrawals.
    WithdrawalService,
    /// merchant-auth-service (40011): login and password change.
    MerchantAuthService,
}

impl ServiceKind {
    /// Every service, in start order (the gateway and withdrawal service come before the
    /// services that call them).
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::PaymentGateway,
        ServiceKind::WithdrawalService,
        ServiceKind::MerchantService,
        ServiceKind::SettlementService,
        ServiceKind::MerchantAuthService,
    ];

    /// The platform's name for the service (`payment-gateway`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::PaymentGateway => "payment-gateway",
            ServiceKind::MerchantService => "merchant-service",
            ServiceKind::SettlementService => "settlement-service",
            ServiceKind::WithdrawalService => "withdrawal-service",
            ServiceKind::MerchantAuthService => "merchant-auth-service",
        }
    }

    /// The metric name prefix: the name with `-` turned into `_`.
    pub fn metric_prefix(self) -> &'static str {
        match self {
            ServiceKind::PaymentGateway => "payment_gateway",
            ServiceKind::MerchantService => "merchant_service",
            ServiceKind::SettlementService => "settlement_service",
            ServiceKind::WithdrawalService => "withdrawal_service",
            ServiceKind::MerchantAuthService => "merchant_auth_service",
        }
    }

    /// The platform's default listen port.
    pub fn default_port(self) -> u16 {
        match self {
            ServiceKind::PaymentGateway => 40003,
            ServiceKind::MerchantService => 40002,
            ServiceKind::SettlementService => 40013,
            ServiceKind::WithdrawalService => 40014,
            ServiceKind::MerchantAuthService => 40011,
        }
    }

    /// The downstreams this service calls, each through its own client and breaker.
    pub fn downstreams(self) -> &'static [Downstream] {
        use Downstream::*;
        match self {
            ServiceKind::PaymentGateway => &[Risk, Order, Channel, Notification, Analytics],
            ServiceKind::MerchantService => &[Analytics, Accounting, Risk, Notification, Gateway],
            ServiceKind::SettlementService => &[Accounting, Withdrawal],
            ServiceKind::WithdrawalService => &[Accounting, Bank, Notification],
            ServiceKind::MerchantAuthService => &[Merchant],
        }
    }

    /// The downstreams without which the service cannot do its job: readiness fails
    /// while one of them is unreachable or its breaker is not closed.
    pub fn hard_dependencies(self) -> &'static [Downstream] {
        use Downstream::*;
        match self {
            ServiceKind::PaymentGateway => &[Risk, Order, Channel],
            ServiceKind::MerchantService => &[],
            ServiceKind::SettlementService => &[Accounting, Withdrawal],
            ServiceKind::WithdrawalService => &[Accounting, Bank],
            ServiceKind::MerchantAuthService => &[Merchant],
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown service {s:?} (known: {})", known.join(", "))
            })
    }
}

/// A service that the modelled services call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Downstream {
    /// risk-service (40006).
    Risk,
    /// order-service (40004).
    Order,
    /// channel-adapter (40005).
    Channel,
    /// notification-service (40008).
    Notification,
    /// analytics-service (40009).
    Analytics,
    /// accounting-service (40007).
    Accounting,
    /// withdrawal-service (40014), as called by settlement.
    Withdrawal,
    /// merchant-service (40002), as called by merchant-auth.
    Merchant,
    /// payment-gateway (40003), as called by merchant-service.
    Gateway,
    /// The external bank API (40099), as called by withdrawal.
    Bank,
}

impl Downstream {
    /// Every downstream.
    pub const ALL: [Downstream; 10] = [
        Downstream::Risk,
        Downstream::Order,
        Downstream::Channel,
        Downstream::Notification,
        Downstream::Analytics,
        Downstream::Accounting,
        Downstream::Withdrawal,
        Downstream::Merchant,
        Downstream::Gateway,
        Downstream::Bank,
    ];

    /// Short lowercase name used in metrics labels, defect targets and env suffixes.
    pub fn name(self) -> &'static str {
        match self {
            Downstream::Risk => "risk",
            Downstream::Order => "order",
            Downstream::Channel => "channel",
            Downstream::Notification => "notification",
            Downstream::Analytics => "analytics",
            Downstream::Accounting => "accounting",
            Downstream::Withdrawal => "withdrawal",
            Downstream::Merchant => "merchant",
            Downstream::Gateway => "gateway",
            Downstream::Bank => "bank",
        }
    }

    /// The env var the platform reads the base URL from.
    pub fn url_env_var(self) -> &'static str {
        match self {
            Downstream::Risk => "RISK_SERVICE_URL",
            Downstream::Order => "ORDER_SERVICE_URL",
            Downstream::Channel => "CHANNEL_SERVICE_URL",
            Downstream::Notification => "NOTIFICATION_SERVICE_URL",
            Downstream::Analytics => "ANALYTICS_SERVICE_URL",
            Downstream::Accounting => "ACCOUNTING_SERVICE_URL",
            Downstream::Withdrawal => "WITHDRAWAL_SERVICE_URL",
            Downstream::Merchant => "MERCHANT_SERVICE_URL",
            Downstream::Gateway => "GATEWAY_SERVICE_URL",
            Downstream::Bank => "BANK_API_URL",
        }
    }

    /// The platform's default port for this downstream.
    pub fn default_port(self) -> u16 {
        match self {
            Downstream::Risk => 40006,
            Downstream::Order => 40004,
            Downstream::Channel => 40005,
            Downstream::Notification => 40008,
            Downstream::Analytics => 40009,
            Downstream::Accounting => 40007,
            Downstream::Withdrawal => 40014,
            Downstream::Merchant => 40002,
            Downstream::Gateway => 40003,
            Downstream::Bank => 40099,
        }
    }

    /// The platform's default base URL, `http://localhost:<port>`.
    pub fn default_url(self) -> String {
        format!("http://localhost:{}", self.default_port())
    }
}

impl fmt::Display for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Downstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Downstream::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown downstream {s:?}"))
    }
}

/// Comma-separated names, for error messages.
pub(crate) fn names(downstreams: &[Downstream]) -> String {
    let names: Vec<&str> = downstreams.iter().map(|d| d.name()).collect();
    names.join(", ")
}
