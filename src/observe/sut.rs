//! Samples the SUT's own view on an interval: breaker states from its
//! `/metrics` (gauge name, label and state values configurable) and its
//! readiness, on the run's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

pub use platform_contract::BreakerState;
use platform_contract::{Downstream, ServiceKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::platform::downstream_named;
use crate::scenario::SutPlan;

/// One reading of one breaker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BreakerSample {
    /// Seconds from the load start.
    pub t_s: f64,
    /// The service reporting.
    pub service: String,
    /// The downstream its breaker guards.
    #[serde(with = "crate::platform::injector_serde")]
    pub downstream: Downstream,
    /// The state.
    pub state: BreakerState,
}

/// One readiness reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadySample {
    /// Seconds from the load start.
    pub t_s: f64,
    /// The service.
    pub service: String,
    /// Whether it answered 200.
    pub ready: bool,
}

/// Everything sampled.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SutSamples {
    /// Breaker readings (only when the SUT exposes the gauge).
    pub breakers: Vec<BreakerSample>,
    /// Readiness readings.
    pub ready: Vec<ReadySample>,
    /// Scrapes that failed.
    pub failed_scrapes: u64,
    /// What the metrics looked like, to tell a missing gauge from one
    /// whose labels name no injector.
    pub gauge_seen: GaugeSeen,
}

/// Names more than this many are not kept.
const SEEN_LIMIT: usize = 32;

/// What the scraped metrics held, for the verdict's messages.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GaugeSeen {
    /// Metrics scrapes that answered.
    pub scrapes: u64,
    /// Of those, scrapes holding the breaker gauge.
    pub with_gauge: u64,
    /// Metric names seen (the first few).
    pub metrics: BTreeSet<String>,
    /// Label names the gauge's samples carried.
    pub labels: BTreeSet<String>,
    /// Values of the downstream label that named no injector.
    pub unmatched: BTreeSet<String>,
}

impl GaugeSeen {
    fn add(&mut self, other: GaugeSeen) {
        self.scrapes += other.scrapes;
        self.with_gauge += other.with_gauge;
        for (mine, theirs) in [
            (&mut self.metrics, other.metrics),
            (&mut self.labels, other.labels),
            (&mut self.unmatched, other.unmatched),
        ] {
            for name in theirs {
                if mine.len() < SEEN_LIMIT {
                    mine.insert(name);
                }
            }
        }
    }
}

/// Samples every service until `stop` fires.
pub async fn sample(
    services: BTreeMap<ServiceKind, String>,
    plan: SutPlan,
    clock: RunClock,
    stop: CancellationToken,
) -> SutSamples {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(plan.sample_every.max(std::time::Duration::from_millis(500)))
        .build()
    {
        Ok(c) => c,
        Err(_) => return SutSamples::default(),
    };
    let mut samples = SutSamples::default();
    let mut tick = tokio::time::interval(plan.sample_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        // A handful of local services answering in about a millisecond:
        // reading them one after the other stays well inside the interval.
        for (kind, url) in &services {
            let (breakers, ready, failed, seen) = read(&client, &plan, *kind, url, clock).await;
            samples.breakers.extend(breakers);
            samples.gauge_seen.add(seen);
            samples.ready.extend(ready);
            samples.failed_scrapes += failed;
        }
    }
    samples
}

async fn read(
    client: &reqwest::Client,
    plan: &SutPlan,
    service: ServiceKind,
    url: &str,
    clock: RunClock,
) -> (Vec<BreakerSample>, Option<ReadySample>, u64, GaugeSeen) {
    let t_s = clock.seconds(Instant::now());
    let mut failed = 0;
    let ready = match client.get(format!("{url}{}", plan.ready_path)).send().await {
        Ok(r) => Some(ReadySample {
            t_s,
            service: service.name().to_string(),
            ready: r.status().as_u16() == 200,
        }),
        Err(_) => {
            failed += 1;
            None
        }
    };
    let mut breakers = Vec::new();
    let mut seen = GaugeSeen::default();
    if plan.gauge.scraped() {
        match client
            .get(format!("{url}{}", plan.metrics_path))
            .send()
            .await
        {
            Ok(r) => {
                let text = r.text().await.unwrap_or_default();
                (breakers, seen) = parse_breakers(&text, plan, service, t_s);
            }
            Err(_) => failed += 1,
        }
    }
    (breakers, ready, failed, seen)
}

/// Breaker gauges in a Prometheus/OpenMetrics text, and what the text
/// held (for messages when no sample names a downstream).
pub fn parse_breakers(
    text: &str,
    plan: &SutPlan,
    service: ServiceKind,
    t_s: f64,
) -> (Vec<BreakerSample>, GaugeSeen) {
    let lines = text.lines().map(|l| Ok::<_, std::io::Error>(l.to_string()));
    let mut seen = GaugeSeen {
        scrapes: 1,
        ..GaugeSeen::default()
    };
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return (Vec::new(), seen);
    };
    let mut samples = Vec::new();
    for s in &scrape.samples {
        if seen.metrics.len() < SEEN_LIMIT {
            seen.metrics.insert(s.metric.clone());
        }
        if s.metric != plan.breaker_metric {
            continue;
        }
        seen.with_gauge = 1;
        for (name, _) in s.labels.iter() {
            if seen.labels.len() < SEEN_LIMIT {
                seen.labels.insert(name.clone());
            }
        }
        let Some(label) = s.labels.get(&plan.downstream_label) else {
            continue;
        };
        // The label names an injector, or a name the scenario maps to one.
        let downstream = plan
            .downstream_names
            .get(label)
            .copied()
            .or_else(|| downstream_named(label));
        let Some(downstream) = downstream else {
            if seen.unmatched.len() < SEEN_LIMIT {
                seen.unmatched.insert(label.to_string());
            }
            continue;
        };
        let value = match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v)
            | prometheus_parse::Value::Counter(v) => v,
            _ => continue,
        };
        let [closed, half_open, open] = plan.state_values;
        let state = if value == open {
            BreakerState::Open
        } else if value == half_open {
            BreakerState::HalfOpen
        } else if value == closed {
            BreakerState::Closed
        } else {
            continue;
        };
        samples.push(BreakerSample {
            t_s,
            service: service.name().to_string(),
            downstream,
            state,
        });
    }
    (samples, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{GaugeUse, SutPlan};

    fn plan(names: &[(&str, Downstream)]) -> SutPlan {
        SutPlan {
            success_statuses: vec![200],
            gauge: GaugeUse::IfPresent,
            metrics_path: "/metrics".into(),
            ready_path: "/health/ready".into(),
            breaker_metric: "breaker_state".into(),
            downstream_label: "target".into(),
            state_values: [0.0, 1.0, 2.0],
            sample_every: std::time::Duration::from_millis(250),
            downstream_names: names.iter().map(|(l, d)| (l.to_string(), *d)).collect(),
            breakers: BTreeMap::new(),
        }
    }

    const TEXT: &str = "# TYPE breaker_state gauge\n\
        breaker_state{target=\"orders\"} 2\n\
        breaker_state{target=\"risk-service\"} 0\n\
        breaker_state{target=\"ledger\"} 1\n\
        http_requests_total{path=\"/\"} 7\n";

    #[test]
    fn label_values_are_mapped_to_injectors_and_the_rest_reported() {
        let (samples, seen) = parse_breakers(
            TEXT,
            &plan(&[("orders", Downstream::Order)]),
            ServiceKind::PaymentGateway,
            1.5,
        );
        let got: Vec<(Downstream, BreakerState)> =
            samples.iter().map(|s| (s.downstream, s.state)).collect();
        assert_eq!(
            got,
            [
                (Downstream::Order, BreakerState::Open),
                (Downstream::Risk, BreakerState::Closed)
            ]
        );
        assert_eq!(seen.with_gauge, 1);
        assert_eq!(seen.unmatched, ["ledger".to_string()].into());
        assert!(seen.labels.contains("target"));
        assert!(seen.metrics.contains("http_requests_total"));
    }

    #[test]
    fn a_short_client_name_is_no_second_spelling_unless_the_scenario_maps_it() {
        let text = "breaker_state{target=\"order\"} 2\n\
            breaker_state{target=\"order-service\"} 1\n";
        let (samples, seen) = parse_breakers(text, &plan(&[]), ServiceKind::PaymentGateway, 1.0);
        let got: Vec<(Downstream, BreakerState)> =
            samples.iter().map(|s| (s.downstream, s.state)).collect();
        assert_eq!(got, [(Downstream::Order, BreakerState::HalfOpen)]);
        assert_eq!(seen.unmatched, ["order".to_string()].into());
        let mapped = plan(&[("order", Downstream::Order)]);
        let (samples, seen) = parse_breakers(text, &mapped, ServiceKind::PaymentGateway, 1.0);
        assert_eq!(samples.len(), 2);
        assert!(seen.unmatched.is_empty());
    }

    /// A scenario that says nothing of the gauge reads the reference stack's
    /// own: every breaker of a service, named by its injector, in its state.
    #[test]
    fn default_settings_read_the_reference_stacks_gauge() {
        let text = "duration = \"10s\"\n[[load.journeys]]\nkind = \"login\"\nrate = 1\n";
        let scenario =
            crate::scenario::Scenario::parse(std::path::Path::new("gauge.toml"), text, None)
                .and_then(crate::scenario::Parsed::finish)
                .expect("valid");
        assert_eq!(
            scenario.sut.breaker_metric,
            platform_contract::BREAKER_GAUGE
        );
        assert_eq!(
            scenario.sut.downstream_label,
            platform_contract::BREAKER_GAUGE_DOWNSTREAM_LABEL
        );
        assert_eq!(
            scenario.sut.state_values,
            BreakerState::ALL.map(|s| s.as_number() as f64)
        );
        assert_eq!(
            scenario.sut.ready_path,
            platform_contract::routes::HEALTH_READY.path()
        );
        let gateway = ServiceKind::PaymentGateway;
        let metrics = reference_stack::observe::Metrics::new(gateway);
        metrics.transition(Downstream::Order, BreakerState::Closed, BreakerState::Open);
        let (samples, seen) = parse_breakers(&metrics.render(), &scenario.sut, gateway, 0.0);
        let got: BTreeMap<Downstream, BreakerState> =
            samples.iter().map(|s| (s.downstream, s.state)).collect();
        let expected: BTreeMap<Downstream, BreakerState> = gateway
            .downstreams()
            .iter()
            .map(|d| match d {
                Downstream::Order => (*d, BreakerState::Open),
                _ => (*d, BreakerState::Closed),
            })
            .collect();
        assert_eq!(got, expected);
        assert!(seen.unmatched.is_empty(), "{:?}", seen.unmatched);
    }
}
