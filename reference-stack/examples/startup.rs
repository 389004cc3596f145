//! Start all five services in-process and print how long it took.
//!
//! `cargo run -p reference-stack --release --example startup`

use std::time::Instant;

use reference_stack::{StackConfig, start_all};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The first start pays for one-off process set-up; the figure of interest is a
    // start inside an already running harness, so measure a few.
    for round in 1..=3 {
        let started = Instant::now();
        let stack = start_all(StackConfig::new()).await?;
        let elapsed = started.elapsed();
        let addrs: Vec<String> = stack
            .services()
            .iter()
            .map(|s| format!("{}={}", s.kind(), s.addr()))
            .collect();
        println!(
            "round {round}: all five services started in {:.2} ms ({})",
            elapsed.as_secs_f64() * 1000.0,
            addrs.join(", ")
        );
        stack.shutdown().await;
    }
    Ok(())
}
