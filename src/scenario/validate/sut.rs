//! `[sut]` (how the system under test is read) and `[merchant]`.

use super::*;

impl Validator<'_> {
    pub(super) fn sut(&mut self, file: SutFile, stack: &StackPlan) -> SutPlan {
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

    pub(super) fn sut_breaker(&mut self, b: &SutBreakerFile) -> SutBreaker {
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
    pub(super) fn state_values(&mut self, v: &Spanned<StateValuesFile>) -> [f64; 3] {
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

    pub(super) fn merchant(&mut self, file: MerchantFile) -> Merchant {
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
}
