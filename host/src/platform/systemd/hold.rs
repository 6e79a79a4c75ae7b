//! Holding a unit for a stop: what quiesce changes about a unit so that systemd does not start
//! the container again, and how it gives it back.
//!
//! A unit with `Restart=always` (Kolla's) restarts its container when the unit's main process
//! (`docker start -a NAME`) exits, which it does a moment after the container. systemd decides
//! on that restart when the unit leaves its stop state, after the main process has exited and
//! its `ExecStop` has run. So the hold (`Restart=no` in the runtime drop-in
//! `/run/systemd/system/<unit>.d/zz-quiesce-stop.conf`, then `daemon-reload`) is given back
//! only once systemd cannot restart the unit any more: after the container's exit, a stop job
//! is queued for the unit (systemd never restarts a unit it is stopping), or, if none can be,
//! once systemd has seen the main process exit and the unit has settled (inactive or failed),
//! bounded by [`SETTLE_LIMIT`]. Given back earlier, systemd applies the unit's own `Restart=`
//! to the exit it is about to see: the container comes back 11 s later (measured, issue 23).
//!
//! Why a drop-in rather than quiesce driving the unit (`systemctl stop` with quiesce as its
//! `ExecStop`): the operator's `quiesce stop` keeps its own budget, live output and report,
//! works the same for Kolla, Quadlet and `podman generate systemd` units whatever their
//! `ExecStop` says, and touches only `Restart=`. When systemd itself stops the unit (a stop or
//! restart job, a host shutdown) nothing is held: systemd does not restart a unit it is
//! stopping.
//!
//! [`UnitHold`] is a value that releases itself: dropped without [`UnitHold::release`] (a
//! second interrupt abandons the sequence, a panic unwinds), it removes the drop-in and reloads
//! systemd synchronously. Only a SIGKILL of quiesce leaves the drop-in behind; the stop's
//! record (`crate::platform::claim`) names it, and the next stop of the container or `quiesce recover`
//! removes it.

use std::path::PathBuf;
use std::time::Duration;

use super::{Systemd, SystemdError, UnitState};
use crate::model::supervision::NotHeld;

/// The runtime drop-in's file name: after an administrator's `override.conf`, so it wins.
pub const DROP_IN: &str = "zz-quiesce-stop.conf";

/// The longest quiesce waits, after the container's exit, for the unit to settle when no stop
/// job could be queued, before it gives the unit back anyway (with a warning). `docker start
/// -a` exits within milliseconds of its container, and Kolla's `ExecStop` (`docker stop` of a
/// stopped container) returns at once; only a wedged client or a slow `ExecStop` takes longer.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// How often the unit's state is read while it settles.
const SETTLE_POLL: Duration = Duration::from_millis(25);

/// The outcome of [`Systemd::hold`].
#[derive(Debug)]
pub enum Hold {
    /// The unit is held until released.
    Held(UnitHold),
    /// No hold was needed.
    NotNeeded(NotHeld),
}

/// A unit held for a stop (`Restart=no`); given back by [`UnitHold::release`], or when
/// dropped.
#[derive(Debug)]
pub struct UnitHold {
    systemd: Systemd,
    unit: String,
    released: bool,
}

/// What giving a unit back came to.
#[derive(Debug)]
pub struct Released {
    /// The unit's state when it was given back (`None` when it could not be read).
    pub state: Option<UnitState>,
    /// It did not settle within [`SETTLE_LIMIT`] after the container's exit.
    pub unsettled: bool,
    /// The drop-in is removed and systemd reloaded; otherwise why not.
    pub restored: Result<(), SystemdError>,
}

impl Systemd {
    fn drop_in_path(&self, unit: &str) -> PathBuf {
        self.root
            .join("run/systemd/system")
            .join(format!("{unit}.d"))
            .join(DROP_IN)
    }

    /// True when `unit`'s hold drop-in is in place (a hold, or what a failed one left).
    pub fn holds(&self, unit: &str) -> bool {
        self.drop_in_path(unit).exists()
    }

    /// Holds `unit` for a stop, unless systemd is already stopping it or it is not active;
    /// an error means the unit could not be held (the container must not be touched).
    pub async fn hold(&self, unit: &str) -> Result<Hold, SystemdError> {
        let state = self.state(unit).await?;
        if matches!(state.job.as_deref(), Some("stop" | "restart")) {
            return Ok(Hold::NotNeeded(NotHeld::StopJob));
        }
        if !matches!(
            state.active.as_str(),
            "active" | "activating" | "reloading" | "deactivating"
        ) {
            return Ok(Hold::NotNeeded(NotHeld::UnitInactive));
        }
        let path = self.drop_in_path(unit);
        let text = format!(
            "# Written by quiesce (pid {}) for the time of a stop of the container this unit runs:\n\
             # systemd must not start it again. Removed after the stop; if quiesce was killed,\n\
             # `quiesce recover` (or the next stop of the container) removes it.\n\
             [Service]\nRestart=no\n",
            std::process::id()
        );
        let written = std::fs::create_dir_all(path.parent().expect("a drop-in has a directory"))
            .and_then(|()| std::fs::write(&path, text));
        if let Err(source) = written {
            return Err(SystemdError::File {
                action: "write",
                path,
                source,
            });
        }
        // From here on the hold releases itself, whatever happens.
        let hold = UnitHold {
            systemd: self.clone(),
            unit: unit.to_string(),
            released: false,
        };
        self.daemon_reload().await?;
        Ok(Hold::Held(hold))
    }

    /// Removes the hold's drop-in of `unit` (if any) and reloads: the unit's own `Restart=`
    /// is back. For a hold whose owner is gone (`quiesce recover`).
    pub async fn remove_hold(&self, unit: &str) -> Result<bool, SystemdError> {
        let path = self.drop_in_path(unit);
        let removed = remove_drop_in(&path)?;
        if removed {
            self.daemon_reload().await?;
        }
        Ok(removed)
    }
}

impl UnitHold {
    /// The unit.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Gives the unit back. When the container has exited (`exited`) and the unit has not
    /// settled yet, first asks systemd to stop the unit (`systemctl stop --no-block`): systemd
    /// never restarts a unit with a stop job, so the drop-in can go as soon as the job is
    /// queued, without waiting for the unit's `ExecStop` (Kolla's `docker stop` of the stopped
    /// container, or quiesce's drop-in finding it stopped) to run. The job also cancels a
    /// restart already scheduled, without running `ExecStop`. Should the job not be queued,
    /// it waits (at most [`SETTLE_LIMIT`]) for the unit to settle by itself. When the
    /// container still runs, it gives the unit back at once.
    pub async fn release(mut self, exited: bool) -> Released {
        let mut unsettled = false;
        let mut state = self.systemd.state(&self.unit).await.ok();
        if exited && !state.as_ref().is_some_and(UnitState::settled) {
            let stopping = self
                .systemd
                .systemctl(&["stop", "--no-block", &self.unit])
                .await
                .is_ok();
            state = if stopping {
                self.systemd.state(&self.unit).await.ok()
            } else {
                let settled = self.settled().await;
                unsettled = settled.is_none();
                settled.or(state)
            };
        }
        self.released = true;
        let path = self.systemd.drop_in_path(&self.unit);
        let restored = match remove_drop_in(&path) {
            Ok(_) => self.systemd.daemon_reload().await,
            Err(error) => Err(error),
        };
        Released {
            state,
            unsettled,
            restored,
        }
    }
}

impl UnitHold {
    /// Waits, at most [`SETTLE_LIMIT`], until the unit is inactive or failed; its state then,
    /// or `None` if it never settled.
    async fn settled(&self) -> Option<UnitState> {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            if let Ok(now) = self.systemd.state(&self.unit).await
                && now.settled()
            {
                return Some(now);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}

impl Drop for UnitHold {
    /// A hold that was not released (its sequence was abandoned, or a panic unwinds) gives
    /// the unit back at once: the drop-in removed, systemd reloaded, synchronously.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let path = self.systemd.drop_in_path(&self.unit);
        if remove_drop_in(&path).unwrap_or(false) {
            let _ = std::process::Command::new(&self.systemd.systemctl)
                .arg("daemon-reload")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Removes a hold's drop-in and its directory when empty; false when there was none.
fn remove_drop_in(path: &std::path::Path) -> Result<bool, SystemdError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            let _ = std::fs::remove_dir(path.parent().expect("a drop-in has a directory"));
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SystemdError::File {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}
