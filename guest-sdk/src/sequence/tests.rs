//! Unit tests of the state machine: SIGKILL's settling, the last word, health reads, exits
//! restated, removals after an exit, a service already stopped.

use super::*;
use crate::rules::KILL_RESERVE;
use crate::{Health, ServiceFacts, Signal};

fn config(budget: Duration) -> SequenceConfig {
    SequenceConfig::new(ServiceFacts::default(), "under-test", budget)
}

fn running() -> ContainerState {
    ContainerState::default()
}

/// A policy playing `steps` in order, then `finish`.
fn playing(steps: Vec<Step>) -> impl FnMut(&Context) -> Result<Step, String> {
    move |ctx: &Context| {
        Ok(steps
            .get(ctx.steps_taken())
            .cloned()
            .unwrap_or(Step::Finish))
    }
}

#[test]
fn a_sigkill_sent_as_a_signal_is_ours_and_ends_at_the_exit() {
    let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
    let mut policy = playing(vec![Step::signal(Signal::KILL)]);
    let action = sequence.poll(Duration::ZERO, &mut policy);
    assert!(matches!(
        action,
        Action::Signal {
            signal: Signal::KILL,
            ..
        }
    ));
    sequence.complete(Duration::ZERO, Outcome::SignalDelivered);
    // Delivered, the exit not yet seen: the step waits for it within the reserve.
    let action = sequence.poll(Duration::ZERO, &mut policy);
    assert_eq!(
        action,
        Action::Wait {
            until: Until::Exit,
            limit: KILL_RESERVE
        }
    );
    sequence.exited(137);
    sequence.complete(Duration::from_millis(20), Outcome::ConditionMet);
    assert_eq!(
        sequence.poll(Duration::from_millis(20), &mut policy),
        Action::Done
    );
    let transcript = sequence.transcript();
    assert_eq!(transcript.outcome, ServiceOutcome::Killed);
    assert_eq!(transcript.steps[0].outcome, Outcome::SignalDelivered);
    assert_eq!(transcript.steps[0].ended, Duration::from_millis(20));
    assert!(transcript.notes.is_empty(), "{:?}", transcript.notes);
}

#[test]
fn a_failure_at_the_last_word_gets_the_budget_ending_and_is_reported() {
    let budget = Duration::from_secs(10);
    let mut sequence = Sequence::new(config(budget), running());
    let mut policy = |ctx: &Context| {
        if ctx.remaining.is_zero() {
            Err("lost".to_string())
        } else {
            Ok(Step::sleep(ctx.remaining))
        }
    };
    let steps_end = budget - kill_reserve(budget);
    assert!(matches!(
        sequence.poll(Duration::ZERO, &mut policy),
        Action::Wait { until: Until::Time, limit } if limit == steps_end
    ));
    sequence.complete(steps_end, Outcome::TimedOut);
    let action = sequence.poll(steps_end, &mut policy);
    assert!(matches!(
        action,
        Action::Signal {
            signal: Signal::KILL,
            ..
        }
    ));
    sequence.exited(137);
    sequence.complete(steps_end, Outcome::SignalDelivered);
    assert_eq!(sequence.poll(steps_end, &mut policy), Action::Done);
    let transcript = sequence.transcript();
    assert_eq!(transcript.outcome, ServiceOutcome::Killed);
    assert_eq!(transcript.steps[1].by, StepOrigin::Runner);
    assert_eq!(transcript.fallback.as_ref().unwrap().kind, "refused");
}

#[test]
fn health_is_read_before_each_decision_and_an_unreadable_state_does_not_stall() {
    let initial = ContainerState {
        health: Some(Health::Healthy),
        ..running()
    };
    let mut sequence = Sequence::new(config(Duration::from_secs(60)), initial);
    let mut policy = playing(vec![Step::sleep(Duration::from_secs(1)); 3]);
    // The first decision uses the state observed before the start.
    assert!(matches!(
        sequence.poll(Duration::ZERO, &mut policy),
        Action::Wait { .. }
    ));
    sequence.complete(Duration::from_secs(1), Outcome::TimedOut);
    assert_eq!(
        sequence.poll(Duration::from_secs(1), &mut policy),
        Action::Observe
    );
    sequence.observed(Duration::from_secs(1), None);
    assert!(matches!(
        sequence.poll(Duration::from_secs(1), &mut policy),
        Action::Wait { .. }
    ));
}

#[test]
fn an_exit_restated_as_sigkill_by_the_engine_is_a_foreign_kill() {
    let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
    let mut policy = playing(vec![
        Step::signal(Signal::TERM),
        Step::wait_for_exit(Duration::from_secs(9)),
    ]);
    sequence.poll(Duration::ZERO, &mut policy);
    sequence.complete(Duration::ZERO, Outcome::SignalDelivered);
    sequence.poll(Duration::ZERO, &mut policy);
    sequence.exited(0);
    sequence.complete(Duration::from_secs(1), Outcome::ConditionMet);
    assert_eq!(
        sequence.poll(Duration::from_secs(1), &mut policy),
        Action::Done
    );
    assert_eq!(sequence.transcript().outcome, ServiceOutcome::Graceful);
    sequence.exit_restated(137);
    let transcript = sequence.transcript();
    assert_eq!(transcript.outcome, ServiceOutcome::Killed);
    assert_eq!(transcript.notes[0].kind, NoteKind::ForeignKill);
    assert!(
        transcript.notes[0]
            .text
            .contains("something other than quiesce")
    );
    sequence.running_again();
    assert_eq!(sequence.transcript().outcome, ServiceOutcome::Failed);
}

#[test]
fn a_removal_after_an_exit_keeps_the_exit_unless_someone_else_killed_it() {
    let finished = |code: i32| {
        let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
        let mut policy = playing(vec![Step::wait_for_exit(Duration::from_secs(9))]);
        sequence.poll(Duration::ZERO, &mut policy);
        sequence.exited(code);
        sequence.complete(Duration::from_secs(1), Outcome::ConditionMet);
        assert_eq!(
            sequence.poll(Duration::from_secs(1), &mut policy),
            Action::Done
        );
        sequence.gone();
        sequence.transcript()
    };
    // `--rm` (or a unit's ExecStopPost) removes a container that exited by itself.
    let removed_after_exit = finished(0);
    assert_eq!(removed_after_exit.outcome, ServiceOutcome::Graceful);
    assert_eq!(removed_after_exit.exit_code, Some(0));
    // `docker rm -f`: SIGKILL by someone else, then the removal.
    let removed_by_force = finished(137);
    assert_eq!(removed_by_force.outcome, ServiceOutcome::Gone);
    assert!(
        removed_by_force.notes.is_empty(),
        "{:?}",
        removed_by_force.notes
    );
}

#[test]
fn a_service_already_stopped_is_not_touched() {
    let stopped = ContainerState {
        running: false,
        exit_code: Some(137),
        health: None,
    };
    let mut sequence = Sequence::new(config(Duration::from_secs(60)), stopped);
    let mut policy = |_: &Context| -> Result<Step, String> { panic!("never asked") };
    assert_eq!(sequence.poll(Duration::ZERO, &mut policy), Action::Done);
    let transcript = sequence.transcript();
    assert_eq!(transcript.outcome, ServiceOutcome::AlreadyStopped);
    assert_eq!(transcript.exit_code, Some(137));
    assert!(transcript.notes.is_empty());
}
