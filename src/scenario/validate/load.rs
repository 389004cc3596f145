//! `[load]`: the model, the journeys and their rates.

use super::*;

impl Validator<'_> {
    pub(super) fn load(
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
        let mut positive =
            |d: &Option<Spanned<crate::scenario::Dur>>, what: &str, default: Duration| {
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
                        crate::scenario::Dur(duration)
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

    pub(super) fn journey(
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
    pub(super) fn open_rate(
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
    pub(super) fn ramp(
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
                        crate::scenario::Dur(duration)
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
    pub(super) fn closed_only(&mut self, file: &JourneyFile) {
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
}
