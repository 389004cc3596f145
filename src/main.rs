//! `faultline`: the command-line edge. Parses arguments, checks every
//! scenario before anything starts, runs them, prints summaries and turns the
//! outcome into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::Parser;
use faultline::cli::{Cli, Command};
use faultline::control;
use faultline::distribute::crew::Distribution;
use faultline::report::{compare, suite, summary};
use faultline::run::{RunOptions, run};
use faultline::scenario::StackKind;
use faultline::verdict::Plan;
use tokio_util::sync::CancellationToken;

/// Every check passed.
const PASS: u8 = 0;
/// A check failed.
const FAIL: u8 = 1;
/// Bad input, or the stack could not be brought up.
const BAD: u8 = 2;
/// Interrupted by Ctrl-C (SIGINT): 128 + 2, as a shell reports it.
const INTERRUPTED: u8 = 130;
/// Interrupted by SIGHUP (a closed terminal): 128 + 1.
const HUNG_UP: u8 = 129;
/// Interrupted by SIGTERM (CI cancelling a job): 128 + 15.
const TERMINATED: u8 = 143;

/// The commands that talk to Docker or a running stack.
fn live(command: Command) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultline: cannot start the async runtime: {e}");
            return BAD;
        }
    };
    let done: anyhow::Result<()> = runtime.block_on(async {
        match command {
            Command::Images { .. } => {
                // A signal must stop cargo and its compilers: they run in a
                // process group of their own, which no terminal's Ctrl-C
                // reaches.
                interrupt_on_signals(CancellationToken::new());
                for image in faultline::stack::docker::images::build_all().await? {
                    let how = if image.built { "built" } else { "up to date" };
                    println!(
                        "{}  {:.1} MB  ({how})",
                        image.image,
                        image.size as f64 / 1e6
                    );
                }
            }
            Command::Sweep => {
                let docker = faultline::stack::docker::connect().await?;
                let swept = faultline::stack::docker::sweep::sweep(&docker).await;
                for removed in &swept.removed {
                    println!("removed {removed}");
                }
                println!(
                    "{} removed; {} left alone (runs of other hosts, boots or PID namespaces, whose owners cannot be judged from here)",
                    swept.removed.len(),
                    swept.foreign
                );
            }
            Command::Inject {
                injector,
                fault,
                admin,
            } => {
                let fault = control::parse_fault(&fault)?;
                let id = control::inject(admin.as_deref(), &injector, fault).await?;
                println!("{injector}: fault {id} set");
            }
            Command::Clear {
                injector,
                id,
                admin,
            } => {
                let n = control::clear(admin.as_deref(), &injector, id.as_deref()).await?;
                println!("{injector}: {n} fault(s) cleared");
            }
            Command::Status { admin } => {
                for (target, injectors) in control::status(admin.as_deref()).await? {
                    let run = target
                        .run
                        .map(|r| format!(" (run {r})"))
                        .unwrap_or_default();
                    println!("{}{run}", target.url);
                    for i in injectors {
                        let faults: Vec<String> = i
                            .faults
                            .iter()
                            .map(|f| serde_json::to_string(f).unwrap_or_default())
                            .collect();
                        println!(
                            "  {:<22} {:>8} arrivals  {}",
                            i.name,
                            i.counters.attempts,
                            if faults.is_empty() {
                                "no fault".into()
                            } else {
                                faults.join(" ")
                            }
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(())
    });
    match done {
        Ok(()) => PASS,
        Err(e) => {
            eprintln!("faultline: {e:#}");
            if FIRST_SIGNAL.load(Ordering::SeqCst) == 0 {
                BAD
            } else {
                interrupted_code()
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,faultline::stack::docker=info,goose=off,reference_stack=error,fault_injectors=error",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match cli.command {
        Command::Validate { scenarios, stack } => validate(&scenarios, stack.map(Into::into)),
        Command::List { dir } => list(&dir),
        Command::Schema => {
            println!("{}", faultline::verdict::Plan::json_schema());
            PASS
        }
        Command::Compare {
            run,
            baseline,
            max_regression,
        } => compare(&run, baseline.as_deref(), &max_regression),
        Command::Report { run } => rerender(&run),
        Command::Worker => worker(),
        Command::K8s { action } => k8s(action),
        Command::Replay { run, out } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("faultline: cannot start the async runtime: {e}");
                    return ExitCode::from(BAD);
                }
            };
            runtime.block_on(replay(&run, out.as_deref()))
        }
        Command::Explore {
            stack,
            profile,
            base,
            faults,
            defects,
            clients,
            jobs,
            out,
            resume,
            production,
            seed,
            quiet,
        } => {
            let profile = match faultline::explore::profile::Profile::named(&profile) {
                Some(p) => p,
                None => {
                    eprintln!(
                        "faultline: unknown --profile `{profile}`; known: as-designed, as-coded"
                    );
                    return ExitCode::from(BAD);
                }
            };
            let profile = match defects
                .iter()
                .map(|d| faultline::explore::profile::parse_defect(d))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(extra) => profile.with_defects(extra),
                Err(e) => {
                    eprintln!("faultline: {e}");
                    return ExitCode::from(BAD);
                }
            };
            let mut classes = Vec::new();
            for name in &faults {
                match faultline::explore::cell::FaultClass::named(name.trim()) {
                    Some(c) if !classes.contains(&c) => classes.push(c),
                    Some(_) => {}
                    None => {
                        eprintln!(
                            "faultline: unknown fault class `{name}` in --faults; known: outage, errors, partial, latency, hang"
                        );
                        return ExitCode::from(BAD);
                    }
                }
            }
            if jobs == 0 || jobs > 64 {
                eprintln!("faultline: --jobs must be between 1 and 64, got {jobs}");
                return ExitCode::from(BAD);
            }
            let faultline = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("faultline: cannot find its own binary to run the cells: {e}");
                    return ExitCode::from(BAD);
                }
            };
            let options = faultline::explore::ExploreOptions {
                faultline,
                stack: stack.into(),
                profile,
                base,
                faults: classes,
                clients,
                jobs,
                out,
                resume,
                time_scale: if production { 1.0 } else { 0.01 },
                seed,
                quiet,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("faultline: cannot start the async runtime: {e}");
                    return ExitCode::from(BAD);
                }
            };
            runtime.block_on(explore(options))
        }
        Command::Images { .. }
        | Command::Sweep
        | Command::Inject { .. }
        | Command::Clear { .. }
        | Command::Status { .. } => live(cli.command),
        Command::Run {
            scenarios,
            out,
            seed,
            stack,
            quiet,
            baseline,
            max_regression,
            workers,
            engine,
            advertise,
            image,
            namespace,
        } => {
            let distribution = workers.map(|n| Distribution {
                workers: usize::from(n),
                engine: engine.into(),
                advertise,
                image,
                kube: faultline::distribute::engine::kubernetes::KubeOptions {
                    namespace,
                    ..Default::default()
                },
                program: None,
            });
            let gate = match baseline
                .map(|b| compare::parse_threshold(&max_regression).map(|t| (b, t)))
                .transpose()
            {
                Ok(gate) => gate,
                Err(e) => {
                    eprintln!("faultline: --max-regression {e}");
                    return ExitCode::from(BAD);
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("faultline: cannot start the async runtime: {e}");
                    return ExitCode::from(BAD);
                }
            };
            runtime.block_on(run_all(
                &scenarios,
                out,
                seed,
                stack.map(Into::into),
                quiet,
                gate,
                distribution,
            ))
        }
    };
    ExitCode::from(code)
}

/// Replays a run folder and says whether decisions and verdict held.
async fn replay(run: &std::path::Path, out: Option<&std::path::Path>) -> u8 {
    let cancel = CancellationToken::new();
    interrupt_on_signals(cancel.clone());
    match faultline::replay::replay(run, out, cancel).await {
        Ok(r) => {
            if let Some(v) = &r.other_version {
                println!(
                    "note: the run was made by faultline {v}; this is {}",
                    env!("CARGO_PKG_VERSION")
                );
            }
            for d in &r.decisions {
                println!(
                    "  {:<22} {} decisions by request identity: {}, {} parted at a fault edge, {} sent in one run only; {} without identity, {} differ",
                    d.injector,
                    d.keyed,
                    if d.differing.is_empty() {
                        "identical".to_string()
                    } else {
                        format!("{} identities differ", d.differing.len())
                    },
                    d.at_edge,
                    d.one_run_only.len(),
                    d.unkeyed.0,
                    d.unkeyed.1
                );
                for line in d.differing.iter().chain(&d.one_run_only).take(5) {
                    println!("      {line}");
                }
            }
            let (was, is, changed) = &r.verdicts;
            println!("  verdict: {was} → {is}");
            for c in changed {
                println!("      {c}");
            }
            println!(
                "replay {} → {}",
                if r.same() { "SAME" } else { "DIFFERENT" },
                r.dir.display()
            );
            if FIRST_SIGNAL.load(Ordering::SeqCst) != 0 {
                interrupted_code()
            } else if r.same() {
                PASS
            } else {
                FAIL
            }
        }
        Err(e) => {
            eprintln!("faultline replay: {e}");
            BAD
        }
    }
}

/// `faultline worker`: serves the coordinator its environment names.
fn worker() -> u8 {
    use faultline::distribute::{contract::WorkerIdentity, worker};
    let identity = match WorkerIdentity::from_env(|name| std::env::var(name).ok()) {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("faultline worker: {e}");
            return BAD;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultline worker: cannot start the async runtime: {e}");
            return BAD;
        }
    };
    match runtime.block_on(worker::serve(&identity)) {
        Ok(()) => PASS,
        Err(e) => {
            eprintln!("faultline worker {}: {e}", identity.index);
            BAD
        }
    }
}

/// `faultline k8s render`: a scenario's workers as Kubernetes manifests.
fn k8s(action: faultline::cli::K8sAction) -> u8 {
    use faultline::distribute::engine::{WorkerSpec, kubernetes};
    let faultline::cli::K8sAction::Render {
        scenario,
        workers,
        image,
        namespace,
        advertise,
        out,
        cpu,
        memory,
    } = action;
    let Some(plans) = load_all(std::slice::from_ref(&scenario), None) else {
        return BAD;
    };
    let scenario = &plans[0].scenario;
    let spec = WorkerSpec {
        count: workers,
        coordinator: advertise,
        run_id: kubernetes::run_id(&scenario.name),
        image,
    };
    let options = kubernetes::KubeOptions {
        namespace,
        cpu,
        memory,
        deadline: Some(scenario.duration + kubernetes::DEADLINE_MARGIN),
        ..Default::default()
    };
    let written = kubernetes::Manifests::render(&spec, &options)
        .and_then(|manifests| kubernetes::write(&manifests, &out));
    match written {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            println!("apply with: kubectl apply -f {}", out.display());
            PASS
        }
        Err(e) => {
            eprintln!("faultline k8s render: {e}");
            BAD
        }
    }
}

/// Runs an exploration and prints its coverage.
async fn explore(options: faultline::explore::ExploreOptions) -> u8 {
    let cancel = CancellationToken::new();
    interrupt_on_signals(cancel.clone());
    let began = std::time::Instant::now();
    match faultline::explore::explore(&options, cancel).await {
        Ok(done) => {
            let e = &done.exploration;
            for row in &e.clients {
                let mark = match row.protected {
                    Some(true) => "PROTECTED",
                    Some(false) => "NOT PROTECTED",
                    None => "NOT FULLY EXPLORED",
                };
                println!("  {mark:<18} {}", row.name);
            }
            println!(
                "{} · {} cells run, {} implied · {:.0} s → {}",
                e.coverage.line,
                e.cells.len(),
                e.skipped.len(),
                began.elapsed().as_secs_f64(),
                done.dir.join("index.html").display()
            );
            if FIRST_SIGNAL.load(Ordering::SeqCst) != 0 {
                interrupted_code()
            } else if e.coverage.protected == e.coverage.total {
                PASS
            } else {
                FAIL
            }
        }
        Err(e) => {
            eprintln!("faultline explore: {e}");
            BAD
        }
    }
}

/// Loads every file; prints every problem found.
fn load_all(paths: &[PathBuf], stack: Option<StackKind>) -> Option<Vec<Plan>> {
    let mut loaded = Vec::new();
    let mut ok = true;
    for path in paths {
        match Plan::load(path, stack) {
            Ok(s) => loaded.push(s),
            Err(errors) => {
                eprintln!("{errors}");
                ok = false;
            }
        }
    }
    ok.then_some(loaded)
}

fn validate(paths: &[PathBuf], stack: Option<StackKind>) -> u8 {
    match load_all(paths, stack) {
        Some(plans) => {
            for p in plans {
                println!(
                    "{}: ok ({}, {} checks, {:.0}s)",
                    p.scenario.path.display(),
                    p.scenario.name,
                    p.checks.len(),
                    p.scenario.duration.as_secs_f64()
                );
            }
            PASS
        }
        None => BAD,
    }
}

fn list(dir: &std::path::Path) -> u8 {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            eprintln!("faultline: cannot read {}: {e}", dir.display());
            return BAD;
        }
    };
    paths.sort();
    for path in paths {
        match Plan::load(&path, None) {
            Ok(Plan { scenario: s, .. }) => {
                let story = s.description.lines().next().unwrap_or_default().to_string();
                println!(
                    "{:<34} {:>6.0}s  {}",
                    s.name,
                    s.duration.as_secs_f64(),
                    story
                );
            }
            Err(e) => println!(
                "{:<34}   invalid: {}",
                path.display(),
                e.0.first().map_or(String::new(), |e| e.message.clone())
            ),
        }
    }
    PASS
}

/// `--baseline` and its threshold.
type Gate = Option<(String, f64)>;

async fn run_all(
    paths: &[PathBuf],
    out: PathBuf,
    seed: Option<u64>,
    stack: Option<StackKind>,
    quiet: bool,
    gate: Gate,
    distribution: Option<Distribution>,
) -> u8 {
    // Every file is checked before anything starts.
    let Some(mut plans) = load_all(paths, stack) else {
        return BAD;
    };
    if let Some(seed) = seed {
        for p in &mut plans {
            p.scenario.seed = seed;
        }
    }
    let cancel = CancellationToken::new();
    interrupt_on_signals(cancel.clone());
    let options = RunOptions {
        out: out.clone(),
        quiet,
        baseline: gate
            .clone()
            .map(|(baseline, max_regression)| compare::Gate {
                baseline,
                max_regression,
            }),
        distribution,
    };
    let mut code = PASS;
    let mut index = Vec::new();
    for plan in &plans {
        if cancel.is_cancelled() {
            break;
        }
        let scenario = &plan.scenario;
        eprintln!(
            "faultline: running {} ({:.0}s)",
            scenario.name,
            scenario.duration.as_secs_f64()
        );
        match run(plan, &options, cancel.clone()).await {
            Ok(outcome) => {
                if let Some(c) = &outcome.report.comparison {
                    print!("{}", compare::text(c));
                } else if gate.is_some() {
                    eprintln!(
                        "faultline: no earlier run of {} to compare with; this run becomes the baseline",
                        scenario.name
                    );
                }
                let record = compare::Summary::of(&outcome.report, &outcome.dir);
                if let Err(e) = compare::append(&out, &record) {
                    eprintln!(
                        "faultline: cannot append to {}: {e}",
                        out.join(compare::HISTORY).display()
                    );
                }
                print!("{}", summary::render(&outcome.report, &outcome.dir));
                let this = if outcome.report.interrupted {
                    interrupted_code()
                } else if outcome.report.passed() {
                    PASS
                } else {
                    FAIL
                };
                code = worst(code, this);
                index.push((scenario.name.clone(), outcome.report.verdict, outcome.dir));
            }
            Err(e) => {
                eprintln!("faultline: {}: {e}", scenario.name);
                code = worst(code, BAD);
            }
        }
    }
    if FIRST_SIGNAL.load(Ordering::SeqCst) != 0 {
        // A signalled process says so, even if its last run had ended.
        code = worst(code, interrupted_code());
    }
    if index.len() > 1 {
        println!("suite:");
        for (name, verdict, dir) in &index {
            println!("  {:<4} {name} → {}", verdict.name(), dir.display());
        }
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        match suite::write(&out, &stamp, &index) {
            Ok(page) => println!("  suite page: {}", page.display()),
            Err(e) => eprintln!("faultline: cannot write the suite page: {e}"),
        }
    }
    code
}

fn compare(run: &std::path::Path, baseline: Option<&std::path::Path>, threshold: &str) -> u8 {
    let threshold = match compare::parse_threshold(threshold) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("faultline: --max-regression {e}");
            return BAD;
        }
    };
    let (report, current) = match compare::load(run) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("faultline: {e}");
            return BAD;
        }
    };
    let base = match baseline {
        Some(dir) => match compare::load(dir) {
            Ok((_, s)) => s,
            Err(e) => {
                eprintln!("faultline: {e}");
                return BAD;
            }
        },
        None => {
            let out = run.parent().unwrap_or(std::path::Path::new("."));
            match compare::previous(out, &report.scenario, run) {
                Some(s) => s,
                None => {
                    println!(
                        "no earlier run of {} in {}: nothing to compare",
                        report.scenario,
                        out.join(compare::HISTORY).display()
                    );
                    return PASS;
                }
            }
        }
    };
    let comparison = compare::compare(&current, &base, threshold);
    print!("{}", compare::text(&comparison));
    if comparison.regressed { FAIL } else { PASS }
}

fn rerender(run: &std::path::Path) -> u8 {
    match compare::load(run) {
        Ok((report, _)) => match report.render(run) {
            Ok(()) => {
                println!("{}", run.join("index.html").display());
                PASS
            }
            Err(e) => {
                eprintln!("faultline: cannot write into {}: {e}", run.display());
                BAD
            }
        },
        Err(e) => {
            eprintln!("faultline: {e}");
            BAD
        }
    }
}

/// Interrupted beats bad input beats a failed check beats a pass.
fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        INTERRUPTED | HUNG_UP | TERMINATED => 3,
        BAD => 2,
        FAIL => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The signals that interrupt a run, each with its exit code.
#[derive(Clone, Copy)]
enum Interrupt {
    /// Ctrl-C.
    Int,
    /// CI cancelling a job, `kill`, a container stop.
    Term,
    /// The terminal went away.
    Hup,
}

impl Interrupt {
    fn code(self) -> u8 {
        match self {
            Self::Int => INTERRUPTED,
            Self::Term => TERMINATED,
            Self::Hup => HUNG_UP,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Int => "SIGINT",
            Self::Term => "SIGTERM",
            Self::Hup => "SIGHUP",
        }
    }
}

/// Exit code of the first signal received (0: none yet).
static FIRST_SIGNAL: AtomicU8 = AtomicU8::new(0);

/// The exit code of an interrupted run: that of the signal that stopped it.
fn interrupted_code() -> u8 {
    match FIRST_SIGNAL.load(Ordering::SeqCst) {
        0 => INTERRUPTED,
        code => code,
    }
}

/// First signal: stop the load (and an image build under way), clear the
/// faults, tear down, report what was seen. Second: exit at once
/// (everything else runs in this process, in containers a later run's sweep
/// removes, or in local workers that stop when their coordinator is gone).
fn interrupted(signal: Interrupt, cancel: &CancellationToken) {
    faultline::stack::docker::images::stop_build();
    if FIRST_SIGNAL
        .compare_exchange(0, signal.code(), Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        eprintln!("faultline: {} again: quitting now", signal.name());
        std::process::exit(i32::from(signal.code()));
    }
    faultline::run::interrupted_by(signal.name());
    eprintln!(
        "faultline: interrupted ({}); stopping the load and tearing down (send it again to quit now)",
        signal.name()
    );
    cancel.cancel();
    goose::trigger_killswitch("interrupted");
}

/// Ctrl-C, SIGTERM and SIGHUP all interrupt a run the same way; only the
/// exit code tells them apart.
fn interrupt_on_signals(cancel: CancellationToken) {
    // Ctrl-C through `ctrlc`: goose installs its own handler through it at
    // every start, which fails (harmlessly) once this one holds the slot.
    let on_int = cancel.clone();
    if let Err(e) = ctrlc::set_handler(move || interrupted(Interrupt::Int, &on_int)) {
        eprintln!(
            "faultline: cannot catch Ctrl-C ({e}); an interrupt will end the process without a report"
        );
    }
    // SIGTERM and SIGHUP on a thread of their own, so a busy runtime never
    // delays them. They are registered here, before the run starts.
    let listening = (|| {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (mut term, mut hup) = {
            let _inside = runtime.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            )
        };
        std::thread::Builder::new()
            .name("faultline-signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    loop {
                        let signal = tokio::select! {
                            Some(()) = term.recv() => Interrupt::Term,
                            Some(()) = hup.recv() => Interrupt::Hup,
                            else => return,
                        };
                        interrupted(signal, &cancel);
                    }
                });
            })?;
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = listening {
        eprintln!(
            "faultline: cannot catch SIGTERM and SIGHUP ({e}); they will end the process without a report"
        );
    }
}
