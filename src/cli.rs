//! The command line: `run`, `validate`, `list`, `schema`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::distribute::crew::EngineKind;
use crate::scenario::StackKind;

/// faultline: drive a service stack with load while faults hit its
/// downstreams, and decide with evidence whether its circuit breakers
/// protect it.
///
/// Exit codes: 0 every check passed; 1 a check failed; 2 bad input or the
/// stack could not be brought up; 130 interrupted by Ctrl-C, 143 by
/// SIGTERM, 129 by SIGHUP (the report is still written; a second signal
/// quits at once).
#[derive(Debug, Parser)]
#[command(name = "faultline", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios (a suite when several) and write a report folder each.
    Run {
        /// Scenario files.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Where run folders are created.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
        /// Seed for every random choice (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Stack kind (overrides the scenario's).
        #[arg(long, value_enum)]
        stack: Option<StackArg>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
        /// Compare each run with `previous` (the last run of the same
        /// scenario in the reports folder's history) or a run folder.
        #[arg(long, value_name = "previous|DIR")]
        baseline: Option<String>,
        /// With --baseline: fail a run whose p99, breaker trip time or
        /// recovery time is worse by more than this (e.g. 10%).
        #[arg(long, value_name = "PCT", default_value = "10%", requires = "baseline")]
        max_regression: String,
        /// Generate the load on N workers (this process keeps the stack,
        /// the faults, the observers and the verdict; worker k sends
        /// arrivals k, k+N, k+2N, … of every journey).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: Option<u16>,
        /// Where the workers run.
        #[arg(long, value_enum, default_value = "local", requires = "workers")]
        engine: EngineArg,
        /// --engine kubernetes: where the pods reach this process,
        /// HOST:PORT (it listens on every interface at that port).
        #[arg(long, value_name = "HOST:PORT", requires = "workers")]
        advertise: Option<String>,
        /// --engine swarm or kubernetes: the faultline image the workers
        /// run (default: built here; Kubernetes needs it in a registry the
        /// cluster pulls from).
        #[arg(long, requires = "workers")]
        image: Option<String>,
        /// --engine kubernetes: the namespace of the workers' objects.
        #[arg(
            long,
            default_value = "default",
            value_name = "NS",
            requires = "workers"
        )]
        namespace: String,
    },
    /// Explore every client of the stack under every fault class, under
    /// load: one generated scenario per client and fault class, run in
    /// parallel; writes the matrix (explore.json, junit.xml, index.html)
    /// with the coverage line. Exit 0 when every client is protected, 1
    /// otherwise.
    Explore {
        /// Stack kind of every cell.
        #[arg(long, value_enum, default_value = "embedded")]
        stack: StackArg,
        /// How the reference stack is set up: `as-designed` (every client
        /// retries within a breaker) or `as-coded` (the gateway calls its
        /// downstreams with a plain HTTP client; others retry 4xx too).
        #[arg(long, default_value = "as-designed", value_name = "PROFILE")]
        profile: String,
        /// External stacks: the scenario whose `[stack]`, `[sut]` and
        /// `[merchant]` every cell uses.
        #[arg(long, value_name = "SCENARIO")]
        base: Option<PathBuf>,
        /// Fault classes, comma-separated: outage, errors, partial,
        /// latency, hang.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "outage,errors,partial,latency,hang"
        )]
        faults: Vec<String>,
        /// Cells run at once (each its own stack, in its own process).
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Defect switches added to the profile, by service, e.g.
        /// `payment-gateway=no_breaker@order` (repeatable).
        #[arg(long = "defect", value_name = "SERVICE=DEFECTS")]
        defects: Vec<String>,
        /// Only these clients, comma-separated: `caller->downstream`, or a
        /// caller's name for all of its clients.
        #[arg(long, value_delimiter = ',', value_name = "CLIENTS")]
        clients: Vec<String>,
        /// Where the exploration folder is created.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
        /// Continue the exploration in this folder: run only the cells it
        /// lacks.
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// Run with the platform's own timings (30 s open timeouts, hours
        /// in all) instead of a hundredth of them.
        #[arg(long)]
        production: bool,
        /// Seed of every cell.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Generate load for a coordinator (`faultline run --workers N`): the
    /// worker reads who it is from its environment (FAULTLINE_COORDINATOR,
    /// FAULTLINE_WORKERS and FAULTLINE_WORKER_INDEX, JOB_COMPLETION_INDEX
    /// or FAULTLINE_WORKER_SLOT) and is given everything else by the
    /// coordinator. Engines start it; people rarely do.
    Worker,
    /// Run a run folder again — same scenario, seed and stack settings —
    /// and show that the fault decisions (per request identity) and the
    /// verdict are the same. Exit 0 when they are, 1 when not.
    Replay {
        /// The run folder to replay.
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
        /// Where the replay's run folder is created (default: next to
        /// RUN_DIR).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare a run with the previous run of its scenario (or a baseline):
    /// exit 1 on a regression beyond the threshold.
    Compare {
        /// The run folder to judge.
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
        /// The run folder to compare with (default: the previous run of the
        /// same scenario in the history of RUN_DIR's reports folder).
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// Largest allowed worsening of p99, trip time and recovery time.
        #[arg(long, value_name = "PCT", default_value = "10%")]
        max_regression: String,
    },
    /// Redraw a run folder's index.html and .hlog files from its report.json.
    Report {
        /// The run folder.
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
    },
    /// Check scenario files without running anything.
    Validate {
        /// Scenario files.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// Check as if run on this stack kind.
        #[arg(long, value_enum)]
        stack: Option<StackArg>,
    },
    /// List the scenarios in a folder (default: the shipped ones).
    List {
        /// Folder holding scenario files.
        #[arg(default_value = "scenarios", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the JSON schema of scenario files (for editors).
    Schema,
    /// The Docker images of the containers and compose stacks.
    Images {
        /// What to do.
        #[command(subcommand)]
        action: ImagesAction,
    },
    /// Kubernetes workers for `faultline run --engine kubernetes`.
    K8s {
        /// What to do.
        #[command(subcommand)]
        action: K8sAction,
    },
    /// Remove the Docker containers and networks that killed faultline runs
    /// of this host and PID namespace left behind (every Docker run does
    /// this first); runs of other hosts or CI jobs are left alone.
    Sweep,
    /// Set a fault live on an injector of a running stack (docker compose
    /// up, a containers or compose run, any fault-injector).
    Inject {
        /// Injector name, e.g. order-service.
        injector: String,
        /// The fault, as in scenario files (kind = "status", code = 503,
        /// rate = 0.3) or as JSON ({"kind":"refuse"}).
        fault: String,
        /// Admin API URL (default: the running faultline stack, else
        /// http://127.0.0.1:9400).
        #[arg(long, env = "FAULTLINE_ADMIN", value_name = "URL")]
        admin: Option<String>,
    },
    /// Clear one fault (by id) or every fault of an injector.
    Clear {
        /// Injector name.
        injector: String,
        /// Fault id (default: all of the injector's faults).
        id: Option<String>,
        /// Admin API URL (as for inject).
        #[arg(long, env = "FAULTLINE_ADMIN", value_name = "URL")]
        admin: Option<String>,
    },
    /// Show every injector of the running stacks: faults and arrivals.
    Status {
        /// Admin API URL (default: every running faultline stack, else
        /// http://127.0.0.1:9400).
        #[arg(long, env = "FAULTLINE_ADMIN", value_name = "URL")]
        admin: Option<String>,
    },
}

/// `faultline images ...`.
#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// Build the static binaries and the FROM scratch images (only what
    /// changed) and print each image with its size.
    Build,
}

/// `faultline k8s ...`.
#[derive(Debug, Subcommand)]
pub enum K8sAction {
    /// Write the manifests of a scenario's workers: an Indexed Job (one
    /// pod per worker, never restarted), a Service for the coordinator and
    /// its EndpointSlice. Apply them with `kubectl apply -f DIR`.
    Render {
        /// The scenario the workers will run (checked as `faultline run`
        /// checks it).
        #[arg(value_name = "SCENARIO")]
        scenario: PathBuf,
        /// How many workers.
        #[arg(long)]
        workers: usize,
        /// The faultline image, in a registry the cluster pulls from
        /// (default: faultline/faultline:latest, never pulled: loaded into
        /// the cluster by hand).
        #[arg(long)]
        image: Option<String>,
        /// The namespace of every object.
        #[arg(long, default_value = "default", value_name = "NS")]
        namespace: String,
        /// Where the pods reach the coordinator, HOST:PORT (an IP address
        /// or a DNS name; not loopback).
        #[arg(long, value_name = "HOST:PORT")]
        advertise: String,
        /// Where the manifests are written.
        #[arg(long, default_value = "k8s", value_name = "DIR")]
        out: PathBuf,
        /// CPU of each worker, requested and limit.
        #[arg(long, default_value = "1")]
        cpu: String,
        /// Memory of each worker, requested and limit.
        #[arg(long, default_value = "1Gi")]
        memory: String,
    },
}

/// `--engine` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EngineArg {
    /// Worker processes on this machine.
    Local,
    /// A Docker Swarm service on this machine's engine (made a single-node
    /// swarm for the run if it is not one).
    Swarm,
    /// An Indexed Job applied with kubectl and your kubeconfig.
    Kubernetes,
}

impl From<EngineArg> for EngineKind {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Local => EngineKind::Local,
            EngineArg::Swarm => EngineKind::Swarm,
            EngineArg::Kubernetes => EngineKind::Kubernetes,
        }
    }
}

/// `--stack` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StackArg {
    /// The reference stack and injectors in this process.
    Embedded,
    /// A SUT you started; injectors on the scenario's fixed ports.
    External,
    /// The reference stack and injectors in Docker containers
    /// (testcontainers; images built locally on first use).
    Containers,
    /// The root docker-compose.yml, driven through testcontainers.
    Compose,
}

impl From<StackArg> for StackKind {
    fn from(s: StackArg) -> Self {
        match s {
            StackArg::Embedded => StackKind::Embedded,
            StackArg::External => StackKind::External,
            StackArg::Containers => StackKind::Containers,
            StackArg::Compose => StackKind::Compose,
        }
    }
}
