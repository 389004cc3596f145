//! The `compose` stack: the root `docker-compose.yml` brought up through
//! testcontainers' compose support (`docker compose`), parameterised for the
//! run: images, seed, arrival buckets, each service's env file written from
//! the scenario, ephemeral loopback ports, and the run's labels.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use platform_contract::ServiceKind;
use testcontainers::compose::DockerCompose;
use testcontainers::core::IntoContainerPort;

use super::images::{Images, workspace};
use super::topology::{ADMIN_PORT, Topology};
use super::{DockerError, free_port, labels};
use crate::scenario::Scenario;
use crate::stack::observe_config;

/// A compose project of this run.
pub(super) struct Compose {
    compose: DockerCompose,
}

impl Compose {
    /// Each service's container id.
    pub(super) fn container_ids(&self) -> std::collections::BTreeMap<ServiceKind, String> {
        ServiceKind::ALL
            .into_iter()
            .filter_map(|k| Some((k, self.compose.service(k.name())?.id().to_string())))
            .collect()
    }

    /// `docker compose down`; the caller's sweep of the run's labels removes
    /// anything `down` could not (compose v1 needs the file to go down).
    pub(super) async fn shutdown(self) {
        if let Err(e) = self.compose.down().await {
            tracing::debug!("docker compose down: {e}");
        }
    }
}

/// The topology of `docker-compose.yml`: containers reached by service name.
pub fn topology() -> Topology {
    Topology::new("injectors".into(), |k| k.name().to_string())
}

/// The variable that publishes `kind`'s port (`FAULTLINE_PAYMENT_GATEWAY_PORT`).
pub fn port_var(name: &str) -> String {
    format!("FAULTLINE_{}_PORT", name.to_uppercase().replace('-', "_"))
}

pub(super) async fn start(
    scenario: &Scenario,
    images: &Images,
    run: &str,
    decisions: &Path,
    out: &Path,
) -> Result<(Topology, Compose), DockerError> {
    check_cli()?;
    let mut topology = topology();
    let absolute = |p: &Path| {
        std::fs::create_dir_all(p)
            .and_then(|()| std::path::absolute(p))
            .map_err(|e| DockerError::engine(format!("create {}", p.display()), e))
    };
    let decisions = absolute(decisions)?;
    let env_dir = absolute(&out.join("compose"))?;
    for kind in ServiceKind::ALL {
        let text = Topology::env_file(&topology.service_env(scenario, kind));
        let file = env_dir.join(format!("{}.env", kind.name()));
        std::fs::write(&file, text)
            .map_err(|e| DockerError::engine(format!("write {}", file.display()), e))?;
    }
    let observe = observe_config(scenario);
    let mut vars: HashMap<String, String> = labels(run)
        .into_iter()
        .filter_map(|(k, v)| {
            let var = match k.as_str() {
                super::LABEL_RUN => "FAULTLINE_RUN",
                super::LABEL_PID => "FAULTLINE_PID",
                super::LABEL_STARTED => "FAULTLINE_STARTED",
                super::LABEL_BOOT => "FAULTLINE_BOOT",
                super::LABEL_PIDNS => "FAULTLINE_PIDNS",
                super::LABEL_HOSTNAME => "FAULTLINE_HOSTNAME",
                _ => return None,
            };
            Some((var.to_string(), v))
        })
        .collect();
    vars.extend([
        ("FAULTLINE_SEED".into(), scenario.seed.to_string()),
        ("FAULTLINE_BUCKET_MS".into(), observe.bucket_ms.to_string()),
        (
            "FAULTLINE_BUCKET_CAPACITY".into(),
            observe.bucket_capacity.to_string(),
        ),
        (
            "FAULTLINE_DECISIONS".into(),
            decisions.display().to_string(),
        ),
        ("FAULTLINE_ENV_DIR".into(), env_dir.display().to_string()),
        (
            "FAULTLINE_INJECTOR_IMAGE".into(),
            images.fault_injector.clone(),
        ),
        (
            "FAULTLINE_STACK_IMAGE".into(),
            images.reference_stack.clone(),
        ),
        // Free ports of this run's own: it never collides with a stack an
        // engineer has up, and a container started again keeps its port.
        (port_var("admin"), free_port()?.to_string()),
    ]);
    for kind in ServiceKind::ALL {
        vars.insert(port_var(kind.name()), free_port()?.to_string());
    }
    let file = workspace().join("docker-compose.yml");
    let mut compose = DockerCompose::with_local_client(&[file])
        .with_project_name(format!("faultline-{run}"))
        .with_wait(false)
        .with_env_vars(vars);
    compose
        .up()
        .await
        .map_err(|e| DockerError::engine("docker compose up", e))?;
    let compose = Compose { compose };
    topology.admin_port = published(&compose, "injectors", ADMIN_PORT).await?;
    for kind in ServiceKind::ALL {
        let port = published(&compose, kind.name(), Topology::service_port(kind)).await?;
        topology.published.insert(kind, port);
    }
    Ok((topology, compose))
}

async fn published(compose: &Compose, service: &str, port: u16) -> Result<u16, DockerError> {
    let container = compose.compose.service(service).ok_or_else(|| {
        DockerError::engine(
            format!("find compose service {service}"),
            "not in the project",
        )
    })?;
    container
        .get_host_port_ipv4(port.tcp())
        .await
        .map_err(|e| DockerError::engine(format!("read {service}'s published port {port}"), e))
}

/// testcontainers runs `docker compose` (the v2 CLI plugin).
fn check_cli() -> Result<(), DockerError> {
    let output = Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DockerError::NoCompose(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(DockerError::NoCompose(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use platform_contract::Downstream;
    use serde_yaml::Value;

    use super::*;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn compose_file() -> Value {
        let path = root().join("docker-compose.yml");
        let text = std::fs::read_to_string(&path).expect("docker-compose.yml");
        serde_yaml::from_str(&text).expect("docker-compose.yml is YAML")
    }

    fn strings(value: &Value) -> Vec<&str> {
        value
            .as_sequence()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `--stand-in NAME@ADDR` or `--front NAME@ADDR=URL` for every
    /// downstream, as the contract places its injectors.
    fn contract_injectors() -> BTreeSet<(String, String)> {
        Downstream::ALL
            .into_iter()
            .map(|d| {
                let listen = format!("{}@0.0.0.0:{}", d.injector_name(), d.default_port());
                match d.fronts() {
                    Some(service) => (
                        "--front".to_string(),
                        format!(
                            "{listen}=http://{}:{}",
                            service.name(),
                            service.default_port()
                        ),
                    ),
                    None => ("--stand-in".to_string(), listen),
                }
            })
            .collect()
    }

    #[test]
    fn the_compose_file_places_every_injector_where_the_contract_does() {
        let compose = compose_file();
        let command = strings(&compose["services"]["injectors"]["command"]);
        let placed: BTreeSet<(String, String)> = command
            .windows(2)
            .filter(|pair| matches!(pair[0], "--stand-in" | "--front"))
            .map(|pair| (pair[0].to_string(), pair[1].to_string()))
            .collect();
        assert_eq!(placed, contract_injectors());
        assert_eq!(
            strings(&compose["services"]["injectors"]["ports"]),
            [format!(
                "127.0.0.1:${{{}-{ADMIN_PORT}}}:{ADMIN_PORT}",
                port_var("admin")
            )]
        );
    }

    #[test]
    fn the_compose_file_runs_every_service_on_its_contract_port() {
        let compose = compose_file();
        let services = compose["services"].as_mapping().expect("services");
        let mut names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
        assert!(names.remove("injectors"));
        let expected: BTreeSet<&str> = ServiceKind::ALL.map(ServiceKind::name).into();
        assert_eq!(names, expected);
        for kind in ServiceKind::ALL {
            let service = &compose["services"][kind.name()];
            let port = kind.default_port();
            assert_eq!(strings(&service["command"]), [kind.name()]);
            assert_eq!(
                strings(&service["ports"]),
                [format!(
                    "127.0.0.1:${{{}-{port}}}:{port}",
                    port_var(kind.name())
                )],
                "{kind}"
            );
            let env_file = service["env_file"].as_str().expect("env_file");
            assert!(
                env_file.ends_with(&format!("reference-stack/compose}}/{}.env", kind.name())),
                "{kind}: {env_file}"
            );
        }
    }

    /// The committed env files the compose file names wire each service to
    /// the injectors container, on the contract's ports and env vars.
    #[test]
    fn the_compose_env_files_wire_every_client_to_its_injector() {
        for kind in ServiceKind::ALL {
            let path = root().join(format!("reference-stack/compose/{}.env", kind.name()));
            let text = std::fs::read_to_string(&path).expect("committed env file");
            let env: BTreeMap<&str, &str> =
                text.lines().filter_map(|l| l.split_once('=')).collect();
            assert_eq!(
                env.get("LISTEN_ADDR").copied(),
                Some(format!("0.0.0.0:{}", kind.default_port()).as_str())
            );
            let urls: BTreeMap<&str, String> = env
                .iter()
                .filter(|(k, _)| k.ends_with("_URL"))
                .map(|(k, v)| (*k, v.to_string()))
                .collect();
            let expected: BTreeMap<&str, String> = kind
                .downstreams()
                .iter()
                .map(|d| {
                    let url = format!("http://injectors:{}", d.default_port());
                    (d.url_env_var(), url)
                })
                .collect();
            assert_eq!(urls, expected, "{}", path.display());
        }
    }
}
