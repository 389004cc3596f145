//! `[[faults]]` and `[[phases]]`: the timeline.

use super::*;

impl Validator<'_> {
    pub(super) fn faults(
        &mut self,
        windows: Vec<Spanned<crate::scenario::file::FaultWindowFile>>,
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
    pub(super) fn container_action(
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
    pub(super) fn fault(&mut self, spec: Spanned<FaultSpec>) -> Option<Fault> {
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
    pub(super) fn window(
        &mut self,
        from: &Spanned<crate::scenario::Dur>,
        until: Option<&Spanned<crate::scenario::Dur>>,
        duration: Duration,
    ) -> (Duration, Option<Duration>) {
        if from.get_ref().0 >= duration {
            self.err(from.span(), format!("from = {} is not before the end of the run ({}); start the fault earlier or make `duration` longer", from.get_ref(), crate::scenario::Dur(duration)));
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
                        crate::scenario::Dur(duration)
                    ),
                );
            }
        }
        (from.get_ref().0, until.map(|u| u.get_ref().0))
    }

    pub(super) fn phases(
        &mut self,
        files: Vec<Spanned<crate::scenario::file::PhaseFile>>,
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
                        crate::scenario::Dur(duration)
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
