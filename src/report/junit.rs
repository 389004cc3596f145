//! `junit.xml`: one testsuite per scenario, one testcase per check; a failed
//! check carries what was expected, what was seen and the evidence.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use super::Report;

/// Renders the report as JUnit XML.
pub(super) fn render(report: &Report, elapsed_s: f64) -> std::io::Result<String> {
    let mut junit = JUnit::new("faultline");
    let mut suite = TestSuite::new(report.scenario.as_str());
    suite.set_time(Duration::from_secs_f64(elapsed_s.max(0.0)));
    for check in &report.checks {
        let status = if check.passed {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(format!(
                    "expected {}; observed {}",
                    check.expected, check.observed
                ))
                .set_type(check.kind.as_str())
                .set_description(check.evidence.join("\n"));
            status
        };
        let mut case = TestCase::new(check.name.as_str(), status);
        case.set_classname(format!("faultline.{}", report.scenario));
        if check.passed && !check.evidence.is_empty() {
            case.set_system_out(check.evidence.join("\n"));
        }
        suite.add_test_case(case);
    }
    if let Some(c) = &report.comparison {
        let status = if c.regressed {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(format!(
                    "regressed against {} by more than {:.0}%: {}",
                    c.baseline,
                    c.max_regression * 100.0,
                    super::compare::regressions(c).join("; ")
                ))
                .set_type("baseline_regression")
                .set_description(super::compare::text(c));
            status
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new("baseline:no_regression", status);
        case.set_classname(format!("faultline.{}", report.scenario));
        suite.add_test_case(case);
    }
    if let Some(lag) = report.generator.describe() {
        // Skipped, not failed: the SUT may be fine, but the latencies
        // measured where the generator lagged are not only the SUT's.
        let mut status = TestCaseStatus::skipped();
        status.set_message(lag);
        let mut case = TestCase::new("load:generator_on_schedule", status);
        case.set_classname(format!("faultline.{}", report.scenario));
        suite.add_test_case(case);
    }
    if report.interrupted {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(match &report.interrupted_by {
            Some(signal) => {
                format!("the run was interrupted ({signal}) before the end of its timeline")
            }
            None => "the run was interrupted before the end of its timeline".to_string(),
        });
        let mut case = TestCase::new("run-completed", status);
        case.set_classname(format!("faultline.{}", report.scenario));
        suite.add_test_case(case);
    }
    junit.add_test_suite(suite);
    junit.to_string().map_err(std::io::Error::other)
}
