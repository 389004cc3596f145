//! Prometheus metrics of one service: its own registry, so several services can run
//! in one process without sharing counters.
//!
//! Every family about a downstream labels it `downstream` with its injector name
//! (`order-service`), the platform's name of the service, as the harness reads it.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::client::State;
use crate::topology::{Downstream, ServiceKind};

/// How one attempt at a downstream ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// 2xx.
    Success,
    /// 5xx.
    Http5xx,
    /// 429.
    Http429,
    /// Any other status >= 400 (or a non-2xx below 400).
    Http4xx,
    /// The per-attempt timeout expired.
    Timeout,
    /// Connecting, sending or reading failed.
    Network,
}

impl AttemptOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Http5xx => "http_5xx",
            AttemptOutcome::Http429 => "http_429",
            AttemptOutcome::Http4xx => "http_4xx",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Network => "network",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    path: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PaymentLabels {
    status: String,
    channel: String,
    currency: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    service: &'static str,
    downstream: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    service: &'static str,
    downstream: &'static str,
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    service: &'static str,
    downstream: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    service: &'static str,
    downstream: &'static str,
    reason: &'static str,
}

type DurationFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 ms .. ~65 s: covers a fast call and the platform's 2-minute worst case in the top bucket.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The metric families of one service.
#[derive(Debug)]
pub struct Metrics {
    service: ServiceKind,
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: DurationFamily,
    payments: Family<PaymentLabels, Counter>,
    breaker_state: Family<BreakerLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
}

impl Metrics {
    /// Register every family for `service`; breaker gauges start at closed (0).
    pub fn new(service: ServiceKind) -> Self {
        let prefix = service.metric_prefix();
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            format!("{prefix}_http_requests"),
            "HTTP requests served, by route template and status",
            http_requests.clone(),
        );
        let http_duration: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            format!("{prefix}_http_request_duration_seconds"),
            "HTTP request duration, by route template and status",
            http_duration.clone(),
        );
        let payments = Family::<PaymentLabels, Counter>::default();
        if service == ServiceKind::PaymentGateway {
            registry.register(
                "payment_gateway_payment",
                "Payments by resulting status",
                payments.clone(),
            );
        }
        let breaker_state = Family::<BreakerLabels, Gauge>::default();
        registry.register(
            platform_contract::BREAKER_GAUGE,
            "Breaker state per downstream: closed=0, half_open=1, open=2",
            breaker_state.clone(),
        );
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "circuit_breaker_transitions",
            "Breaker state changes per downstream",
            transitions.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "downstream_attempts",
            "Attempts sent to a downstream (every retry counts), by outcome",
            attempts.clone(),
        );
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "circuit_breaker_rejections",
            "Logical calls refused by a breaker without reaching the downstream",
            rejections.clone(),
        );
        for &downstream in service.downstreams() {
            breaker_state
                .get_or_create(&BreakerLabels {
                    service: service.name(),
                    downstream: downstream.injector_name(),
                })
                .set(0);
        }
        Self {
            service,
            registry,
            http_requests,
            http_duration,
            payments,
            breaker_state,
            transitions,
            attempts,
            rejections,
        }
    }

    /// Count one served request. `path` is the route template.
    pub fn observe_http(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            method: method.to_string(),
            path: path.to_string(),
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Count a payment reaching `status`.
    pub fn payment(&self, status: &str, channel: &str, currency: &str) {
        self.payments
            .get_or_create(&PaymentLabels {
                status: status.to_string(),
                channel: channel.to_string(),
                currency: currency.to_string(),
            })
            .inc();
    }

    /// Record a breaker transition (gauge and counter).
    pub fn transition(&self, downstream: Downstream, from: State, to: State) {
        let service = self.service.name();
        self.breaker_state
            .get_or_create(&BreakerLabels {
                service,
                downstream: downstream.injector_name(),
            })
            .set(to.as_number());
        self.transitions
            .get_or_create(&TransitionLabels {
                service,
                downstream: downstream.injector_name(),
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    /// Count one attempt at a downstream.
    pub fn attempt(&self, downstream: Downstream, outcome: AttemptOutcome) {
        self.attempts
            .get_or_create(&AttemptLabels {
                service: self.service.name(),
                downstream: downstream.injector_name(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Count one logical call refused by a breaker (`reason`: `open` or `too_many_requests`).
    pub fn rejection(&self, downstream: Downstream, reason: &'static str) {
        self.rejections
            .get_or_create(&RejectionLabels {
                service: self.service.name(),
                downstream: downstream.injector_name(),
                reason,
            })
            .inc();
    }

    /// The exposition text (OpenMetrics text format, which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a bug in a label.
        if let Err(err) = encode(&mut out, &self.registry) {
            tracing::error!(%err, "metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use platform_contract::{BREAKER_GAUGE, BREAKER_GAUGE_DOWNSTREAM_LABEL};

    use super::*;

    #[test]
    fn the_breaker_gauge_names_each_downstream_by_its_injector_name() {
        let metrics = Metrics::new(ServiceKind::PaymentGateway);
        metrics.transition(Downstream::Order, State::Closed, State::Open);
        let text = metrics.render();
        let gauge = |downstream: &str, state: State| {
            format!(
                "{BREAKER_GAUGE}{{service=\"payment-gateway\",{BREAKER_GAUGE_DOWNSTREAM_LABEL}=\"{downstream}\"}} {}",
                state.as_number()
            )
        };
        assert!(
            text.contains(&gauge("order-service", State::Open)),
            "{text}"
        );
        assert!(
            text.contains(&gauge("risk-service", State::Closed)),
            "{text}"
        );
        assert!(!text.contains("downstream=\"order\""), "{text}");
    }
}
