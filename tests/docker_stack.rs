//! The Docker stacks end to end, with the `faultline` binary as a user runs
//! it: a `containers` run killed with SIGKILL is swept by the next start, a
//! `containers` run and a `compose` run judge an order outage correctly and
//! leave no container or network behind, a SIGTERM stops a `containers` run
//! and removes everything, and on a shared host the sweep removes only dead
//! runs of its own host and PID namespace.
//!
//! Without a Docker engine these tests are reported as *ignored*, loudly,
//! never as passed (a custom harness decides at run time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// An order outage on the reference stack at 1/100 of the platform's
/// timings: the payment breaker must open and payments recover.
const OUTAGE: &str = r#"
name = "docker-order-outage"
seed = 7
duration = "8s"

[stack]
time_scale = 0.01

[load]
window = "100ms"
timeout = "3s"
[[load.journeys]]
kind = "payment"
rate = 30
[[load.journeys]]
kind = "dashboard"
rate = 5

[[faults]]
injector = "order-service"
from = "2s"
until = "5s"
fault = { kind = "refuse" }

[[checks]]
kind = "breaker_opens"
downstream = "order-service"
within = "1s"

[[checks]]
kind = "recovers_within"
journey = "payment"
downstream = "order-service"
within = "2s"

[[checks]]
kind = "integrity"
journey = "payment"
"#;

/// The dashboard's hop to payment-gateway frozen by `docker pause`: the
/// merchant-service breaker for it must open, and the dashboard recover.
/// A hung call only counts if it ends in the generation it started in
/// (gobreaker drops older outcomes, while every start counts as a request),
/// so the failure share a closed breaker sees is about 1 − call time /
/// interval. The hop's attempt timeout is cut to 20 ms: 4 attempts and
/// backoff end in ~140 ms of the 600 ms interval (77 % ≥ 60 %). With the
/// platform's numbers (4 × 30 s against 60 s) a hang never opens the
/// breaker — see payment-channel-latency.
const PAUSED_GATEWAY: &str = r#"
name = "docker-gateway-paused"
seed = 7
duration = "8s"

[stack]
time_scale = 0.01

[stack.client.payment-gateway]
attempt_timeout = "2s"

[load]
window = "100ms"
timeout = "3s"
[[load.journeys]]
kind = "dashboard"
rate = 20

[[faults]]
injector = "payment-gateway"
from = "2s"
until = "5s"
container = "pause"

[[checks]]
kind = "breaker_opens"
downstream = "payment-gateway"
within = "2s"

[[checks]]
kind = "recovers_within"
journey = "dashboard"
downstream = "payment-gateway"
within = "2s"
"#;

fn main() {
    let mut args = Arguments::from_args();
    // One stack at a time: two would fight over two cores, and each test
    // checks that nothing of any ended run is left.
    args.test_threads = Some(1);
    let docker = docker_answers();
    if let Err(why) = &docker {
        eprintln!(
            "\n*** SKIPPED: the Docker stack tests need a Docker engine and none answers ({why}). \
             They are counted as ignored, not passed. ***\n"
        );
    }
    // The compose trial also needs `docker compose` (./.ci/test installs it).
    let compose = docker.clone().and_then(|()| compose_answers());
    if let (Ok(()), Err(why)) = (&docker, &compose) {
        eprintln!(
            "\n*** SKIPPED: a_compose_run_judges_an_outage_and_goes_down needs `docker compose` \
             (the Compose v2 plugin, or Debian's package docker-compose with .ci/docker-compose-v1-plugin; \
             ./.ci/test installs them) and it does not run ({why}). Counted as ignored, not passed. ***\n"
        );
    }
    let trials = vec![
        Trial::test(
            "a_sigkilled_containers_run_is_swept_by_the_next_start",
            sigkilled_run_is_swept,
        ),
        Trial::test("a_compose_run_judges_an_outage_and_goes_down", compose_run)
            .with_ignored_flag(compose.is_err()),
        Trial::test(
            "a_paused_gateway_container_opens_the_dashboards_breaker",
            paused_gateway,
        ),
        Trial::test(
            "a_sigtermed_containers_run_reports_and_leaves_nothing",
            sigtermed_run,
        ),
        Trial::test(
            "the_sweep_removes_only_dead_runs_of_this_host_and_namespace",
            shared_host_sweep,
        ),
    ]
    .into_iter()
    .map(|t| {
        let ignored = t.has_ignored_flag();
        t.with_ignored_flag(ignored || docker.is_err())
    })
    .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn compose_answers() -> Result<(), String> {
    let out = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("no message")
            .trim()
            .to_string())
    }
}

fn docker_answers() -> Result<(), String> {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-docker-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn faultline(dir: &Path, stack: &str) -> Command {
    faultline_with(dir, stack, OUTAGE)
}

fn faultline_with(dir: &Path, stack: &str, scenario: &str) -> Command {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).expect("scenario written");
    let mut cmd = Command::new(FAULTLINE);
    cmd.args(["run", "--quiet", "--stack", stack, "--out"])
        .arg(dir.join("reports"))
        .arg(file)
        .stdin(Stdio::null());
    cmd
}

/// `docker ps` / `docker network ls` ids with a label filter.
fn labelled(kind: &str, filter: &str) -> Vec<String> {
    let args: &[&str] = match kind {
        "container" => &["ps", "-aq", "--filter"],
        _ => &["network", "ls", "-q", "--filter"],
    };
    let out = Command::new("docker")
        .args(args)
        .arg(format!("label={filter}"))
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(why().into()) }
}

/// Passed a judged outage: exit 0, the order-service breaker seen opening.
fn judged(output: &Output) -> Result<(), Failed> {
    passed(output, "PASS breaker_opens:order-service")
}

/// Exit 0 and `line` in the summary.
fn passed(output: &Output, line: &str) -> Result<(), Failed> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure(output.status.code() == Some(0), || {
        format!(
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status.code()
        )
    })?;
    ensure(stdout.contains(line), || stdout.to_string())
}

fn paused_gateway() -> Result<(), Failed> {
    let dir = scratch("paused");
    let output = faultline_with(&dir, "containers", PAUSED_GATEWAY)
        .output()
        .expect("faultline runs");
    passed(&output, "PASS breaker_opens:payment-gateway")?;
    passed(&output, "PASS recovers_within:dashboard")?;
    nothing_of_finished_runs_left()
}

fn sigkilled_run_is_swept() -> Result<(), Failed> {
    let dir = scratch("sigkill");
    let mut victim = faultline(&dir, "containers")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("faultline starts");
    let owner = format!("faultline.pid={}", victim.id());
    // On a fresh clone the images are built first (a release build of two
    // crates: minutes on two cores).
    let deadline = Instant::now() + Duration::from_secs(1500);
    let up = loop {
        let up = labelled("container", &owner);
        if up.len() >= 6 {
            break Ok(up);
        }
        if Instant::now() > deadline {
            break Err("the containers run never brought its 6 containers up".to_string());
        }
        if let Ok(Some(status)) = victim.try_wait() {
            break Err(format!("faultline ended early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // SIGKILL (a no-op if it already ended): no chance to clean up.
    let _ = victim.kill();
    victim.wait().expect("reaped");
    let left = up?;
    // Killed mid-run, it removed nothing.
    let networks = labelled("network", &owner);
    ensure(labelled("container", &owner).len() == left.len(), || {
        "containers vanished without a sweep".into()
    })?;
    ensure(networks.len() == 1, || {
        format!("networks left: {networks:?}")
    })?;

    // The next start sweeps them, then runs and removes its own stack.
    let next = faultline(&dir, "containers")
        .output()
        .expect("faultline runs");
    judged(&next)?;
    let containers = labelled("container", &owner);
    let networks = labelled("network", &owner);
    ensure(containers.is_empty() && networks.is_empty(), || {
        format!("left by the killed run: containers {containers:?}, networks {networks:?}")
    })?;
    nothing_of_finished_runs_left()
}

fn compose_run() -> Result<(), Failed> {
    let dir = scratch("compose");
    let output = faultline(&dir, "compose").output().expect("faultline runs");
    judged(&output)?;
    nothing_of_finished_runs_left()
}

/// No container or network of any faultline run is left (the trials run
/// one at a time, so every run has ended); stacks started by hand
/// (`faultline.pid=0`) are not the tests' business.
fn nothing_of_finished_runs_left() -> Result<(), Failed> {
    for kind in ["ps", "network"] {
        let mut cmd = Command::new("docker");
        match kind {
            "ps" => cmd.args(["ps", "-a"]),
            _ => cmd.args(["network", "ls"]),
        };
        let out = cmd
            .args(["--filter", "label=faultline", "--format"])
            .arg("{{.ID}} {{.Label \"faultline.pid\"}}")
            .output()
            .expect("docker runs");
        let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.ends_with(" 0"))
            .map(str::to_string)
            .collect();
        ensure(left.is_empty(), || {
            format!("docker {kind}: resources of ended faultline runs remain: {left:?}")
        })?;
    }
    Ok(())
}

/// A `containers` run interrupted by SIGTERM (as CI cancels a job) while its
/// fault is in force: exit 143, the report written and marked, and no
/// container, network, published port or process of it left.
fn sigtermed_run() -> Result<(), Failed> {
    let dir = scratch("sigterm");
    let long = OUTAGE
        .replace("duration = \"8s\"", "duration = \"60s\"")
        .replace("until = \"5s\"", "until = \"50s\"");
    let mut child = faultline_with(&dir, "containers", &long)
        .env("FAULTLINE_LOG", "faultline=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");
    let owner = format!("faultline.pid={}", child.id());
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let outcome = sigterm_when_faulted(&mut child, &lines, &owner);
    if outcome.is_err() {
        let _ = child.kill();
    }
    let waited = child.wait();
    let (status, ports) = outcome?;
    ensure(waited.is_ok(), || "not reaped".into())?;
    let stderr: Vec<String> = lines.iter().collect();
    ensure(status.code() == Some(143), || {
        format!("exit {:?}\n{}", status.code(), stderr.join("\n"))
    })?;
    let run = std::fs::read_dir(dir.join("reports"))
        .expect("reports")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or("no run folder")?;
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    ensure(report["interrupted_by"] == "SIGTERM", || {
        format!("interrupted_by: {}", report["interrupted_by"])
    })?;
    let (containers, networks) = (labelled("container", &owner), labelled("network", &owner));
    ensure(containers.is_empty() && networks.is_empty(), || {
        format!("left: containers {containers:?}, networks {networks:?}")
    })?;
    for port in &ports {
        ensure(
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_secs(1),
            )
            .is_err(),
            || format!("127.0.0.1:{port} still accepts connections"),
        )?;
    }
    let marker = dir.display().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default())
                .contains(&marker)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ensure(left.is_empty(), || {
        format!("processes of the run remain: {left:?}")
    })?;
    nothing_of_finished_runs_left()
}

/// Waits until the run's fault is set (its images may be built first:
/// minutes on a fresh clone), notes its published ports, sends SIGTERM and
/// waits for the exit.
fn sigterm_when_faulted(
    child: &mut std::process::Child,
    lines: &std::sync::mpsc::Receiver<String>,
    owner: &str,
) -> Result<(std::process::ExitStatus, Vec<u16>), Failed> {
    let mut seen = Vec::new();
    let mut wait_for = |text: &str, within: Duration| -> Result<(), Failed> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(_) => {
                    return Err(format!("no `{text}` in time; stderr:\n{}", seen.join("\n")).into());
                }
            }
        }
    };
    wait_for("preflight passed", Duration::from_secs(1500))?;
    wait_for("fault set", Duration::from_secs(30))?;
    let containers = labelled("container", owner);
    let ports = published_ports(&containers);
    ensure(containers.len() >= 6 && ports.len() >= 6, || {
        format!("containers {containers:?}, ports {ports:?}")
    })?;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    ensure(sent.success(), || "kill -TERM failed".into())?;
    let signalled = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Ok((status, ports));
        }
        if signalled.elapsed() > Duration::from_secs(90) {
            return Err("still running 90 s after SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host ports `containers` publish.
fn published_ports(containers: &[String]) -> Vec<u16> {
    let mut ports = Vec::new();
    for id in containers {
        let out = Command::new("docker")
            .args(["port", id])
            .output()
            .expect("docker runs");
        // `40004/tcp -> 127.0.0.1:34567`
        ports.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u16>().ok()),
        );
    }
    ports
}

/// Several CI jobs share one Docker daemon: resources labelled by another
/// job (another PID namespace) or another host claim the very same pid as a
/// live process here, or a pid that is dead here. `faultline sweep` must
/// remove neither's, keep this host's live run's, and remove (and name)
/// this host's dead run's.
fn shared_host_sweep() -> Result<(), Failed> {
    use faultline::stack::docker::sweep::{HostIdentity, process_start};
    let tag = format!("fltest-sweep-{}", std::process::id());
    let image = format!("{tag}:empty");
    // A container needs an image, and nothing can be pulled: an empty one
    // (it is created, never started).
    let imported = Command::new("sh")
        .args([
            "-c",
            &format!("tar cf - -T /dev/null | docker import - {image}"),
        ])
        .output()
        .expect("sh runs");
    ensure(imported.status.success(), || {
        String::from_utf8_lossy(&imported.stderr).into_owned()
    })?;
    let me = HostIdentity::current();
    let other_job = HostIdentity {
        pid_ns: "pid:[4026599999]".into(),
        hostname: "another-ci-job".into(),
        ..me.clone()
    };
    let other_host = HostIdentity {
        boot_id: "00000000-0000-4000-8000-000000000000".into(),
        hostname: "another-host".into(),
        ..me.clone()
    };
    let live = std::process::id();
    let live_started = process_start(live).unwrap_or(0);
    // A pid that is certainly dead here: a child that ended and was reaped.
    let dead = {
        let mut c = Command::new("true").spawn().expect("true runs");
        c.wait().expect("reaped");
        c.id()
    };
    let cases = [
        ("mine-live", &me, live, live_started, true),
        ("mine-dead", &me, dead, 1, false),
        ("job-b-same-pid", &other_job, live, live_started, true),
        ("job-b-dead-pid", &other_job, dead, 1, true),
        ("host-b-same-pid", &other_host, live, live_started, true),
    ];
    let mut created = Vec::new();
    let result = (|| -> Result<(), Failed> {
        for (name, host, pid, started, _) in &cases {
            let mut labels = vec![
                "faultline=1".to_string(),
                format!("faultline.run={tag}-{name}"),
                format!("faultline.pid={pid}"),
                format!("faultline.started={started}"),
            ];
            labels.extend(host.labels().iter().map(|(k, v)| format!("{k}={v}")));
            let label_args: Vec<String> = labels
                .iter()
                .flat_map(|l| ["--label".to_string(), l.clone()])
                .collect();
            let full = format!("{tag}-{name}");
            for what in ["network", "container"] {
                let mut cmd = Command::new("docker");
                match what {
                    "network" => cmd.args(["network", "create"]).args(&label_args).arg(&full),
                    _ => cmd
                        .args(["create", "--name", &full, "--network", "none"])
                        .args(&label_args)
                        .args([&image, "/nothing"]),
                };
                let out = cmd.output().expect("docker runs");
                ensure(out.status.success(), || {
                    format!(
                        "docker {what} {full}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })?;
                created.push((what, full.clone()));
            }
        }
        let out = Command::new(FAULTLINE)
            .arg("sweep")
            .output()
            .expect("faultline runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure(out.status.success(), || {
            format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))
        })?;
        for (name, _, _, _, kept) in &cases {
            let full = format!("{tag}-{name}");
            let containers = labelled("container", &format!("faultline.run={full}"));
            let networks = labelled("network", &format!("faultline.run={full}"));
            if *kept {
                ensure(containers.len() == 1 && networks.len() == 1, || {
                    format!("{full} was removed, but its owner cannot be proven dead:\n{stdout}")
                })?;
                ensure(!stdout.contains(&full), || {
                    format!("{full} named as removed:\n{stdout}")
                })?;
            } else {
                ensure(containers.is_empty() && networks.is_empty(), || {
                    format!("{full}, a dead run of this host, was not removed:\n{stdout}")
                })?;
                for what in ["container", "network"] {
                    ensure(stdout.contains(&format!("removed {what} {full}")), || {
                        format!("the sweep did not say it removed {what} {full}:\n{stdout}")
                    })?;
                }
            }
        }
        Ok(())
    })();
    // Whatever the outcome, nothing of this test stays.
    for (what, name) in created.iter().rev() {
        let args: &[&str] = match *what {
            "network" => &["network", "rm"],
            _ => &["rm", "-f"],
        };
        let _ = Command::new("docker").args(args).arg(name).output();
    }
    let _ = Command::new("docker").args(["rmi", &image]).output();
    result
}
