//! The payments the SUT acknowledged, one fixed-size record each, spilled
//! to `acks.bin` in the run folder: the integrity check looks every one of
//! them up after the load, in bounded memory however long the run.

use serde::{Deserialize, Serialize};

use crate::spill::{Record, le};

/// A payment the SUT acknowledged, and the statuses it may be found in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The SUT's payment number.
    pub payment_no: String,
    /// Statuses consistent with what the SUT answered.
    pub expect: Vec<String>,
}

/// The statuses an acknowledgement can expect, by bit.
const STATUSES: [&str; 5] = [
    "pending",
    "awaiting_payment",
    "succeeded",
    "failed",
    "rejected",
];

/// Bytes of a spilled record.
const SIZE: usize = 128;

/// Longest payment number a record holds, bytes.
pub const MAX_ID: usize = SIZE - 4;

/// An [`Ack`] of one series, as spilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckRecord {
    /// The recorder series it belongs to.
    pub series: u16,
    expect: u8,
    len: u8,
    id: [u8; MAX_ID],
}

/// `len` of a record whose payment number did not fit.
const OVERLONG: u8 = u8::MAX;

impl AckRecord {
    /// The record of `ack`. A payment number longer than [`MAX_ID`] bytes
    /// is marked [`AckRecord::overlong`]: counted, not looked up.
    pub fn of(series: usize, ack: &Ack) -> Self {
        let bytes = ack.payment_no.as_bytes();
        let kept = bytes.len().min(MAX_ID);
        let mut id = [0u8; MAX_ID];
        id[..kept].copy_from_slice(&bytes[..kept]);
        let expect = STATUSES
            .iter()
            .enumerate()
            .filter(|(_, s)| ack.expect.iter().any(|e| e == *s))
            .fold(0u8, |mask, (bit, _)| mask | (1 << bit));
        Self {
            series: u16::try_from(series).unwrap_or(u16::MAX),
            expect,
            len: if bytes.len() > MAX_ID {
                OVERLONG
            } else {
                kept as u8
            },
            id,
        }
    }

    /// Whether the payment number was too long to keep whole.
    pub fn overlong(&self) -> bool {
        self.len == OVERLONG
    }

    /// The acknowledgement back.
    pub fn ack(&self) -> Ack {
        Ack {
            payment_no: String::from_utf8_lossy(&self.id[..usize::from(self.len).min(MAX_ID)])
                .into_owned(),
            expect: STATUSES
                .iter()
                .enumerate()
                .filter(|(bit, _)| self.expect & (1 << bit) != 0)
                .map(|(_, s)| s.to_string())
                .collect(),
        }
    }
}

impl Record for AckRecord {
    const SIZE: usize = SIZE;

    fn encode(&self, out: &mut [u8]) {
        le::put_u16(out, 0, self.series);
        out[2] = self.expect;
        out[3] = self.len;
        out[4..].copy_from_slice(&self.id);
    }

    fn decode(b: &[u8]) -> Self {
        let mut id = [0u8; MAX_ID];
        id.copy_from_slice(&b[4..Self::SIZE]);
        Self {
            series: le::u16_at(b, 0),
            expect: b[2],
            len: b[3],
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_round_trips_and_an_overlong_id_is_refused() {
        let ack = Ack {
            payment_no: "P20261207-0042-éü".into(),
            expect: vec!["awaiting_payment".into(), "succeeded".into()],
        };
        let record = AckRecord::of(3, &ack);
        assert!(!record.overlong());
        let mut buf = [0u8; AckRecord::SIZE];
        record.encode(&mut buf);
        let back = AckRecord::decode(&buf);
        assert_eq!(back, record);
        assert_eq!(back.series, 3);
        assert_eq!(back.ack(), ack);
        let long = Ack {
            payment_no: "x".repeat(MAX_ID + 1),
            expect: vec!["failed".into()],
        };
        assert!(AckRecord::of(0, &long).overlong());
        let fits = Ack {
            payment_no: "x".repeat(MAX_ID),
            ..long
        };
        assert_eq!(AckRecord::of(0, &fits).ack(), fits);
    }
}
