//! What a stop changes to keep its container stopped, and how it gives it back:
//! - the supervising systemd unit is held (`Restart=no`) before the first step, or the
//!   container is not touched at all; it is given back once the unit has settled
//!   ([`crate::platform::systemd::hold`]);
//! - the engine's restart policy is set to `no` before the first step, so an exit caused by an
//!   exec'd command or an HTTP call is not undone by the engine, and the original is put back
//!   once the container has stopped.
//!
//! Each change is written to the stop's record ([`crate::platform::claim`]) the moment it is made and
//! again when it is given back, so what a killed stop changed is found by the next one.

use super::{ENGINE_ANSWER_TIMEOUT, ServiceJob, answered};
use crate::model::report::RestartPolicyChange;
use crate::model::supervision::{SupervisorAction, SupervisorReport, has_restart_policy};
use crate::model::warning::{Warning, WarningCode};
use crate::platform::claim::{Claim, RecordedHold, RecordedRestartPolicy};
use crate::platform::systemd::{Hold, Supervision, UnitHold};
use crate::runtime::{Runtime, RuntimeError};

/// The changes in force for one stop.
pub(super) struct Kept {
    /// The restart policy turned off, if one was.
    pub restart_policy: Option<RestartPolicyChange>,
    /// The unit held, if one was.
    hold: Option<UnitHold>,
    /// What the report says about the unit.
    pub supervisor: Option<SupervisorReport>,
}

/// Writes `change` to the record, when there is one.
fn record(claim: &mut Option<Claim>, change: impl FnOnce(&mut crate::platform::claim::StopRecord)) {
    if let Some(claim) = claim {
        claim.update(change);
    }
}

impl Kept {
    /// True when there is nothing to give back: no restart policy turned off, no unit held.
    pub fn gives_back_nothing(&self) -> bool {
        self.restart_policy.is_none() && self.hold.is_none()
    }

    /// Nothing changed (a sequence over before it began).
    pub fn idle(job: &ServiceJob) -> Kept {
        Kept {
            restart_policy: None,
            hold: None,
            supervisor: job.supervision.as_ref().map(Supervision::report),
        }
    }

    /// Holds the supervising unit when it would start the container again. `Err`: it could
    /// not be held, and the container must not be touched (the warning says why).
    pub async fn hold_unit(
        job: &ServiceJob,
        claim: &mut Option<Claim>,
    ) -> Result<Kept, (Kept, Warning)> {
        let mut kept = Kept::idle(job);
        // A hold a killed stop left behind is this stop's to give back.
        let inherited = claim
            .as_ref()
            .and_then(|claim| claim.record().unit_hold.clone())
            .filter(|hold| !hold.released);
        let Some(supervision) = job.supervision.as_ref().filter(|s| s.not_held.is_none()) else {
            kept.drop_inherited_hold(job, inherited, claim).await;
            return Ok(kept);
        };
        // Recorded before the drop-in is written: killed during systemd's reload, the next stop
        // or `quiesce recover` still finds it (a hold never made is found absent, and done).
        if inherited.is_none() {
            record(claim, |record| {
                record.unit_hold = Some(RecordedHold {
                    unit: supervision.unit.unit.clone(),
                    released: false,
                })
            });
        }
        match supervision.systemd.hold(&supervision.unit.unit).await {
            Ok(Hold::Held(hold)) => {
                record(claim, |record| {
                    record.unit_hold = Some(RecordedHold {
                        unit: hold.unit().to_string(),
                        released: false,
                    })
                });
                if let Some(report) = &mut kept.supervisor {
                    report.action = SupervisorAction::Held;
                    report.not_held = None;
                }
                kept.hold = Some(hold);
                Ok(kept)
            }
            Ok(Hold::NotNeeded(why)) => {
                if let Some(report) = &mut kept.supervisor {
                    report.not_held = Some(why);
                }
                if inherited.is_none() {
                    record(claim, |record| record.unit_hold = None);
                }
                kept.drop_inherited_hold(job, inherited, claim).await;
                Ok(kept)
            }
            // A failed hold removes its drop-in as it goes; one it could not remove stays
            // recorded, for `quiesce recover`.
            Err(error) => {
                if inherited.is_none() && !supervision.systemd.holds(&supervision.unit.unit) {
                    record(claim, |record| record.unit_hold = None);
                }
                let warning = Warning::new(
                    WarningCode::UnitHoldFailed,
                    format!(
                        "its unit {} would start it again, and holding it failed ({error}); not stopped",
                        supervision.unit.unit
                    ),
                );
                Err((kept, warning))
            }
        }
    }

    /// Removes the drop-in of a hold a killed stop left, when this stop does not hold the unit.
    async fn drop_inherited_hold(
        &mut self,
        job: &ServiceJob,
        inherited: Option<RecordedHold>,
        claim: &mut Option<Claim>,
    ) {
        let (Some(inherited), Some(supervision)) = (inherited, job.supervision.as_ref()) else {
            return;
        };
        if supervision
            .systemd
            .remove_hold(&inherited.unit)
            .await
            .is_ok()
        {
            record(claim, |record| {
                if let Some(hold) = &mut record.unit_hold {
                    hold.released = true;
                }
            });
        }
    }

    /// Turns the restart policy off so an exit is not undone by the engine; `Err` is the
    /// warning's text when it could not be changed.
    pub async fn turn_off_restart<R: Runtime>(
        &mut self,
        runtime: &R,
        job: &ServiceJob,
        claim: &mut Option<Claim>,
    ) -> Result<(), String> {
        let name = job.facts.restart_policy.as_str();
        if !has_restart_policy(&job.facts) {
            return Ok(());
        }
        let original = job
            .restart_policy_spec
            .as_deref()
            .unwrap_or(name)
            .to_string();
        // Recorded before it is changed: killed in between, the next stop still knows.
        record(claim, |record| {
            record.restart_policy = Some(RecordedRestartPolicy {
                original: original.clone(),
                restored: false,
            })
        });
        answered(
            ENGINE_ANSWER_TIMEOUT,
            runtime.set_restart_policy(&job.facts.id, "no"),
        )
        .await
        .map_err(|error| format!("could not turn off the restart policy `{original}`: {error}"))?;
        self.restart_policy = Some(RestartPolicyChange {
            original,
            restored: false,
        });
        Ok(())
    }

    /// Gives back what was changed: the restart policy once the container has stopped
    /// (`exited`), and the unit (after it has settled, when the container has stopped). What
    /// is not given back stays in the record, for the next stop or `quiesce recover`, and a
    /// warning says so.
    pub async fn give_back<R: Runtime>(
        mut self,
        runtime: &R,
        job: &ServiceJob,
        exited: bool,
        claim: &mut Option<Claim>,
        warnings: &mut Vec<Warning>,
    ) -> (Option<RestartPolicyChange>, Option<SupervisorReport>) {
        if let Some(change) = &mut self.restart_policy {
            let put_back = if exited {
                answered(
                    ENGINE_ANSWER_TIMEOUT,
                    runtime.set_restart_policy(&job.facts.id, &change.original),
                )
                .await
            } else {
                Err(RuntimeError::Failed("the container had not stopped".into()))
            };
            change.restored = put_back.is_ok();
            // A container removed meanwhile has nothing left to give back.
            let settled = matches!(put_back, Ok(()) | Err(RuntimeError::Gone));
            if settled {
                record(claim, |record| {
                    if let Some(policy) = &mut record.restart_policy {
                        policy.restored = true;
                    }
                });
            }
            if let (Err(error), false) = (&put_back, settled) {
                // The record keeps the original: the next stop or `quiesce recover` puts it back.
                warnings.push(Warning::new(
                    WarningCode::RestartPolicyNotRestored,
                    format!(
                        "its restart policy is still `no`, not its own `{original}` ({error}); the next `quiesce stop` of it puts it back, and so does `quiesce recover` (or `docker update --restart {original} {name}`)",
                        original = change.original,
                        name = job.facts.name,
                    ),
                ));
            }
        }
        if let Some(hold) = self.hold.take() {
            let unit = hold.unit().to_string();
            let released = hold.release(exited).await;
            if let Some(report) = &mut self.supervisor {
                report.unit_state = released.state.as_ref().map(|state| state.active.clone());
                report.restored = released.restored.is_ok();
            }
            if released.unsettled {
                warnings.push(Warning::new(
                    WarningCode::UnitNotSettled,
                    format!(
                        "its unit {unit} had not settled {} after the container stopped ({}); it was given back anyway, and systemd may start the container again",
                        humantime::format_duration(crate::platform::systemd::hold::SETTLE_LIMIT),
                        released
                            .state
                            .as_ref()
                            .map_or("its state unknown".to_string(), |state| state.describe())
                    ),
                ));
            }
            match released.restored {
                Ok(()) => record(claim, |record| {
                    if let Some(hold) = &mut record.unit_hold {
                        hold.released = true;
                    }
                }),
                Err(error) => warnings.push(Warning::new(
                    WarningCode::UnitStillHeld,
                    format!(
                        "its unit {unit} is still held (Restart=no): {error}; run `quiesce recover`, or remove /run/systemd/system/{unit}.d/{} and run `systemctl daemon-reload`",
                        crate::platform::systemd::hold::DROP_IN
                    ),
                )),
            }
        }
        (self.restart_policy, self.supervisor)
    }
}
