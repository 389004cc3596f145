//! One record per upstream request — when it was meant to start, when it
//! was sent, when its answer came, how it ended and which business ids it
//! carried — spilled to `requests.bin` in the run folder. The verdict
//! correlates them with the downstreams' arrivals: a request the SUT
//! answered without any call of its id reaching a downstream was
//! short-circuited there.

use super::recorder::Outcome;
use crate::spill::{Record, le};

/// One upstream request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The recorder series it belongs to.
    pub series: u16,
    /// When it was meant to start, µs from the load start.
    pub intended_us: i64,
    /// When it was sent.
    pub sent_us: i64,
    /// When its answer (or error) came.
    pub done_us: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// `fault_injectors::id_hash` of the id it carried (`order_no`), 0: none.
    pub id: u64,
    /// Hash of the id the SUT answered with (`payment_no`), 0: none.
    pub answer_id: u64,
}

impl RequestRecord {
    /// Whether the SUT answered it (any HTTP status), rather than the
    /// client giving up or the connection failing.
    pub fn answered(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_) | Outcome::Status(_))
    }

    /// Whether `hash` is one of its ids.
    pub fn carries(&self, hash: u64) -> bool {
        hash != 0 && (self.id == hash || self.answer_id == hash)
    }
}

fn outcome_code(o: Outcome) -> (u8, u16) {
    match o {
        Outcome::Ok(s) => (0, s),
        Outcome::Status(s) => (1, s),
        Outcome::Timeout => (2, 0),
        Outcome::Connect => (3, 0),
        Outcome::Broken => (4, 0),
    }
}

fn outcome_of(kind: u8, status: u16) -> Outcome {
    match kind {
        0 => Outcome::Ok(status),
        1 => Outcome::Status(status),
        2 => Outcome::Timeout,
        3 => Outcome::Connect,
        _ => Outcome::Broken,
    }
}

impl Record for RequestRecord {
    const SIZE: usize = 48;

    fn encode(&self, out: &mut [u8]) {
        let (kind, status) = outcome_code(self.outcome);
        le::put_u16(out, 0, self.series);
        out[2] = kind;
        out[3] = 0;
        le::put_u16(out, 4, status);
        le::put_u16(out, 6, 0);
        le::put_u64(out, 8, self.intended_us as u64);
        le::put_u64(out, 16, self.sent_us as u64);
        le::put_u64(out, 24, self.done_us as u64);
        le::put_u64(out, 32, self.id);
        le::put_u64(out, 40, self.answer_id);
    }

    fn decode(b: &[u8]) -> Self {
        Self {
            series: le::u16_at(b, 0),
            outcome: outcome_of(b[2], le::u16_at(b, 4)),
            intended_us: le::u64_at(b, 8) as i64,
            sent_us: le::u64_at(b, 16) as i64,
            done_us: le::u64_at(b, 24) as i64,
            id: le::u64_at(b, 32),
            answer_id: le::u64_at(b, 40),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_round_trips() {
        for outcome in [
            Outcome::Ok(201),
            Outcome::Status(503),
            Outcome::Timeout,
            Outcome::Connect,
            Outcome::Broken,
        ] {
            let r = RequestRecord {
                series: 3,
                intended_us: -5,
                sent_us: 1_000_001,
                done_us: 2_000_002,
                outcome,
                id: u64::MAX,
                answer_id: 7,
            };
            let mut buf = [0u8; RequestRecord::SIZE];
            r.encode(&mut buf);
            assert_eq!(RequestRecord::decode(&buf), r);
        }
    }
}
