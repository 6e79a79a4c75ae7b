//! `quiesce recover`: gives back what earlier stops changed and did not give back (issue 29). A
//! stop SIGKILLed mid-way (systemd's `TimeoutStopSec`, the OOM killer, `kill -9`) cannot put
//! back the restart policy it set to `no` or the systemd unit it held, nor can one that left
//! the container running (`leave-running`) or whose engine refused; its record
//! ([`crate::platform::claim`]) says what they were. The next stop of the same container puts them back
//! by itself; this does it for every such record at once, without stopping anything.

use crate::platform::claim::{Attempt, Claims, StopRecord};
use crate::platform::systemd::Systemd;
use crate::run::executor::ENGINE_ANSWER_TIMEOUT;
use crate::runtime::{Runtime, RuntimeError};

/// What was given back for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The container's name, as recorded.
    pub container: String,
    /// The killed stop's record.
    pub record: StopRecord,
    /// Each change and what became of it, in words.
    pub changes: Vec<Change>,
}

/// One change a killed stop left, and whether it was given back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What it was, e.g. "restart policy `always`".
    pub what: String,
    /// Given back (or nothing left to give back: the container is gone).
    pub done: bool,
    /// What happened, e.g. "put back", "the container no longer exists".
    pub result: String,
}

impl Recovered {
    /// True when every change was given back.
    pub fn complete(&self) -> bool {
        self.changes.iter().all(|change| change.done)
    }
}

/// Gives back what every killed stop recorded in `claims` left changed, on `runtime` and
/// `systemd`. Records whose stop is still running are left alone.
pub async fn recover<R: Runtime>(
    runtime: &R,
    claims: &Claims,
    systemd: &Systemd,
) -> Vec<Recovered> {
    let mut recovered = Vec::new();
    for (id, _) in claims.left_behind() {
        // Claimed like a stop, so no stop starts on the container meanwhile.
        let Ok(Attempt::Claimed(mut claim)) = claims.try_claim(&id, "") else {
            continue;
        };
        let Some(record) = claim.inherited.clone() else {
            continue;
        };
        claim.update(|now| now.container = record.container.clone());
        let mut changes = Vec::new();
        if let Some(original) = record.original_restart_policy() {
            let set = tokio::time::timeout(
                ENGINE_ANSWER_TIMEOUT,
                runtime.set_restart_policy(&id, original),
            )
            .await
            .unwrap_or_else(|_| {
                Err(RuntimeError::Unreachable(
                    "the engine did not answer".into(),
                ))
            });
            let (done, result) = match set {
                Ok(()) => (true, "put back".to_string()),
                Err(RuntimeError::Gone) => (true, "the container no longer exists".to_string()),
                Err(error) => (false, format!("could not be put back: {error}")),
            };
            if done {
                claim.update(|now| {
                    if let Some(policy) = &mut now.restart_policy {
                        policy.restored = true;
                    }
                });
            }
            changes.push(Change {
                what: format!("restart policy `{original}` (left `no`)"),
                done,
                result,
            });
        }
        if let Some(hold) = record.unit_hold.as_ref().filter(|hold| !hold.released) {
            let (done, result) = match systemd.remove_hold(&hold.unit).await {
                Ok(true) => (
                    true,
                    "given back (drop-in removed, systemd reloaded)".into(),
                ),
                Ok(false) => (true, "its drop-in was already gone".into()),
                Err(error) => (false, format!("could not be given back: {error}")),
            };
            if done {
                claim.update(|now| {
                    if let Some(held) = &mut now.unit_hold {
                        held.released = true;
                    }
                });
            }
            changes.push(Change {
                what: format!("unit {} (held with Restart=no)", hold.unit),
                done,
                result,
            });
        }
        let entry = Recovered {
            container: record.container.clone(),
            record,
            changes,
        };
        if entry.complete() {
            claim.finish();
        }
        recovered.push(entry);
    }
    recovered
}
