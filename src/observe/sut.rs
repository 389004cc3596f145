//! Samples the SUT's own view on an interval: breaker states from its
//! `/metrics` (gauge name, label and state values configurable) and its
//! readiness, on the run's clock.

use std::collections::BTreeMap;
use std::time::Instant;

use reference_stack::{Downstream, ServiceKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::platform::downstream_named;
use crate::scenario::SutPlan;

/// A breaker state as the SUT reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Closed.
    Closed,
    /// Half-open.
    HalfOpen,
    /// Open.
    Open,
}

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
            let (breakers, ready, failed) = read(&client, &plan, *kind, url, clock).await;
            samples.breakers.extend(breakers);
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
) -> (Vec<BreakerSample>, Option<ReadySample>, u64) {
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
    if plan.metrics {
        match client
            .get(format!("{url}{}", plan.metrics_path))
            .send()
            .await
        {
            Ok(r) => {
                let text = r.text().await.unwrap_or_default();
                breakers = parse_breakers(&text, plan, service, t_s);
            }
            Err(_) => failed += 1,
        }
    }
    (breakers, ready, failed)
}

/// Breaker gauges in a Prometheus/OpenMetrics text.
pub fn parse_breakers(
    text: &str,
    plan: &SutPlan,
    service: ServiceKind,
    t_s: f64,
) -> Vec<BreakerSample> {
    let lines = text.lines().map(|l| Ok::<_, std::io::Error>(l.to_string()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return Vec::new();
    };
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == plan.breaker_metric)
        .filter_map(|s| {
            let label = s.labels.get(&plan.downstream_label)?;
            let downstream = downstream_named(label).or_else(|| label.parse().ok())?;
            let value = match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v)
                | prometheus_parse::Value::Counter(v) => v,
                _ => return None,
            };
            let [closed, half_open, open] = plan.state_values;
            let state = if value == open {
                BreakerState::Open
            } else if value == half_open {
                BreakerState::HalfOpen
            } else if value == closed {
                BreakerState::Closed
            } else {
                return None;
            };
            Some(BreakerSample {
                t_s,
                service: service.name().to_string(),
                downstream,
                state,
            })
        })
        .collect()
}
