//! The report's charts, drawn with plotters as inline SVG (the page stays
//! self-contained). Text layout uses an embedded DejaVu Sans: plotters needs
//! font metrics and the machine may have no fonts at all.
//!
//! Every time axis is seconds from the load start, with the fault windows
//! shaded, so the charts line up with each other and with the verdict.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;
use crate::faults::FaultAction;
use crate::load::recorder::WindowStats;

/// One chart: an id for the page, a title, the SVG.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Element id in the page (`latency-payment`, ...).
    pub id: String,
    /// Title above it.
    pub title: String,
    /// The SVG markup.
    pub svg: String,
}

const WIDTH: u32 = 960;
/// Readable on white, in order (tab10 without its yellow).
const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Splits a time series where it has no point for longer than `gap`, so a
/// line is not drawn across time with no data.
fn runs(points: Vec<(f64, f64)>, gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|q| p.0 - q.0 <= gap) => run.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}
const FAULT: RGBColor = RGBColor(220, 60, 60);
const CLOSED: RGBColor = RGBColor(46, 160, 67);
const HALF_OPEN: RGBColor = RGBColor(230, 160, 20);
const OPEN: RGBColor = RGBColor(200, 30, 30);

type Failed = String;

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration fails only for an unreadable font, which is compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("fonts/DejaVuSans.ttf"),
        );
    });
}

/// A shaded fault window.
#[derive(Clone, Debug)]
struct Span {
    from: f64,
    to: f64,
}

/// Fault windows as applied (set → clear, or to the end).
fn fault_spans(report: &Report) -> Vec<Span> {
    let mut spans = Vec::new();
    for set in report
        .faults
        .iter()
        .filter(|e| e.action == FaultAction::Set)
    {
        let to = report
            .faults
            .iter()
            .find(|e| e.window == set.window && e.action == FaultAction::Clear)
            .map_or(report.duration_s, |e| e.t_s);
        spans.push(Span { from: set.t_s, to });
    }
    spans
}

/// A stretch of time in one breaker state: (from, to, the state's color).
type Segment = (f64, f64, RGBColor);

/// A breaker's state over time.
fn breaker_segments(report: &Report, b: &crate::verdict::BreakerReport) -> Vec<Segment> {
    let mut events: Vec<(f64, RGBColor)> = Vec::new();
    events.extend(b.episodes.opened_at_s.iter().map(|t| (*t, OPEN)));
    events.extend(b.episodes.half_open_at_s.iter().map(|t| (*t, HALF_OPEN)));
    events.extend(b.episodes.closed_at_s.iter().map(|t| (*t, CLOSED)));
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut segments = Vec::new();
    let (mut at, mut color) = (0.0, CLOSED);
    for (t, c) in events {
        if t > at {
            segments.push((at, t, color));
        }
        (at, color) = (t, c);
    }
    segments.push((at, report.duration_s.max(at), color));
    segments
}

/// The series legend, boxed in a corner.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .position(position)
        .draw()
        .map_err(|e| e.to_string())
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0).max(0.01)
}

fn svg(
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Failed>,
) -> Result<String, Failed> {
    fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The y range (log scale, ms) that holds every value.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return 0.1..10.0;
    }
    (lo.max(0.01) / 2.0)..(hi * 2.0)
}

/// Latency over time (p50, p99, max per window) with the breaker states
/// below it.
fn latency(
    report: &Report,
    journey: &super::JourneyReport,
    spans: &[Span],
) -> Result<String, Failed> {
    let windows: Vec<&WindowStats> = journey.windows.iter().filter(|w| w.requests > 0).collect();
    let bands: Vec<(String, Vec<Segment>)> = report
        .breakers
        .iter()
        .map(|b| {
            (
                format!("{} ({})", b.downstream, b.source.name()),
                breaker_segments(report, b),
            )
        })
        .collect();
    let band_height = 22 * bands.len() as u32;
    let x_max = report.duration_s.max(1e-3);
    svg(320 + band_height + 20, |root| {
        let (top, bottom) = root.split_vertically(320);
        let y = log_range(windows.iter().flat_map(|w| [ms(w.p50_us), ms(w.max_us)]));
        let (y_lo, y_hi) = (y.start, y.end);
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, y.log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds from the load start")
            .y_desc("latency (ms)")
            .y_labels(8)
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        shade(&mut chart, spans, y_lo, y_hi)?;
        let gap = report.window_s * 1.5;
        let series = [
            (
                "max",
                RGBColor(150, 150, 150),
                windows
                    .iter()
                    .map(|w| (w.start_s, ms(w.max_us)))
                    .collect::<Vec<_>>(),
            ),
            (
                "p99",
                color(1),
                windows.iter().map(|w| (w.start_s, ms(w.p99_us))).collect(),
            ),
            (
                "p50",
                color(0),
                windows.iter().map(|w| (w.start_s, ms(w.p50_us))).collect(),
            ),
        ];
        for (label, color, points) in series {
            for (i, run) in runs(points, gap).into_iter().enumerate() {
                let drawn = chart
                    .draw_series(LineSeries::new(run, color.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if i == 0 {
                    drawn.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        if !bands.is_empty() {
            let rows = bands.len();
            let mut band = ChartBuilder::on(&bottom)
                .margin_left(10)
                .margin_right(10)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..x_max, 0f64..rows as f64)
                .map_err(|e| e.to_string())?;
            for (i, (label, segments)) in bands.iter().enumerate() {
                let row = (rows - 1 - i) as f64;
                band.draw_series(segments.iter().map(|(from, to, color)| {
                    Rectangle::new([(*from, row + 0.15), (*to, row + 0.85)], color.filled())
                }))
                .map_err(|e| e.to_string())?;
                band.draw_series(std::iter::once(Text::new(
                    format!("breaker {label}"),
                    (x_max * 0.005, row + 0.75),
                    ("sans-serif", 12).into_font().color(&WHITE),
                )))
                .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<
            plotters::coord::types::RangedCoordf64,
            plotters::coord::combinators::LogCoord<f64>,
        >,
    >,
    spans: &[Span],
    y_lo: f64,
    y_hi: f64,
) -> Result<(), Failed> {
    chart
        .draw_series(
            spans
                .iter()
                .map(|s| Rectangle::new([(s.from, y_lo), (s.to, y_hi)], FAULT.mix(0.12).filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A chart of a rate over the run's time axis (0 to `top`), fault windows
/// shaded.
fn rate_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    x_max: f64,
    top: f64,
    y_desc: &str,
    spans: &[Span],
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    Failed,
> {
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds from the load start")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            spans
                .iter()
                .map(|s| Rectangle::new([(s.from, 0.0), (s.to, top)], FAULT.mix(0.12).filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Requests and errors per second of every journey.
fn throughput(report: &Report, spans: &[Span]) -> Result<String, Failed> {
    let window = report.window_s.max(1e-6);
    let top = report
        .journeys
        .iter()
        .flat_map(|j| j.windows.iter().map(|w| w.requests as f64 / window))
        .fold(1.0f64, f64::max)
        * 1.15;
    let x_max = report.duration_s.max(1e-3);
    svg(340, |root| {
        let mut chart = rate_chart(root, x_max, top, "requests / s", spans)?;
        for (i, j) in report.journeys.iter().enumerate() {
            let color = color(i);
            // A window without requests is a rate of zero, not a gap.
            let slots = (report.duration_s / window).ceil() as usize;
            let (mut sent, mut failed) = (vec![0.0; slots], vec![0.0; slots]);
            for w in &j.windows {
                if let Some(i) = usize::try_from(w.index).ok().filter(|i| *i < slots) {
                    sent[i] = w.requests as f64 / window;
                    failed[i] = w.errors as f64 / window;
                }
            }
            let at = |i: usize| i as f64 * window;
            let sent: Vec<(f64, f64)> = sent
                .into_iter()
                .enumerate()
                .map(|(i, r)| (at(i), r))
                .collect();
            let failed: Vec<(f64, f64)> = failed
                .into_iter()
                .enumerate()
                .map(|(i, r)| (at(i), r))
                .collect();
            chart
                .draw_series(LineSeries::new(sent, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(format!("{} sent", j.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            let error_color = RGBAColor(color.0, color.1, color.2, 0.45);
            chart
                .draw_series(LineSeries::new(failed, error_color.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(format!("{} errors", j.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], error_color.stroke_width(1))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Latency by percentile per phase, HdrHistogram-plotter style: the x axis
/// is log₁₀(1 / (1 − q)), so 90 %, 99 %, 99.9 % are evenly spaced.
fn percentiles(journey: &super::JourneyReport) -> Result<String, Failed> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = journey
        .phases
        .iter()
        .filter(|p| p.requests > 0)
        .map(|p| {
            let points = p
                .percentiles
                .iter()
                .map(|[q, us]| ((1.0 / (1.0 - q.min(0.999_999))).log10(), ms(*us as u64)))
                .collect();
            (p.name.as_str(), points)
        })
        .collect();
    let y = log_range(
        curves
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v)),
    );
    svg(340, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..5.3, y.log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_labels(6)
            .y_labels(8)
            .light_line_style(WHITE)
            .x_label_formatter(&|x| match x.round() as i32 {
                0 => "0%".into(),
                1 => "90%".into(),
                2 => "99%".into(),
                3 => "99.9%".into(),
                4 => "99.99%".into(),
                _ => "99.999%".into(),
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, points)) in curves.into_iter().enumerate() {
            let color = color(i);
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Requests per second arriving at one injector: an open breaker is the
/// silence, its half-open probes the blips.
fn arrivals(
    report: &Report,
    downstream: &super::DownstreamReport,
    spans: &[Span],
) -> Result<String, Failed> {
    let x_max = report.duration_s.max(1e-3);
    // At most ~600 points across the run.
    let step = downstream.bucket_s.max(x_max / 600.0);
    let mut rates = vec![0.0f64; (x_max / step).ceil() as usize + 1];
    for b in downstream
        .arrivals
        .iter()
        .filter(|b| b.start_s >= 0.0 && b.start_s < x_max)
    {
        let slot = (b.start_s / step) as usize;
        if let Some(r) = rates.get_mut(slot) {
            *r += b.total() as f64 / step;
        }
    }
    let top = rates.iter().copied().fold(1.0f64, f64::max) * 1.15;
    svg(260, |root| {
        let mut chart = rate_chart(root, x_max, top, "arrivals / s", spans)?;
        chart
            .draw_series(
                AreaSeries::new(
                    rates.iter().enumerate().map(|(i, r)| (i as f64 * step, *r)),
                    0.0,
                    BLUE.mix(0.3),
                )
                .border_style(BLUE),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Every chart of the report, in page order.
pub fn all(report: &Report) -> Vec<Chart> {
    let spans = fault_spans(report);
    let mut charts = Vec::new();
    let mut push = |id: String, title: String, drawn: Result<String, Failed>| match drawn {
        Ok(svg) => charts.push(Chart { id, title, svg }),
        Err(e) => tracing::warn!("chart {id} could not be drawn: {e}"),
    };
    for j in &report.journeys {
        push(
            format!("latency-{}", j.name),
            format!(
                "{}: latency over time (p50 / p99 / max per window), breaker states below",
                j.name
            ),
            latency(report, j, &spans),
        );
    }
    push(
        "throughput".into(),
        "Throughput and errors over time".into(),
        throughput(report, &spans),
    );
    for j in &report.journeys {
        push(
            format!("percentiles-{}", j.name),
            format!("{}: latency by percentile, per phase", j.name),
            percentiles(j),
        );
    }
    for d in report.downstreams.iter().filter(|d| d.attempts > 0) {
        push(
            format!("arrivals-{}", d.name),
            format!("{}: arrivals per second", d.name),
            arrivals(report, d, &spans),
        );
    }
    charts
}
