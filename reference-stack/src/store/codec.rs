//! Compact binary records: varint numbers, texts as length + bytes, repeated texts
//! (merchant, currency, channel, payment URL prefix) as small symbol numbers, RFC 3339
//! times as milliseconds when they print back the same.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Payment, PaymentStatus};

/// Longest text kept per field (64 KiB; the API's own fields are far shorter), so a
/// record stays below the log's record limit. Longer texts are cut at a char boundary.
const MAX_TEXT: usize = 64 * 1024;
/// Most distinct symbols; past this, new texts are written out in full.
const MAX_SYMBOLS: usize = 4096;

/// Texts seen often, numbered.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Symbols {
    fn id(&mut self, text: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(text) {
            return Some(*id);
        }
        if self.names.len() >= MAX_SYMBOLS {
            return None;
        }
        let id = u32::try_from(self.names.len()).ok()?;
        self.names.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        Some(id)
    }
}

/// Appends encoded fields to a buffer.
pub(crate) struct Writer<'a> {
    /// The record being written.
    pub out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    pub(crate) fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn signed(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn text(&mut self, s: &str) {
        let mut end = s.len().min(MAX_TEXT);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.varint(end as u64);
        self.out.extend_from_slice(&s.as_bytes()[..end]);
    }

    fn symbol(&mut self, symbols: &mut Symbols, s: &str) {
        match symbols.id(s) {
            Some(id) => self.varint(u64::from(id) + 1),
            None => {
                self.varint(0);
                self.text(s);
            }
        }
    }

    fn time(&mut self, s: &str) {
        match millis(s) {
            Some(ms) => {
                self.byte(1);
                self.signed(ms);
            }
            None => {
                self.byte(0);
                self.text(s);
            }
        }
    }
}

/// Reads encoded fields back; every read is `None` on a malformed record.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(*first)
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(head)
    }

    pub(crate) fn text(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).ok()
    }

    /// What is left of the record.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn symbol(&mut self, symbols: &Symbols) -> Option<String> {
        match self.varint()? {
            0 => self.text(),
            id => symbols.names.get(usize::try_from(id - 1).ok()?).cloned(),
        }
    }

    fn time(&mut self) -> Option<String> {
        match self.byte()? {
            1 => Some(
                DateTime::<Utc>::from_timestamp_millis(self.signed()?)?
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
            _ => self.text(),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time that prints back exactly as given
/// (the services' own `now_rfc3339` format).
fn millis(s: &str) -> Option<i64> {
    let ms = DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
    let back = DateTime::<Utc>::from_timestamp_millis(ms)?;
    (back.to_rfc3339_opts(SecondsFormat::Millis, true) == s).then_some(ms)
}

const HAS_ERROR: u8 = 1;
const HAS_URL: u8 = 2;
const HAS_TRADE_NO: u8 = 4;
const HAS_ORDER_ID: u8 = 8;
/// The payment URL is a prefix (a symbol) followed by the channel trade number.
const URL_ENDS_WITH_TRADE_NO: u8 = 16;

fn status_code(status: PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Pending => 0,
        PaymentStatus::AwaitingPayment => 1,
        PaymentStatus::Succeeded => 2,
        PaymentStatus::Failed => 3,
        PaymentStatus::Rejected => 4,
    }
}

fn status_of(code: u8) -> Option<PaymentStatus> {
    Some(match code {
        0 => PaymentStatus::Pending,
        1 => PaymentStatus::AwaitingPayment,
        2 => PaymentStatus::Succeeded,
        3 => PaymentStatus::Failed,
        4 => PaymentStatus::Rejected,
        _ => return None,
    })
}

/// Encode `p` into `out` (cleared first).
pub(crate) fn encode_payment(p: &Payment, symbols: &mut Symbols, out: &mut Vec<u8>) {
    out.clear();
    let url_prefix = match (&p.payment_url, &p.channel_trade_no) {
        (Some(url), Some(trade_no)) if !trade_no.is_empty() => url.strip_suffix(trade_no.as_str()),
        _ => None,
    };
    let mut flags = 0;
    for (present, flag) in [
        (p.error.is_some(), HAS_ERROR),
        (p.payment_url.is_some(), HAS_URL),
        (p.channel_trade_no.is_some(), HAS_TRADE_NO),
        (p.order_id.is_some(), HAS_ORDER_ID),
        (url_prefix.is_some(), URL_ENDS_WITH_TRADE_NO),
    ] {
        if present {
            flags |= flag;
        }
    }
    let mut w = Writer { out };
    w.byte(status_code(p.status));
    w.byte(flags);
    w.text(&p.payment_no);
    w.symbol(symbols, &p.merchant_id);
    w.text(&p.order_no);
    w.signed(p.amount);
    w.symbol(symbols, &p.currency);
    w.symbol(symbols, &p.channel);
    w.time(&p.created_at);
    w.time(&p.updated_at);
    if let Some(error) = &p.error {
        w.text(error);
    }
    match (url_prefix, &p.payment_url) {
        (Some(prefix), _) => w.symbol(symbols, prefix),
        (None, Some(url)) => w.text(url),
        (None, None) => {}
    }
    if let Some(trade_no) = &p.channel_trade_no {
        w.text(trade_no);
    }
    if let Some(order_id) = &p.order_id {
        w.text(order_id);
    }
}

/// Decode a record written by [`encode_payment`].
pub(crate) fn decode_payment(bytes: &[u8], symbols: &Symbols) -> Option<Payment> {
    let mut r = Reader::new(bytes);
    let status = status_of(r.byte()?)?;
    let flags = r.byte()?;
    let has = |flag: u8| flags & flag != 0;
    let payment_no = r.text()?;
    let merchant_id = r.symbol(symbols)?;
    let order_no = r.text()?;
    let amount = r.signed()?;
    let currency = r.symbol(symbols)?;
    let channel = r.symbol(symbols)?;
    let created_at = r.time()?;
    let updated_at = r.time()?;
    let error = if has(HAS_ERROR) {
        Some(r.text()?)
    } else {
        None
    };
    let url = if !has(HAS_URL) {
        None
    } else if has(URL_ENDS_WITH_TRADE_NO) {
        Some(r.symbol(symbols)?)
    } else {
        Some(r.text()?)
    };
    let channel_trade_no = if has(HAS_TRADE_NO) {
        Some(r.text()?)
    } else {
        None
    };
    let order_id = if has(HAS_ORDER_ID) {
        Some(r.text()?)
    } else {
        None
    };
    let payment_url = match (url, &channel_trade_no) {
        (Some(prefix), Some(trade_no)) if has(URL_ENDS_WITH_TRADE_NO) => Some(prefix + trade_no),
        (url, _) => url,
    };
    Some(Payment {
        payment_no,
        order_no,
        merchant_id,
        amount,
        currency,
        channel,
        status,
        error,
        payment_url,
        channel_trade_no,
        order_id,
        created_at,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Payment {
        Payment {
            payment_no: "PAY1765000000000000001".into(),
            order_no: "ORDER-é-1".into(),
            merchant_id: "M001".into(),
            amount: i64::MIN,
            currency: "USD".into(),
            channel: "card".into(),
            status: PaymentStatus::Succeeded,
            error: Some("channel card reported failure".into()),
            payment_url: Some("https://pay.channel.example/checkout/CH000001".into()),
            channel_trade_no: Some("CH000001".into()),
            order_id: Some("ORD7".into()),
            created_at: "2026-12-07T13:20:35.123Z".into(),
            updated_at: "2026-12-07T13:20:35+08:00".into(),
        }
    }

    fn round_trip(p: &Payment) -> Payment {
        let mut symbols = Symbols::default();
        let mut out = Vec::new();
        encode_payment(p, &mut symbols, &mut out);
        decode_payment(&out, &symbols).unwrap()
    }

    #[test]
    fn every_field_round_trips() {
        let p = full();
        let back = round_trip(&p);
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&p).unwrap()
        );
        let mut other = full();
        other.payment_url = Some("https://elsewhere.example/pay?id=1".into());
        other.error = None;
        other.created_at = String::new();
        other.amount = 42;
        assert_eq!(
            serde_json::to_value(round_trip(&other)).unwrap(),
            serde_json::to_value(&other).unwrap()
        );
        let mut bare = full();
        bare.payment_url = None;
        bare.channel_trade_no = None;
        bare.order_id = None;
        bare.status = PaymentStatus::Pending;
        assert_eq!(
            serde_json::to_value(round_trip(&bare)).unwrap(),
            serde_json::to_value(&bare).unwrap()
        );
    }

    #[test]
    fn a_typical_record_is_small() {
        let mut symbols = Symbols::default();
        let mut out = Vec::new();
        let mut p = full();
        p.error = None;
        p.amount = 10_000;
        p.updated_at = "2026-12-07T13:20:36.001Z".into();
        encode_payment(&p, &mut symbols, &mut out);
        // 22 + 10 + 8 + 4 bytes of its own text; the rest (URL, times, ...) is small.
        assert!(out.len() <= 72, "{} bytes", out.len());
    }

    #[test]
    fn malformed_records_decode_to_none() {
        let mut symbols = Symbols::default();
        let mut out = Vec::new();
        encode_payment(&full(), &mut symbols, &mut out);
        for cut in 0..out.len() {
            assert!(decode_payment(&out[..cut], &symbols).is_none());
        }
        assert!(decode_payment(&[9, 0], &symbols).is_none());
    }
}
