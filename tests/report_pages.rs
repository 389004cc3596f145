//! The reports people read: the page renders in headless Chromium with every
//! chart drawn, the .hlog files read back with an independent HdrHistogram
//! reader, compare flags a regression, a suite gets an index page, a run
//! folder can be redrawn, and an exploration's matrix page renders with
//! every cell and working links.
//!
//! The first two need tools outside Rust: headless Chromium (Debian package
//! `chromium`) and the Python package `hdrhistogram`. The test command
//! (`./.ci/test`) installs them where it can; where one is missing its test
//! is reported as *ignored* with a banner naming the package — never a panic,
//! never a silent pass (a custom harness decides at run time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Arguments, Trial};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// Where `./.ci/test` installs the Python package when the system Python
/// has none (`pip install --target`, no root needed).
const PYTHON_DEPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-deps/python");

fn main() {
    let args = Arguments::from_args();
    let chromium = chromium();
    let hdrh = python_hdrh();
    let mut banners = Vec::new();
    if let Err(why) = &chromium {
        banners.push(format!(
            "SKIPPED: the_page_renders_in_headless_chromium_with_every_chart_drawn and \
             the_exploration_matrix_renders_in_headless_chromium_with_every_cell_and_working_links need headless Chromium \
             (Debian package `chromium`): {why}. Install it (apt-get install chromium) or run ./.ci/test as root or with sudo."
        ));
    }
    if let Err(why) = &hdrh {
        banners.push(format!(
            "SKIPPED: hlog_files_read_back_with_an_independent_reader_match_report_json needs the Python package \
             `hdrhistogram`: {why}. Install it (pip install hdrhistogram) or run ./.ci/test, which installs it into target/test-deps/python."
        ));
    }
    let banner = || {
        for b in &banners {
            eprintln!("\n*** {b} Counted as ignored, not passed. ***");
        }
    };
    banner();
    let page = chromium.clone().unwrap_or_default();
    let matrix = page.clone();
    let trials = vec![
        Trial::test(
            "the_page_renders_in_headless_chromium_with_every_chart_drawn",
            move || {
                the_page_renders_in_headless_chromium_with_every_chart_drawn(&page);
                Ok(())
            },
        )
        .with_ignored_flag(chromium.is_err()),
        Trial::test(
            "the_exploration_matrix_renders_in_headless_chromium_with_every_cell_and_working_links",
            move || {
                the_exploration_matrix_renders_in_headless_chromium_with_every_cell_and_working_links(
                    &matrix,
                );
                Ok(())
            },
        )
        .with_ignored_flag(chromium.is_err()),
        Trial::test(
            "hlog_files_read_back_with_an_independent_reader_match_report_json",
            || {
                hlog_files_read_back_with_an_independent_reader_match_report_json();
                Ok(())
            },
        )
        .with_ignored_flag(hdrh.is_err()),
        Trial::test(
            "compare_flags_a_p99_regression_and_passes_without_one",
            || {
                compare_flags_a_p99_regression_and_passes_without_one();
                Ok(())
            },
        ),
        Trial::test(
            "a_suite_gets_an_index_page_and_a_run_folder_can_be_redrawn",
            || {
                a_suite_gets_an_index_page_and_a_run_folder_can_be_redrawn();
                Ok(())
            },
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    // Again after the summary, where a reader of the log looks.
    banner();
    conclusion.exit();
}

/// A scaled order-service outage under payment and dashboard load; `extra`
/// adds faults.
fn scenario(name: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 7
duration = "4s"

[stack]
time_scale = 0.01

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 40
[[load.journeys]]
kind = "dashboard"
rate = 10

[[faults]]
injector = "order-service"
from = "1s"
until = "2.5s"
fault = {{ kind = "status", code = 503 }}
{extra}
[[checks]]
kind = "breaker_opens"
downstream = "order-service"
within = "1s"
[[checks]]
kind = "recovers_within"
journey = "payment"
within = "1s"
"#
    )
}

/// A fresh folder for one test.
fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-reports-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test folder");
    dir
}

fn faultline(args: &[&str]) -> Output {
    Command::new(FAULTLINE)
        .args(args)
        .output()
        .expect("faultline runs")
}

/// Runs `toml` with the CLI into `out`; returns the run folder.
fn run(out: &Path, file: &str, toml: &str, extra_args: &[&str]) -> (Output, PathBuf) {
    let path = out.join(file);
    std::fs::write(&path, toml).expect("scenario written");
    let mut args = vec!["run", "--quiet", "--out", out.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra_args);
    args.push(path.to_str().expect("utf-8 path"));
    let output = faultline(&args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let dir = stdout
        .lines()
        .find_map(|l| {
            l.split_once("verdict: ")
                .and_then(|(_, rest)| rest.split_once(" → "))
                .map(|(_, d)| PathBuf::from(d.trim()))
        })
        .unwrap_or_else(|| {
            panic!(
                "no run folder in the output:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    (output, dir)
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
        .expect("json")
}

/// The charts the page must carry for this report.
fn expected_charts(report: &serde_json::Value) -> Vec<String> {
    let journeys: Vec<String> = report["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .filter_map(|j| j["name"].as_str().map(String::from))
        .collect();
    let mut ids: Vec<String> = journeys.iter().map(|j| format!("latency-{j}")).collect();
    ids.push("throughput".into());
    ids.extend(journeys.iter().map(|j| format!("percentiles-{j}")));
    ids.extend(
        report["downstreams"]
            .as_array()
            .expect("downstreams")
            .iter()
            .filter(|d| d["attempts"].as_u64().unwrap_or(0) > 0)
            .filter_map(|d| d["name"].as_str().map(|n| format!("arrivals-{n}"))),
    );
    ids
}

/// The `<figure id=...>` of a chart, if the page has it.
fn figure<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let start = page.find(&format!("<figure class=\"chart\" id=\"{id}\">"))?;
    let end = page[start..].find("</figure>")? + start;
    Some(&page[start..end])
}

/// Whether a chart's SVG draws data: a polyline with at least two points,
/// or a filled area.
fn draws_data(svg: &str) -> bool {
    let polyline = svg.split("<polyline").skip(1).any(|p| {
        p.split_once("points=\"").is_some_and(|(_, rest)| {
            rest.split('"')
                .next()
                .is_some_and(|pts| pts.split_whitespace().count() >= 2)
        })
    });
    polyline || svg.contains("<polygon")
}

/// The Chromium command that runs here, or why there is none.
fn chromium() -> Result<String, String> {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    for candidate in candidates {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(candidate.to_string());
        }
    }
    Err(format!("none of {} runs here", candidates.join(", ")))
}

/// `PYTHONPATH` with the test command's private install first.
fn python_path() -> std::ffi::OsString {
    let mut paths = vec![PathBuf::from(PYTHON_DEPS)];
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// Whether `python3` can import the `hdrh` reader, or why not.
fn python_hdrh() -> Result<(), String> {
    let output = Command::new("python3")
        .args(["-c", "import hdrh.histogram, hdrh.log"])
        .env("PYTHONPATH", python_path())
        .output()
        .map_err(|e| format!("python3 does not run ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "python3 cannot import it ({})",
            stderr.lines().last().unwrap_or("no message").trim()
        ))
    }
}

fn the_page_renders_in_headless_chromium_with_every_chart_drawn(chromium: &str) {
    let out = folder("page");
    let (output, dir) = run(&out, "page.toml", &scenario("page", ""), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let page = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "<link",
        "<script src",
    ] {
        assert!(
            !page.contains(external),
            "the page loads an external asset ({external})"
        );
    }
    let ids = expected_charts(&report(&dir));
    assert!(ids.len() >= 8, "{ids:?}");
    for id in &ids {
        let chart = figure(&page, id).unwrap_or_else(|| panic!("chart {id} missing"));
        assert!(chart.contains("<svg"), "chart {id} has no drawing");
        assert!(draws_data(chart), "chart {id} is empty");
    }
    assert!(
        page.contains("breaker order-service (inferred)"),
        "the breaker band is missing"
    );

    let shot = dir.join("screenshot.png");
    let height = 1400 + 420 * ids.len();
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size=1280,{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("index.html").display()))
        .output()
        .expect("chromium runs");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("pixels");
    assert_eq!((info.width, info.height as usize), (1280, height));
    let channels = info.color_type.samples();
    let colors: std::collections::HashSet<[u8; 3]> = pixels[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    // A rendered page of charts, not a blank or an error page: many colours,
    // among them the p50 line's blue and a breaker band's green.
    assert!(
        colors.len() > 200,
        "only {} colours in the screenshot",
        colors.len()
    );
    let near = |target: [u8; 3]| {
        colors
            .iter()
            .any(|c| c.iter().zip(target).all(|(a, b)| a.abs_diff(b) <= 6))
    };
    assert!(near([31, 119, 180]), "no p50 line in the screenshot");
    assert!(near([46, 160, 67]), "no breaker band in the screenshot");
}

/// A small exploration (one client; errors, latency, and hang implied by
/// latency) rendered by Chromium: the DOM it builds has a cell for every
/// client × fault class, each run cell links to a run folder whose page
/// exists, and the coverage line is there.
fn the_exploration_matrix_renders_in_headless_chromium_with_every_cell_and_working_links(
    chromium: &str,
) {
    let out = folder("explore-page");
    let output = faultline(&[
        "explore",
        "--quiet",
        "--clients",
        "payment-gateway->risk-service",
        "--faults",
        "errors,latency,hang",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = std::fs::read_dir(&out)
        .expect("exploration folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("index.html").is_file())
        .expect("an exploration with index.html");
    let dom = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", dir.join("index.html").display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<table"), "Chromium built no table: {dom}");
    assert!(
        dom.contains("clients protected: "),
        "no coverage line: {dom}"
    );
    let client = "payment-gateway→risk-service";
    for class in ["errors", "latency", "hang"] {
        let cell = format!("data-cell=\"{client}:{class}\"");
        assert!(dom.contains(&cell), "no cell {cell} in the page");
    }
    assert!(
        dom.contains("implied"),
        "the hang cell is marked as implied by latency"
    );
    let links: Vec<&str> = dom
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(links.len(), 2, "one link per cell run: {links:?}");
    for link in links {
        assert!(
            dir.join(link).is_file(),
            "the link {link} does not resolve in {}",
            dir.display()
        );
    }
}

fn hlog_files_read_back_with_an_independent_reader_match_report_json() {
    let out = folder("hlog");
    let (_, dir) = run(&out, "hlog.toml", &scenario("hlog", ""), &[]);
    let report = report(&dir);
    let mut files = Vec::new();
    for j in report["journeys"].as_array().expect("journeys") {
        let name = j["name"].as_str().expect("name");
        let path = dir.join(format!("{name}.hlog"));
        assert!(path.exists(), "{name}.hlog missing");
        let text = std::fs::read_to_string(&path).expect("hlog");
        assert!(
            text.lines().any(|l| l.starts_with(&format!("Tag={name},"))),
            "intervals are not tagged"
        );
        files.push((path, j.clone()));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_hlog.py");
    let output = Command::new("python3")
        .env("PYTHONPATH", python_path())
        .arg(&script)
        .args(files.iter().map(|(p, _)| p))
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Python reader failed (pip install hdrhistogram; ./.ci/test does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json from python");
    for (path, journey) in &files {
        let got = &read[path.to_str().expect("utf-8")];
        assert_eq!(
            got["count"],
            journey["requests"],
            "{}: counts differ",
            path.display()
        );
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert_eq!(
                got[p],
                journey["latency_us"][p],
                "{}: {p} differs",
                path.display()
            );
        }
        assert!(got["intervals"].as_u64().unwrap_or(0) >= 30);
    }
}

fn compare_flags_a_p99_regression_and_passes_without_one() {
    let out = folder("compare");
    let slow_orders = "[[faults]]\ninjector = \"order-service\"\nfrom = \"0.5s\"\nfault = { kind = \"latency\", fixed_ms = 80, path = \"/api/v1/orders\" }\n";
    let (_, fast) = run(&out, "gate.toml", &scenario("gate", ""), &[]);
    let (_, slow) = run(&out, "gate.toml", &scenario("gate", slow_orders), &[]);

    // The slow run against the previous run of the scenario (history): its
    // payment p99 regressed (and its breaker no longer opens: 380 ms calls
    // cannot reach 60 % failures within the 600 ms counting interval).
    let judged = faultline(&["compare", slow.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&judged.stdout);
    assert_eq!(judged.status.code(), Some(1), "{text}");
    let regressed: Vec<&str> = text.lines().filter(|l| l.contains("REGRESSION")).collect();
    assert!(
        regressed.iter().any(|l| l.contains("p99_ms:payment:all")),
        "{text}"
    );
    assert!(
        text.contains(&fast.display().to_string()),
        "compared with the wrong run:\n{text}"
    );

    // The fast run against the slow one: better, not a regression.
    let fine = faultline(&[
        "compare",
        fast.to_str().expect("utf-8"),
        "--baseline",
        slow.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        fine.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fine.stdout)
    );
    // A run against an equal one: nothing regressed.
    let loose = faultline(&[
        "compare",
        slow.to_str().expect("utf-8"),
        "--baseline",
        slow.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        loose.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&loose.stdout)
    );

    // The nightly gate: run against a named baseline, fail on regression,
    // and show the comparison in the report.
    let (gated, dir) = run(
        &out,
        "gate.toml",
        &scenario("gate", slow_orders),
        &["--baseline", fast.to_str().expect("utf-8")],
    );
    assert_eq!(
        gated.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&gated.stdout)
    );
    let report = report(&dir);
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["comparison"]["regressed"], true);
    let page = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    assert!(page.contains("REGRESSED"));
    let history = std::fs::read_to_string(out.join("history.jsonl")).expect("history");
    assert_eq!(history.lines().count(), 3);
}

fn a_suite_gets_an_index_page_and_a_run_folder_can_be_redrawn() {
    let out = folder("suite");
    let a = out.join("a.toml");
    let b = out.join("b.toml");
    std::fs::write(&a, scenario("suite-a", "")).expect("a");
    std::fs::write(&b, scenario("suite-b", "")).expect("b");
    let output = faultline(&[
        "run",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let page = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("suite-") && n.to_string_lossy().ends_with(".html")
            })
        })
        .expect("a suite page");
    let html = std::fs::read_to_string(&page).expect("suite page");
    for name in ["suite-a", "suite-b"] {
        assert!(html.contains(name), "{name} missing from the suite page");
    }
    // Each link leads to a run's page.
    let link = html
        .split("href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link");
    let run_page = out.join(link);
    assert!(run_page.exists(), "{} does not exist", run_page.display());

    // Redraw: delete the page and the logs, rebuild them from report.json.
    let dir = run_page.parent().expect("run folder").to_path_buf();
    std::fs::remove_file(dir.join("index.html")).expect("removed");
    std::fs::remove_file(dir.join("payment.hlog")).expect("removed");
    let redrawn = faultline(&["report", dir.to_str().expect("utf-8")]);
    assert_eq!(
        redrawn.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&redrawn.stderr)
    );
    let page = std::fs::read_to_string(dir.join("index.html")).expect("redrawn page");
    assert!(figure(&page, "latency-payment").is_some_and(draws_data));
    assert!(dir.join("payment.hlog").exists());
    let bad = faultline(&["report", out.join("nope").to_str().expect("utf-8")]);
    assert_eq!(bad.status.code(), Some(2));
}
