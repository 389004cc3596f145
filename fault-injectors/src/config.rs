//! Configuration of the standalone `fault-injector` binary: a TOML file
//! and/or command-line injectors.
//!
//! ```toml
//! seed = 42
//! admin = "127.0.0.1:9400"
//!
//! [[injector]]
//! name = "order-service"          # a built-in stand-in of that name
//! listen = "0.0.0.0:40004"
//! faults = [{ kind = "latency", fixed_ms = 50 }]
//!
//! [[injector]]
//! name = "risk-service"
//! listen = "127.0.0.1:50006"
//! upstream = "http://127.0.0.1:40006"   # front mode
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fault::Fault;
use crate::observe::ObserveConfig;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Run seed for every injector's fault decisions.
    #[serde(default)]
    pub seed: u64,
    /// Admin API address (default 127.0.0.1:9400).
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Observation settings shared by all injectors.
    #[serde(default)]
    pub observe: ObserveConfig,
    /// Write `<name>.decisions.tsv` for every injector into this folder.
    #[serde(default)]
    pub decision_log_dir: Option<PathBuf>,
    /// Rotate the wiremock server behind overrides after this many requests.
    #[serde(default)]
    pub rotate_every: Option<u64>,
    /// The injectors.
    #[serde(default, rename = "injector")]
    pub injectors: Vec<InjectorConfig>,
}

/// One `[[injector]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InjectorConfig {
    /// Name of the downstream it stands for.
    pub name: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Built-in stand-in to answer with (default: the one named `name`).
    #[serde(default)]
    pub stand_in: Option<String>,
    /// Front mode: the real service to pass traffic to.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Faults in force from the start.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// A configuration that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid: `path:line:col: message`.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A command-line injector is malformed.
    #[error("{flag} `{value}`: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Both `stand_in` and `upstream` on one injector.
    #[error("injector `{0}`: give either stand_in or upstream, not both")]
    BothBackends(String),
}

impl FileConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` (read from `path`, used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: FileConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| line_col(text, span.start));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        for injector in &config.injectors {
            if injector.stand_in.is_some() && injector.upstream.is_some() {
                return Err(ConfigError::BothBackends(injector.name.clone()));
            }
        }
        let settings = observe_bounds(&config.observe).into_iter().chain(
            config
                .rotate_every
                .map(|n| ("rotate_every", n, ROTATE_EVERY)),
        );
        for (key, value, range) in settings {
            if !range.contains(&value) {
                let (line, column) = key_at(text, key);
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: out_of_range(key, value, &range),
                });
            }
        }
        Ok(config)
    }

    /// Checks the observation settings after command-line flags changed
    /// them (`--bucket-ms`, `--bucket-capacity`).
    pub fn check_flags(&self) -> Result<(), ConfigError> {
        for (key, value, range) in observe_bounds(&self.observe) {
            if !range.contains(&value) {
                let flag = match key {
                    "bucket_ms" => "--bucket-ms",
                    "bucket_capacity" => "--bucket-capacity",
                    _ => "observe",
                };
                return Err(ConfigError::Flag {
                    flag,
                    value: value.to_string(),
                    message: out_of_range(key, value, &range),
                });
            }
        }
        Ok(())
    }
}

/// Arrival bucket width, ms: 1 ms to 1 hour.
pub const BUCKET_MS: std::ops::RangeInclusive<u64> = 1..=3_600_000;
/// Arrival buckets kept per injector (each a few bytes per route).
pub const BUCKET_CAPACITY: std::ops::RangeInclusive<u64> = 1..=10_000_000;
/// How long ids are remembered for duplicate detection, s: up to a day.
pub const ID_WINDOW_S: std::ops::RangeInclusive<u64> = 1..=86_400;
/// Distinct routes tracked per injector.
pub const MAX_ROUTES: std::ops::RangeInclusive<u64> = 1..=10_000;
/// Requests between two rotations of the wiremock server behind overrides.
pub const ROTATE_EVERY: std::ops::RangeInclusive<u64> = 1..=1_000_000_000;

/// Every bounded observation setting with its value and range.
fn observe_bounds(o: &ObserveConfig) -> [(&'static str, u64, std::ops::RangeInclusive<u64>); 4] {
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    [
        ("bucket_ms", o.bucket_ms, BUCKET_MS),
        ("bucket_capacity", wide(o.bucket_capacity), BUCKET_CAPACITY),
        ("id_window_s", o.id_window_s, ID_WINDOW_S),
        ("max_routes", wide(o.max_routes), MAX_ROUTES),
    ]
}

fn out_of_range(key: &str, value: u64, range: &std::ops::RangeInclusive<u64>) -> String {
    format!(
        "{key} must be between {} and {}, got {value}",
        range.start(),
        range.end()
    )
}

/// Line and column of the first `key = ...` of `text` (1:1 if absent).
fn key_at(text: &str, key: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return line_col(text, offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    (1, 1)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl InjectorConfig {
    /// Parses `--stand-in NAME@ADDR`: the built-in stand-in NAME on ADDR.
    pub fn from_stand_in_flag(value: &str) -> Result<Self, ConfigError> {
        let flag_err = |message: &str| ConfigError::Flag {
            flag: "--stand-in",
            value: value.to_string(),
            message: message.to_string(),
        };
        let (name, addr) = value
            .split_once('@')
            .ok_or_else(|| flag_err("expected NAME@ADDR, e.g. order-service@127.0.0.1:40004"))?;
        Ok(Self {
            name: name.to_string(),
            listen: addr.parse().map_err(|_| flag_err("ADDR must be ip:port"))?,
            stand_in: None,
            upstream: None,
            faults: Vec::new(),
        })
    }

    /// Parses `--front NAME@ADDR=URL`: front mode on ADDR passing to URL.
    pub fn from_front_flag(value: &str) -> Result<Self, ConfigError> {
        let flag_err = |message: &str| ConfigError::Flag {
            flag: "--front",
            value: value.to_string(),
            message: message.to_string(),
        };
        let (name, rest) = value.split_once('@').ok_or_else(|| {
            flag_err(
                "expected NAME@ADDR=URL, e.g. risk-service@127.0.0.1:50006=http://127.0.0.1:40006",
            )
        })?;
        let (addr, url) = rest
            .split_once('=')
            .ok_or_else(|| flag_err("expected NAME@ADDR=URL"))?;
        Ok(Self {
            name: name.to_string(),
            listen: addr.parse().map_err(|_| flag_err("ADDR must be ip:port"))?,
            stand_in: None,
            upstream: Some(url.to_string()),
            faults: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let text = r#"
seed = 7
admin = "127.0.0.1:9500"

[observe]
bucket_ms = 10

[[injector]]
name = "order-service"
listen = "127.0.0.1:0"
faults = [{ kind = "status", code = 503, rate = 0.3 }]

[[injector]]
name = "risk-service"
listen = "127.0.0.1:0"
upstream = "http://127.0.0.1:40006"
"#;
        let config = FileConfig::parse(Path::new("x.toml"), text).expect("valid");
        assert_eq!(config.seed, 7);
        assert_eq!(config.observe.bucket_ms, 10);
        assert_eq!(config.injectors.len(), 2);
        assert_eq!(config.injectors[0].faults.len(), 1);
        assert_eq!(
            config.injectors[1].upstream.as_deref(),
            Some("http://127.0.0.1:40006")
        );
    }

    #[test]
    fn a_bad_fault_is_located() {
        let text = "[[injector]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nfaults = [{ kind = \"status\", code = 503, rate = 1.7 }]\n";
        let err = FileConfig::parse(Path::new("inj.toml"), text).expect_err("rate 1.7");
        let msg = err.to_string();
        assert!(msg.starts_with("inj.toml:4:"), "{msg}");
        assert!(
            msg.contains("rate must be between 0 and 1, got 1.7"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_keys_are_located() {
        let text = "seed = 1\nadmn = \"x\"\n";
        let msg = FileConfig::parse(Path::new("f.toml"), text)
            .expect_err("typo")
            .to_string();
        assert!(msg.starts_with("f.toml:2:1:"), "{msg}");
        assert!(msg.contains("unknown field `admn`"), "{msg}");
    }

    #[test]
    fn flags_parse() {
        let s = InjectorConfig::from_stand_in_flag("order-service@127.0.0.1:40004").expect("ok");
        assert_eq!(s.name, "order-service");
        let f = InjectorConfig::from_front_flag("risk@127.0.0.1:1=http://127.0.0.1:2").expect("ok");
        assert_eq!(f.upstream.as_deref(), Some("http://127.0.0.1:2"));
        assert!(InjectorConfig::from_stand_in_flag("nope").is_err());
        assert!(InjectorConfig::from_front_flag("a@1.2.3.4:5").is_err());
    }

    #[test]
    fn settings_beyond_their_bounds_are_located() {
        for (text, at, words) in [
            (
                "[observe]\nbucket_ms = 0\n",
                "f.toml:2:1:",
                "bucket_ms must be between 1 and 3600000, got 0",
            ),
            (
                "seed = 1\n[observe]\n  bucket_capacity = 18446744073709551615\n",
                "f.toml:3:3:",
                "bucket_capacity must be between 1 and 10000000",
            ),
            (
                "rotate_every = 0\n",
                "f.toml:1:1:",
                "rotate_every must be between 1 and",
            ),
            (
                "[observe]\nmax_routes = 99999\n",
                "f.toml:2:1:",
                "max_routes must be between 1 and 10000",
            ),
        ] {
            let msg = FileConfig::parse(Path::new("f.toml"), text)
                .expect_err(text)
                .to_string();
            assert!(msg.starts_with(at) && msg.contains(words), "{text}: {msg}");
        }
        let mut config = FileConfig::parse(Path::new("f.toml"), "").expect("empty is fine");
        config.observe.bucket_ms = 0;
        let msg = config.check_flags().expect_err("--bucket-ms 0").to_string();
        assert!(
            msg.starts_with("--bucket-ms `0`: bucket_ms must be between"),
            "{msg}"
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
