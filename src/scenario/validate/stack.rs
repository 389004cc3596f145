//! `[stack]`: the kind, client settings, defects, wiring, services and injectors.

use super::*;

impl Validator<'_> {
    pub(super) fn stack(&mut self, file: StackFile, kind_override: Option<StackKind>) -> StackPlan {
        let kind = kind_override
            .or(file.kind.as_ref().map(|k| *k.get_ref()))
            .unwrap_or(StackKind::Embedded);
        let defects = self.defects(&file);
        let clients = match &file.clients {
            Some(c) => self.client(c.get_ref(), ClientSettings::platform()),
            None => ClientSettings::platform(),
        };
        let mut client_overrides = BTreeMap::new();
        for (name, c) in &file.client {
            match downstream_named(name) {
                Some(d) => {
                    let settings = self.client(c.get_ref(), clients.clone());
                    client_overrides.insert(d, settings);
                }
                None => self.err(
                    c.span(),
                    format!(
                        "unknown injector `{name}` in [stack.client]; known: {}",
                        injector_names().join(", ")
                    ),
                ),
            }
        }
        let time_scale = self.time_scale(&file, &clients, &client_overrides);
        let mut wiring = BTreeMap::new();
        for (name, url) in &file.wiring {
            match downstream_named(name) {
                Some(d) => {
                    if self.url(url) {
                        wiring.insert(d, url.get_ref().clone());
                    }
                }
                None => self.err(
                    url.span(),
                    format!(
                        "unknown injector `{name}` in [stack.wiring]; known: {}",
                        injector_names().join(", ")
                    ),
                ),
            }
        }
        let mut services = BTreeMap::new();
        for (name, url) in &file.services {
            match service_named(name) {
                Some(kind) => {
                    if self.url(url) {
                        services.insert(kind, url.get_ref().trim_end_matches('/').to_string());
                    }
                }
                None => self.err(
                    url.span(),
                    format!(
                        "unknown service `{name}` in [stack.services]; known: {}",
                        service_names()
                    ),
                ),
            }
        }
        let injectors = self.injectors(&file, kind);
        if kind == StackKind::External {
            self.external(&file, kind_override.is_some());
        }
        if kind.in_docker() {
            self.in_docker(&file);
        }
        StackPlan {
            kind,
            time_scale,
            defects,
            clients,
            client_overrides,
            wiring,
            services,
            injectors,
        }
    }

    /// `time_scale`: positive, and small enough that every scaled client
    /// timing is still a duration (scaling would panic otherwise).
    pub(super) fn time_scale(
        &mut self,
        file: &StackFile,
        clients: &ClientSettings,
        overrides: &BTreeMap<Downstream, ClientSettings>,
    ) -> f64 {
        let Some(s) = &file.time_scale else {
            return 1.0;
        };
        let scale = *s.get_ref();
        if !(scale.is_finite() && scale > 0.0) {
            self.err(s.span(), format!("time_scale must be more than 0 (e.g. 0.1 runs every client timing 10× faster), got {scale}"));
            return 1.0;
        }
        if !TIME_SCALE.contains(&scale) {
            self.err(s.span(), format!(
                "time_scale is so large that a scaled client timing cannot be held, or so small that it vanishes: it must be between {} and {}, got {scale}",
                TIME_SCALE.start(),
                TIME_SCALE.end()
            ));
            return 1.0;
        }
        let fits = |c: &ClientSettings| {
            [
                c.interval,
                c.open_timeout,
                c.retry_delay,
                c.attempt_timeout,
                c.async_timeout,
            ]
            .iter()
            .all(|d| Duration::try_from_secs_f64(d.as_secs_f64() * scale).is_ok())
        };
        if !(fits(clients) && overrides.values().all(fits)) {
            self.err(s.span(), "time_scale is so large that a scaled client timing cannot be held in a duration; use a factor near 1 or below");
            return 1.0;
        }
        scale
    }

    /// `[stack.defects]`: per service, in the reference stack's syntax.
    pub(super) fn defects(&mut self, file: &StackFile) -> BTreeMap<ServiceKind, Defects> {
        let mut defects = BTreeMap::new();
        for (service, text) in &file.defects {
            let Some(kind) = service_named(service) else {
                self.err(
                    text.span(),
                    format!(
                        "unknown service `{service}` in [stack.defects]; known: {}",
                        service_names()
                    ),
                );
                continue;
            };
            let setting = format!("stack.defects.{service}");
            match Defects::parse(&setting, text.get_ref())
                .and_then(|d| d.check_for(&setting, kind).map(|()| d))
            {
                Ok(d) => {
                    defects.insert(kind, d);
                }
                Err(e) => self.err(text.span(), e.to_string()),
            }
        }
        defects
    }

    /// `[stack.injectors.<name>]`: placements; an external SUT's injectors
    /// need the fixed port it was configured with.
    pub(super) fn injectors(
        &mut self,
        file: &StackFile,
        kind: StackKind,
    ) -> BTreeMap<Downstream, InjectorPlan> {
        let mut injectors = BTreeMap::new();
        for (name, spec) in &file.injectors {
            let Some(d) = downstream_named(name) else {
                self.err(
                    spec.span(),
                    format!(
                        "unknown injector `{name}` in [stack.injectors]; known: {}",
                        injector_names().join(", ")
                    ),
                );
                continue;
            };
            let listen = spec.get_ref().listen;
            if kind == StackKind::External && listen.is_none() {
                self.err(spec.span(), format!("injector `{name}` needs `listen` (e.g. listen = \"127.0.0.1:41002\"): an external SUT was configured with a fixed port for it"));
            }
            let upstream = spec.get_ref().upstream.as_ref().filter(|up| self.url(up));
            injectors.insert(
                d,
                InjectorPlan {
                    listen,
                    upstream: upstream.map(|up| up.get_ref().trim_end_matches('/').to_string()),
                },
            );
        }
        injectors
    }

    /// What an external stack needs and refuses: the services' URLs, and
    /// nothing that reconfigures the SUT.
    pub(super) fn external(&mut self, file: &StackFile, from_flag: bool) {
        if file.services.is_empty() {
            let (at, how) = match (&file.kind, from_flag) {
                (Some(k), false) => (k.span(), ""),
                _ => (0..0, " (--stack external)"),
            };
            self.err(at, format!("an external stack{how} needs [stack.services]: the base URL of each service the journeys call, e.g. payment-gateway = \"http://127.0.0.1:40003\""));
        }
        let embedded_only = [
            ("time_scale", file.time_scale.as_ref().map(Spanned::span)),
            ("defects", file.defects.values().next().map(Spanned::span)),
            ("clients", file.clients.as_ref().map(Spanned::span)),
            ("client", file.client.values().next().map(Spanned::span)),
            ("wiring", file.wiring.values().next().map(Spanned::span)),
        ];
        for (key, span) in embedded_only {
            if let Some(span) = span {
                self.err(span, format!("stack.{key} applies to the embedded stack only (faultline cannot reconfigure an external SUT); remove it"));
            }
        }
    }

    /// A Docker stack wires its own network: addresses in the file would be
    /// silently ignored, so they are refused.
    pub(super) fn in_docker(&mut self, file: &StackFile) {
        let local_only = [
            ("wiring", file.wiring.values().next().map(Spanned::span)),
            ("services", file.services.values().next().map(Spanned::span)),
            (
                "injectors",
                file.injectors.values().next().map(Spanned::span),
            ),
        ];
        for (key, span) in local_only {
            if let Some(span) = span {
                self.err(span, format!("stack.{key} does not apply to a Docker stack (containers, compose): it wires its own private network; remove it or run --stack embedded"));
            }
        }
    }

    /// Client settings over `base`, refusing what the reference stack would
    /// refuse when it starts (so a bad value fails here, before anything runs).
    pub(super) fn client(&mut self, file: &ClientFile, base: ClientSettings) -> ClientSettings {
        let mut c = base;
        if let Some(v) = &file.breaker {
            match v.get_ref().parse::<BreakerFlavour>() {
                Ok(flavour) => c.breaker = flavour,
                Err(_) => self.err(
                    v.span(),
                    format!(
                        "unknown breaker `{}`; known: {}",
                        v.get_ref(),
                        BreakerFlavour::names()
                    ),
                ),
            }
        }
        if let Some(v) = &file.max_requests {
            c.max_requests = self.count(
                v,
                "max_requests",
                "half-open admits at least one call",
                MAX_COUNT,
            );
        }
        if let Some(v) = file.interval {
            c.interval = v.0;
        }
        if let Some(v) = &file.open_timeout {
            c.open_timeout = self.nonzero(v, "open_timeout", c.open_timeout);
        }
        if let Some(v) = &file.min_requests {
            if *v.get_ref() > MAX_MIN_REQUESTS {
                self.err(
                    v.span(),
                    format!(
                        "min_requests must be at most {MAX_MIN_REQUESTS}, got {}",
                        v.get_ref()
                    ),
                );
            } else {
                c.min_requests = *v.get_ref();
            }
        }
        if let Some(v) = &file.failure_ratio {
            let r = *v.get_ref();
            if !(r > 0.0 && r <= 1.0) {
                self.err(
                    v.span(),
                    format!(
                        "failure_ratio must be in (0, 1] (0.6 trips at 60 % failures), got {r}"
                    ),
                );
            }
            c.failure_ratio = r;
        }
        if let Some(v) = &file.max_attempts {
            c.max_attempts =
                self.count(v, "max_attempts", "the first attempt counts", MAX_ATTEMPTS);
        }
        if let Some(v) = file.retry_delay {
            c.retry_delay = v.0;
        }
        if let Some(v) = &file.attempt_timeout {
            c.attempt_timeout = self.nonzero(v, "attempt_timeout", c.attempt_timeout);
        }
        if let Some(v) = &file.async_timeout {
            c.async_timeout = self.nonzero(v, "async_timeout", c.async_timeout);
        }
        c
    }
}
