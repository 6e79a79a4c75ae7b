//! When the policy cannot go on: the fallback to the conservative sequence after a failure,
//! the budget's end (the policy's last word, then SIGKILL or leave-running), and a `finish`
//! while the service still runs.

use std::time::Duration;

use super::{
    Decide, Fallback, NoteKind, OnBudgetExhausted, PolicyFailure, Sequence, StepOrigin, Then,
};
use crate::rules::KILL_RESERVE;
use crate::{Outcome, Signal, Step};

impl Sequence {
    pub(super) fn fall_back(&mut self, failure: PolicyFailure, at_last_word: bool) {
        self.append_log(&failure.log);
        let signal = self.config.facts.stop_signal.unwrap_or(Signal::TERM);
        let prelude = self
            .history
            .iter()
            .rev()
            .find(|record| {
                record.step == Step::Signal(signal) && record.outcome == Outcome::SignalDelivered
            })
            .cloned();
        let sequence = if prelude.is_some() {
            format!("grace period, SIGKILL; {signal} was sent already and is not sent again")
        } else {
            "stop signal, grace period, SIGKILL".to_string()
        };
        let reason = format!(
            "policy `{}` {}; the conservative sequence ({sequence}) took over",
            self.config.policy, failure.message
        );
        self.note(NoteKind::Fallback, reason.clone());
        self.fallback = Some(Fallback {
            from: self.history.len(),
            prelude,
            failure,
            reason,
            at_last_word,
        });
    }

    /// The budget ran out: the policy's last word, then the configured ending.
    pub(super) fn budget_exhausted(&mut self, policy: &mut dyn Decide) {
        if self.stopped() {
            return self.end();
        }
        self.note(
            NoteKind::BudgetExhausted,
            format!(
                "budget of {} exhausted while the container still runs",
                humantime::format_duration(self.config.budget)
            ),
        );
        let failing_now = self.fallback.is_none();
        let (last_word, by) = self.decide(Duration::ZERO, policy, true);
        if failing_now && self.fallback.is_some() {
            // The policy failed at its last word: the budget's ending, not the fallback's.
            return self.exhausted_ending();
        }
        if last_word == Step::Kill {
            return self.kill(by);
        }
        if last_word != Step::Finish {
            self.note(
                NoteKind::LastWordIgnored,
                format!(
                    "the policy asked for `{}` after its budget; ignored",
                    last_word.describe().0
                ),
            );
        }
        self.exhausted_ending();
    }

    /// SIGKILL or leave running, as the operator configured.
    fn exhausted_ending(&mut self) {
        match self.config.on_exhausted {
            OnBudgetExhausted::Kill => self.kill(StepOrigin::Runner),
            OnBudgetExhausted::LeaveRunning => {
                self.note(
                    NoteKind::LeftRunning,
                    "left running, as configured (on_budget_exhausted = \"leave-running\")".into(),
                );
                self.end();
            }
        }
    }

    /// SIGKILL within the reserve, then a wait for the exit if it still runs.
    fn kill(&mut self, by: StepOrigin) {
        let reserve = KILL_RESERVE.max(self.remaining());
        self.begin(Step::Kill, by, reserve, Then::WaitAfterKill(by));
    }

    pub(super) fn after_finish_grace(&mut self) {
        if self.stopped() {
            return self.end();
        }
        self.note(
            NoteKind::FinishedWhileRunning,
            "the policy finished but the container still runs".into(),
        );
        match self.config.on_exhausted {
            OnBudgetExhausted::Kill => self.kill(StepOrigin::Runner),
            OnBudgetExhausted::LeaveRunning => self.end(),
        }
    }
}
