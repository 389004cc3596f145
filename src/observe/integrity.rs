//! After the load: every acknowledged payment (spilled to `acks.bin` as the
//! load went) is looked up on the SUT and must be there, in a status
//! consistent with the answer the SUT gave when it acknowledged it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::load::acks::{Ack, AckRecord};
use crate::load::journeys::Caller;
use crate::spill::Chunks;

/// Lookups running at once.
const CONCURRENCY: usize = 32;
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
    /// Payments looked up: every one acknowledged but the skipped.
    pub checked: u64,
    /// Acknowledged with a payment number too long to keep, not looked up.
    #[serde(default)]
    pub skipped: u64,
    /// The acknowledgements file could not be read (all or part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
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

/// Acknowledgements read from the file at a time.
const CHUNK: usize = 4096;

/// Looks every acknowledgement of `series` in the spill file `acks` up on
/// the gateway at `base`, a chunk at a time (bounded memory however many).
pub async fn lookup(
    journey: &str,
    base: &str,
    acks: &Path,
    series: u16,
    caller: &Caller,
) -> IntegrityResult {
    let mut result = IntegrityResult {
        journey: journey.to_string(),
        ..IntegrityResult::default()
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build();
    let mut chunks = match Chunks::<AckRecord>::open(acks) {
        Ok(chunks) => chunks,
        Err(e) => {
            result.unreadable = Some(format!("{}: {e}", acks.display()));
            return result;
        }
    };
    loop {
        let chunk = match chunks.next_chunk(CHUNK) {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => chunk,
            Err(e) => {
                result.unreadable = Some(format!("{}: {e}", acks.display()));
                break;
            }
        };
        let mine: Vec<Ack> = chunk
            .iter()
            .filter(|r| r.series == series)
            .filter_map(|r| {
                result.acknowledged += 1;
                if r.overlong() {
                    result.skipped += 1;
                    None
                } else {
                    Some(r.ack())
                }
            })
            .collect();
        result.checked += mine.len() as u64;
        match &client {
            Ok(client) => look_up(client, base, mine, caller, &mut result).await,
            Err(_) => result.unanswered += mine.len() as u64,
        }
    }
    result
}

/// Looks `acks` up, [`CONCURRENCY`] at a time, adding what was found to
/// `result`.
async fn look_up(
    client: &reqwest::Client,
    base: &str,
    acks: Vec<Ack>,
    caller: &Caller,
    result: &mut IntegrityResult,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for ack in acks {
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
}
