//! What the command left behind when it exits under `quiesce run` (issue 27): daemonized or
//! `setsid` workers and orphans, which the kernel would SIGKILL the moment quiesce (PID 1)
//! exits, with no chance to finish and nothing said. Before exiting, quiesce gives each the
//! stop signal, waits for them within what is left of the budget, SIGKILLs the stragglers
//! itself, and says how each ended; then it exits with the command's status.
//! `--leave-descendants` keeps the old behaviour (nothing is done about them).

use std::time::Duration;

use quiesce_policy_sdk::Signal;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::platform::procfs::descendants;
use crate::platform::reaper::{ExitStatus, Reaper, send_signal};

/// How often the processes that are not quiesce's own children are looked at.
const LOOK_INTERVAL: Duration = Duration::from_millis(100);

/// After SIGKILL, how long their end is waited for.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// One process the command left, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Its pid.
    pub pid: i32,
    /// Its command line.
    pub command: String,
    /// `exited 0`, `killed by SIGTERM`, `ended` (not quiesce's child: no status),
    /// `SIGKILLed by quiesce when the budget ran out`, or `still running`.
    pub ended: String,
}

/// A leftover being stopped: a child of quiesce has its status to come, another is watched.
struct Stopping {
    pid: i32,
    command: String,
    status: Option<oneshot::Receiver<ExitStatus>>,
    ended: Option<String>,
}

impl Stopping {
    /// Notes how it ended, if it has.
    fn look(&mut self) {
        if self.ended.is_some() {
            return;
        }
        match &mut self.status {
            Some(status) => match status.try_recv() {
                Ok(ExitStatus::Code(code)) => self.ended = Some(format!("exited {code}")),
                Ok(ExitStatus::Signal(signal)) => {
                    let name = u8::try_from(signal)
                        .ok()
                        .and_then(Signal::from_number)
                        .map_or(signal.to_string(), |signal| signal.to_string());
                    self.ended = Some(format!("killed by {name}"));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => self.ended = Some("ended".into()),
            },
            // SAFETY: kill with signal 0 only checks that the process exists.
            None if unsafe { libc::kill(self.pid, 0) } != 0 => self.ended = Some("ended".into()),
            None => {}
        }
    }
}

/// Stops what the command left: `signal` to each, a wait until `until`, then SIGKILL; returns
/// each with how it ended (nothing when it left nothing).
pub async fn stop(reaper: &Reaper, signal: Signal, until: Instant) -> Vec<Leftover> {
    let own = i32::try_from(std::process::id()).unwrap_or(1);
    let mut stopping: Vec<Stopping> = descendants(own)
        .into_iter()
        .filter_map(|process| {
            let pid = i32::try_from(process.pid).ok()?;
            let ours = process.ppid == u64::try_from(own).ok()?;
            Some(Stopping {
                pid,
                command: process.args,
                status: ours.then(|| reaper.watch(pid)),
                ended: None,
            })
        })
        .collect();
    for process in &mut stopping {
        if send_signal(process.pid, signal, false).is_err() {
            process.look();
        }
    }
    wait(&mut stopping, until).await;
    let stragglers: Vec<i32> = stopping
        .iter()
        .filter(|process| process.ended.is_none())
        .map(|process| process.pid)
        .collect();
    for pid in &stragglers {
        let _ = send_signal(*pid, Signal::KILL, false);
    }
    wait(&mut stopping, Instant::now() + KILL_WAIT).await;
    stopping
        .into_iter()
        .map(|process| Leftover {
            ended: match (process.ended, stragglers.contains(&process.pid)) {
                (Some(_), true) => "SIGKILLed by quiesce when the budget ran out".into(),
                (Some(ended), false) => ended,
                (None, _) => "still running".into(),
            },
            pid: process.pid,
            command: process.command,
        })
        .collect()
}

/// Waits until every one has ended, or `until`.
async fn wait(stopping: &mut [Stopping], until: Instant) {
    loop {
        for process in stopping.iter_mut() {
            process.look();
        }
        if stopping.iter().all(|process| process.ended.is_some()) || Instant::now() >= until {
            return;
        }
        tokio::time::sleep(LOOK_INTERVAL.min(until.saturating_duration_since(Instant::now())))
            .await;
    }
}
