//! The harness's top-level modules (`src/<module>.rs` or `src/<module>/`)
//! depend on each other without a cycle: the pipeline reads one way.
//!
//! An edge A → B is any `crate::B` path in A's files (`use`, types,
//! attributes, doc links). `cargo test --test module_graph -- --nocapture`
//! prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .expect("readable src folder")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The first path segment of every `crate::` path in `text`, braces of
/// grouped imports (`crate::{a, b::{c, d}}`) included.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let preceded_by_ident = text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_ident {
            continue; // `some_crate::`, not `crate::`
        }
        let rest = &text[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                // The names at depth 0 of the group.
                let mut depth = 0;
                let mut name_start = Some(0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => name_start = Some(i + 1),
                        _ => {}
                    }
                    if let Some(start) = name_start
                        && !c.is_whitespace()
                        && c != ','
                    {
                        found.insert(ident(&group[start..]).to_string());
                        name_start = None;
                    }
                }
            }
            None => {
                found.insert(ident(rest).to_string());
            }
        }
    }
    found.remove("");
    found
}

fn ident(text: &str) -> &str {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn graph(src: &Path) -> Graph {
    let mut modules: Vec<String> = fs::read_dir(src)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            let module = p.is_dir() || p.extension().is_some_and(|e| e == "rs");
            (module && !matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
        })
        .collect();
    modules.sort();
    modules.dedup();
    let mut graph = Graph::new();
    for module in &modules {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        rust_files(&src.join(format!("{module}.rs")), &mut files);
        let mut deps = BTreeSet::new();
        for file in files {
            let text = fs::read_to_string(&file).expect("readable source");
            deps.extend(crate_paths(&text));
        }
        deps.retain(|d| d != module && modules.contains(d));
        graph.insert(module.clone(), deps);
    }
    graph
}

/// Groups of modules that reach each other (Tarjan), largest first.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in &self.graph[v] {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn the_top_level_modules_have_no_cycle() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let shown: Vec<String> = graph
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("{m:10} -> {}", deps.join(", "))
        })
        .collect();
    println!("{}", shown.join("\n"));
    assert!(graph.contains_key("scenario") && graph.contains_key("stack"));
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "modules that depend on each other: {found:?}\n{}",
        shown.join("\n")
    );
}

#[test]
fn crate_paths_are_read_through_groups() {
    let text = "use crate::{scenario::{A, B}, stack};\nuse other_crate::thing;\n\
                #[serde(with = \"crate::platform::injector_serde\")]\nlet x = crate::clock::now();";
    let got: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(got, ["clock", "platform", "scenario", "stack"]);
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_string(), deps.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
}
