//! Payment store soak figures: inserts 2,000,000 payments the way the gateway does
//! (insert `pending`, then update to `awaiting_payment` with the channel's answer) and
//! prints the resident memory per payment and the worst insert latencies.
//!
//! `cargo bench -p reference-stack --bench store` (set `STORE_BENCH_COUNT` for fewer).

use std::time::{Duration, Instant};

use reference_stack::store::{Payment, PaymentStatus, PaymentStore};

/// The process's resident set in bytes, from `/proc/self/status` (0 where unavailable).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let count: usize = std::env::var("STORE_BENCH_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    let store = PaymentStore::new(4_000_000);
    let start_ms = 1_765_000_000_000u64;
    // Latency samples are allocated and written (not zero: zeroed pages are only
    // mapped on first write) before the first RSS reading.
    let mut insert = vec![Duration::MAX; count];
    let mut update = vec![Duration::MAX; count];
    let before = rss_bytes();
    let began = Instant::now();
    for i in 0..count {
        let payment_no = format!("PAY{start_ms}{:06}", i + 1);
        let now = "2026-12-07T13:20:35.123Z".to_string();
        let payment = Payment {
            payment_no: payment_no.clone(),
            order_no: format!("soak-{:08}", i),
            merchant_id: "M001".into(),
            amount: 100 + (i as i64 % 900),
            currency: "USD".into(),
            channel: "card".into(),
            status: PaymentStatus::Pending,
            error: None,
            payment_url: None,
            channel_trade_no: None,
            order_id: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let t = Instant::now();
        if store.insert(payment).is_err() {
            panic!("duplicate order number in the bench");
        }
        insert[i] = t.elapsed();
        let trade_no = format!("CH{:010}", i + 1);
        let t = Instant::now();
        store.update(&payment_no, |p| {
            p.status = PaymentStatus::AwaitingPayment;
            p.payment_url = Some(format!("https://pay.channel.example/checkout/{trade_no}"));
            p.channel_trade_no = Some(trade_no.clone());
            p.order_id = Some(format!("ORD{:010}", i + 1));
            p.updated_at = "2026-12-07T13:20:35.456Z".to_string();
        });
        update[i] = t.elapsed();
    }
    let elapsed = began.elapsed();
    let after = rss_bytes();
    // Every payment must still be there.
    let probe = format!("PAY{start_ms}{:06}", 1);
    assert!(store.get(&probe).is_some(), "the first payment was lost");
    let slow = |samples: &[Duration]| {
        samples
            .iter()
            .filter(|d| **d > Duration::from_millis(1))
            .count()
    };
    println!(
        "calls over 1 ms:        {} inserts, {} updates",
        slow(&insert),
        slow(&update)
    );
    insert.sort_unstable();
    update.sort_unstable();
    let delta = after.saturating_sub(before);
    println!("payments inserted:      {count}");
    println!("elapsed:                {:.2?}", elapsed);
    println!(
        "RSS before / after:     {:.1} MB / {:.1} MB",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    println!(
        "bytes per payment:      {:.1}",
        delta as f64 / count.max(1) as f64
    );
    println!(
        "insert p99 / p99.9 / max: {:.2?} / {:.2?} / {:.2?}",
        percentile(&insert, 0.99),
        percentile(&insert, 0.999),
        insert.last().copied().unwrap_or_default()
    );
    println!(
        "update p99 / p99.9 / max: {:.2?} / {:.2?} / {:.2?}",
        percentile(&update, 0.99),
        percentile(&update, 0.999),
        update.last().copied().unwrap_or_default()
    );
}
