//! The text summary printed at the end of a run.

use std::fmt::Write as _;

use super::Report;

fn ms(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else {
        format!("{:.1}ms", us as f64 / 1e3)
    }
}

fn times(list: &[f64]) -> String {
    if list.is_empty() {
        // A gauge sampled between the transitions never saw this state.
        return "not seen".to_string();
    }
    let shown: Vec<String> = list.iter().take(6).map(|t| format!("{t:.2}s")).collect();
    let more = list.len().saturating_sub(6);
    if more > 0 {
        format!("{} (+{more})", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A plain-text summary of the run (no colour, fit for CI logs).
pub fn render(report: &Report, dir: &std::path::Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "faultline · {} · seed {} · {} stack · {:.1}s",
        report.scenario, report.seed, report.stack, report.duration_s
    );
    let _ = writeln!(
        out,
        "  {:<22} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "journey", "requests", "errors", "dropped", "p50", "p99", "max"
    );
    for j in &report.journeys {
        let _ = writeln!(
            out,
            "  {:<22} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
            j.name,
            j.requests,
            j.errors,
            j.dropped,
            ms(j.latency_us.p50),
            ms(j.latency_us.p99),
            ms(j.latency_us.max)
        );
    }
    for b in &report.breakers {
        if b.episodes.opened_at_s.is_empty() && b.episodes.closed_at_s.is_empty() {
            let _ = writeln!(
                out,
                "  breaker {} ({} {}): never opened",
                b.downstream,
                b.source.name(),
                b.method.name()
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  breaker {} ({} {}): opened {}; half-open {}; closed {}",
            b.downstream,
            b.source.name(),
            b.method.name(),
            times(&b.episodes.opened_at_s),
            times(&b.episodes.half_open_at_s),
            times(&b.episodes.closed_at_s)
        );
    }
    for r in &report.recoveries {
        let _ = writeln!(
            out,
            "  recovery {} cleared at {:.2}s: {} {}",
            r.downstream,
            r.cleared_at_s,
            r.journey,
            r.recovery_s
                .map_or("not back at baseline".into(), |s| format!(
                    "back after {s:.2}s"
                ))
        );
    }
    for c in &report.checks {
        let mark = match (c.passed, c.inconclusive) {
            (true, _) => "PASS",
            (false, true) => "INCONCLUSIVE",
            (false, false) => "FAIL",
        };
        let _ = writeln!(out, "  {mark:<4} {} — {}", c.name, c.observed);
        if !c.passed {
            let _ = writeln!(out, "       expected: {}", c.expected);
            for e in &c.evidence {
                let _ = writeln!(out, "       · {e}");
            }
        }
    }
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    let regressions = report
        .comparison
        .as_ref()
        .map(crate::report::compare::regressions)
        .unwrap_or_default();
    for r in &regressions {
        let _ = writeln!(out, "  FAIL baseline:no_regression — {r}");
    }
    let verdict = match (report.passed(), report.interrupted, regressions.len()) {
        (_, true, _) => "INTERRUPTED".to_string(),
        (true, _, _) => format!("PASS ({} checks)", report.checks.len()),
        (false, _, 0) => format!("FAIL ({failed} of {} checks failed)", report.checks.len()),
        (false, _, n) => format!(
            "FAIL ({failed} of {} checks failed; {n} regression{} against the baseline)",
            report.checks.len(),
            if n == 1 { "" } else { "s" }
        ),
    };
    if let Some(lag) = report.generator.describe() {
        let _ = writeln!(out, "  NOTE {lag}");
    }
    if let Some(w) = &report.load_workers {
        let _ = writeln!(
            out,
            "  load workers: {} on {}",
            w.workers.len(),
            w.engine.name()
        );
        for f in &w.workers {
            let _ = writeln!(
                out,
                "    worker {} ({}): sent {}, late {}, dropped {}, clock {}, drift {}",
                f.index,
                f.host,
                f.sent,
                f.late,
                f.dropped,
                f.clock_text(),
                f.drift_text()
            );
        }
    }
    let _ = writeln!(out, "  verdict: {verdict} → {}", dir.display());
    out
}

#[cfg(test)]
mod tests {
    use super::times;

    #[test]
    fn a_state_never_seen_says_so_and_a_long_list_is_cut() {
        assert_eq!(times(&[]), "not seen");
        assert_eq!(times(&[1.0, 2.5]), "1.00s, 2.50s");
        assert_eq!(
            times(&[0.5; 8]),
            "0.50s, 0.50s, 0.50s, 0.50s, 0.50s, 0.50s (+2)"
        );
    }
}
