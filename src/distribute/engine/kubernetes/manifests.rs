//! The manifests of a Kubernetes run, built from the typed API structs of
//! `k8s-openapi` (so every field has the type and name the API server
//! expects): an Indexed Job of workers and a Service for the coordinator,
//! with the EndpointSlice that points it at the coordinator's address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodAffinityTerm,
    PodAntiAffinity, PodSpec, PodTemplateSpec, ResourceRequirements, SecurityContext, Service,
    ServicePort, ServiceSpec, WeightedPodAffinityTerm,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::KubeOptions;
use crate::distribute::contract::{COORDINATOR, JOB_COMPLETION_INDEX, WORKERS};
use crate::distribute::engine::{EngineError, WorkerSpec, name_part};

/// The label every object of a run carries (the same key as on Docker).
pub const LABEL_RUN: &str = "faultline.run";
/// Where an Indexed Job's pod finds its index (the downward API).
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// The image used when none is given: loaded into the cluster by hand
/// (`kind load docker-image`, `minikube image load`), never pulled.
pub const DEFAULT_IMAGE: &str = "faultline/faultline:latest";
/// The files [`Manifests::files`] names, in the order they are applied.
pub const FILES: [&str; 3] = [SERVICE_FILE, ENDPOINTS_FILE, JOB_FILE];
const SERVICE_FILE: &str = "00-coordinator-service.yaml";
const ENDPOINTS_FILE: &str = "01-coordinator-endpointslice.yaml";
const JOB_FILE: &str = "02-workers-job.yaml";
/// The coordinator port's name on the Service and the EndpointSlice.
const PORT_NAME: &str = "wire";

/// A run's manifests, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifests {
    /// The coordinator's Service: selectorless (ClusterIP) for an IP
    /// address, `ExternalName` for a host name.
    pub service: Service,
    /// The Service's endpoint, when the coordinator is given by IP.
    pub endpoints: Option<EndpointSlice>,
    /// The workers.
    pub job: Job,
}

/// Where the coordinator is, as the cluster will reach it.
enum Advertised<'a> {
    Ip(IpAddr, u16),
    Host(&'a str, u16),
}

impl Manifests {
    /// The manifests for `spec`: `spec.coordinator` is the coordinator's
    /// address as pods reach it (IP or host name, and port); the workers
    /// dial it through the Service's DNS name.
    pub fn render(spec: &WorkerSpec, options: &KubeOptions) -> Result<Self, EngineError> {
        let count = i32::try_from(spec.count)
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "--workers {}: at least 1, at most {}",
                    spec.count,
                    i32::MAX
                ))
            })?;
        check_dns_label("namespace", &options.namespace)?;
        let advertised = advertised(&spec.coordinator)?;
        let port = match advertised {
            Advertised::Ip(_, port) | Advertised::Host(_, port) => port,
        };
        for (what, value) in [("cpu", &options.cpu), ("memory", &options.memory)] {
            check_quantity(what, value)?;
        }
        let run = name_part(&spec.run_id);
        let service_name = shorten(format!("faultline-coordinator-{run}"));
        let job_name = shorten(format!("faultline-workers-{run}"));
        check_dns_label("run id", &service_name)?;
        let labels = |component: &str| {
            BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_string(),
                    "faultline".to_string(),
                ),
                (
                    "app.kubernetes.io/component".to_string(),
                    component.to_string(),
                ),
                (LABEL_RUN.to_string(), run.clone()),
            ])
        };
        let meta = |name: &str, component: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels(component)),
            ..Default::default()
        };
        let service_port = ServicePort {
            name: Some(PORT_NAME.into()),
            port: i32::from(port),
            target_port: Some(IntOrString::Int(i32::from(port))),
            protocol: Some("TCP".into()),
            ..Default::default()
        };
        let (service_spec, endpoints) = match advertised {
            Advertised::Ip(ip, _) => {
                let mut slice_meta = meta(&service_name, "coordinator");
                if let Some(l) = slice_meta.labels.as_mut() {
                    // Ties the slice to the Service; no controller manages it.
                    l.insert("kubernetes.io/service-name".into(), service_name.clone());
                    l.insert(
                        "endpointslice.kubernetes.io/managed-by".into(),
                        "faultline".into(),
                    );
                }
                let slice = EndpointSlice {
                    metadata: slice_meta,
                    address_type: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
                    endpoints: vec![Endpoint {
                        addresses: vec![ip.to_string()],
                        conditions: Some(EndpointConditions {
                            ready: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ports: Some(vec![EndpointPort {
                        name: Some(PORT_NAME.into()),
                        port: Some(i32::from(port)),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                };
                // No selector: the endpoint is the slice above.
                let spec = ServiceSpec {
                    type_: Some("ClusterIP".into()),
                    ports: Some(vec![service_port]),
                    ..Default::default()
                };
                (spec, Some(slice))
            }
            Advertised::Host(host, _) => {
                // A DNS alias: the port the workers dial is the coordinator's.
                let spec = ServiceSpec {
                    type_: Some("ExternalName".into()),
                    external_name: Some(host.to_string()),
                    ports: Some(vec![service_port]),
                    ..Default::default()
                };
                (spec, None)
            }
        };
        let service = Service {
            metadata: meta(&service_name, "coordinator"),
            spec: Some(service_spec),
            ..Default::default()
        };
        let dial = format!("{service_name}.{}.svc:{port}", options.namespace);
        let job = Job {
            metadata: meta(&job_name, "worker"),
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".into()),
                completions: Some(count),
                parallelism: Some(count),
                // A worker that fails is not replaced: its slice would run
                // twice. The coordinator declares the run invalid instead.
                backoff_limit: Some(0),
                active_deadline_seconds: options
                    .deadline
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                ttl_seconds_after_finished: Some(3600),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels("worker")),
                        ..Default::default()
                    }),
                    spec: Some(pod_spec(spec, options, &dial, &run)),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(Self {
            service,
            endpoints,
            job,
        })
    }

    /// Each manifest as a YAML file: `(file name, text)`, named so that
    /// `kubectl apply -f DIR` applies them in order (the Service before
    /// the workers that dial it).
    pub fn files(&self) -> Result<Vec<(&'static str, String)>, EngineError> {
        let yaml = |what: &str, r: Result<String, serde_yaml::Error>| {
            r.map_err(|e| EngineError::failed(format!("write the {what} manifest"), e))
        };
        let mut files = vec![(
            SERVICE_FILE,
            yaml("service", serde_yaml::to_string(&self.service))?,
        )];
        if let Some(slice) = &self.endpoints {
            files.push((
                ENDPOINTS_FILE,
                yaml("endpoint slice", serde_yaml::to_string(slice))?,
            ));
        }
        files.push((JOB_FILE, yaml("job", serde_yaml::to_string(&self.job))?));
        Ok(files)
    }
}

/// The workers' pod: `faultline worker`, its index from the Job, never
/// restarted, spread over nodes where it can be.
fn pod_spec(spec: &WorkerSpec, options: &KubeOptions, dial: &str, run: &str) -> PodSpec {
    let quantities = BTreeMap::from([
        ("cpu".to_string(), Quantity(options.cpu.clone())),
        ("memory".to_string(), Quantity(options.memory.clone())),
    ]);
    let (image, pull) = match &spec.image {
        Some(image) => (image.clone(), "IfNotPresent"),
        None => (DEFAULT_IMAGE.to_string(), "Never"),
    };
    let env = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        ..Default::default()
    };
    PodSpec {
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(5),
        // A worker talks to the coordinator only, never to the API server.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            label_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([(
                                    LABEL_RUN.to_string(),
                                    run.to_string(),
                                )])),
                                ..Default::default()
                            }),
                            topology_key: "kubernetes.io/hostname".into(),
                            ..Default::default()
                        },
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        containers: vec![Container {
            name: "worker".into(),
            image: Some(image),
            image_pull_policy: Some(pull.into()),
            command: Some(vec!["/faultline".into(), "worker".into()]),
            env: Some(vec![
                env(COORDINATOR, dial.to_string()),
                env(WORKERS, spec.count.to_string()),
                // Kubernetes sets it too; named here so the contract shows.
                EnvVar {
                    name: JOB_COMPLETION_INDEX.into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: format!("metadata.annotations['{INDEX_ANNOTATION}']"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            // Requests equal limits: a load generator throttled by its CPU
            // quota would measure its own stalls as latency.
            resources: Some(ResourceRequirements {
                requests: Some(quantities.clone()),
                limits: Some(quantities),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Object names are DNS labels: at most 63 characters.
fn shorten(mut name: String) -> String {
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// `host:port` or `[v6]:port`, as the Service will point at it.
fn advertised(address: &str) -> Result<Advertised<'_>, EngineError> {
    let bad = |why: &str| {
        EngineError::Invalid(format!(
            "--advertise {address:?}: {why} (expected HOST:PORT, the address pods reach the coordinator at)"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port is not 1–65535"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if ip.is_loopback() || ip.is_unspecified() {
            return Err(bad(
                "a loopback or unspecified address is not reachable from a pod",
            ));
        }
        return Ok(Advertised::Ip(ip, port));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !valid || host == "localhost" {
        return Err(bad("not an IP address or a DNS name pods can resolve"));
    }
    Ok(Advertised::Host(host, port))
}

/// A DNS-1123 label: lowercase letters, digits and `-`, at most 63.
fn check_dns_label(what: &str, value: &str) -> Result<(), EngineError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{what} {value:?} is not a Kubernetes name (lowercase letters, digits and '-', at most 63)"
        )))
    }
}

/// A Kubernetes quantity as the API server accepts it: a decimal number
/// and an optional suffix (`500m`, `1.5`, `512Mi`, `2G`, `1e3`).
fn check_quantity(what: &str, value: &str) -> Result<(), EngineError> {
    const SUFFIXES: [&str; 14] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
    ];
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let number_ok = !number.is_empty()
        && number != "."
        && number.matches('.').count() <= 1
        && number.parse::<f64>().is_ok_and(|n| n > 0.0);
    let suffix_ok = suffix.is_empty()
        || suffix == "E"
        || SUFFIXES.contains(&suffix)
        || suffix
            .strip_prefix(['e', 'E'])
            .is_some_and(|exp| exp.parse::<i32>().is_ok());
    if number_ok && suffix_ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "--{what} {value:?} is not a positive Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_checked_like_the_api_server_would() {
        for ok in ["1", "500m", "1.5", "512Mi", "1Gi", "2G", "1e3", "100k"] {
            assert!(check_quantity("cpu", ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "-1", "1GB", "one", "1..5", ".", "1 Gi", "Mi"] {
            assert!(check_quantity("cpu", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn advertised_addresses_must_be_reachable_from_a_pod() {
        assert!(matches!(
            advertised("10.1.2.3:7400"),
            Ok(Advertised::Ip(_, 7400))
        ));
        assert!(matches!(
            advertised("[fd00::5]:7400"),
            Ok(Advertised::Ip(IpAddr::V6(_), 7400))
        ));
        assert!(matches!(
            advertised("loadgen.example.internal:7400"),
            Ok(Advertised::Host("loadgen.example.internal", 7400))
        ));
        for bad in [
            "127.0.0.1:7400",
            "0.0.0.0:7400",
            "localhost:7400",
            "10.1.2.3",
            "10.1.2.3:0",
            "10.1.2.3:70000",
            "bad_host:7400",
            ":7400",
        ] {
            assert!(advertised(bad).is_err(), "{bad}");
        }
    }
}
