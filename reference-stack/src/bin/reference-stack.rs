//! `reference-stack <service>`: run one modelled service, configured from the
//! platform's env vars (see the crate README).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use reference_stack::{Defects, ServiceConfig, ServiceKind};
use tracing_subscriber::EnvFilter;

const ENV_HELP: &str = "\
Environment (the platform's names; flags win over env):
  LISTEN_ADDR / PORT          where to listen (default 0.0.0.0:<platform port>)
  <NAME>_SERVICE_URL          downstream base URLs: RISK, ORDER, CHANNEL, NOTIFICATION,
                              ANALYTICS, ACCOUNTING, WITHDRAWAL, MERCHANT, GATEWAY;
                              BANK_API_URL for the bank (default http://localhost:<port>)
  TIME_SCALE                  multiply every client duration (0.01: 30 s -> 300 ms)
  BREAKER_FLAVOUR             breaker library modelled: gobreaker (default), pybreaker,
                              resilience4j, opossum or envoy
  BREAKER_MAX_REQUESTS, BREAKER_INTERVAL_MS, BREAKER_OPEN_TIMEOUT_MS,
  BREAKER_MIN_REQUESTS, BREAKER_FAILURE_RATIO, RETRY_MAX_ATTEMPTS, RETRY_DELAY_MS,
  ATTEMPT_TIMEOUT_MS, ASYNC_TIMEOUT_MS
                              client settings for every client (BREAKER_FLAVOUR
                              too); add _<CLIENT> (e.g. BREAKER_OPEN_TIMEOUT_MS_ORDER)
                              for one client
  DEFECTS                     defect switches, e.g. no_breaker@order,sync_notification
  MERCHANTS                   gateway merchants: id:api_key:secret,... (default
                              M001:test-api-key:test-api-secret)
  SIGNATURE_WINDOW_SECS       gateway X-Timestamp window (default 120)
  STORE_CAPACITY              records kept per store (default 4000000)
  LOG_FORMAT=json             JSON log lines; RUST_LOG sets the filter (default info)

Exit status: 2 on bad configuration or when the port cannot be bound.";

/// Run one service of the modelled payment platform.
#[derive(Debug, Parser)]
#[command(name = "reference-stack", version, after_help = ENV_HELP)]
struct Cli {
    /// payment-gateway, merchant-service, settlement-service, withdrawal-service or
    /// merchant-auth-service.
    #[arg(value_parser = parse_service)]
    service: ServiceKind,
    /// Listen address (overrides LISTEN_ADDR / PORT).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Defect switches (overrides DEFECTS), e.g. `no_breaker@order,sync_notification`.
    #[arg(long)]
    defects: Option<String>,
    /// Time scale for client durations (overrides TIME_SCALE).
    #[arg(long)]
    time_scale: Option<f64>,
}

fn parse_service(s: &str) -> Result<ServiceKind, String> {
    s.parse()
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config(cli: &Cli) -> anyhow::Result<ServiceConfig> {
    let mut config = ServiceConfig::from_env(cli.service)?;
    if let Some(listen) = cli.listen {
        config = config.listen(listen);
    }
    if let Some(defects) = &cli.defects {
        config = config.defects(Defects::parse("--defects", defects)?);
    }
    if let Some(scale) = cli.time_scale {
        config = config.time_scale(scale);
    }
    // Check now so a mistake is reported before anything starts.
    config.resolve()?;
    Ok(config)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match config(&cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("reference-stack: bad configuration: {err:#}");
            return ExitCode::from(2);
        }
    };
    let service = match reference_stack::start(config).await {
        Ok(service) => service,
        Err(err) => {
            eprintln!("reference-stack: cannot start {}: {err}", cli.service);
            return ExitCode::from(2);
        }
    };
    if let Err(err) = wait_for_signal().await {
        eprintln!("reference-stack: {err:#}");
    }
    tracing::info!(service = cli.service.name(), "shutting down");
    service.shutdown().await;
    ExitCode::SUCCESS
}
