//! The Docker topology, the same for `containers` and `compose`: one
//! injectors container standing for every downstream (each injector on the
//! platform's port of its downstream), one container per service on the
//! platform's port, the services' `*_SERVICE_URL`s pointing at the
//! injectors, and the hops between services (merchant-service →
//! payment-gateway, settlement-service → withdrawal-service) passing through
//! front-mode injectors so they can be faulted too.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use platform_contract::{Downstream, ServiceKind};
use reference_stack::ServiceConfig;

use crate::platform::injector_name;
use crate::scenario::Scenario;
use crate::stack::{observe_config, service_config};

/// Port of the injectors' admin API inside the injectors container.
pub const ADMIN_PORT: u16 = 9400;
/// Where the injectors container writes decision logs.
pub const DECISIONS_DIR: &str = "/decisions";

/// Names on the private network and ports published on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Topology {
    injectors_host: String,
    service_hosts: BTreeMap<ServiceKind, String>,
    /// Published loopback port of each service, once started.
    pub(super) published: BTreeMap<ServiceKind, u16>,
    /// Published loopback port of the admin API, once started.
    pub(super) admin_port: u16,
}

impl Topology {
    /// A topology whose containers are reached by these names.
    pub fn new(injectors_host: String, service_host: impl Fn(ServiceKind) -> String) -> Self {
        Self {
            injectors_host,
            service_hosts: ServiceKind::ALL
                .into_iter()
                .map(|k| (k, service_host(k)))
                .collect(),
            published: BTreeMap::new(),
            admin_port: 0,
        }
    }

    /// Every downstream with an injector: all of them.
    pub fn injected() -> impl Iterator<Item = Downstream> {
        Downstream::ALL.into_iter()
    }

    /// The injector's port inside the injectors container.
    pub fn injector_port(d: Downstream) -> u16 {
        d.default_port()
    }

    /// The service's port inside its container.
    pub fn service_port(kind: ServiceKind) -> u16 {
        kind.default_port()
    }

    /// The injectors container's name on the network.
    pub fn injectors_host(&self) -> &str {
        &self.injectors_host
    }

    /// A service container's name on the network.
    pub fn service_host(&self, kind: ServiceKind) -> &str {
        &self.service_hosts[&kind]
    }

    /// The URL each downstream is reached at from inside the network.
    pub fn wiring(&self) -> BTreeMap<Downstream, String> {
        Self::injected()
            .map(|d| {
                let url = format!("http://{}:{}", self.injectors_host, Self::injector_port(d));
                (d, url)
            })
            .collect()
    }

    /// `(injector name, URL inside the network)` of every injector.
    pub fn injector_urls(&self) -> Vec<(String, String)> {
        self.wiring()
            .into_iter()
            .map(|(d, url)| (injector_name(d).to_string(), url))
            .collect()
    }

    /// The command line of the `fault-injector` in the injectors container.
    pub fn injector_args(&self, scenario: &Scenario) -> Vec<String> {
        let observe = observe_config(scenario);
        let mut args = vec![
            "--admin".to_string(),
            format!("0.0.0.0:{ADMIN_PORT}"),
            "--seed".into(),
            scenario.seed.to_string(),
            "--bucket-ms".into(),
            observe.bucket_ms.to_string(),
            "--bucket-capacity".into(),
            observe.bucket_capacity.to_string(),
            "--decision-log-dir".into(),
            DECISIONS_DIR.into(),
        ];
        for d in Self::injected() {
            let name = injector_name(d);
            let listen = format!("{name}@0.0.0.0:{}", Self::injector_port(d));
            match d.fronts() {
                Some(kind) => {
                    args.push("--front".into());
                    args.push(format!(
                        "{listen}=http://{}:{}",
                        self.service_host(kind),
                        Self::service_port(kind)
                    ));
                }
                None => {
                    args.push("--stand-in".into());
                    args.push(listen);
                }
            }
        }
        args
    }

    /// The env vars of a service container: the scenario's client settings,
    /// time scale and defects, listening on the platform port, its
    /// downstreams at the injectors.
    pub fn service_env(&self, scenario: &Scenario, kind: ServiceKind) -> Vec<(String, String)> {
        Self::env_of(service_config(scenario, kind, &self.wiring()))
    }

    /// The env vars of a service container with the platform's settings
    /// (what `docker compose up` runs without faultline).
    pub fn platform_env(&self, kind: ServiceKind) -> Vec<(String, String)> {
        let wiring = self.wiring();
        let config = kind
            .downstreams()
            .iter()
            .filter_map(|d| wiring.get(d).map(|url| (*d, url.clone())))
            .fold(ServiceConfig::new(kind), |c, (d, url)| {
                c.downstream_url(d, url)
            });
        Self::env_of(config)
    }

    fn env_of(config: ServiceConfig) -> Vec<(String, String)> {
        let kind = config.kind();
        config
            .listen(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                Self::service_port(kind),
            )))
            .to_env()
    }

    /// An env file's text.
    pub fn env_file(vars: &[(String, String)]) -> String {
        vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// Base URL of each service as published on loopback.
    pub fn published_services(&self) -> BTreeMap<ServiceKind, String> {
        self.published
            .iter()
            .map(|(k, port)| (*k, format!("http://127.0.0.1:{port}")))
            .collect()
    }

    /// The admin API as published on loopback.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn services_call_the_injectors_and_hops_pass_through_fronts() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/payment-order-outage.toml");
        let text = Scenario::read(&path).expect("shipped scenario");
        let scenario = Scenario::parse(&path, &text, None)
            .and_then(crate::scenario::Parsed::finish)
            .expect("shipped scenario");
        let t = Topology::new("inj".into(), |k| format!("svc-{}", k.name()));
        let env: BTreeMap<String, String> = t
            .service_env(&scenario, ServiceKind::MerchantService)
            .into_iter()
            .collect();
        assert_eq!(
            env[Downstream::Gateway.url_env_var()],
            format!("http://inj:{}", Downstream::Gateway.default_port())
        );
        assert_eq!(
            env["LISTEN_ADDR"],
            format!("0.0.0.0:{}", ServiceKind::MerchantService.default_port())
        );
        let args = t.injector_args(&scenario).join(" ");
        assert!(args.contains(&format!(
            "--front payment-gateway@0.0.0.0:{}=http://svc-payment-gateway:{}",
            Downstream::Gateway.default_port(),
            ServiceKind::PaymentGateway.default_port()
        )));
        assert!(args.contains(&format!(
            "--stand-in order-service@0.0.0.0:{}",
            Downstream::Order.default_port()
        )));
        assert!(args.contains(&format!("--seed {}", scenario.seed)));
    }

    #[test]
    fn the_committed_compose_env_files_hold_the_platform_settings() {
        let t = crate::stack::docker::compose::topology();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-stack/compose");
        for kind in ServiceKind::ALL {
            let expected = Topology::env_file(&t.platform_env(kind));
            let path = dir.join(format!("{}.env", kind.name()));
            if std::env::var_os("FAULTLINE_BLESS").is_some() {
                std::fs::create_dir_all(&dir).expect("dir");
                std::fs::write(&path, &expected).expect("write");
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed,
                expected,
                "{} is stale; regenerate with FAULTLINE_BLESS=1 cargo test --lib compose_env",
                path.display()
            );
        }
    }
}
