//! After the load: every acknowledged payment (spilled to `acks.bin` as the
//! load went) is looked up on the SUT and must be there, in a status
//! consistent with the answer the SUT gave when it acknowledged it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::acks::{Ack, AckRecord};
use crate::load::journeys::Caller;
use crate::spill::Chunks;

/// Lookups running at once.
const CONCURRENCY: usize = 64;
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

/// The acknowledgements of one series, read from the spill file a chunk at
/// a time, with what was counted on the way.
struct Pending {
    chunks: Chunks<AckRecord>,
    buffer: std::vec::IntoIter<AckRecord>,
    series: u16,
    acknowledged: u64,
    skipped: u64,
    unreadable: Option<String>,
}

impl Pending {
    /// The next acknowledgement to look up; None at the end of the file
    /// (or where it could not be read further).
    fn next_ack(&mut self) -> Option<Ack> {
        loop {
            if let Some(record) = self.buffer.next() {
                if record.series != self.series {
                    continue;
                }
                self.acknowledged += 1;
                if record.overlong() {
                    self.skipped += 1;
                    continue;
                }
                return Some(record.ack());
            }
            match self.chunks.next_chunk(CHUNK) {
                Ok(chunk) if chunk.is_empty() => return None,
                Ok(chunk) => self.buffer = chunk.into_iter(),
                Err(e) => {
                    self.unreadable = Some(e.to_string());
                    return None;
                }
            }
        }
    }
}

/// The part of a lookup's answer the check reads.
#[derive(Deserialize)]
struct Looked {
    data: LookedData,
}

#[derive(Deserialize)]
struct LookedData {
    #[serde(default)]
    status: String,
}

/// Looks every acknowledgement of `series` in the spill file `acks` up on
/// the gateway at `base`, [`CONCURRENCY`] at a time, reading the file as it
/// goes (bounded memory however many): a new lookup starts as soon as one
/// ends, so the SUT is never left idle between chunks.
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
    let chunks = match Chunks::<AckRecord>::open(acks) {
        Ok(chunks) => chunks,
        Err(e) => {
            result.unreadable = Some(format!("{}: {e}", acks.display()));
            return result;
        }
    };
    let mut pending = Pending {
        chunks,
        buffer: Vec::new().into_iter(),
        series,
        acknowledged: 0,
        skipped: 0,
        unreadable: None,
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some(ack) = pending.next_ack() else {
                break;
            };
            result.checked += 1;
            let Ok(client) = &client else {
                result.unanswered += 1;
                continue;
            };
            let (client, url) = (
                client.clone(),
                format!("{base}{}", caller.lookup(&ack.payment_no).path),
            );
            tasks.spawn(async move {
                let found = find(&client, url).await;
                (ack, found)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((ack, found)) => tally(&mut result, ack, found),
            Err(_) => result.unanswered += 1,
        }
    }
    result.acknowledged = pending.acknowledged;
    result.skipped = pending.skipped;
    result.unreadable = pending
        .unreadable
        .map(|e| format!("{}: {e}", acks.display()));
    result
}

/// What the SUT answered for one payment.
async fn find(client: &reqwest::Client, url: String) -> Found {
    match client.get(url).send().await {
        Ok(r) if r.status().as_u16() == 404 => Found::Missing,
        Ok(r) if r.status().is_success() => match r.bytes().await {
            Ok(body) => match serde_json::from_slice::<Looked>(&body) {
                Ok(looked) => Found::Status(looked.data.status),
                Err(_) => Found::Unanswered,
            },
            Err(_) => Found::Unanswered,
        },
        _ => Found::Unanswered,
    }
}

/// Adds one lookup's finding to `result`.
fn tally(result: &mut IntegrityResult, ack: Ack, found: Found) {
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
