//! What a sequence records as it goes: the notes for the operator, the policy's log (capped),
//! the outcome as what is learnt amends it, and the [`Transcript`] built from them.

use super::{
    Exit, Note, NoteKind, Phase, Sequence, SequenceEvent, ServiceOutcome, Transcript,
    TranscriptStep,
};
use crate::{Outcome, Step, WaitCondition};

/// The most policy output kept.
const LOG_CAP: usize = 64 << 10;

impl Sequence {
    /// The record so far (complete once the sequence is done).
    pub fn transcript(&self) -> Transcript {
        Transcript {
            steps: self
                .history
                .iter()
                .zip(&self.origins)
                .map(|(record, by)| TranscriptStep {
                    step: record.step.clone(),
                    outcome: record.outcome.clone(),
                    started: record.started,
                    ended: record.ended,
                    by: *by,
                })
                .collect(),
            outcome: self.outcome.unwrap_or(ServiceOutcome::Failed),
            exit_code: self.exit_code(),
            elapsed: self.now,
            fallback: self.fallback.as_ref().map(|f| f.failure.clone()),
            fallback_reason: self.fallback.as_ref().map(|f| f.reason.clone()),
            notes: self.notes.clone(),
            policy_log: self.log.clone(),
        }
    }

    pub(super) fn note(&mut self, kind: NoteKind, text: String) {
        let note = Note { kind, text };
        self.events.push_back(SequenceEvent::Note(note.clone()));
        self.notes.push(note);
    }

    pub(super) fn append_log(&mut self, log: &str) {
        if self.log.len() < LOG_CAP {
            let room = LOG_CAP - self.log.len();
            self.log.push_str(&log[..floor_char_boundary(log, room)]);
        }
    }

    /// An exit by SIGKILL that none of the steps sent deserves a word.
    pub(super) fn note_foreign_kill(&mut self) {
        if self.exit == Some(Exit::Exited(137)) && !self.killed && !self.already_stopped {
            self.note(NoteKind::ForeignKill, "the container was SIGKILLed by something other than quiesce (its engine shutting down, an operator, the OOM killer)".into());
        }
    }

    /// True when a signal was delivered after the service did not exit within a wait for its
    /// exit: the policy escalated (its graceful path ran out of time).
    fn escalated(&self) -> bool {
        let mut waited_in_vain = false;
        for record in &self.history {
            match (&record.step, &record.outcome) {
                (
                    Step::Wait {
                        until: WaitCondition::Exited,
                        ..
                    },
                    Outcome::TimedOut,
                ) => waited_in_vain = true,
                (Step::Signal(_), Outcome::SignalDelivered) if waited_in_vain => return true,
                _ => {}
            }
        }
        false
    }

    /// The outcome from what is known, once the sequence is over.
    pub(super) fn amend_outcome(&mut self) {
        if self.phase != Phase::Done {
            return;
        }
        let fell_back = self.fallback.as_ref().is_some_and(|f| !f.at_last_word);
        self.outcome = Some(match self.exit {
            _ if self.already_stopped => ServiceOutcome::AlreadyStopped,
            Some(Exit::Gone) => ServiceOutcome::Gone,
            Some(Exit::Exited(_)) if fell_back => ServiceOutcome::Fallback,
            Some(Exit::Exited(_)) if self.killed => ServiceOutcome::Killed,
            Some(Exit::Exited(137)) => ServiceOutcome::Killed,
            Some(Exit::Exited(_)) if self.escalated() => ServiceOutcome::Escalated,
            Some(Exit::Exited(_)) => ServiceOutcome::Graceful,
            None => ServiceOutcome::Failed,
        });
    }
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}
