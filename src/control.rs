//! Live fault control of a running stack from the command line (`faultline
//! inject`, `clear`, `status`): the injectors' admin API of a `docker compose
//! up` stack, of a `faultline run --stack containers|compose` in progress
//! (found by its Docker labels), or of any `fault-injector` given by URL.

use anyhow::{Context, Result, bail};
use fault_injectors::{AdminClient, Fault, InjectorStatus};
use testcontainers::bollard::query_parameters::ListContainersOptions;

use crate::stack::docker::{self, LABEL_ROLE, LABEL_RUN, topology::ADMIN_PORT};

/// Where `docker compose up` publishes the admin API.
pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:9400";

/// An admin API and what it belongs to.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL.
    pub url: String,
    /// The faultline run (`manual` for a hand-started compose stack), if
    /// found through Docker.
    pub run: Option<String>,
}

/// The admin APIs to talk to: `admin` if given; else every running
/// faultline injectors container; else [`DEFAULT_ADMIN`].
pub async fn targets(admin: Option<&str>) -> Vec<Target> {
    if let Some(url) = admin {
        return vec![Target {
            url: url.trim_end_matches('/').to_string(),
            run: None,
        }];
    }
    let found = discover().await;
    if found.is_empty() {
        vec![Target {
            url: DEFAULT_ADMIN.into(),
            run: None,
        }]
    } else {
        found
    }
}

/// Admin APIs published by running faultline injectors containers.
async fn discover() -> Vec<Target> {
    let Ok(docker) = docker::connect().await else {
        return Vec::new();
    };
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_ROLE}=injectors")],
    )]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    containers
        .into_iter()
        .filter_map(|c| {
            let port = c
                .ports?
                .into_iter()
                .find(|p| p.private_port == ADMIN_PORT && p.public_port.is_some())?;
            let ip = port.ip.filter(|ip| !ip.is_empty() && ip != "0.0.0.0");
            Some(Target {
                url: format!(
                    "http://{}:{}",
                    ip.as_deref().unwrap_or("127.0.0.1"),
                    port.public_port?
                ),
                run: c.labels.and_then(|l| l.get(LABEL_RUN).cloned()),
            })
        })
        .collect()
}

/// The single admin API a change goes to; several running stacks need
/// `--admin`.
async fn one(admin: Option<&str>) -> Result<AdminClient> {
    let targets = targets(admin).await;
    match targets.as_slice() {
        [t] => Ok(AdminClient::new(&t.url)),
        many => bail!(
            "{} faultline stacks are running ({}); choose one with --admin URL",
            many.len(),
            many.iter()
                .map(|t| t.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A fault as JSON (`{"kind":"status","code":503,"rate":0.3}`) or in the
/// scenario files' TOML (`kind = "status", code = 503, rate = 0.3`, braces
/// optional).
pub fn parse_fault(text: &str) -> Result<Fault> {
    let text = text.trim();
    if text.starts_with('{')
        && let Ok(fault) = serde_json::from_str::<Fault>(text)
    {
        return Ok(fault);
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    toml::from_str::<Fault>(&inner.replace(',', "\n")).or_else(|toml_error| {
        serde_json::from_str::<Fault>(text).map_err(|json_error| {
            anyhow::anyhow!(
                "not a fault: {}; as JSON: {json_error}. Write e.g. 'kind = \"status\", code = 503, rate = 0.3' or '{{\"kind\":\"refuse\"}}'",
                toml_error.message()
            )
        })
    })
}

/// Sets `fault` on `injector`; returns the fault id.
pub async fn inject(admin: Option<&str>, injector: &str, fault: Fault) -> Result<String> {
    let client = one(admin).await?;
    client
        .inject(injector, &fault)
        .await
        .with_context(|| format!("cannot set the fault on {injector}"))
}

/// Clears fault `id` of `injector`, or all its faults; returns how many.
pub async fn clear(admin: Option<&str>, injector: &str, id: Option<&str>) -> Result<usize> {
    let client = one(admin).await?;
    match id {
        Some(id) => {
            if client.clear_fault(injector, id).await? {
                Ok(1)
            } else {
                bail!("{injector} has no fault `{id}`")
            }
        }
        None => {
            let n = client.status(injector).await?.faults.len();
            client.clear_faults(injector).await?;
            Ok(n)
        }
    }
}

/// Every injector behind every target.
pub async fn status(admin: Option<&str>) -> Result<Vec<(Target, Vec<InjectorStatus>)>> {
    let mut all = Vec::new();
    for target in targets(admin).await {
        let injectors = AdminClient::new(&target.url).list().await.with_context(
            || "is a stack up? (docker compose up, or faultline run --stack containers)",
        )?;
        all.push((target, injectors));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_read_as_json_or_as_scenario_toml() {
        let json = parse_fault(r#"{"kind":"status","code":503,"rate":0.3}"#).expect("json");
        let toml = parse_fault(r#"kind = "status", code = 503, rate = 0.3"#).expect("toml");
        let braced = parse_fault(r#"{ kind = "status", code = 503, rate = 0.3 }"#).expect("toml");
        assert_eq!(
            serde_json::to_value(&json).expect("json"),
            serde_json::to_value(&toml).expect("json")
        );
        assert_eq!(
            serde_json::to_value(&json).expect("json"),
            serde_json::to_value(&braced).expect("json")
        );
        let err = parse_fault("kind = \"explode\"").expect_err("unknown kind");
        assert!(err.to_string().contains("not a fault"), "{err}");
    }
}
