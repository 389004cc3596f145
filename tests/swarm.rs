//! The `swarm` engine on this machine's Docker engine, checked with the
//! `docker` CLI: three replicas of the faultline image (built here, named
//! by ID so nothing is pulled) join a coordinator listening on 127.0.0.1
//! each with its slot's index; a killed replica is reported with its slot;
//! stopping leaves no service, container or swarm membership that was not
//! there before; a SIGKILLed owner's service and swarm are removed by
//! `faultline sweep`; an engine that already was a swarm manager keeps its
//! swarm; a scenario run on three replicas gives the verdict the same run
//! gives in one process.
//!
//! Without a Docker engine these tests are reported as *ignored*, loudly,
//! never as passed. The trials run one at a time: a swarm is engine-wide.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use faultline::distribute::coordinator::{Joined, gather};
use faultline::distribute::crew::{Distribution, EngineKind};
use faultline::distribute::engine::kubernetes::KubeOptions;
use faultline::distribute::engine::{LostWorker, WorkerSpec, swarm::SwarmWorkers};
use faultline::run::{RunOptions, RunOutcome, run};
use libtest_mimic::{Arguments, Failed, Trial};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");
/// Set in the child this test starts and SIGKILLs (the sweep trial): the
/// coordinator address its workers dial.
const CHILD: &str = "FAULTLINE_SWARM_TEST_CHILD";
/// How long replicas get to join (the first start builds the image).
const JOIN_WITHIN: Duration = Duration::from_secs(120);

fn main() {
    if let Ok(coordinator) = std::env::var(CHILD) {
        return child(coordinator);
    }
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let docker = docker_answers();
    if let Err(why) = &docker {
        eprintln!(
            "\n*** SKIPPED: the Swarm engine tests need a Docker engine and none answers ({why}). \
             They are counted as ignored, not passed. ***\n"
        );
    }
    let was_inactive = docker.is_ok() && swarm_state() == "inactive";
    if docker.is_ok() && !was_inactive {
        eprintln!(
            "\n*** SKIPPED: an_existing_swarm_keeps_running_with_only_our_service_gone needs an engine \
             that is not in a swarm (it makes one and leaves it); this one is {:?}. Counted as ignored. ***\n",
            swarm_state()
        );
    }
    let trials = vec![
        Trial::test(
            "three_replicas_join_by_slot_and_stopping_leaves_the_engine_as_found",
            three_replicas_join,
        ),
        Trial::test("a_killed_replica_is_reported_with_its_slot", killed_replica),
        Trial::test(
            "a_run_on_three_replicas_gives_the_one_process_verdict",
            same_verdict,
        ),
        Trial::test(
            "a_sigkilled_owner_s_service_and_swarm_are_swept",
            sigkilled_owner_swept,
        ),
        Trial::test(
            "an_existing_swarm_keeps_running_with_only_our_service_gone",
            existing_swarm_kept,
        )
        .with_ignored_flag(!was_inactive),
    ]
    .into_iter()
    .map(|t| {
        let ignored = t.has_ignored_flag();
        t.with_ignored_flag(ignored || docker.is_err())
    })
    .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn docker_answers() -> Result<(), String> {
    let out = docker(&["info", "--format", "{{.ServerVersion}}"])?;
    if out.is_empty() {
        Err("no server version".to_string())
    } else {
        Ok(())
    }
}

/// Runs the docker CLI; its stdout, or its stderr as the error.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `inactive`, `active`, …
fn swarm_state() -> String {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap_or_else(|e| e)
}

/// What "the engine as found" means here: swarm state and the networks a
/// swarm brings.
fn engine_state() -> (String, Vec<String>) {
    let networks = docker(&["network", "ls", "--format", "{{.Name}}"]).unwrap_or_default();
    let mut swarm_networks: Vec<String> = networks
        .lines()
        .filter(|n| *n == "docker_gwbridge" || *n == "ingress")
        .map(str::to_string)
        .collect();
    swarm_networks.sort();
    (swarm_state(), swarm_networks)
}

fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(why().into()) }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn spec(count: usize, port: u16, run: &str) -> WorkerSpec {
    WorkerSpec {
        count,
        coordinator: format!("127.0.0.1:{port}"),
        run_id: format!("{run}-{}", std::process::id()),
        image: None,
    }
}

/// Nothing labelled with `run` is left: no service, no container.
fn nothing_left(run: &str) -> Result<(), Failed> {
    let filter = format!("label=faultline.run={run}");
    let services = docker(&["service", "ls", "-q", "--filter", &filter]).unwrap_or_default();
    let containers = docker(&["ps", "-aq", "--filter", &filter]).unwrap_or_default();
    ensure(services.is_empty() && containers.is_empty(), || {
        format!("left behind: services [{services}], containers [{containers}]")
    })
}

/// A task of the workers' service, as the CLI shows it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Task {
    slot: usize,
    container: String,
    env: Vec<String>,
    /// Its container's host name (what the worker says it runs on).
    host: String,
}

/// Every task of `service`, by slot.
fn service_tasks(service: &str) -> Result<Vec<Task>, Failed> {
    let listed = docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}} {{.ID}}",
        service,
    ])?;
    let mut out = Vec::new();
    for line in listed.lines() {
        let Some((name, task)) = line.split_once(' ') else {
            continue;
        };
        let slot: usize = name
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("task name {name} without a slot"))?;
        let container = docker(&[
            "inspect",
            "--format",
            "{{.Status.ContainerStatus.ContainerID}}",
            task,
        ])?;
        let env = docker(&["inspect", "--format", "{{json .Config.Env}}", &container])?;
        let env: Vec<String> = serde_json::from_str(&env).map_err(|e| e.to_string())?;
        let host = docker(&["inspect", "--format", "{{.Config.Hostname}}", &container])?;
        out.push(Task {
            slot,
            container,
            env,
            host,
        });
    }
    out.sort();
    Ok(out)
}

fn three_replicas_join() -> Result<(), Failed> {
    let before = engine_state();
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let spec = spec(3, port, "three");
    let began = Instant::now();
    let workers = rt.block_on(SwarmWorkers::start(&spec))?;
    let created = began.elapsed();
    let joined = rt.block_on(gather(&listener, 3, JOIN_WITHIN));
    let all_joined = began.elapsed();
    let checked = joined
        .map_err(Failed::from)
        .and_then(|joined| joined_by_slot(&joined, workers.service_name()));
    let stopping = Instant::now();
    let stopped = rt.block_on(workers.stop());
    eprintln!(
        "swarm: service created {:.1}s after start (image check and swarm init included), \
         3 workers joined after {:.1}s, stop took {:.1}s",
        created.as_secs_f64(),
        all_joined.as_secs_f64(),
        stopping.elapsed().as_secs_f64()
    );
    checked?;
    stopped?;
    nothing_left(&spec.run_id)?;
    let after = engine_state();
    ensure(after == before, || {
        format!("engine before {before:?}, after {after:?}")
    })
}

/// Worker k joined from the container of slot k + 1, whose environment
/// holds the contract.
fn joined_by_slot(joined: &[Joined], service: &str) -> Result<(), Failed> {
    ensure(
        joined.iter().map(|j| j.index).collect::<Vec<_>>() == [0, 1, 2],
        || "indices".into(),
    )?;
    // Named by ID: a tag would make every task start try a registry.
    let image = docker(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        service,
    ])?;
    ensure(image.starts_with("sha256:"), || {
        format!("the service runs {image}, not an image ID")
    })?;
    let tasks = service_tasks(service)?;
    ensure(
        tasks.iter().map(|t| t.slot).collect::<Vec<_>>() == [1, 2, 3],
        || format!("task slots: {tasks:?}"),
    )?;
    for Task {
        slot, env, host, ..
    } in &tasks
    {
        for wanted in [
            format!("FAULTLINE_WORKER_SLOT={slot}"),
            "FAULTLINE_WORKERS=3".to_string(),
        ] {
            ensure(env.contains(&wanted), || format!("slot {slot}: {env:?}"))?;
        }
        ensure(
            env.iter()
                .any(|e| e.starts_with("FAULTLINE_COORDINATOR=127.0.0.1:")),
            || format!("slot {slot}: {env:?}"),
        )?;
        // The worker introduced itself with its container's host name.
        let worker = &joined[slot - 1];
        ensure(&worker.host == host, || {
            format!(
                "worker {} came from {}, slot {slot}'s container is {host}",
                worker.index, worker.host
            )
        })?;
    }
    Ok(())
}

fn killed_replica() -> Result<(), Failed> {
    let before = engine_state();
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let spec = spec(3, port, "killed");
    let workers = rt.block_on(SwarmWorkers::start(&spec))?;
    let outcome = (|| {
        let _joined = rt.block_on(gather(&listener, 3, JOIN_WITHIN))?;
        ensure(rt.block_on(workers.lost())?.is_empty(), || {
            "a worker lost before any was killed".into()
        })?;
        let tasks = service_tasks(workers.service_name())?;
        let victim = tasks
            .iter()
            .find(|t| t.slot == 2)
            .ok_or_else(|| format!("no slot 2 in {tasks:?}"))?;
        docker(&["kill", &victim.container])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let lost: Vec<LostWorker> = loop {
            let lost = rt.block_on(workers.lost())?;
            if !lost.is_empty() || Instant::now() >= deadline {
                break lost;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        ensure(
            lost.len() == 1 && lost[0].index == 1 && lost[0].place == "swarm task slot 2",
            || format!("lost: {lost:?}"),
        )?;
        eprintln!("reported: {}", lost[0]);
        ensure(lost[0].what.contains("failed"), || lost[0].to_string())?;
        // Never restarted: slot 2 ran one task, the others still run.
        std::thread::sleep(Duration::from_secs(2));
        let tasks = service_tasks(workers.service_name())?;
        ensure(
            tasks.iter().map(|t| t.slot).collect::<Vec<_>>() == [1, 2, 3],
            || format!("tasks after the kill: {tasks:?}"),
        )
    })();
    let stopped = rt.block_on(workers.stop());
    outcome?;
    stopped?;
    nothing_left(&spec.run_id)?;
    let after = engine_state();
    ensure(after == before, || {
        format!("engine before {before:?}, after {after:?}")
    })
}

/// The child: starts two workers dialling `coordinator`, says so, and
/// waits to be killed.
fn child(coordinator: String) {
    let rt = runtime();
    let spec = WorkerSpec {
        count: 2,
        coordinator,
        run_id: format!("swept-{}", std::process::id()),
        image: None,
    };
    match rt.block_on(SwarmWorkers::start(&spec)) {
        Ok(workers) => {
            println!("started {}", spec.run_id);
            // Never stopped: this process is SIGKILLed, as a crash would.
            let _kept = workers;
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        Err(e) => {
            println!("failed {e}");
            std::process::exit(2);
        }
    }
}

fn sigkilled_owner_swept() -> Result<(), Failed> {
    let before = engine_state();
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let mut owner = Command::new(std::env::current_exe()?)
        .env(CHILD, format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = owner.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let run = line.trim().strip_prefix("started ").map(str::to_string);
    let joined = run
        .as_ref()
        .map(|_| rt.block_on(gather(&listener, 2, JOIN_WITHIN)));
    owner.kill()?;
    owner.wait()?;
    let (Some(run), Some(joined)) = (run, joined) else {
        return Err(format!("the owner did not start its workers: {line}").into());
    };
    joined?;
    let swept = Command::new(FAULTLINE).arg("sweep").output()?;
    let stdout = String::from_utf8_lossy(&swept.stdout).to_string();
    eprint!("{stdout}");
    let service = format!("service faultline-workers-{run}");
    ensure(stdout.contains(&service), || {
        format!("`faultline sweep` did not remove {service}:\n{stdout}")
    })?;
    if before.0 == "inactive" {
        ensure(stdout.contains("swarm membership"), || {
            format!("`faultline sweep` did not leave the swarm:\n{stdout}")
        })?;
    }
    nothing_left(&run)?;
    let after = engine_state();
    ensure(after == before, || {
        format!("engine before {before:?}, after {after:?}")
    })
}

fn existing_swarm_kept() -> Result<(), Failed> {
    let before = engine_state();
    docker(&[
        "swarm",
        "init",
        "--listen-addr",
        "127.0.0.1:2377",
        "--advertise-addr",
        "127.0.0.1",
    ])?;
    let outcome = (|| {
        let rt = runtime();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let spec = spec(1, port, "kept");
        let workers = rt.block_on(SwarmWorkers::start(&spec))?;
        let joined = rt.block_on(gather(&listener, 1, JOIN_WITHIN));
        rt.block_on(workers.stop())?;
        joined?;
        nothing_left(&spec.run_id)?;
        ensure(swarm_state() == "active", || {
            format!("the swarm that was there is {}", swarm_state())
        })
    })();
    // Restore the engine as this test found it.
    docker(&["swarm", "leave", "--force"])?;
    if !before.1.iter().any(|n| n == "docker_gwbridge") {
        let _ = docker(&["network", "rm", "docker_gwbridge"]);
    }
    outcome
}

/// Retries absorb 30 % of 503s from risk: no check here depends on how fast
/// a request went, so one process and three replicas must agree on all.
const RISK_ERRORS: &str = r#"
name = "swarm-verdict"
description = "risk-service answers 503 to 30 % of checks for 4 s"
seed = 42
duration = "8s"

[load]
window = "1s"
[[load.journeys]]
kind = "payment"
rate = 60

[[faults]]
injector = "risk-service"
from = "2s"
until = "6s"
fault = { kind = "status", code = 503, rate = 0.3, method = "POST", path = "/api/v1/risk/check" }

[[checks]]
kind = "no_cascade"
journey = "payment"
success_tolerance = 0.1
latency_factor = 0

[[checks]]
kind = "amplification"
downstream = "risk-service"
journey = "payment"
max_ratio = 1.6

[[checks]]
kind = "no_duplicates"
downstream = "order-service"

[[checks]]
kind = "integrity"
journey = "payment"
"#;

/// Every check's name and whether it passed, and the payments sent.
fn verdict(outcome: &RunOutcome) -> (Vec<(String, bool)>, u64) {
    let checks = outcome
        .report
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.passed))
        .collect();
    let sent = outcome
        .observations
        .load
        .series("payment")
        .map_or(0, |s| s.total.requests + s.total.dropped);
    (checks, sent)
}

fn same_verdict() -> Result<(), Failed> {
    let before = engine_state();
    let containers = docker(&["ps", "-aq"])?;
    let plan = support::scenario("swarm-verdict", RISK_ERRORS);
    let options = |distribution| RunOptions {
        out: support::scratch("reports"),
        quiet: true,
        baseline: None,
        distribution,
    };
    let rt = runtime();
    let one = rt
        .block_on(run(&plan, &options(None), CancellationToken::new()))
        .map_err(|e| format!("the one-process run: {e}"))?;
    let swarm = rt
        .block_on(run(
            &plan,
            &options(Some(Distribution {
                workers: 3,
                engine: EngineKind::Swarm,
                advertise: None,
                image: None,
                kube: KubeOptions::default(),
                program: None,
            })),
            CancellationToken::new(),
        ))
        .map_err(|e| format!("the swarm run: {e}"))?;
    let (alone, on_swarm) = (verdict(&one), verdict(&swarm));
    ensure(alone.0.iter().all(|(_, passed)| *passed), || {
        format!("the one-process run did not pass: {:?}", alone.0)
    })?;
    ensure(alone == on_swarm, || {
        format!("one process {alone:?}, three replicas {on_swarm:?}")
    })?;
    let workers = swarm
        .report
        .load_workers
        .as_ref()
        .ok_or("no worker figures")?;
    ensure(
        workers.engine == EngineKind::Swarm && workers.workers.len() == 3,
        || format!("{workers:?}"),
    )?;
    ensure(engine_state() == before, || {
        format!("engine {:?}, was {before:?}", engine_state())
    })?;
    let after = docker(&["ps", "-aq"])?;
    ensure(after == containers, || {
        format!("containers [{after}], were [{containers}]")
    })
}
