//! A local child process as the service: the [`Runtime`] of `quiesce run`, where quiesce is the
//! container's main process and the command it started is the one to stop.
//!
//! - `signal` goes to the child (or its process group, as configured); SIGKILL always to the
//!   whole group;
//! - `exec` and probes run the command beside the service, in the same container, in a process
//!   group of their own that is SIGKILLed when the step ends (done, timed out or abandoned), so
//!   nothing is left running;
//! - `http` calls loopback, as everywhere;
//! - the exit comes from the reaper the moment the child is reaped (no polling);
//! - log lines come from the output quiesce passes through.
//!
//! What has no meaning here is not faked: the service has no restart policy (`no`), no engine
//! health check (`health` is none), no compose membership, and its facts say so.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::{ContainerState, ServiceFacts, Signal};
use tokio::sync::watch;

use super::{
    ExecEnd, ExecOutput, Inspected, Runtime, RuntimeError, SelectedTarget, Selector, TargetError,
    tail,
};
use crate::platform::pipes::Lines;
use crate::platform::reaper::{ExitStatus, Reaper, send_signal};

/// How long an exec'd command's output may keep arriving after it exited (a straggler holding
/// the pipe is SIGKILLed with its group).
const OUTPUT_DRAIN: Duration = Duration::from_millis(100);

/// The child process quiesce started, as a container engine would show it.
pub struct ProcessRuntime {
    facts: ServiceFacts,
    pid: i32,
    exit: watch::Receiver<Option<ExitStatus>>,
    reaper: Arc<Reaper>,
    lines: Lines,
    signal_group: bool,
}

impl ProcessRuntime {
    /// The runtime for child `pid` (its process group has the same id), seen as `facts`, whose
    /// exit `exit` announces.
    pub fn new(
        facts: ServiceFacts,
        pid: i32,
        exit: watch::Receiver<Option<ExitStatus>>,
        reaper: Arc<Reaper>,
        lines: Lines,
        signal_group: bool,
    ) -> ProcessRuntime {
        ProcessRuntime {
            facts,
            pid,
            exit,
            reaper,
            lines,
            signal_group,
        }
    }

    fn state(&self) -> ContainerState {
        let exit = *self.exit.borrow();
        ContainerState {
            running: exit.is_none(),
            exit_code: exit.map(ExitStatus::code),
            health: None,
        }
    }

    fn check_id(&self, id: &str) -> Result<(), RuntimeError> {
        if id == self.facts.id {
            Ok(())
        } else {
            Err(RuntimeError::Gone)
        }
    }

    /// Runs `argv` beside the service until it exits; its process group is SIGKILLed when it
    /// has, or when this is dropped.
    async fn run_command(&self, id: &str, argv: &[String]) -> Result<ExecOutput, RuntimeError> {
        self.check_id(id)?;
        let (reader, writer) = std::io::pipe()
            .map_err(|error| RuntimeError::Failed(format!("cannot create a pipe: {error}")))?;
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer.try_clone().map_err(|error| {
                RuntimeError::Failed(format!("cannot create a pipe: {error}"))
            })?))
            .stderr(Stdio::from(writer));
        let (pid, exited) = match self.reaper.spawn(&mut command, false) {
            Ok(spawned) => spawned,
            // What a shell, and `docker exec`, answer for a command that cannot be run.
            Err(error) => {
                let code = match error.kind() {
                    std::io::ErrorKind::NotFound => 127,
                    _ => 126,
                };
                return Ok(ExecOutput {
                    exit_code: code,
                    output_tail: format!("{}: {error}", argv[0]),
                });
            }
        };
        drop(command);
        let guard = GroupGuard(pid);
        let output = Arc::new(Mutex::new(Vec::new()));
        let collected = output.clone();
        let reading = tokio::task::spawn_blocking(move || collect_output(reader, &collected));
        let status = exited
            .await
            .map_err(|_| RuntimeError::Failed("the reaper went away".into()))?;
        // Done: stragglers of its group go too, which also ends the pipe.
        drop(guard);
        let _ = tokio::time::timeout(OUTPUT_DRAIN, reading).await;
        let output = output.lock().expect("the output's lock");
        Ok(ExecOutput {
            exit_code: status.code(),
            output_tail: tail(&String::from_utf8_lossy(&output)),
        })
    }
}

/// SIGKILLs a process group when dropped, unless disarmed: an exec'd command never outlives
/// its step.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = send_signal(self.0, Signal::KILL, true);
    }
}

impl Runtime for ProcessRuntime {
    fn engine(&self) -> crate::model::report::EngineInfo {
        crate::model::report::EngineInfo::local("process")
    }

    async fn select(
        &self,
        _selector: &Selector,
        _concurrency: usize,
    ) -> Result<Vec<SelectedTarget>, TargetError> {
        Ok(vec![SelectedTarget {
            id: self.facts.id.clone(),
            inspected: None,
        }])
    }

    async fn inspect(&self, id: &str) -> Result<Option<Inspected>, RuntimeError> {
        self.check_id(id)?;
        Ok(Some(Inspected {
            facts: self.facts.clone(),
            state: self.state(),
            restart_policy_spec: None,
            pid1: None,
        }))
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        self.check_id(id)?;
        if self.exit.borrow().is_some() {
            return Err(RuntimeError::NotRunning);
        }
        let group = self.signal_group || signal == Signal::KILL;
        send_signal(self.pid, signal, group)
            .map_err(|error| RuntimeError::Failed(format!("cannot send {signal}: {error}")))
    }

    async fn exec(
        &self,
        id: &str,
        argv: &[String],
        limit: Duration,
    ) -> Result<ExecEnd, RuntimeError> {
        match tokio::time::timeout(limit, self.run_command(id, argv)).await {
            Ok(output) => output.map(ExecEnd::Exited),
            // Dropped at the limit, the command's guard SIGKILLed its process group.
            Err(_) => Ok(ExecEnd::TimedOut(Ok(()))),
        }
    }

    async fn observe(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.check_id(id)?;
        Ok(self.state())
    }

    async fn wait_exit(&self, id: &str) -> Result<i32, RuntimeError> {
        self.check_id(id)?;
        let mut exit = self.exit.clone();
        let status = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::Failed("the reaper went away".into()))?
            .expect("waited for an exit");
        Ok(status.code())
    }

    async fn wait_log_line(
        &self,
        id: &str,
        text: &str,
        _since: SystemTime,
    ) -> Result<(), RuntimeError> {
        self.check_id(id)?;
        // Subscribing now is the `since`: lines written from this moment on.
        let mut lines = self.lines.subscribe();
        loop {
            match lines.recv().await {
                Ok(line) if line.contains(text) => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(RuntimeError::NotRunning);
                }
            }
        }
    }

    async fn set_restart_policy(&self, _id: &str, _policy: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Failed(
            "a process started by quiesce run has no restart policy".into(),
        ))
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Reads a command's output into `output`, keeping only the last few KiB.
fn collect_output(mut reader: std::io::PipeReader, output: &Mutex<Vec<u8>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let mut output = output.lock().expect("the output's lock");
                output.extend_from_slice(&chunk[..read]);
                let keep = 4 * super::OUTPUT_TAIL_BYTES;
                if output.len() > 2 * keep {
                    let excess = output.len() - keep;
                    output.drain(..excess);
                }
            }
        }
    }
}
