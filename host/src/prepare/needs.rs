//! What each service's policy needs, against the budget it will get. Every policy's worst case
//! is its longest path over a service that never cooperates ([`crate::prepare::worst`]: commands that
//! hang, fail or answer nothing useful, signals ignored), with its budget lifted: how long its
//! own sequence takes there is what it needs. A budget shorter than that would cut the sequence
//! (and SIGKILL the service) where the policy meant to wait: `plan` and `stop` warn
//! (`budget-below-policy`), naming the step that would be cut, the path, the settings that
//! lengthen it (each one whose halving shortens the path), both durations and the fix. The
//! same run says which signals the sequence sends, checked against what the service hears
//! ([`crate::prepare::hearing`]; where the engine is remote, those are read through it first). `plan`
//! checks before it simulates; `stop` beside its run, since the check decides nothing.
//!
//! quiesce does not raise a budget by itself: the budget is the operator's bound on how long a
//! stop may take (maintenance windows, systemd's and Kubernetes' own timeouts are set from it),
//! and a label must not be able to stretch it silently. The warning says what to raise.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::human_duration;
use quiesce_policy_sdk::rules::kill_reserve;
use quiesce_policy_sdk::sequence::StepOrigin;

use crate::model::process::Dispositions;
use crate::model::process::SignalTarget;
use crate::model::units::millis;
use crate::model::warning::{Warning, WarningCode};
use crate::prepare::hearing::read_through_exec;
use crate::prepare::worst::{LIFTED, Worst, explore, lengthening_settings};
use crate::run::executor::{Event, EventSink, ServiceJob};
use crate::run::orchestrate::PreparedRun;
use crate::runtime::Runtime;

/// How `quiesce stop` and `plan` budgets are raised.
const BUDGET_FIX: &str = "label quiesce.budget, a config rule's `budget`, or --budget";

/// Adds to every job the warnings its policy's own sequence gives: `budget-below-policy` when
/// its budget would cut it, `signal-not-handled` when the process its signals reach will not
/// act on some of them ([`crate::prepare::hearing`]).
pub fn warn_about_needs(prepared: &mut PreparedRun) {
    let warnings = needs_warnings(&prepared.jobs, BUDGET_FIX);
    for (job, warnings) in prepared.jobs.iter_mut().zip(warnings) {
        job.warnings.extend(warnings);
    }
}

/// At most this many containers have their receiver's masks read through the engine at once.
const READS_AT_ONCE: usize = 16;

/// Reads through the engine ([`crate::prepare::hearing::read_through_exec`]) the masks of every
/// receiver the PID 1 look could not read (a remote engine), a few containers at a time.
pub async fn hear_through_engine<R: Runtime>(runtime: &R, jobs: &mut [ServiceJob]) {
    use futures_util::StreamExt;
    let unread: Vec<(usize, String, SignalTarget)> = jobs
        .iter()
        .enumerate()
        .filter(|(_, job)| matches!(&job.receiver, Some(receiver) if receiver.signals.is_none()))
        .map(|(at, job)| (at, job.facts.id.clone(), job.signal_target))
        .collect();
    let read: Vec<(usize, Option<Dispositions>)> = futures_util::stream::iter(unread)
        .map(|(at, id, target)| async move { (at, read_through_exec(runtime, &id, target).await) })
        .buffer_unordered(READS_AT_ONCE)
        .collect()
        .await;
    for (at, masks) in read {
        if let Some(receiver) = jobs[at].receiver.as_mut() {
            receiver.signals = masks;
        }
    }
}

/// [`warn_about_needs`] for a stop: the check decides nothing (it only warns), so it runs
/// beside the run instead of before its first signal (issue 24: ~1 ms per service), the
/// simulation on a blocking thread while the masks a remote engine holds are read. Each
/// warning is shown as an [`Event::Warning`] the moment it is known, and returned by container
/// id for the reports.
pub fn check_needs_beside<R: Runtime + 'static>(
    runtime: Arc<R>,
    jobs: &[ServiceJob],
    events: EventSink,
) -> tokio::task::JoinHandle<Vec<(String, Warning)>> {
    let mut jobs = jobs.to_vec();
    tokio::spawn(async move {
        let simulated = jobs.clone();
        let sequences = tokio::task::spawn_blocking(move || explore(&simulated));
        hear_through_engine(&*runtime, &mut jobs).await;
        let sequences = sequences.await.unwrap_or_default();
        // The warnings may simulate again (the settings that lengthen a cut path): off the
        // runtime's workers too. They are sent from here, not from that thread, so aborting
        // this task ([`needs_found`]) lets the progress output end at once.
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for (job, warnings) in jobs.iter().zip(warnings_of(&jobs, sequences, BUDGET_FIX)) {
                for warning in warnings {
                    found.push((job.facts.name.clone(), job.facts.id.clone(), warning));
                }
            }
            found
        })
        .await
        .unwrap_or_default();
        found
            .into_iter()
            .map(|(service, id, warning)| {
                if let Some(events) = &events {
                    let _ = events.send(Event::Warning {
                        service,
                        warning: warning.clone(),
                    });
                }
                (id, warning)
            })
            .collect()
    })
}

/// How long a stop waits, once its sequences have ended, for [`check_needs_beside`]. A policy
/// whose longest path takes thousands of steps (one that looks every second, bounded only by
/// its budget) takes seconds to explore (25 s for 10,000 steps in a release build), and a stop
/// that is over does not wait that long for advice about it: `plan` works it out whole.
pub const NEEDS_GRACE: Duration = Duration::from_secs(5);

/// The warnings [`check_needs_beside`] found, waited for at most [`NEEDS_GRACE`]: past it, each
/// of `jobs` (container id, policy name) gets a `worst-case-unchecked` warning instead.
pub async fn needs_found(
    check: tokio::task::JoinHandle<Vec<(String, Warning)>>,
    jobs: Vec<(String, String)>,
) -> Vec<(String, Warning)> {
    let abort = check.abort_handle();
    match tokio::time::timeout(NEEDS_GRACE, check).await {
        Ok(found) => found.unwrap_or_default(),
        Err(_) => {
            // Its progress events end with it (the exploring thread finishes unseen).
            abort.abort();
            jobs
            .into_iter()
            .map(|(id, policy)| {
                let warning = Warning::new(
                    WarningCode::WorstCaseUnchecked,
                    format!(
                        "policy `{policy}`'s longest path was still being worked out {} after the stop ended, and was not waited for: `quiesce plan` says whether its budget would cut it",
                        humantime::format_duration(NEEDS_GRACE)
                    ),
                );
                (id, warning)
            })
            .collect()
        }
    }
}

/// For each job, a `budget-below-policy` warning when its budget would cut its policy's own
/// sequence; `fix` says how to raise it.
pub fn budget_warnings(jobs: &[ServiceJob], fix: &str) -> Vec<Option<Warning>> {
    jobs.iter()
        .zip(explore(jobs))
        .map(|(job, worst)| budget_warning(job, worst.as_ref()?, fix))
        .collect()
}

/// For each job, its budget warning and its `signal-not-handled` warning, if any; `fix` says
/// how to raise a budget.
pub fn needs_warnings(jobs: &[ServiceJob], fix: &str) -> Vec<Vec<Warning>> {
    warnings_of(jobs, explore(jobs), fix)
}

/// The signals `job`'s policy sends on its worst path (what can be handled), in order.
pub fn signals_sent(job: &ServiceJob) -> Vec<quiesce_policy_sdk::Signal> {
    explore(std::slice::from_ref(job))
        .pop()
        .flatten()
        .map(|worst| crate::prepare::hearing::signals_sent(&worst.report))
        .unwrap_or_default()
}

/// [`needs_warnings`] from the jobs' worst cases.
fn warnings_of(jobs: &[ServiceJob], worst: Vec<Option<Worst>>, fix: &str) -> Vec<Vec<Warning>> {
    jobs.iter()
        .zip(worst)
        .map(|(job, worst)| {
            let Some(worst) = worst else {
                return Vec::new();
            };
            let heard = job.receiver.as_ref().and_then(|receiver| {
                crate::prepare::hearing::warning(
                    receiver,
                    &crate::prepare::hearing::signals_sent(&worst.report),
                )
            });
            budget_warning(job, &worst, fix)
                .into_iter()
                .chain(heard)
                .collect()
        })
        .collect()
}

fn budget_warning(job: &ServiceJob, worst: &Worst, fix: &str) -> Option<Warning> {
    let needed = worst.needed();
    let usable = job.budget.saturating_sub(kill_reserve(job.budget));
    if needed <= usable {
        return None;
    }
    let show = |duration: Duration| humantime::format_duration(duration).to_string();
    let cut = worst
        .report
        .steps
        .iter()
        .find(|step| step.by == StepOrigin::Policy && step.end_ms > millis(usable));
    let settings = lengthening_settings(job, worst, &effective_durations(job));
    let by = match settings.as_slice() {
        [] => String::new(),
        [(key, value)] => format!(" (setting `{key}` = {} makes it that long)", show(*value)),
        more => format!(
            " (settings {} make it that long)",
            more.iter()
                .map(|(key, value)| format!("`{key}` = {}", show(*value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let at = match cut {
        Some(step) => {
            let (action, detail) = step.step.describe();
            format!("its step `{action} {detail}` would be cut")
        }
        None => "its sequence would be cut".to_string(),
    };
    // Enough for the sequence and the kill reserve, in whole seconds.
    let enough = Duration::from_secs((needed + kill_reserve(needed + LIFTED)).as_secs() + 1);
    Some(Warning::new(
        WarningCode::BudgetBelowPolicy,
        format!(
            "policy `{}` needs {} on its longest path{}{by}, but its budget is {}: {at} at {} and the service SIGKILLed; give it a budget of at least {} ({fix})",
            job.policy.identity().name,
            show(needed),
            match worst.path.describe() {
                path if path.is_empty() => " (a service that ignores its signals)".to_string(),
                path => format!(" ({path})"),
            },
            show(job.budget),
            show(usable),
            show(enough),
        ),
    ))
}

/// The duration settings of the job's policy and their values: from the job's settings, or
/// the defaults its settings documentation gives.
fn effective_durations(job: &ServiceJob) -> Vec<(String, Option<Duration>)> {
    let given: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&job.settings).unwrap_or_default();
    documented_durations(&job.policy.settings_doc())
        .into_iter()
        .map(|(key, default)| {
            let value = match given.get(&key) {
                Some(serde_json::Value::String(text)) => human_duration::parse(text).ok(),
                Some(serde_json::Value::Number(seconds)) => {
                    seconds.as_u64().map(Duration::from_secs)
                }
                _ => default,
            };
            (key, value)
        })
        .collect()
}

/// The duration settings in a settings documentation written by the SDK's `settings!`
/// (lines like ``- `warm_timeout` (duration, default 5m): ...``), with their defaults.
fn documented_durations(doc: &str) -> Vec<(String, Option<Duration>)> {
    doc.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("- `")?;
            let (key, rest) = rest.split_once("` (duration, default ")?;
            let (default, _) = rest.split_once("):")?;
            Some((key.to_string(), human_duration::parse(default).ok()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_check_still_running_after_the_grace_is_not_waited_for_and_is_said_to_be() {
        // A check that finishes in time gives its own warnings.
        let quick = tokio::spawn(async {
            vec![(
                "id-1".to_string(),
                Warning::new(WarningCode::BudgetBelowPolicy, "cut"),
            )]
        });
        let found = needs_found(quick, vec![("id-1".into(), "slow".into())]).await;
        assert_eq!(found[0].1.code, "budget-below-policy");
        // One that would take longer than the grace is abandoned there, and every service is
        // told its worst case went unchecked.
        let (_dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        let endless = tokio::spawn(async move {
            let _ = dropped.await;
            Vec::new()
        });
        let watch = endless.abort_handle();
        let started = tokio::time::Instant::now();
        let found = needs_found(
            endless,
            vec![
                ("id-1".into(), "slow".into()),
                ("id-2".into(), "slow".into()),
            ],
        )
        .await;
        assert_eq!(started.elapsed(), NEEDS_GRACE);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|(_, w)| w.code == "worst-case-unchecked"
            && w.message.contains("policy `slow`'s longest path")));
        tokio::task::yield_now().await;
        assert!(watch.is_finished(), "the check was aborted");
    }

    #[test]
    fn duration_settings_are_read_from_the_settings_documentation() {
        let doc = "- `warm_timeout` (duration, default 5m): How long tasks may take.\n\
                   - `kill` (bool, default true): SIGKILL after QUIT.\n\
                   - `cold_timeout` (duration, default 10s): After QUIT.";
        assert_eq!(
            documented_durations(doc),
            [
                ("warm_timeout".to_string(), Some(Duration::from_secs(300))),
                ("cold_timeout".to_string(), Some(Duration::from_secs(10))),
            ]
        );
        assert!(documented_durations("free text, no settings").is_empty());
    }
}
