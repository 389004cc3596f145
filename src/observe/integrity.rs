//! After the load: every acknowledged payment (a seeded sample) is looked up
//! on the SUT and must be there, in a status consistent with the answer the
//! SUT gave when it acknowledged it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::load::journeys::Caller;
use crate::load::recorder::Ack;

/// Lookups running at once.
const CONCURRENCY: usize = 16;
/// Examples kept as evidence.
const EXAMPLES: usize = 20;

/// A payment found in the wrong status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mismatch {
    /// The payment.
    pub payment_no: String,
    /// What it could have been.
    pub expected: Vec<String>,
    /// What it was.
    pub found: String,
}

/// What the lookups found for one journey.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IntegrityResult {
    /// The journey.
    pub journey: String,
    /// Payments acknowledged during the run.
    pub acknowledged: u64,
    /// Payments looked up (a sample when there were many).
    pub checked: u64,
    /// Looked up and not found.
    pub missing: u64,
    /// Found in a status that contradicts the acknowledgement.
    pub inconsistent: u64,
    /// Lookups that got no usable answer.
    pub unanswered: u64,
    /// First missing payment numbers.
    pub missing_examples: Vec<String>,
    /// First mismatches.
    pub mismatch_examples: Vec<Mismatch>,
}

enum Found {
    Status(String),
    Missing,
    Unanswered,
}

/// Looks every ack up on the gateway at `base`.
pub async fn lookup(
    journey: &str,
    base: &str,
    acks: &[Ack],
    acknowledged: u64,
    caller: &Caller,
) -> IntegrityResult {
    let mut result = IntegrityResult {
        journey: journey.to_string(),
        acknowledged,
        checked: acks.len() as u64,
        ..IntegrityResult::default()
    };
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        result.unanswered = acks.len() as u64;
        return result;
    };
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for ack in acks.iter().cloned() {
        let (client, permits) = (client.clone(), Arc::clone(&permits));
        let url = format!("{base}{}", caller.lookup(&ack.payment_no).path);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let found = match client.get(url).send().await {
                Ok(r) if r.status().as_u16() == 404 => Found::Missing,
                Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                    Ok(body) => Found::Status(
                        body["data"]["status"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    Err(_) => Found::Unanswered,
                },
                _ => Found::Unanswered,
            };
            (ack, found)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((ack, found)) = joined else {
            result.unanswered += 1;
            continue;
        };
        match found {
            Found::Status(status) if ack.expect.contains(&status) => {}
            Found::Status(status) => {
                result.inconsistent += 1;
                if result.mismatch_examples.len() < EXAMPLES {
                    result.mismatch_examples.push(Mismatch {
                        payment_no: ack.payment_no,
                        expected: ack.expect,
                        found: status,
                    });
                }
            }
            Found::Missing => {
                result.missing += 1;
                if result.missing_examples.len() < EXAMPLES {
                    result.missing_examples.push(ack.payment_no);
                }
            }
            Found::Unanswered => result.unanswered += 1,
        }
    }
    result
}
