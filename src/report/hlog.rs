//! HdrHistogram interval logs: one `<journey>.hlog` per journey (and
//! follow-up series), one tagged interval per time window, V2 deflate
//! encoding — readable by HdrHistogram's own tools (Java
//! `HistogramLogProcessor`, Python `hdrh`), merged exactly.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::Report;

/// Writes the interval logs of every journey into `dir`; returns their paths.
pub fn write(dir: &Path, report: &Report) -> std::io::Result<Vec<PathBuf>> {
    let start = chrono::DateTime::parse_from_rfc3339(&report.started_at)
        .map(SystemTime::from)
        .unwrap_or_else(|_| SystemTime::now());
    let width = Duration::from_secs_f64(report.window_s.max(1e-6));
    let mut written = Vec::new();
    for journey in &report.journeys {
        // Tags may not hold spaces or commas; journey names never do, but
        // keep the file name and the tag safe regardless.
        let name: String = journey
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.hlog"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment(&format!("faultline {} · scenario {} · journey {} · latency in microseconds from the intended start", report.faultline, report.scenario, journey.name))
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1.0)
            .begin_log_with(&mut file, &mut serializer)?;
        let tag = Tag::new(&name);
        for window in journey.windows.iter().filter(|w| !w.histogram.is_empty()) {
            let Some(histogram) = decode(&window.histogram) else {
                continue;
            };
            log.write_histogram(
                &histogram,
                Duration::from_secs_f64(window.start_s.max(0.0)),
                width,
                tag,
            )
            .map_err(|e| std::io::Error::other(format!("{}: {e:?}", path.display())))?;
        }
        drop(log);
        std::io::Write::flush(&mut file)?;
        written.push(path);
    }
    Ok(written)
}

/// A histogram from its base64 V2 encoding.
pub(crate) fn decode(encoded: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}
