//! `fault-injector`: run injectors as a standalone process (or container),
//! controlled through the HTTP admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use fault_injectors::config::{FileConfig, InjectorConfig};
use fault_injectors::stand_in::PLATFORM_STAND_INS;
use fault_injectors::{Clock, Injector, InjectorSet, StandIn, admin};

/// Fault injectors standing where downstream services would be: stand-ins
/// that answer like the platform's services, or fronts passing traffic to a
/// real service, with latency, error, outage and connection faults under live
/// control.
///
/// Injectors come from a config file (--config) and/or flags. Faults are set
/// in the file or live through the admin API, e.g.:
///
///   curl -X POST localhost:9400/injectors/order-service/faults \
///        -d '{"kind":"status","code":503,"rate":0.3}'
#[derive(Parser, Debug)]
#[command(name = "fault-injector", version, verbatim_doc_comment)]
struct Cli {
    /// TOML config file with [[injector]] tables (see the crate README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A built-in stand-in: NAME@ADDR, e.g. order-service@0.0.0.0:40004.
    #[arg(long = "stand-in", value_name = "NAME@ADDR")]
    stand_ins: Vec<String>,

    /// Front mode: NAME@ADDR=URL, passing traffic to the service at URL.
    #[arg(long = "front", value_name = "NAME@ADDR=URL")]
    fronts: Vec<String>,

    /// Admin API address. Bound to loopback unless told otherwise.
    #[arg(long, value_name = "ADDR", env = "FAULT_INJECTOR_ADMIN")]
    admin: Option<SocketAddr>,

    /// Run seed for fault decisions (overrides the file's).
    #[arg(long, env = "FAULT_INJECTOR_SEED")]
    seed: Option<u64>,

    /// Write NAME.decisions.tsv per injector into this folder.
    #[arg(long, value_name = "DIR")]
    decision_log_dir: Option<PathBuf>,

    /// Arrival bucket width in milliseconds, 1 to 3600000 (overrides the
    /// file's).
    #[arg(long, value_name = "MS")]
    bucket_ms: Option<u64>,

    /// How many arrival buckets each injector keeps, 1 to 10000000
    /// (overrides the file's).
    #[arg(long, value_name = "N")]
    bucket_capacity: Option<usize>,

    /// List the built-in stand-ins and exit.
    #[arg(long)]
    list_stand_ins: bool,
}

const DEFAULT_ADMIN: &str = "127.0.0.1:9400";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if cli.list_stand_ins {
        for name in PLATFORM_STAND_INS {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let (set, admin) = match start(cli).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("fault-injector: {e:#}");
            return ExitCode::from(2);
        }
    };
    wait_for_signal().await;
    admin.shutdown().await;
    set.shutdown().await;
    ExitCode::SUCCESS
}

async fn start(cli: Cli) -> Result<(InjectorSet, admin::AdminServer)> {
    let mut file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::parse(std::path::Path::new("<flags>"), "")?,
    };
    for flag in &cli.stand_ins {
        file.injectors
            .push(InjectorConfig::from_stand_in_flag(flag)?);
    }
    for flag in &cli.fronts {
        file.injectors.push(InjectorConfig::from_front_flag(flag)?);
    }
    if file.injectors.is_empty() {
        anyhow::bail!(
            "no injectors: give --config FILE, --stand-in NAME@ADDR or --front NAME@ADDR=URL"
        );
    }
    if let Some(ms) = cli.bucket_ms {
        file.observe.bucket_ms = ms;
    }
    if let Some(n) = cli.bucket_capacity {
        file.observe.bucket_capacity = n;
    }
    file.check_flags()?;
    let seed = cli.seed.unwrap_or(file.seed);
    let log_dir = cli.decision_log_dir.or(file.decision_log_dir);
    let clock = Clock::start();
    let mut injectors = Vec::new();
    for config in file.injectors {
        let mut builder = Injector::builder(&config.name)
            .listen(config.listen)
            .seed(seed)
            .clock(clock)
            .observe(file.observe.clone())
            .faults(config.faults);
        if let Some(n) = file.rotate_every {
            builder = builder.rotate_every(n);
        }
        if let Some(dir) = &log_dir {
            builder = builder.decision_log(dir.join(format!("{}.decisions.tsv", config.name)));
        }
        builder = match (config.stand_in, config.upstream) {
            (Some(kind), _) => builder.stand_in(StandIn::platform(&kind).with_context(|| {
                format!(
                    "injector `{}`: no built-in stand-in `{kind}` (built-in: {})",
                    config.name,
                    PLATFORM_STAND_INS.join(", ")
                )
            })?),
            (None, Some(url)) => builder.front(url),
            (None, None) => builder,
        };
        let injector = builder.start().await?;
        println!(
            "injector {} listening on {}",
            injector.name(),
            injector.url()
        );
        injectors.push(injector);
    }
    let set = InjectorSet::new(injectors)?;
    let admin_addr = match cli.admin.or(file.admin) {
        Some(addr) => addr,
        None => DEFAULT_ADMIN.parse()?,
    };
    let admin = admin::serve(set.clone(), admin_addr)
        .await
        .with_context(|| format!("cannot serve the admin API on {admin_addr}"))?;
    println!("admin API on {}", admin.url());
    Ok((set, admin))
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
