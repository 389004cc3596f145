//! `index.html`: one self-contained page (inline SVG and CSS, no external
//! asset, opens from disk) — the verdict with its evidence first, then the
//! charts that show it, then the tables and the scenario as run.

use std::fmt::Write as _;

use super::Report;
use super::charts::Chart;

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_badge(passed: bool, inconclusive: bool) -> &'static str {
    match (passed, inconclusive) {
        (true, _) => "<span class=\"pass\">pass</span>",
        (false, true) => "<span class=\"fail\">inconclusive</span>",
        (false, false) => "<span class=\"fail\">fail</span>",
    }
}

fn section(body: &mut String, charts: &[Chart], prefix: &str, heading: &str) {
    let matching: Vec<&Chart> = charts.iter().filter(|c| c.id.starts_with(prefix)).collect();
    if matching.is_empty() {
        return;
    }
    let _ = write!(body, "<h2>{}</h2>", esc(heading));
    for c in matching {
        let _ = write!(
            body,
            "<figure class=\"chart\" id=\"{}\"><figcaption>{}</figcaption>{}</figure>",
            esc(&c.id),
            esc(&c.title),
            c.svg
        );
    }
}

fn checks(body: &mut String, report: &Report) {
    body.push_str("<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>expected</th><th>observed</th><th>evidence</th></tr>");
    for c in &report.checks {
        let evidence: String = c
            .evidence
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><ul>{evidence}</ul></td></tr>",
            esc(&c.name),
            verdict_badge(c.passed, c.inconclusive),
            esc(&c.expected),
            esc(&c.observed),
        );
    }
    body.push_str("</table>");
}

fn tables(body: &mut String, report: &Report) {
    body.push_str("<h2>Journeys by phase</h2><table><tr><th>journey</th><th>phase</th><th>requests</th><th>errors</th><th>dropped</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>");
    for j in &report.journeys {
        for p in &j.phases {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                esc(&j.name),
                esc(&p.name),
                p.requests,
                p.errors,
                p.dropped,
                p.latency_us.p50 as f64 / 1e3,
                p.latency_us.p99 as f64 / 1e3,
                p.latency_us.max as f64 / 1e3
            );
        }
    }
    body.push_str("</table><h2>Breakers</h2><table><tr><th>downstream</th><th>source</th><th>opened (s)</th><th>half-open (s)</th><th>closed (s)</th></tr>");
    let list = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for b in &report.breakers {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.downstream),
            esc(b.source.name()),
            esc(b.method.name()),
            list(&b.episodes.opened_at_s),
            list(&b.episodes.half_open_at_s),
            list(&b.episodes.closed_at_s)
        );
    }
    body.push_str("</table><h2>Recoveries</h2><table><tr><th>downstream</th><th>journey</th><th>cleared at (s)</th><th>recovery (s)</th></tr>");
    for r in &report.recoveries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&r.downstream),
            esc(&r.journey),
            r.cleared_at_s,
            r.recovery_s
                .map_or("not recovered".into(), |s| format!("{s:.2}"))
        );
    }
    body.push_str("</table><h2>Amplification</h2><table><tr><th>downstream</th><th>phase</th><th>attempts</th><th>upstream requests</th><th>attempts per request</th></tr>");
    for a in &report.amplification {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.downstream),
            esc(&a.phase),
            a.attempts,
            a.upstream_requests,
            a.ratio.map_or("-".into(), |r| format!("{r:.2}"))
        );
    }
    body.push_str("</table><h2>Downstreams</h2><table><tr><th>injector</th><th>attempts</th><th>outcomes</th></tr>");
    for d in &report.downstreams {
        let outcomes: Vec<String> = d
            .by_outcome
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.name),
            d.attempts,
            esc(&outcomes.join(", "))
        );
    }
    body.push_str("</table>");
}

/// A distributed run's workers, each next to the merged figures.
fn load_workers(body: &mut String, report: &Report) {
    let Some(w) = &report.load_workers else {
        return;
    };
    let _ = write!(
        body,
        "<h2>Load workers ({} on {})</h2><table><tr><th>worker</th><th>host</th><th>sent</th><th>late</th><th>dropped</th><th>users</th><th>connections</th><th>clock offset</th><th>drift</th></tr>",
        w.workers.len(),
        w.engine.name()
    );
    for f in &w.workers {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.index,
            esc(&f.host),
            f.sent,
            f.late,
            f.dropped,
            f.users,
            f.connections,
            f.clock_text(),
            f.drift_text()
        );
    }
    let (sent, late, dropped) = w.workers.iter().fold((0, 0, 0), |(s, l, d), f| {
        (s + f.sent, l + f.late, d + f.dropped)
    });
    let _ = write!(
        body,
        "<tr><th>merged</th><td></td><th>{sent}</th><th>{late}</th><th>{dropped}</th><td></td><td></td><td></td><td></td></tr></table>"
    );
}

/// Renders the page.
pub(super) fn render(report: &Report, charts: &[Chart]) -> String {
    let mut body = String::new();
    let verdict = if report.passed() { "pass" } else { "fail" };
    let _ = write!(
        body,
        "<h1>{} <span class=\"{verdict}\">{}</span></h1><p>{}</p><p>seed {} · {} stack · {:.1}s · started {} · <a href=\"report.json\">report.json</a> · <a href=\"junit.xml\">junit.xml</a></p>",
        esc(&report.scenario),
        if report.interrupted {
            "INTERRUPTED".into()
        } else {
            verdict.to_uppercase()
        },
        esc(&report.description),
        report.seed,
        esc(&report.stack),
        report.duration_s,
        esc(&report.started_at)
    );
    if let Some(lag) = report.generator.describe() {
        let _ = write!(body, "<p class=\"note\">Note: {}</p>", esc(&lag));
    }
    if let Some(c) = &report.comparison {
        super::compare::html(&mut body, c);
    }
    checks(&mut body, report);
    section(&mut body, charts, "latency-", "Latency over time");
    section(&mut body, charts, "throughput", "Throughput and errors");
    section(&mut body, charts, "percentiles-", "Latency by percentile");
    section(&mut body, charts, "arrivals-", "Arrivals at the injectors");
    tables(&mut body, report);
    load_workers(&mut body, report);
    let _ = write!(
        body,
        "<h2>Scenario</h2><pre>{}</pre>",
        esc(&report.scenario_source)
    );
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>faultline · {}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(&report.scenario)
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1200px}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.pass{color:#0a7d2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow:auto}ul{margin:0;padding-left:1.2em}figure.chart{margin:0 0 1.5em 0}figcaption{font-weight:bold;margin-bottom:.3em}.worse{color:#b00020}.better{color:#0a7d2c}.note{background:#fff4d6;padding:.5em 1em}";
