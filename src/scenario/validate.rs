//! From the file as written to a plan that can run: defaults filled in,
//! every name resolved, every range checked. All problems are collected, each
//! at the location of the value that causes it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use fault_injectors::Fault;
use fault_injectors::fault::{FAULT_KINDS, FaultSpec};
use reference_stack::{
    BreakerFlavour, ClientSettings, Defects, Downstream, ServiceKind, SignatureVersion,
};
use toml::Spanned;

use super::error::{Locator, ScenarioError, ScenarioErrors};
use super::file::{
    CheckFile, CheckKind, ClientFile, ContainerAction, JourneyFile, LoadFile, MerchantFile, Model,
    RampStepFile, ScenarioFile, StackFile, StackKind, StateValuesFile, SutBreakerFile, SutFile,
};
use super::{
    AmplificationPer, Check, CheckPlan, FaultWindow, GaugeUse, InjectorPlan, Journey, LatencyBound,
    LoadPlan, Merchant, Phase, Scenario, StackPlan, SutBreaker, SutPlan,
};
use crate::platform::{JourneyKind, downstream_named, injector_name, injector_names};

/// Parses and checks a scenario.
pub(super) fn build(
    path: &Path,
    text: &str,
    stack_override: Option<StackKind>,
) -> Result<Scenario, ScenarioErrors> {
    let locate = Locator::new(path, text);
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = explain_parse_error(e.message().trim(), text, span.start);
        ScenarioErrors(vec![locate.at(span, message)])
    })?;
    let mut v = Validator {
        locate,
        errors: Vec::new(),
        unresolved_faults: false,
        derived_phases: false,
    };
    let scenario = v.scenario(path, text, file, stack_override);
    // Checks run section by section; the user reads the file top to bottom.
    v.errors.sort_by_key(|e| (e.line, e.column));
    match (scenario, v.errors.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(ScenarioErrors(v.errors)),
    }
}

/// The parser's message, with what to write instead where the parser's own
/// words do not say it: a duplicate key, or a required field that is missing
/// (`at` is where the parser located it: the table that lacks the field).
fn explain_parse_error(message: &str, text: &str, at: usize) -> String {
    if message == "duplicate key" {
        return "duplicate key: a key is set once per table; remove one of them".to_string();
    }
    let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    else {
        return message.to_string();
    };
    let table = text.get(at..).unwrap_or_default();
    let before = text.get(..at).unwrap_or_default().trim_end();
    let example = match field {
        "duration" => r#"add `duration = "60s"` (how long the load runs) at the top of the file"#.to_string(),
        "load" => r#"add a [load] table with at least one [[load.journeys]] (e.g. `kind = "payment"`, `rate = 10`)"#.to_string(),
        "journeys" => r#"add at least one [[load.journeys]] table (e.g. `kind = "payment"`, `rate = 10`)"#.to_string(),
        "injector" => r#"add the injector the fault is set on, e.g. `injector = "order-service"`"#.to_string(),
        "from" => r#"add when it starts, e.g. `from = "20s"`"#.to_string(),
        "until" => r#"add when it ends, e.g. `until = "40s"`"#.to_string(),
        "fault" => r#"add what goes wrong, e.g. `fault = { kind = "status", code = 503 }`"#.to_string(),
        "name" => r#"add a name, e.g. `name = "baseline"`"#.to_string(),
        "at" => r#"add when the ramp reaches its rate, e.g. `{ at = "30s", rate = 50 }`"#.to_string(),
        "rate" => r#"add the requests/s of the ramp step, e.g. `{ at = "30s", rate = 50 }`"#.to_string(),
        "closed" | "half_open" | "open" => "give the gauge value of every state, e.g. `state_values = { closed = 0, half_open = 1, open = 2 }`".to_string(),
        "kind" if table.starts_with("[[checks") => format!("add the rule, one of: {}", CHECK_KINDS.map(kind_name).join(", ")),
        "kind" if table.starts_with("[[load.journeys") => format!("add what the users do, one of: {}", JourneyKind::ALL.map(JourneyKind::name).join(", ")),
        "kind" if before.ends_with("fault =") => format!("add what goes wrong, one of: {}", FAULT_KINDS.join(", ")),
        _ => return message.to_string(),
    };
    format!("{message}; {example}")
}

/// Checks a parsed file and keeps every problem it finds.
struct Validator<'a> {
    locate: Locator<'a>,
    errors: Vec<ScenarioError>,
    /// A fault was refused (unknown injector, invalid fault) and dropped: a
    /// check finding no fault (or no derived `fault` phase) may be looking
    /// for that one, so it stays silent rather than add a misleading second
    /// error.
    unresolved_faults: bool,
    /// The phases were derived from the faults (no [[phases]]).
    derived_phases: bool,
}

/// Default client timeout per request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default series window.
const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// Default open-model lag before a request is dropped.
const DEFAULT_MAX_LAG: Duration = Duration::from_secs(1);
/// Default metrics sampling interval.
const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Default deadline for a breaker to open.
const DEFAULT_OPEN_WITHIN: Duration = Duration::from_secs(60);
/// The mission's recovery goal.
const DEFAULT_RECOVERY: Duration = Duration::from_secs(30);

// Bounds of what a user can write (durations: `MAX_DURATION`, 30 days, when
// they are read). Beyond them a file is refused at the value, so nothing a
// run adds up, multiplies or waits for can overflow.
/// `time_scale`: from 0.001 (30 s → 30 ms) to 100.
const TIME_SCALE: std::ops::RangeInclusive<f64> = 0.001..=100.0;
/// Requests/s of a journey's `rate` or a ramp step.
const MAX_RATE: f64 = 100_000.0;
/// Closed-model users of one journey.
const MAX_USERS: u32 = 10_000;
/// A client's attempts per call (the platform's: 4).
const MAX_ATTEMPTS: u32 = 100;
/// A breaker's half-open admissions, a check's probes or held windows.
const MAX_COUNT: u32 = 10_000;
/// A breaker's minimum requests before it may trip.
const MAX_MIN_REQUESTS: u32 = 1_000_000;
/// The shortest series window.
const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Windows of one run's series (`duration` / `window`).
const MAX_WINDOWS: u128 = 1_000_000;

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let e = self.locate.at(span, message);
        self.errors.push(e);
    }

    fn scenario(
        &mut self,
        path: &Path,
        text: &str,
        file: ScenarioFile,
        stack_override: Option<StackKind>,
    ) -> Option<Scenario> {
        let duration = file.duration.get_ref().0;
        if duration.is_zero() {
            self.err(
                file.duration.span(),
                "duration must be more than zero, e.g. duration = \"60s\"",
            );
        }
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        let stack = self.stack(file.stack, stack_override);
        let sut = self.sut(file.sut, &stack);
        let merchant = self.merchant(file.merchant);
        let load = self.load(file.load, duration, &sut, &stack);
        let faults = self.faults(file.faults, duration, &stack);
        let phases = self.phases(file.phases, &faults, duration);
        let cx = Context {
            load: &load,
            phases: &phases,
            faults: &faults,
            stack: &stack,
        };
        let checks = self.checks(file.checks, &cx);
        Some(Scenario {
            path: path.to_path_buf(),
            name,
            description: file.description.unwrap_or_default().trim().to_string(),
            seed: file.seed.unwrap_or(0),
            duration,
            source: text.to_string(),
            stack,
            sut,
            merchant,
            load,
            faults,
            phases,
            checks,
        })
    }

    /// An injector name, resolved; the error lists the names there are.
    fn injector(&mut self, name: &Spanned<String>, stack: &StackPlan) -> Option<Downstream> {
        match downstream_named(name.get_ref()) {
            Some(d) if stack.kind == StackKind::External && !stack.injectors.contains_key(&d) => {
                self.err(
                    name.span(),
                    format!(
                        "no injector `{}` in [stack.injectors]; an external stack has only the injectors listed there",
                        name.get_ref()
                    ),
                );
                None
            }
            Some(d) => Some(d),
            None => {
                self.err(
                    name.span(),
                    format!(
                        "unknown injector `{}`; known: {}",
                        name.get_ref(),
                        injector_names().join(", ")
                    ),
                );
                None
            }
        }
    }

    fn stack(&mut self, file: StackFile, kind_override: Option<StackKind>) -> StackPlan {
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
    fn time_scale(
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
    fn defects(&mut self, file: &StackFile) -> BTreeMap<ServiceKind, Defects> {
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
    fn injectors(
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
    fn external(&mut self, file: &StackFile, from_flag: bool) {
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
    fn in_docker(&mut self, file: &StackFile) {
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

    fn url(&mut self, url: &Spanned<String>) -> bool {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if u.scheme() == "http" && u.host().is_some() => true,
            _ => {
                self.err(
                    url.span(),
                    format!(
                        "`{}` is not an http://host:port URL; write e.g. \"http://127.0.0.1:40004\"",
                        url.get_ref()
                    ),
                );
                false
            }
        }
    }

    /// Client settings over `base`, refusing what the reference stack would
    /// refuse when it starts (so a bad value fails here, before anything runs).
    fn client(&mut self, file: &ClientFile, base: ClientSettings) -> ClientSettings {
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

    /// A count from 1 to `max` (`why` says what 1 means); 1 replaces a
    /// value out of range.
    fn count(&mut self, v: &Spanned<u32>, what: &str, why: &str, max: u32) -> u32 {
        match *v.get_ref() {
            0 => {
                self.err(v.span(), format!("{what} must be at least 1 ({why})"));
                1
            }
            n if n > max => {
                self.err(v.span(), format!("{what} must be at most {max}, got {n}"));
                1
            }
            n => n,
        }
    }

    /// A duration that must be more than zero; `default` replaces a zero.
    fn nonzero(&mut self, v: &Spanned<super::Dur>, what: &str, default: Duration) -> Duration {
        if v.get_ref().0.is_zero() {
            self.err(
                v.span(),
                format!(
                    "{what} must be more than zero, e.g. \"{}\"",
                    super::Dur(default)
                ),
            );
            return default;
        }
        v.get_ref().0
    }

    fn statuses(&mut self, statuses: &Spanned<Vec<u16>>) -> Vec<u16> {
        let list = statuses.get_ref();
        let bad: Vec<String> = list
            .iter()
            .filter(|s| !(100..=599).contains(*s))
            .map(u16::to_string)
            .collect();
        if list.is_empty() || !bad.is_empty() {
            self.err(statuses.span(), format!(
                "success_statuses must list HTTP statuses between 100 and 599, e.g. [200, 201]{}",
                if bad.is_empty() { String::new() } else { format!("; not statuses: {}", bad.join(", ")) }
            ));
        }
        list.clone()
    }

    fn sut(&mut self, file: SutFile, stack: &StackPlan) -> SutPlan {
        let success_statuses = match &file.success_statuses {
            Some(s) => self.statuses(s),
            None => vec![200, 201],
        };
        let sample_every = match &file.sample_every {
            Some(d) if d.get_ref().0 < Duration::from_millis(5) => {
                self.err(d.span(), "sample_every must be at least 5ms (e.g. \"250ms\"): faster sampling would load the SUT it observes");
                DEFAULT_SAMPLE_EVERY
            }
            Some(d) => d.get_ref().0,
            None => DEFAULT_SAMPLE_EVERY,
        };
        let state_values = match &file.state_values {
            Some(v) => self.state_values(v),
            None => [0.0, 1.0, 2.0],
        };
        let mut downstream_names = BTreeMap::new();
        for (label, injector) in &file.downstream_names {
            if let Some(d) = self.injector(injector, stack) {
                downstream_names.insert(label.clone(), d);
            }
        }
        let mut breakers = BTreeMap::new();
        for (name, b) in &file.breakers {
            let Some(d) = self.injector(&Spanned::new(b.span(), name.clone()), stack) else {
                continue;
            };
            breakers.insert(d, self.sut_breaker(b.get_ref()));
        }
        SutPlan {
            success_statuses,
            gauge: match file.metrics {
                None => GaugeUse::IfPresent,
                Some(true) => GaugeUse::Required,
                Some(false) => GaugeUse::Off,
            },
            downstream_names,
            breakers,
            metrics_path: file.metrics_path.unwrap_or_else(|| "/metrics".into()),
            ready_path: file.ready_path.unwrap_or_else(|| "/health/ready".into()),
            breaker_metric: file
                .breaker_metric
                .unwrap_or_else(|| "circuit_breaker_state".into()),
            downstream_label: file.downstream_label.unwrap_or_else(|| "downstream".into()),
            state_values,
            sample_every,
        }
    }

    fn sut_breaker(&mut self, b: &SutBreakerFile) -> SutBreaker {
        SutBreaker {
            half_open_calls: b.half_open_calls.as_ref().map(|n| {
                self.count(
                    n,
                    "half_open_calls",
                    "a half-open breaker lets a call through",
                    MAX_COUNT,
                )
            }),
            fast_below: b
                .fast_below
                .as_ref()
                .map(|d| self.nonzero(d, "fast_below", Duration::from_millis(1))),
        }
    }

    /// The breaker gauge's values of closed, half-open and open: three
    /// different numbers, or a sample could not tell the states apart.
    fn state_values(&mut self, v: &Spanned<StateValuesFile>) -> [f64; 3] {
        let s = v.get_ref();
        let values = [s.closed, s.half_open, s.open];
        let distinct = values.iter().all(|x| x.is_finite())
            && values[0] != values[1]
            && values[1] != values[2]
            && values[0] != values[2];
        if !distinct {
            self.err(v.span(), format!(
                "state_values must be three different numbers (gobreaker's are closed = 0, half_open = 1, open = 2), got {}, {}, {}",
                s.closed, s.half_open, s.open
            ));
        }
        values
    }

    fn merchant(&mut self, file: MerchantFile) -> Merchant {
        let default = reference_stack::MerchantCredentials::default_merchant();
        let signature = match &file.signature {
            None => SignatureVersion::V1,
            Some(s) => match s.get_ref().as_str() {
                "v1" => SignatureVersion::V1,
                "v2" => SignatureVersion::V2,
                other => {
                    self.err(
                        s.span(),
                        format!("signature must be `v1` or `v2`, got `{other}`"),
                    );
                    SignatureVersion::V1
                }
            },
        };
        Merchant {
            id: file.id.unwrap_or(default.merchant_id),
            api_key: file.api_key.unwrap_or(default.api_key),
            api_secret: file.api_secret.unwrap_or(default.api_secret),
            signature,
            password: file.password.unwrap_or_else(|| "password123".into()),
        }
    }

    fn load(
        &mut self,
        file: LoadFile,
        duration: Duration,
        sut: &SutPlan,
        stack: &StackPlan,
    ) -> LoadPlan {
        let model = file.model.as_ref().map_or(Model::Open, |m| *m.get_ref());
        if file.journeys.get_ref().is_empty() {
            self.err(file.journeys.span(), "[load] needs at least one [[load.journeys]] (e.g. `kind = \"payment\"`, `rate = 10`)");
        }
        let mut positive = |d: &Option<Spanned<super::Dur>>, what: &str, default: Duration| {
            d.as_ref()
                .map_or(default, |d| self.nonzero(d, what, default))
        };
        let timeout = positive(&file.timeout, "load.timeout", DEFAULT_TIMEOUT);
        let mut window = positive(&file.window, "load.window", DEFAULT_WINDOW);
        let max_lag = positive(&file.max_lag, "load.max_lag", DEFAULT_MAX_LAG);
        if let Some(w) = file.window.as_ref().filter(|w| !w.get_ref().0.is_zero()) {
            let windows = duration.as_nanos() / window.as_nanos().max(1);
            if window < MIN_WINDOW || windows > MAX_WINDOWS {
                self.err(
                    w.span(),
                    format!(
                        "load.window must be at least 1ms and leave at most {MAX_WINDOWS} windows in the run ({} would make {windows}); make it longer",
                        super::Dur(duration)
                    ),
                );
                window = DEFAULT_WINDOW;
            }
        }
        let mut names = BTreeSet::new();
        let mut journeys = Vec::new();
        for j in file.journeys.into_inner() {
            let span = j.span();
            if let Some(journey) =
                self.journey(j.into_inner(), span.clone(), model, duration, sut, stack)
            {
                if !names.insert(journey.name.clone()) {
                    self.err(
                        span,
                        format!(
                            "two journeys are named `{}`; give each a distinct `name`",
                            journey.name
                        ),
                    );
                }
                journeys.push(journey);
            }
        }
        LoadPlan {
            model,
            journeys,
            timeout,
            window,
            max_lag,
        }
    }

    fn journey(
        &mut self,
        file: JourneyFile,
        span: Range<usize>,
        model: Model,
        duration: Duration,
        sut: &SutPlan,
        stack: &StackPlan,
    ) -> Option<Journey> {
        let kind = *file.kind.get_ref();
        let name = file
            .name
            .as_ref()
            .map_or_else(|| kind.name().to_string(), |n| n.get_ref().clone());
        let rate = match model {
            Model::Open => self.open_rate(&file, span.clone(), &name, duration),
            Model::Closed => {
                self.closed_only(&file);
                Vec::new()
            }
        };
        let users = match (model, &file.users) {
            (Model::Closed, Some(u)) => self.count(
                u,
                "users",
                "one user looping request, think, request",
                MAX_USERS,
            ),
            (Model::Closed, None) => {
                self.err(
                    span.clone(),
                    format!("journey `{name}` needs `users` in the closed model (e.g. users = 10)"),
                );
                1
            }
            (Model::Open, Some(u)) => {
                self.err(u.span(), "`users` applies to the closed model; the open model takes `rate` (or set `model = \"closed\"` in [load])");
                0
            }
            (Model::Open, None) => 0,
        };
        if let (Model::Open, Some(t)) = (model, &file.think) {
            self.err(t.span(), "`think` applies to the closed model (a pause between a user's requests); the open model's pace is its `rate`");
        }
        let success_statuses = match &file.success_statuses {
            Some(s) => self.statuses(s),
            None => sut.success_statuses.clone(),
        };
        let webhook = file.webhook.as_ref().is_some_and(|w| *w.get_ref());
        if let Some(w) = file
            .webhook
            .as_ref()
            .filter(|_| webhook && kind != JourneyKind::Payment)
        {
            self.err(w.span(), format!("`webhook` applies to payment journeys only (this one is a {} journey); remove it", kind.name()));
        }
        let expects = match &file.expects {
            Some(list) => list
                .iter()
                .filter_map(|n| self.injector(n, stack))
                .collect(),
            None => kind
                .downstreams()
                .iter()
                .copied()
                .filter(|d| stack.kind.runs_reference_stack() || stack.injectors.contains_key(d))
                .collect(),
        };
        if stack.kind == StackKind::External
            && !stack.services.contains_key(&kind.entry())
            && !stack.services.is_empty()
        {
            self.err(file.kind.span(), format!(
                "a {} journey calls {}, which [stack.services] does not list; add its base URL there", kind.name(), kind.entry().name()
            ));
        }
        Some(Journey {
            name,
            kind,
            rate,
            users,
            think: file
                .think
                .as_ref()
                .map_or(Duration::ZERO, |t| t.get_ref().0),
            webhook,
            success_statuses,
            expects,
        })
    }

    /// The open model's pace: a constant `rate` or a `ramp`, never both.
    fn open_rate(
        &mut self,
        file: &JourneyFile,
        span: Range<usize>,
        name: &str,
        duration: Duration,
    ) -> Vec<(Duration, f64)> {
        match (&file.rate, &file.ramp) {
            (Some(r), None) => {
                if !(r.get_ref().is_finite() && *r.get_ref() > 0.0) {
                    self.err(
                        r.span(),
                        format!("rate must be more than 0 requests/s, got {}", r.get_ref()),
                    );
                } else if *r.get_ref() > MAX_RATE {
                    self.err(
                        r.span(),
                        format!(
                            "rate must be at most {MAX_RATE} requests/s, got {}",
                            shown(*r.get_ref())
                        ),
                    );
                }
                vec![(Duration::ZERO, *r.get_ref())]
            }
            (None, Some(steps)) => self.ramp(steps, span, duration),
            (Some(r), Some(_)) => {
                self.err(r.span(), "give either `rate` or `ramp`, not both");
                Vec::new()
            }
            (None, None) => {
                self.err(
                    span,
                    format!(
                        "journey `{name}` needs `rate` (requests/s) or `ramp` in the open model"
                    ),
                );
                Vec::new()
            }
        }
    }

    /// `ramp = [{ at, rate }, ...]`: steps in time order, inside the run.
    fn ramp(
        &mut self,
        steps: &[Spanned<RampStepFile>],
        span: Range<usize>,
        duration: Duration,
    ) -> Vec<(Duration, f64)> {
        if steps.is_empty() {
            self.err(span.clone(), "ramp needs at least one step, e.g. ramp = [{ at = \"0s\", rate = 5 }, { at = \"30s\", rate = 50 }]");
        }
        let mut rate = Vec::new();
        let mut last = None;
        for step in steps {
            let s = step.get_ref();
            if !(s.rate.is_finite() && s.rate >= 0.0) {
                self.err(
                    step.span(),
                    format!("ramp rate must be >= 0 requests/s, got {}", s.rate),
                );
            } else if s.rate > MAX_RATE {
                self.err(
                    step.span(),
                    format!(
                        "ramp rate must be at most {MAX_RATE} requests/s, got {}",
                        shown(s.rate)
                    ),
                );
            }
            if last.is_some_and(|l| s.at.0 <= l) {
                self.err(step.span(), "ramp steps must be in increasing `at` order");
            }
            if s.at.0 > duration {
                self.err(
                    step.span(),
                    format!(
                        "ramp step at {} is after the end of the run ({})",
                        s.at,
                        super::Dur(duration)
                    ),
                );
            }
            last = Some(s.at.0);
            rate.push((s.at.0, s.rate));
        }
        if !rate.is_empty() && rate.iter().all(|(_, r)| *r == 0.0) {
            self.err(span, "a ramp whose rates are all 0 sends nothing");
        }
        rate
    }

    /// The closed model takes `users`, not the open model's `rate`/`ramp`.
    fn closed_only(&mut self, file: &JourneyFile) {
        if let Some(r) = &file.rate {
            self.err(
                r.span(),
                "`rate` applies to the open model; the closed model takes `users` (and `think`)",
            );
        } else if let Some(step) = file.ramp.as_ref().and_then(|s| s.first()) {
            self.err(
                step.span(),
                "`ramp` applies to the open model; the closed model takes `users` (and `think`)",
            );
        }
    }

    fn faults(
        &mut self,
        windows: Vec<Spanned<super::file::FaultWindowFile>>,
        duration: Duration,
        stack: &StackPlan,
    ) -> Vec<FaultWindow> {
        let mut out = Vec::new();
        for w in windows {
            let w = w.into_inner();
            let injector = self.injector(&w.injector, stack);
            let (from, until) = self.window(&w.from, w.until.as_ref(), duration);
            let fault = match (w.fault, w.container) {
                (Some(fault), None) => self.fault(fault).map(|f| (f, None)),
                (None, Some(action)) => self
                    .container_action(&action, injector, w.until.as_ref(), stack)
                    .map(|(f, a)| (f, Some(a))),
                (Some(fault), Some(_)) => {
                    self.err(fault.span(), "a window takes `fault = { ... }` (an injector fault) or `container = \"...\"` (a container action), not both");
                    None
                }
                (None, None) => {
                    self.err(w.injector.span(), "this window has no `fault = { kind = \"...\" }` (or, on a Docker stack, `container = \"pause\"`)");
                    None
                }
            };
            match (injector, fault) {
                (Some(injector), Some((fault, container))) => out.push(FaultWindow {
                    injector,
                    from,
                    until: if container == Some(ContainerAction::Restart) {
                        Some(from)
                    } else {
                        until
                    },
                    fault,
                    container,
                }),
                _ => self.unresolved_faults = true,
            }
        }
        out
    }

    /// A container action: Docker stacks only, on a service other services
    /// call (its callers reach it through a front injector, whose arrivals
    /// and the callers' breakers judge it). Returns what those callers see:
    /// a 502 from the front injector, or a hang while paused.
    fn container_action(
        &mut self,
        action: &Spanned<ContainerAction>,
        injector: Option<Downstream>,
        until: Option<&Spanned<crate::scenario::Dur>>,
        stack: &StackPlan,
    ) -> Option<(Fault, ContainerAction)> {
        let span = action.span();
        let action = *action.get_ref();
        if !stack.kind.in_docker() {
            self.err(span, format!("container = \"{}\" needs a Docker stack (kind = \"containers\" or \"compose\", or --stack containers)", action.name()));
            return None;
        }
        let injector = injector?;
        if injector.fronts().is_none() {
            self.err(span, format!("container actions apply to the services other services call, through their injectors payment-gateway and withdrawal-service; `{}` stands for a service outside the stack — fault it with fault = {{ kind = \"refuse\" }}", injector_name(injector)));
            return None;
        }
        if action == ContainerAction::Restart
            && let Some(u) = until
        {
            self.err(u.span(), "restart happens at `from` and has no `until`; use container = \"stop\" for an outage with an end");
            return None;
        }
        let fault = match action {
            ContainerAction::Pause => Fault::hang(),
            _ => Fault::status(502),
        };
        Some((fault, action))
    }

    /// The fault, checked by the injectors' own rules (whose messages name
    /// the field), at the location of the whole `fault = { ... }`.
    fn fault(&mut self, spec: Spanned<FaultSpec>) -> Option<Fault> {
        let span = spec.span();
        let spec = spec.into_inner();
        let millis = [
            ("fixed_ms", spec.fixed_ms, "fixed_ms = 250"),
            (
                "uniform_ms",
                spec.uniform_ms.map(|[lo, hi]| lo.max(hi)),
                "uniform_ms = [100, 400]",
            ),
            (
                "lognormal.median_ms",
                spec.lognormal.map(|l| l.median_ms),
                "lognormal = { median_ms = 40, sigma = 0.8 }",
            ),
            ("duration_ms", spec.duration_ms, "duration_ms = 2000"),
            (
                "flapping.period_ms",
                spec.flapping.map(|f| f.period_ms),
                "flapping = { period_ms = 4000, duty = 0.5 }",
            ),
        ];
        // The injectors' bounds: a delay (or slow body) at most MAX_DELAY,
        // a flapping period at most MAX_PERIOD.
        let bound = |field: &str| {
            if field.starts_with("flapping") {
                (fault_injectors::fault::MAX_PERIOD, "one day")
            } else {
                (fault_injectors::fault::MAX_DELAY, "one hour")
            }
        };
        let too_long =
            |field: &str, ms: &f64| ms.is_finite() && *ms > bound(field).0.as_secs_f64() * 1e3;
        if let Some((field, _, example)) = millis
            .iter()
            .find(|(field, ms, _)| ms.as_ref().is_some_and(|ms| too_long(field, ms)))
        {
            let (max, what) = bound(field);
            self.err(
                span,
                format!(
                    "{field} is too large to be a time: at most {} ms ({what}); write milliseconds, e.g. {example}",
                    max.as_millis()
                ),
            );
            return None;
        }
        match Fault::try_from(spec) {
            Ok(fault) => Some(fault),
            Err(e) => {
                self.err(span, e.to_string());
                None
            }
        }
    }

    /// A fault's window: set before the end of the run, cleared after it is
    /// set and no later than the end.
    fn window(
        &mut self,
        from: &Spanned<super::Dur>,
        until: Option<&Spanned<super::Dur>>,
        duration: Duration,
    ) -> (Duration, Option<Duration>) {
        if from.get_ref().0 >= duration {
            self.err(from.span(), format!("from = {} is not before the end of the run ({}); start the fault earlier or make `duration` longer", from.get_ref(), super::Dur(duration)));
        }
        if let Some(u) = until {
            if u.get_ref().0 <= from.get_ref().0 {
                self.err(
                    u.span(),
                    format!(
                        "until = {} must be after from = {}",
                        u.get_ref(),
                        from.get_ref()
                    ),
                );
            } else if u.get_ref().0 > duration {
                self.err(
                    u.span(),
                    format!(
                        "until = {} is after the end of the run ({}); leave `until` out to keep the fault to the end",
                        u.get_ref(),
                        super::Dur(duration)
                    ),
                );
            }
        }
        (from.get_ref().0, until.map(|u| u.get_ref().0))
    }

    fn phases(
        &mut self,
        files: Vec<Spanned<super::file::PhaseFile>>,
        faults: &[FaultWindow],
        duration: Duration,
    ) -> Vec<Phase> {
        if files.is_empty() {
            self.derived_phases = true;
            return derived_phases(faults, duration);
        }
        let mut phases: Vec<Phase> = Vec::new();
        for p in files {
            let p = p.into_inner();
            let (from, until) = (p.from.get_ref().0, p.until.get_ref().0);
            if until <= from {
                self.err(
                    p.until.span(),
                    format!(
                        "phase `{}` must end after it starts: `until` later than `from`",
                        p.name.get_ref()
                    ),
                );
            }
            if until > duration {
                self.err(
                    p.until.span(),
                    format!(
                        "phase `{}` ends after the run ({}); end it by then",
                        p.name.get_ref(),
                        super::Dur(duration)
                    ),
                );
            }
            if phases.iter().any(|q| &q.name == p.name.get_ref()) {
                self.err(
                    p.name.span(),
                    format!(
                        "two phases are named `{}`; give each a distinct `name`",
                        p.name.get_ref()
                    ),
                );
            }
            phases.push(Phase {
                name: p.name.get_ref().clone(),
                from,
                until,
            });
        }
        phases
    }

    fn checks(&mut self, files: Vec<Spanned<CheckFile>>, cx: &Context<'_>) -> Vec<CheckPlan> {
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for c in files {
            let span = c.span();
            let c = c.into_inner();
            if let Some(plan) = self.check(&c, cx) {
                if !names.insert(plan.name.clone()) {
                    self.err(
                        span,
                        format!("two checks are named `{}`; give one a `name`", plan.name),
                    );
                }
                out.push(plan);
            }
        }
        out
    }

    fn check(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<CheckPlan> {
        let kind = *c.kind.get_ref();
        if !self.fields_apply(c, kind) || !self.durations_positive(c) {
            return None;
        }
        let check = match kind {
            CheckKind::BreakerOpens => self.breaker_opens(c, cx)?,
            CheckKind::HalfOpenProbes => self.half_open_probes(c, cx)?,
            CheckKind::RecoversWithin => self.recovers_within(c, cx)?,
            CheckKind::Latency => self.latency(c, cx)?,
            CheckKind::NoCascade => {
                let journey = self.check_journey(c, cx, Series::Any)?;
                let phase = self.check_phase(c, cx)?;
                self.baseline(c, cx)?;
                let (success_tolerance, latency_factor) = self.tolerances(c);
                Check::NoCascade {
                    journey,
                    phase,
                    success_tolerance,
                    latency_factor,
                }
            }
            CheckKind::Amplification => self.amplification(c, cx)?,
            CheckKind::NoDuplicates => Check::NoDuplicates {
                downstream: self.check_downstream(c, cx, Some(Downstream::Order))?,
                field: c
                    .field
                    .as_ref()
                    .map_or_else(|| "order_no".into(), |f| f.get_ref().clone()),
            },
            CheckKind::Integrity => self.integrity(c, cx)?,
        };
        let name = c.name.clone().unwrap_or_else(|| default_check_name(&check));
        Some(CheckPlan { name, check })
    }

    fn breaker_opens(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let downstream = self.check_downstream(c, cx, None)?;
        self.faulted(downstream, c, cx)?;
        Some(Check::BreakerOpens {
            downstream,
            within: dur(&c.within).unwrap_or(DEFAULT_OPEN_WITHIN),
        })
    }

    /// Probes come every open timeout: the embedded stack's is known (scaled
    /// by `time_scale`); an external SUT's must be given.
    fn half_open_probes(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let downstream = self.check_downstream(c, cx, None)?;
        self.faulted(downstream, c, cx)?;
        let settings = cx.stack.client_settings(downstream);
        let period = match (dur(&c.period), cx.stack.kind) {
            (Some(p), _) => p,
            (None, kind) if kind.runs_reference_stack() => settings.open_timeout,
            (None, _) => {
                self.err(c.kind.span(), "half_open_probes on an external stack needs `period` (the SUT's breaker open timeout, e.g. period = \"30s\")");
                return None;
            }
        };
        let max_probes = match &c.max_probes {
            Some(n) => self.count(n, "max_probes", "a probe is one call", MAX_COUNT),
            None if cx.stack.kind.runs_reference_stack() => settings.max_requests,
            None => 3,
        };
        Some(Check::HalfOpenProbes {
            downstream,
            max_probes,
            period,
            tolerance: dur(&c.tolerance).unwrap_or(period / 5),
        })
    }

    fn recovers_within(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let journey = self.check_journey(c, cx, Series::Any)?;
        let downstream = match &c.downstream {
            Some(d) => Some(self.injector(d, cx.stack)?),
            None => None,
        };
        let cleared =
            |f: &FaultWindow| f.until.is_some() && downstream.is_none_or(|d| d == f.injector);
        if !cx.faults.iter().any(cleared) {
            if !self.unresolved_faults {
                let on =
                    downstream.map_or(String::new(), |d| format!(" on `{}`", injector_name(d)));
                self.err(c.kind.span(), format!("recovers_within needs a fault{on} that is cleared (a [[faults]] entry with `until`) to measure recovery from"));
            }
            return None;
        }
        self.baseline(c, cx)?;
        let hold = match &c.hold {
            Some(h) => self.count(h, "hold", "one window back at baseline", MAX_COUNT),
            None => 3,
        };
        let (success_tolerance, latency_factor) = self.tolerances(c);
        Some(Check::RecoversWithin {
            journey,
            downstream,
            within: dur(&c.within).unwrap_or(DEFAULT_RECOVERY),
            window: dur(&c.window).unwrap_or(cx.load.window),
            hold,
            success_tolerance,
            latency_factor,
        })
    }

    fn latency(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let journey = self.check_journey(c, cx, Series::Any)?;
        let phase = self.check_phase(c, cx)?;
        let bound = match (&c.max, &c.max_factor) {
            (Some(m), None) => LatencyBound::Max(m.get_ref().0),
            (None, Some(f)) if *f.get_ref() > 0.0 && f.get_ref().is_finite() => {
                self.baseline(c, cx)?;
                LatencyBound::Factor(*f.get_ref())
            }
            (None, Some(f)) => {
                self.err(f.span(), format!("max_factor must be more than 0 (2 allows the percentile to double), got {}", f.get_ref()));
                return None;
            }
            (Some(_), Some(f)) => {
                self.err(f.span(), "give either `max` or `max_factor`, not both");
                return None;
            }
            (None, None) => {
                self.err(c.kind.span(), "a latency check needs `max` (e.g. \"500ms\") or `max_factor` (a multiple of baseline)");
                return None;
            }
        };
        Some(Check::Latency {
            journey,
            phase,
            percentile: c
                .percentile
                .as_ref()
                .map_or(super::Percentile::P99, |p| *p.get_ref()),
            bound,
        })
    }

    fn amplification(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let downstream = self.check_downstream(c, cx, None)?;
        let journey = match &c.journey {
            Some(_) => Some(self.check_journey(c, cx, Series::JourneysOnly)?),
            None => None,
        };
        self.reached(downstream, journey.as_deref(), c, cx)?;
        let max_ratio = match &c.max_ratio {
            Some(r) if *r.get_ref() > 0.0 && r.get_ref().is_finite() => *r.get_ref(),
            Some(r) => {
                self.err(r.span(), format!("max_ratio must be more than 0 (4 allows the platform's 4 attempts per call), got {}", r.get_ref()));
                return None;
            }
            None => {
                self.err(c.kind.span(), "an amplification check needs `max_ratio` (downstream attempts per call, e.g. max_ratio = 4)");
                return None;
            }
        };
        Some(Check::Amplification {
            downstream,
            journey,
            phase: self.check_phase(c, cx)?,
            max_ratio,
            per: c
                .per
                .as_ref()
                .map_or(AmplificationPer::Call, |p| *p.get_ref()),
        })
    }

    fn integrity(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<Check> {
        let journey = self.check_journey(c, cx, Series::JourneysOnly)?;
        if let Some(j) = cx
            .load
            .journeys
            .iter()
            .find(|j| j.name == journey && j.kind != JourneyKind::Payment)
        {
            let at = c.journey.as_ref().map_or(c.kind.span(), Spanned::span);
            self.err(at, format!("integrity checks payments: its journey must be a payment journey (`{}` is a {} journey)", j.name, j.kind));
            return None;
        }
        Some(Check::Integrity { journey })
    }

    /// The check's `journey`, which must name one of the load's journeys
    /// (or, where `series` allows, a journey's follow-up such as
    /// `payment.webhook`).
    fn check_journey(&mut self, c: &CheckFile, cx: &Context<'_>, series: Series) -> Option<String> {
        let mut known: Vec<String> = cx.load.journeys.iter().map(|x| x.name.clone()).collect();
        if series == Series::Any {
            known.extend(
                cx.load
                    .journeys
                    .iter()
                    .filter(|j| j.webhook)
                    .map(|j| format!("{}.webhook", j.name)),
            );
        }
        match &c.journey {
            Some(j) if known.contains(j.get_ref()) => Some(j.get_ref().clone()),
            Some(j) => {
                self.err(
                    j.span(),
                    format!(
                        "unknown journey `{}`; known: {}",
                        j.get_ref(),
                        known.join(", ")
                    ),
                );
                None
            }
            None => {
                self.err(
                    c.kind.span(),
                    format!(
                        "a {} check needs `journey` (one of: {})",
                        kind_name(*c.kind.get_ref()),
                        known.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// The check's `downstream` (an injector name), or `default`.
    fn check_downstream(
        &mut self,
        c: &CheckFile,
        cx: &Context<'_>,
        default: Option<Downstream>,
    ) -> Option<Downstream> {
        match (&c.downstream, default) {
            (Some(d), _) => self.injector(d, cx.stack),
            (None, Some(d)) => Some(d),
            (None, None) => {
                self.err(c.kind.span(), format!("a {} check needs `downstream` (an injector name, e.g. downstream = \"order-service\")", kind_name(*c.kind.get_ref())));
                None
            }
        }
    }

    /// The check's `phase` (default `fault`), which must exist.
    fn check_phase(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<String> {
        let (name, at, default) = match &c.phase {
            Some(p) => (p.get_ref().clone(), p.span(), ""),
            None => ("fault".to_string(), c.kind.span(), " (the default)"),
        };
        if cx.phases.iter().any(|p| p.name == name) {
            return Some(name);
        }
        if !self.phases_incomplete() {
            let known: Vec<&str> = cx.phases.iter().map(|p| p.name.as_str()).collect();
            self.err(
                at,
                format!(
                    "no phase `{name}`{default} in this scenario; set `phase` to one of: {}",
                    known.join(", ")
                ),
            );
        }
        None
    }

    /// Checks that compare with baseline need a phase named `baseline`.
    fn baseline(&mut self, c: &CheckFile, cx: &Context<'_>) -> Option<()> {
        if cx.phases.iter().any(|p| p.name == "baseline") {
            return Some(());
        }
        if !self.phases_incomplete() {
            let fix = if self.derived_phases {
                "start the first fault after 0s so the run has a baseline before it"
            } else {
                "add a [[phases]] entry named `baseline`"
            };
            self.err(c.kind.span(), format!("a {} check compares with the `baseline` phase, which this scenario does not have; {fix}", kind_name(*c.kind.get_ref())));
        }
        None
    }

    /// The derived phases miss a fault that was refused: a missing phase is
    /// a consequence of that error, not another one.
    fn phases_incomplete(&self) -> bool {
        self.derived_phases && self.unresolved_faults
    }

    /// `success_tolerance` in [0, 1] (default 0.02) and `latency_factor`
    /// ≥ 0 (default 2, 0 ignores latency).
    fn tolerances(&mut self, c: &CheckFile) -> (f64, f64) {
        let success = match &c.success_tolerance {
            Some(x) if !(x.get_ref().is_finite() && (0.0..=1.0).contains(x.get_ref())) => {
                self.err(x.span(), format!("success_tolerance must be between 0 and 1 (0.02 allows 2 points below baseline), got {}", x.get_ref()));
                0.02
            }
            Some(x) => *x.get_ref(),
            None => 0.02,
        };
        let latency = match &c.latency_factor {
            Some(x) if !(x.get_ref().is_finite() && *x.get_ref() >= 0.0) => {
                self.err(x.span(), format!("latency_factor must be 0 (ignore latency) or more (2 allows p99 to double), got {}", x.get_ref()));
                2.0
            }
            Some(x) => *x.get_ref(),
            None => 2.0,
        };
        (success, latency)
    }

    /// A breaker check needs a fault on its downstream to measure from.
    fn faulted(&mut self, d: Downstream, c: &CheckFile, cx: &Context<'_>) -> Option<()> {
        if cx.faults.iter().any(|f| f.injector == d) {
            return Some(());
        }
        if !self.unresolved_faults {
            let at = c.downstream.as_ref().map_or(c.kind.span(), Spanned::span);
            self.err(at, format!("no [[faults]] entry targets `{}`, so its breaker has nothing to react to; add one or check another downstream", injector_name(d)));
        }
        None
    }

    /// Amplification divides downstream attempts by the requests of the
    /// journeys reaching it: `journey` (or some journey) must reach it.
    fn reached(
        &mut self,
        d: Downstream,
        journey: Option<&str>,
        c: &CheckFile,
        cx: &Context<'_>,
    ) -> Option<()> {
        let reaches = |j: &Journey| {
            j.expects.contains(&d) || j.kind.async_downstreams(j.webhook).contains(&d)
        };
        let mut candidates = cx
            .load
            .journeys
            .iter()
            .filter(|j| journey.is_none_or(|name| j.name == name));
        if candidates.any(reaches) {
            return Some(());
        }
        let name = injector_name(d);
        match (journey, &c.journey) {
            (Some(j), Some(at)) => self.err(at.span(), format!("journey `{j}` does not reach `{name}`, so there is no ratio to bound; name a journey that calls it or leave `journey` out")),
            _ => {
                let at = c.downstream.as_ref().map_or(c.kind.span(), Spanned::span);
                self.err(at, format!("no journey of this scenario reaches `{name}`, so there is no ratio to bound; add a journey that calls it"));
            }
        }
        None
    }

    /// Durations a check waits or measures over must be more than zero.
    fn durations_positive(&mut self, c: &CheckFile) -> bool {
        let durations = [
            ("within", &c.within),
            ("period", &c.period),
            ("window", &c.window),
            ("max", &c.max),
        ];
        let mut ok = true;
        for (field, d) in durations {
            if let Some(d) = d.as_ref().filter(|d| d.get_ref().0.is_zero()) {
                self.err(
                    d.span(),
                    format!("{field} must be more than zero, e.g. {field} = \"5s\""),
                );
                ok = false;
            }
        }
        ok
    }

    /// Refuses fields that do not belong to the check's kind, and says which
    /// do.
    fn fields_apply(&mut self, c: &CheckFile, kind: CheckKind) -> bool {
        use CheckKind::*;
        let present: [FieldUse; 17] = [
            (
                "downstream",
                c.downstream.as_ref().map(Spanned::span),
                &[
                    BreakerOpens,
                    HalfOpenProbes,
                    RecoversWithin,
                    Amplification,
                    NoDuplicates,
                ],
            ),
            (
                "journey",
                c.journey.as_ref().map(Spanned::span),
                &[RecoversWithin, Latency, NoCascade, Amplification, Integrity],
            ),
            (
                "phase",
                c.phase.as_ref().map(Spanned::span),
                &[Latency, NoCascade, Amplification],
            ),
            (
                "within",
                c.within.as_ref().map(Spanned::span),
                &[BreakerOpens, RecoversWithin],
            ),
            (
                "max_probes",
                c.max_probes.as_ref().map(Spanned::span),
                &[HalfOpenProbes],
            ),
            (
                "period",
                c.period.as_ref().map(Spanned::span),
                &[HalfOpenProbes],
            ),
            (
                "tolerance",
                c.tolerance.as_ref().map(Spanned::span),
                &[HalfOpenProbes],
            ),
            (
                "window",
                c.window.as_ref().map(Spanned::span),
                &[RecoversWithin],
            ),
            (
                "hold",
                c.hold.as_ref().map(Spanned::span),
                &[RecoversWithin],
            ),
            (
                "success_tolerance",
                c.success_tolerance.as_ref().map(Spanned::span),
                &[RecoversWithin, NoCascade],
            ),
            (
                "latency_factor",
                c.latency_factor.as_ref().map(Spanned::span),
                &[RecoversWithin, NoCascade],
            ),
            (
                "percentile",
                c.percentile.as_ref().map(Spanned::span),
                &[Latency],
            ),
            ("max", c.max.as_ref().map(Spanned::span), &[Latency]),
            (
                "max_factor",
                c.max_factor.as_ref().map(Spanned::span),
                &[Latency],
            ),
            (
                "max_ratio",
                c.max_ratio.as_ref().map(Spanned::span),
                &[Amplification],
            ),
            (
                "field",
                c.field.as_ref().map(Spanned::span),
                &[NoDuplicates],
            ),
            ("per", c.per.as_ref().map(Spanned::span), &[Amplification]),
        ];
        let applies: Vec<&str> = present
            .iter()
            .filter(|(_, _, kinds)| kinds.contains(&kind))
            .map(|(f, _, _)| *f)
            .collect();
        let mut ok = true;
        for (field, span, kinds) in &present {
            if let Some(span) = span.as_ref().filter(|_| !kinds.contains(&kind)) {
                self.err(
                    span.clone(),
                    format!(
                        "field `{field}` does not apply to a {} check (it takes: name, kind, {})",
                        kind_name(kind),
                        applies.join(", ")
                    ),
                );
                ok = false;
            }
        }
        ok
    }
}

/// A check field: its name, where it is written (when it is) and the kinds
/// of check it applies to.
type FieldUse = (&'static str, Option<Range<usize>>, &'static [CheckKind]);

/// What a check can refer to: the rest of the scenario, resolved.
struct Context<'s> {
    load: &'s LoadPlan,
    phases: &'s [Phase],
    faults: &'s [FaultWindow],
    stack: &'s StackPlan,
}

/// A number as a reader wrote it: `1e300`, not three hundred digits.
fn shown(x: f64) -> String {
    if x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// The duration written in an optional field.
fn dur(d: &Option<Spanned<super::Dur>>) -> Option<Duration> {
    d.as_ref().map(|d| d.get_ref().0)
}

/// Which names a check's `journey` may take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Series {
    /// A journey or a journey's follow-up series (`payment.webhook`).
    Any,
    /// A journey only.
    JourneysOnly,
}

/// baseline → fault → recovery from the fault windows; one `baseline` phase
/// when there are no faults.
pub(crate) fn derived_phases(faults: &[FaultWindow], duration: Duration) -> Vec<Phase> {
    let Some(first) = faults.iter().map(|f| f.from).min() else {
        return vec![Phase {
            name: "baseline".into(),
            from: Duration::ZERO,
            until: duration,
        }];
    };
    let last = faults
        .iter()
        .map(|f| f.until.unwrap_or(duration))
        .max()
        .unwrap_or(duration)
        .min(duration);
    let mut phases = Vec::new();
    let mut push = |name: &str, from: Duration, until: Duration| {
        if until > from {
            phases.push(Phase {
                name: name.into(),
                from,
                until,
            });
        }
    };
    push("baseline", Duration::ZERO, first);
    push("fault", first, last);
    push("recovery", last, duration);
    phases
}

/// Every kind of check, in the order the docs list them.
const CHECK_KINDS: [CheckKind; 8] = [
    CheckKind::BreakerOpens,
    CheckKind::HalfOpenProbes,
    CheckKind::RecoversWithin,
    CheckKind::Latency,
    CheckKind::NoCascade,
    CheckKind::Amplification,
    CheckKind::NoDuplicates,
    CheckKind::Integrity,
];

fn kind_name(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::BreakerOpens => "breaker_opens",
        CheckKind::HalfOpenProbes => "half_open_probes",
        CheckKind::RecoversWithin => "recovers_within",
        CheckKind::Latency => "latency",
        CheckKind::NoCascade => "no_cascade",
        CheckKind::Amplification => "amplification",
        CheckKind::NoDuplicates => "no_duplicates",
        CheckKind::Integrity => "integrity",
    }
}

fn default_check_name(check: &Check) -> String {
    match check {
        Check::BreakerOpens { downstream, .. } => {
            format!("breaker_opens:{}", injector_name(*downstream))
        }
        Check::HalfOpenProbes { downstream, .. } => {
            format!("half_open_probes:{}", injector_name(*downstream))
        }
        Check::RecoversWithin { journey, .. } => format!("recovers_within:{journey}"),
        Check::Latency {
            journey,
            phase,
            percentile,
            ..
        } => {
            format!("latency:{journey}:{phase}:{}", percentile_name(*percentile))
        }
        Check::NoCascade { journey, phase, .. } => format!("no_cascade:{journey}:{phase}"),
        Check::Amplification {
            downstream, phase, ..
        } => format!("amplification:{}:{phase}", injector_name(*downstream)),
        Check::NoDuplicates { downstream, field } => {
            format!("no_duplicates:{}:{field}", injector_name(*downstream))
        }
        Check::Integrity { journey } => format!("integrity:{journey}"),
    }
}

/// The name of a percentile as written.
pub(crate) fn percentile_name(p: super::Percentile) -> &'static str {
    match p {
        super::Percentile::P50 => "p50",
        super::Percentile::P90 => "p90",
        super::Percentile::P99 => "p99",
        super::Percentile::P999 => "p999",
        super::Percentile::Max => "max",
    }
}

fn service_named(name: &str) -> Option<ServiceKind> {
    ServiceKind::ALL.into_iter().find(|k| k.name() == name)
}

fn service_names() -> String {
    ServiceKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}
