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
/// scenario files' TOML: an inline table with or without its braces
/// (`kind = "status", code = 503, rate = 0.3`), or `key = value` lines.
/// Values are read by the real parsers, so a comma, brace or `=` inside a
/// string (`body = '{"code":1,"message":"x"}'`) is just a character.
pub fn parse_fault(text: &str) -> Result<Fault> {
    /// `fault = { ... }`: the shape a scenario file gives a fault.
    #[derive(serde::Deserialize)]
    struct Inline {
        fault: Fault,
    }
    let text = text.trim();
    let json = serde_json::from_str::<Fault>(text);
    if let Ok(fault) = json {
        return Ok(fault);
    }
    let braced = text.starts_with('{');
    // An inline table: one line, as in a scenario's `fault = { ... }`.
    let inline = if braced {
        format!("fault = {text}")
    } else {
        format!("fault = {{ {text} }}")
    };
    let as_inline = toml::from_str::<Inline>(&inline).map(|w| w.fault);
    if let Ok(fault) = as_inline {
        return Ok(fault);
    }
    // `key = value` lines (several lines, or one key alone).
    let as_document = toml::from_str::<Fault>(text);
    if let Ok(fault) = as_document {
        return Ok(fault);
    }
    // The reading the text was most likely meant for explains the problem.
    let looks_json = text
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with(['"', '}']));
    let why = match (looks_json, as_inline, as_document, json) {
        (true, _, _, Err(e)) => format!("as JSON: {e}"),
        (_, Err(e), _, _) if !text.contains('\n') => e.message().trim().to_string(),
        (_, _, Err(e), _) => e.message().trim().to_string(),
        _ => "unreadable".to_string(),
    };
    bail!(
        "not a fault: {why}. Write e.g. 'kind = \"status\", code = 503, rate = 0.3' or '{{\"kind\":\"refuse\"}}'"
    )
}

/// Sets `fault` on `injector`; returns the fault id.
pub async fn inject(admin: Option<&str>, injector: &str, fault: Fault) -> Result<String> {
    let client = one(admin).await?;
    client.inject(injector, &fault).await.with_context(|| {
        format!(
            "cannot set the fault on {injector} through the injectors' admin API at {}",
            client.base()
        )
    })
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
        let lines = parse_fault("kind = \"status\"\ncode = 503\nrate = 0.3").expect("lines");
        assert_eq!(
            serde_json::to_value(&json).expect("json"),
            serde_json::to_value(&lines).expect("json")
        );
        let err = parse_fault("kind = \"explode\"").expect_err("unknown kind");
        assert!(err.to_string().contains("not a fault"), "{err}");
        assert!(err.to_string().contains("explode"), "{err}");
    }

    #[test]
    fn commas_braces_and_equals_inside_values_are_just_characters() {
        let body = r#"{"code":1,"message":"x, y = {z}"}"#;
        for text in [
            format!("kind = \"status\", code = 503, body = '{body}'"),
            format!("{{ kind = \"status\", code = 503, body = '{body}' }}"),
            format!("kind = \"status\"\ncode = 503\nbody = '{body}'"),
            serde_json::json!({"kind": "status", "code": 503, "body": body}).to_string(),
        ] {
            let fault = parse_fault(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let spec = fault_injectors::fault::FaultSpec::from(fault);
            assert_eq!(spec.body.as_deref(), Some(body), "{text}");
            assert_eq!(spec.code, Some(503), "{text}");
        }
        let path = parse_fault(r#"kind = "latency", fixed_ms = 5, path = "/api/v1/{id}/x""#)
            .expect("a path with braces");
        assert_eq!(
            fault_injectors::fault::FaultSpec::from(path)
                .path
                .as_deref(),
            Some("/api/v1/{id}/x")
        );
    }

    #[test]
    fn a_bad_value_is_explained_by_the_reading_it_was_meant_for() {
        let toml = parse_fault(r#"kind = "status", code = 503, rate = 1.7"#).expect_err("rate");
        assert!(
            toml.to_string().contains("rate must be between 0 and 1"),
            "{toml}"
        );
        let json = parse_fault(r#"{"kind":"status","code":503,"rate":1.7}"#).expect_err("rate");
        assert!(json.to_string().contains("as JSON"), "{json}");
        assert!(
            json.to_string().contains("rate must be between 0 and 1"),
            "{json}"
        );
    }
}
