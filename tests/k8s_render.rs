//! The Kubernetes engine without a cluster: the manifests for four workers
//! carry every field the worker contract relies on and parse back through
//! the `k8s-openapi` types; `faultline k8s render` writes them, and refuses
//! a bad scenario or option with exit 2 and nothing written; the engine
//! applies, watches and deletes through `kubectl` (a stand-in here that
//! records its arguments), and without `kubectl` starts nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use faultline::distribute::contract::WorkerIdentity;
use faultline::distribute::engine::kubernetes::{
    self, KubeOptions, KubernetesWorkers, Manifests, manifests,
};
use faultline::distribute::engine::{EngineError, WorkerSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");
const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scenarios/notification-outage.toml"
);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-k8s-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn four_workers(coordinator: &str) -> WorkerSpec {
    WorkerSpec {
        count: 4,
        coordinator: coordinator.into(),
        run_id: "Nightly_42".into(),
        image: Some("registry.example/faultline:1.0".into()),
    }
}

fn options() -> KubeOptions {
    KubeOptions {
        namespace: "loadtest".into(),
        cpu: "2".into(),
        memory: "768Mi".into(),
        deadline: Some(Duration::from_secs(900)),
        ..Default::default()
    }
}

#[test]
fn four_workers_make_an_indexed_job_that_dials_the_coordinator_service() {
    let m = Manifests::render(&four_workers("10.20.30.40:7400"), &options()).unwrap();

    // The Service: no selector, the coordinator's port by name.
    let service_name = m.service.metadata.name.clone().unwrap();
    assert_eq!(service_name, "faultline-coordinator-nightly-42");
    assert_eq!(m.service.metadata.namespace.as_deref(), Some("loadtest"));
    let svc = m.service.spec.as_ref().unwrap();
    assert_eq!(svc.selector, None);
    assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
    let port = &svc.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.target_port.clone()),
        (Some("wire"), 7400, Some(IntOrString::Int(7400)))
    );

    // Its EndpointSlice: the coordinator's address, tied to the Service.
    let slice = m.endpoints.as_ref().unwrap();
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["kubernetes.io/service-name"], service_name);
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.endpoints[0].addresses, ["10.20.30.40"]);
    let slice_port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (slice_port.name.as_deref(), slice_port.port),
        (Some("wire"), Some(7400))
    );

    // The Job: indexed, N at once, never retried, bounded in time.
    let job = m.job.spec.as_ref().unwrap();
    assert_eq!(job.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(job.completions, Some(4));
    assert_eq!(job.parallelism, Some(4));
    assert_eq!(job.backoff_limit, Some(0));
    assert_eq!(job.active_deadline_seconds, Some(900));
    let pod = job.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.containers.len(), 1);
    let worker = &pod.containers[0];
    assert_eq!(
        worker.command.as_deref(),
        Some(&["/faultline".to_string(), "worker".to_string()][..])
    );
    assert_eq!(
        worker.image.as_deref(),
        Some("registry.example/faultline:1.0")
    );
    let resources = worker.resources.as_ref().unwrap();
    for wanted in [&resources.requests, &resources.limits] {
        let q = wanted.as_ref().unwrap();
        assert_eq!(q["cpu"].0, "2");
        assert_eq!(q["memory"].0, "768Mi");
    }
    let run_label = |labels: &Option<std::collections::BTreeMap<String, String>>| {
        labels.as_ref().unwrap()[manifests::LABEL_RUN].clone()
    };
    assert_eq!(run_label(&m.job.metadata.labels), "nightly-42");
    assert_eq!(
        run_label(&job.template.metadata.as_ref().unwrap().labels),
        "nightly-42"
    );
    assert_eq!(run_label(&m.service.metadata.labels), "nightly-42");
    assert_eq!(run_label(&slice.metadata.labels), "nightly-42");

    // What pod 2 of the Job sees reads back, through the contract every
    // engine uses, as worker 2 of 4 dialling the Service.
    let env = worker.env.as_ref().unwrap();
    let index_source = env
        .iter()
        .find(|e| e.name == "JOB_COMPLETION_INDEX")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    assert_eq!(
        index_source.as_deref(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );
    let mut seen: HashMap<String, String> = env
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    seen.insert("JOB_COMPLETION_INDEX".into(), "2".into());
    let identity = WorkerIdentity::from_env(|k| seen.get(k).cloned()).unwrap();
    assert_eq!(
        identity,
        WorkerIdentity {
            index: 2,
            workers: 4,
            coordinator: "faultline-coordinator-nightly-42.loadtest.svc:7400".into(),
        }
    );
}

#[test]
fn the_yaml_parses_back_through_the_kubernetes_types() {
    let m = Manifests::render(&four_workers("10.20.30.40:7400"), &options()).unwrap();
    let files = m.files().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, manifests::FILES);
    let text = |i: usize| files[i].1.as_str();
    let service: Service = serde_yaml::from_str(text(0)).unwrap();
    let slice: EndpointSlice = serde_yaml::from_str(text(1)).unwrap();
    let job: Job = serde_yaml::from_str(text(2)).unwrap();
    assert_eq!(service, m.service);
    assert_eq!(Some(slice), m.endpoints);
    assert_eq!(job, m.job);
    // The API's own spelling, as kubectl reads it.
    let raw: serde_yaml::Value = serde_yaml::from_str(text(2)).unwrap();
    assert_eq!(raw["apiVersion"], "batch/v1");
    assert_eq!(raw["kind"], "Job");
    assert_eq!(raw["spec"]["completionMode"], "Indexed");
    assert_eq!(raw["spec"]["backoffLimit"], 0);
    assert_eq!(raw["spec"]["template"]["spec"]["restartPolicy"], "Never");
    let raw: serde_yaml::Value = serde_yaml::from_str(text(1)).unwrap();
    assert_eq!(raw["apiVersion"], "discovery.k8s.io/v1");
    assert_eq!(raw["addressType"], "IPv4");
}

#[test]
fn a_coordinator_named_by_dns_gets_an_external_name_service() {
    let m = Manifests::render(&four_workers("loadgen.example.internal:7400"), &options()).unwrap();
    let svc = m.service.spec.unwrap();
    assert_eq!(svc.type_.as_deref(), Some("ExternalName"));
    assert_eq!(
        svc.external_name.as_deref(),
        Some("loadgen.example.internal")
    );
    assert_eq!(m.endpoints, None);
    // A rendering without a slice removes the one an earlier one wrote.
    let dir = scratch("dns");
    let by_ip = Manifests::render(&four_workers("10.20.30.40:7400"), &options()).unwrap();
    kubernetes::write(&by_ip, &dir).unwrap();
    assert!(dir.join(manifests::FILES[1]).exists());
    let by_name =
        Manifests::render(&four_workers("loadgen.example.internal:7400"), &options()).unwrap();
    kubernetes::write(&by_name, &dir).unwrap();
    assert!(!dir.join(manifests::FILES[1]).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn render(args: &[&str]) -> std::process::Output {
    Command::new(FAULTLINE)
        .args(["k8s", "render"])
        .args(args)
        .output()
        .expect("faultline runs")
}

#[test]
fn k8s_render_writes_the_manifests_of_a_scenario() {
    let dir = scratch("cli");
    let out = render(&[
        SCENARIO,
        "--workers",
        "4",
        "--advertise",
        "10.0.0.5:7400",
        "--namespace",
        "loadtest",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kubectl apply -f"), "{stdout}");
    let job: Job =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join(manifests::FILES[2])).unwrap())
            .unwrap();
    let spec = job.spec.unwrap();
    assert_eq!(spec.completions, Some(4));
    // The scenario's 120 s plus the margin for starting and ending.
    assert_eq!(
        spec.active_deadline_seconds,
        Some(120 + kubernetes::DEADLINE_MARGIN.as_secs() as i64)
    );
    let container = &spec.template.spec.unwrap().containers[0];
    // No image given: the local one, never pulled.
    assert_eq!(container.image.as_deref(), Some(manifests::DEFAULT_IMAGE));
    assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
    let name = job.metadata.name.unwrap();
    assert!(
        name.starts_with("faultline-workers-notification-outage-"),
        "{name}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_scenario_or_option_exits_2_located_and_writes_nothing() {
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/bad/check-unknown-kind.toml"
    );
    let dir = scratch("bad");
    let out_dir = dir.to_str().unwrap();
    let out = render(&[
        bad,
        "--workers",
        "4",
        "--advertise",
        "10.0.0.5:7400",
        "--out",
        out_dir,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("check-unknown-kind.toml:16:8: unknown variant `breaker_trips`"),
        "{stderr}"
    );
    for args in [
        ["--workers", "4", "--advertise", "127.0.0.1:7400"],
        ["--workers", "0", "--advertise", "10.0.0.5:7400"],
        ["--workers", "4", "--advertise", "10.0.0.5"],
    ] {
        let mut all = vec![SCENARIO];
        all.extend(args);
        all.extend(["--out", out_dir]);
        let out = render(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("faultline k8s render:"), "{stderr}");
    }
    let out = render(&[
        SCENARIO,
        "--workers",
        "4",
        "--advertise",
        "10.0.0.5:7400",
        "--cpu",
        "lots",
        "--out",
        out_dir,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cpu \"lots\""));
    assert!(!Path::new(out_dir).exists(), "nothing is written");
}

/// A stand-in `kubectl` that logs its arguments and answers `get pods`
/// with `pods.json` beside it.
fn fake_kubectl(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.join("kubectl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {log}\ncase \"$1\" in get) cat {pods};; esac\n",
            log = dir.join("calls.log").display(),
            pods = dir.join("pods.json").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A pod of the Job with `index`, in `phase`, its container in `state`.
fn pod(index: usize, phase: &str, state: serde_json::Value, restarts: i32) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("faultline-workers-nightly-42-{index}-x7k2p"),
            "annotations": { "batch.kubernetes.io/job-completion-index": index.to_string() }
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{
                "name": "worker", "image": "registry.example/faultline:1.0", "imageID": "",
                "ready": phase == "Running", "restartCount": restarts, "state": state
            }]
        }
    })
}

#[tokio::test]
async fn the_engine_applies_reports_lost_pods_and_deletes_through_kubectl() {
    let dir = scratch("kubectl");
    let kubectl = fake_kubectl(&dir);
    let pods = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            pod(0, "Running", serde_json::json!({"running": {}}), 0),
            pod(1, "Failed", serde_json::json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}), 0),
            pod(2, "Pending", serde_json::json!({"waiting": {"reason": "ErrImagePull", "message": "not found"}}), 0),
            pod(3, "Running", serde_json::json!({"running": {}}), 1),
        ]
    });
    std::fs::write(dir.join("pods.json"), pods.to_string()).unwrap();
    let manifests_dir = dir.join("manifests");
    let options = KubeOptions {
        kubectl: kubectl.clone(),
        ..options()
    };
    let workers =
        KubernetesWorkers::start(&four_workers("10.20.30.40:7400"), &options, &manifests_dir)
            .await
            .unwrap();
    let lost = workers.lost().await.unwrap();
    let shown: Vec<String> = lost.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "worker 1 (pod faultline-workers-nightly-42-1-x7k2p): exited with code 137 (OOMKilled)",
            "worker 2 (pod faultline-workers-nightly-42-2-x7k2p): cannot start: ErrImagePull: not found",
            "worker 3 (pod faultline-workers-nightly-42-3-x7k2p): restarted 1 time(s)",
        ]
    );
    workers.stop().await.unwrap();
    let calls = std::fs::read_to_string(dir.join("calls.log")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls[0], "version --client");
    assert_eq!(
        calls[1],
        format!("apply --filename {} --output name", manifests_dir.display())
    );
    assert_eq!(
        calls[2],
        "get pods --namespace loadtest --selector faultline.run=nightly-42 --output json"
    );
    assert_eq!(
        calls[3],
        "delete jobs,services,endpointslices --namespace loadtest --selector faultline.run=nightly-42 --ignore-not-found --cascade=background"
    );
    for name in manifests::FILES {
        assert!(manifests_dir.join(name).is_file(), "{name} applied");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_kubectl_nothing_is_written_or_started() {
    let dir = scratch("no-kubectl");
    let options = KubeOptions {
        kubectl: dir.join("no-such-kubectl"),
        ..options()
    };
    let e = KubernetesWorkers::start(&four_workers("10.20.30.40:7400"), &options, &dir)
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, EngineError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("faultline k8s render"), "{e}");
    assert!(!dir.exists(), "nothing written");
}
