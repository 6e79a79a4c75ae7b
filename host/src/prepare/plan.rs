//! `quiesce plan`: the real executor against simulated services in virtual time, twice: with
//! services that obey (the steps shown) and with services that never cooperate (the worst
//! case). Nothing is touched.
//!
//! The plan's text shows policy- and container-provided text (names, versions, commands,
//! warnings) through [`safe`]: escaped control characters, one line each.

use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::Step;
use quiesce_policy_sdk::simulation::ServiceModel;

use crate::model::process::SignalTarget;
use crate::model::report::{Report, ServiceReport};
use crate::model::supervision::Supervisor;
use crate::model::text::safe;
use crate::model::units::millis;
use crate::model::warning::{Warning, WarningCode};
use crate::prepare::worst::{Path, explore};
use crate::run::executor::ServiceJob;
use crate::run::orchestrate::PreparedRun;
use crate::run::simulated::simulate_jobs;

/// What a plan found.
pub struct Plan {
    /// The report of the run with obedient services (`dry_run`, with `worst_case_ms`).
    pub report: Report,
    /// Each service's report when it never cooperates, on its policy's worst path.
    pub worst: Vec<ServiceReport>,
    /// Each service's worst path, by container id.
    pub worst_paths: Vec<(String, Path)>,
    /// The whole run's duration when no service cooperates.
    pub worst_total: Duration,
    /// True when that exceeds `--within`.
    pub over_window: bool,
}

/// Simulates `prepared` twice; `within` is the enclosing limit to warn about, if any.
pub fn plan(prepared: &PreparedRun, within: Option<Duration>) -> Plan {
    let (obedient, _) = simulate(prepared, |_| ServiceModel::obedient());
    // Each service on its policy's worst path ([`crate::prepare::worst`]), with its real budget.
    let paths: Vec<(String, Path)> = prepared
        .jobs
        .iter()
        .zip(explore(&prepared.jobs))
        .map(|(job, worst)| {
            (
                job.facts.id.clone(),
                worst.map(|worst| worst.path).unwrap_or_default(),
            )
        })
        .collect();
    let worst_paths = paths.clone();
    let (worst, worst_total) = simulate(prepared, move |job| {
        worst_paths
            .iter()
            .find(|(id, _)| *id == job.facts.id)
            .map(|(_, path)| path.model())
            .unwrap_or_else(ServiceModel::stubborn)
    });
    let mut warnings = prepared.warnings.clone();
    let over_window = within.is_some_and(|within| worst_total > within);
    if let Some(within) = within
        && over_window
    {
        warnings.push(Warning::new(
            WarningCode::OverWindow,
            format!(
                "the worst case ({}) exceeds the enclosing limit of {} (--within): raise TimeoutStopSec / --shutdown-timeout, or lower budgets",
                humantime::format_duration(worst_total),
                humantime::format_duration(within)
            ),
        ));
    }
    let mut report = Report::new(
        obedient,
        SystemTime::now(),
        prepared.deadline,
        true,
        warnings,
    );
    report.worst_case_ms = Some(millis(worst_total));
    for service in &mut report.services {
        let job = prepared.jobs.iter().find(|job| job.facts.id == service.id);
        let worst_ms = worst
            .iter()
            .find(|worst| worst.id == service.id)
            .map_or(0, |worst| worst.elapsed_ms);
        if let Some(warning) = job
            .and_then(|job| job.supervision.as_ref())
            .and_then(|supervision| unit_too_short(&supervision.unit, worst_ms))
        {
            service.warnings.push(warning);
        }
    }
    Plan {
        report,
        worst,
        worst_paths: paths,
        worst_total,
        over_window,
    }
}

/// A warning when the unit's own stop (what `systemctl stop`, and so kolla-ansible's handlers,
/// run) gives the service less time than its policy's worst case.
fn unit_too_short(unit: &Supervisor, worst_ms: u64) -> Option<Warning> {
    let show = |ms: u64| humantime::format_duration(Duration::from_millis(ms)).to_string();
    let timeout = unit.timeout_stop_ms.unwrap_or(u64::MAX);
    let (limit, how) = if unit.stops_with_quiesce {
        (timeout, format!("TimeoutStopSec is {}", show(timeout)))
    } else {
        match unit.engine_stop_timeout_ms {
            Some(grace) if grace < timeout => (
                grace,
                format!(
                    "its ExecStop gives the engine {} (-t) before SIGKILL",
                    show(grace)
                ),
            ),
            _ => (timeout, format!("TimeoutStopSec is {}", show(timeout))),
        }
    };
    (worst_ms > limit).then(|| {
        let fix = if unit.stops_with_quiesce {
            "raise TimeoutStopSec in its drop-in (`quiesce generate kolla-dropins` writes it from the plan)"
        } else {
            "install quiesce's drop-in (`quiesce generate kolla-dropins`), or stop it with quiesce"
        };
        Warning::new(
            WarningCode::UnitStopTooShort,
            format!(
                "its unit {} ({}) stops it by itself within {}: {how}, but the policy's worst case is {}; `systemctl stop` (what kolla-ansible's handlers run) would cut it short: {fix}",
                unit.unit,
                unit.found_by,
                show(limit),
                show(worst_ms)
            ),
        )
    })
}

/// Runs every job of `prepared` against services behaving as `model` says, in virtual time.
fn simulate(
    prepared: &PreparedRun,
    model: impl Fn(&ServiceJob) -> ServiceModel + Send + 'static,
) -> (Vec<ServiceReport>, Duration) {
    simulate_jobs(
        prepared.jobs.clone(),
        prepared.ordering.clone(),
        prepared.parallel,
        prepared.deadline,
        model,
    )
}

impl Plan {
    /// The plan in words: each service's steps, its worst case, its warnings.
    pub fn text(&self, prepared: &PreparedRun) -> String {
        let report = &self.report;
        let mut text = format!(
            "plan: {} service(s), {} at a time, deadline {} (dry run: nothing is touched)\n",
            report.services.len(),
            prepared.parallel,
            humantime::format_duration(prepared.deadline)
        );
        if let Some(engine) = &report.engine {
            text.push_str(&format!("engine: {}\n", safe(&engine.describe())));
        }
        for (position, service) in report.services.iter().enumerate() {
            let after: Vec<String> = prepared
                .jobs
                .iter()
                .position(|job| job.facts.id == service.id)
                .map(|index| {
                    prepared.ordering.waits_for[index]
                        .iter()
                        .map(|&i| safe(&prepared.jobs[i].facts.name).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            text.push_str(&format!(
                "\n{}. {}  policy {} {}  budget {}{}\n",
                position + 1,
                safe(&service.name),
                safe(&service.policy.name),
                safe(&service.policy.version),
                humantime::format_duration(Duration::from_millis(service.budget_ms)),
                if after.is_empty() {
                    String::new()
                } else {
                    format!("  after {}", after.join(", "))
                }
            ));
            if prepared
                .jobs
                .iter()
                .any(|job| job.facts.id == service.id && job.signal_target == SignalTarget::Child)
            {
                text.push_str("   signals go to PID 1's children (signal target `child`)\n");
            }
            // What the receiving process does with each signal step, when the kernel said.
            let receiver = prepared
                .jobs
                .iter()
                .find(|job| job.facts.id == service.id)
                .and_then(|job| job.receiver.as_ref());
            let heard = |step: &Step| match (step, receiver) {
                (Step::Signal(signal), Some(receiver)) if signal.number() != 9 => receiver
                    .signals
                    .map(|masks| format!(" ({}: {})", receiver.who(), masks.of(*signal).as_str()))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            for step in &service.steps {
                let (action, detail) = step.step.describe();
                text.push_str(&format!(
                    "   +{:<7} {action} {}{}  -> {}\n",
                    format!("{:.1}s", step.start_ms as f64 / 1000.0),
                    safe(&detail),
                    safe(&heard(&step.step)),
                    safe(&step.outcome.describe())
                ));
            }
            if let Some(worst) = self.worst.iter().find(|s| s.id == service.id) {
                let steps: Vec<String> = worst
                    .steps
                    .iter()
                    .map(|s| {
                        let (action, detail) = s.step.describe();
                        format!("{action} {}{}", safe(&detail), safe(&heard(&s.step)))
                    })
                    .collect();
                if steps.is_empty() {
                    text.push_str(&format!(
                        "   nothing to do: {}\n",
                        worst.outcome.as_str().replace('-', " ")
                    ));
                } else {
                    let path = self
                        .worst_paths
                        .iter()
                        .find(|(id, _)| *id == service.id)
                        .map(|(_, path)| path.describe())
                        .unwrap_or_default();
                    let path = if path.is_empty() {
                        path
                    } else {
                        format!(" ({path})")
                    };
                    text.push_str(&format!(
                        "   worst case {} if it never cooperates{}: {}\n",
                        humantime::format_duration(Duration::from_millis(worst.elapsed_ms)),
                        safe(&path),
                        collapse_repeats(&steps).join("; ")
                    ));
                }
            }
            if let Some(supervision) = prepared
                .jobs
                .iter()
                .find(|job| job.facts.id == service.id)
                .and_then(|job| job.supervision.as_ref())
            {
                text.push_str(&format!(
                    "   supervised by {} ({}): Restart={}{}\n",
                    safe(&supervision.unit.unit),
                    safe(&supervision.unit.found_by),
                    safe(&supervision.unit.restart),
                    match supervision.not_held {
                        None => "; held (Restart=no) for the stop until it has settled".to_string(),
                        Some(why) => format!("; not held: {}", why.describe()),
                    }
                ));
            }
            for warning in &service.warnings {
                text.push_str(&format!("   warning: {}\n", safe(&warning.to_string())));
            }
        }
        text.push_str(&format!(
            "\nworst case for the whole run: {}\n",
            humantime::format_duration(Duration::from_millis(millis(self.worst_total)))
        ));
        for warning in &report.warnings {
            text.push_str(&format!("warning: {}\n", safe(&warning.to_string())));
        }
        text
    }
}

/// `steps` with each run of a repeated step or pair of steps said once: `exec test -f
/// /tmp/idle; sleep 1s` thirty times is `(exec test -f /tmp/idle; sleep 1s) ×30`.
fn collapse_repeats(steps: &[String]) -> Vec<String> {
    let mut collapsed = Vec::new();
    let mut at = 0;
    while at < steps.len() {
        let repeats = |width: usize| {
            let block = steps.get(at..at + width)?;
            let count = steps[at..]
                .chunks(width)
                .take_while(|chunk| *chunk == block)
                .count();
            (count > 1).then_some(count)
        };
        if let Some(count) = repeats(1) {
            collapsed.push(format!("{} ×{count}", steps[at]));
            at += count;
        } else if let Some(count) = repeats(2) {
            collapsed.push(format!("({}; {}) ×{count}", steps[at], steps[at + 1]));
            at += 2 * count;
        } else {
            collapsed.push(steps[at].clone());
            at += 1;
        }
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polling_loop_is_said_once_with_its_count() {
        let steps: Vec<String> = [
            "exec touch",
            "exec test",
            "sleep 1s",
            "exec test",
            "sleep 1s",
        ]
        .iter()
        .chain(["signal SIGTERM", "wait", "wait"].iter())
        .map(|step| step.to_string())
        .collect();
        assert_eq!(
            collapse_repeats(&steps),
            [
                "exec touch",
                "(exec test; sleep 1s) ×2",
                "signal SIGTERM",
                "wait ×2"
            ]
        );
    }
}
