//! The `kubernetes` engine: the workers as an Indexed Job (completion
//! index = worker index, `JOB_COMPLETION_INDEX`), dialling the coordinator
//! through a Service of its own, applied and deleted with `kubectl` and the
//! user's kubeconfig ([`manifests`] renders them; `faultline k8s render`
//! writes them for a look or for GitOps).
//!
//! Not tested against a cluster here (there is none): the tests check the
//! rendered manifests field by field, parse them back through the
//! `k8s-openapi` types, and drive a stand-in `kubectl`.
//!
//! What a user needs: the faultline image in a registry the cluster pulls
//! from (`--image`); RBAC in the namespace to create, delete and get Jobs,
//! Services and EndpointSlices, and to get and list pods; a coordinator
//! address the pods can reach.

pub mod manifests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::process::Command;

use super::{EngineError, LostWorker, WorkerSpec, name_part};
pub use manifests::Manifests;

/// Time a Job is given beyond its scenario's duration (scheduling, pulling
/// the image, joining, the end of the run) before Kubernetes stops it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(600);

/// A run id for manifests rendered ahead of a run: the scenario's name and
/// the time, short enough for object names.
pub fn run_id(scenario: &str) -> String {
    let mut name = name_part(scenario);
    name.truncate(24);
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}-{seconds:x}", name.trim_end_matches('-'))
}

/// How the workers' pods are set up, beyond the [`WorkerSpec`].
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// The namespace everything is created in.
    pub namespace: String,
    /// CPU of each worker, requested and limit (a Kubernetes quantity).
    pub cpu: String,
    /// Memory of each worker, requested and limit.
    pub memory: String,
    /// How long the Job may run before Kubernetes stops it (covers a
    /// coordinator that vanished); None: no limit.
    pub deadline: Option<Duration>,
    /// The `kubectl` to run.
    pub kubectl: PathBuf,
}

impl Default for KubeOptions {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            cpu: "1".into(),
            memory: "1Gi".into(),
            deadline: None,
            kubectl: PathBuf::from("kubectl"),
        }
    }
}

/// Workers applied to a cluster.
pub struct KubernetesWorkers {
    kubectl: PathBuf,
    namespace: String,
    selector: String,
}

impl KubernetesWorkers {
    /// Renders the manifests for `spec` into `dir` and applies them. With
    /// no `kubectl` nothing is written or started.
    pub async fn start(
        spec: &WorkerSpec,
        options: &KubeOptions,
        dir: &Path,
    ) -> Result<Self, EngineError> {
        let manifests = Manifests::render(spec, options)?;
        let version = Command::new(&options.kubectl)
            .args(["version", "--client"])
            .output()
            .await;
        if let Err(e) = version {
            return Err(EngineError::Unavailable(format!(
                "cannot run {} ({e}): --engine kubernetes applies the workers with kubectl and your kubeconfig; install it, or write the manifests with `faultline k8s render` and apply them yourself",
                options.kubectl.display()
            )));
        }
        write(&manifests, dir)?;
        let workers = Self {
            kubectl: options.kubectl.clone(),
            namespace: options.namespace.clone(),
            selector: format!("{}={}", manifests::LABEL_RUN, name_part(&spec.run_id)),
        };
        let applied = workers
            .kubectl(&[
                "apply".as_ref(),
                "--filename".as_ref(),
                dir.as_os_str(),
                "--output".as_ref(),
                "name".as_ref(),
            ])
            .await;
        if let Err(e) = applied {
            // Whatever part of it was created goes again.
            if let Err(undo) = workers.delete().await {
                tracing::warn!("{undo}");
            }
            return Err(e);
        }
        Ok(workers)
    }

    /// The workers lost so far (from their pods): failed, restarted, or
    /// unable to start (an image that cannot be pulled, a bad config).
    pub async fn lost(&self) -> Result<Vec<LostWorker>, EngineError> {
        let json = self
            .kubectl(&[
                "get",
                "pods",
                "--namespace",
                &self.namespace,
                "--selector",
                &self.selector,
                "--output",
                "json",
            ])
            .await?;
        lost(&json)
    }

    /// Deletes the Job (its pods with it), the Service and the
    /// EndpointSlice.
    pub async fn stop(self) -> Result<(), EngineError> {
        self.delete().await
    }

    async fn delete(&self) -> Result<(), EngineError> {
        self.kubectl(&[
            "delete",
            "jobs,services,endpointslices",
            "--namespace",
            &self.namespace,
            "--selector",
            &self.selector,
            "--ignore-not-found",
            "--cascade=background",
        ])
        .await
        .map(|_| ())
    }

    /// Runs kubectl; its stdout, or its stderr as the error.
    async fn kubectl<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<String, EngineError> {
        let what = || {
            let words: Vec<String> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            format!("kubectl {}", words.join(" "))
        };
        let output = Command::new(&self.kubectl)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| EngineError::failed(what(), e))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(EngineError::failed(
                what(),
                String::from_utf8_lossy(&output.stderr).trim(),
            ))
        }
    }
}

/// Writes each manifest into `dir` (created if needed) and removes a
/// manifest of an earlier rendering this one does not have (`kubectl apply
/// -f DIR` would apply it); returns the paths written.
pub fn write(manifests: &Manifests, dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::failed(format!("create {}", dir.display()), e))?;
    let files = manifests.files()?;
    for stale in manifests::FILES
        .iter()
        .filter(|name| !files.iter().any(|(f, _)| f == *name))
    {
        let path = dir.join(stale);
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| EngineError::failed(format!("remove {}", path.display()), e))?;
        }
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| EngineError::failed(format!("write {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

/// `kubectl get pods -o json`: a `List` of pods.
#[derive(serde::Deserialize)]
struct Pods {
    items: Vec<Pod>,
}

/// Waiting reasons that mean a container will not start by itself.
const STUCK: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The workers lost according to a pod list (`kubectl get pods -o json`).
pub fn lost(pods_json: &str) -> Result<Vec<LostWorker>, EngineError> {
    let pods: Pods = serde_json::from_str(pods_json)
        .map_err(|e| EngineError::failed("read the workers' pods", e))?;
    let mut by_index: BTreeMap<usize, Vec<&Pod>> = BTreeMap::new();
    for pod in &pods.items {
        let index = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(manifests::INDEX_ANNOTATION))
            .and_then(|i| i.parse().ok());
        if let Some(index) = index {
            by_index.entry(index).or_default().push(pod);
        }
    }
    let mut lost = Vec::new();
    for (index, pods) in by_index {
        let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        if pods.len() > 1 {
            lost.push(LostWorker {
                index,
                place: format!(
                    "pods {}",
                    pods.iter().map(|p| name(p)).collect::<Vec<_>>().join(", ")
                ),
                what: format!("restarted: {} pods ran this index", pods.len()),
            });
            continue;
        }
        let pod = pods[0];
        if let Some(what) = pod_trouble(pod) {
            lost.push(LostWorker {
                index,
                place: format!("pod {}", name(pod)),
                what,
            });
        }
    }
    Ok(lost)
}

/// What went wrong with a worker's pod, if anything.
fn pod_trouble(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    for c in containers {
        if c.restart_count > 0 {
            return Some(format!("restarted {} time(s)", c.restart_count));
        }
        let state = c.state.as_ref();
        if let Some(t) = state.and_then(|s| s.terminated.as_ref())
            && t.exit_code != 0
        {
            return Some(format!(
                "exited with code {}{}",
                t.exit_code,
                t.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(w) = state.and_then(|s| s.waiting.as_ref())
            && let Some(reason) = w.reason.as_deref().filter(|r| STUCK.contains(r))
        {
            return Some(format!(
                "cannot start: {reason}{}",
                w.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
    }
    (status.phase.as_deref() == Some("Failed")).then(|| {
        format!(
            "pod failed{}",
            status
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    })
}
