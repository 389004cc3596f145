//! The index page of a suite run: each scenario's verdict with a link to its
//! run folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Verdict;
use super::html::esc;

/// Writes `<out>/suite-<stamp>.html` listing `runs` (name, verdict, folder);
/// returns its path.
pub fn write(
    out: &Path,
    stamp: &str,
    runs: &[(String, Verdict, PathBuf)],
) -> std::io::Result<PathBuf> {
    let mut rows = String::new();
    for (name, verdict, dir) in runs {
        let link = dir
            .strip_prefix(out)
            .unwrap_or(dir)
            .join("index.html")
            .display()
            .to_string();
        let class = verdict.name();
        let _ = write!(
            rows,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"{class}\">{}</td></tr>",
            esc(&link),
            esc(name),
            esc(verdict.name())
        );
    }
    let failed = runs.iter().filter(|(_, v, _)| *v != Verdict::Pass).count();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>faultline suite {stamp}</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}table{{border-collapse:collapse}}.pass{{color:#0a7d2c;font-weight:bold}}.fail{{color:#b00020;font-weight:bold}}</style></head><body><h1>faultline suite {stamp}</h1><p>{} scenarios, {failed} not passing</p><table><tr><th>scenario</th><th>verdict</th></tr>{rows}</table></body></html>\n",
        runs.len()
    );
    let path = out.join(format!("suite-{stamp}.html"));
    std::fs::write(&path, page)?;
    Ok(path)
}
