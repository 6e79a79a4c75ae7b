//! Commands run in a container through the engine's exec API: started, read to their end
//! within their time, and stopped when their time is up or their step ends early (the API has
//! no way to stop an exec: `platform::procfs` signals it where the engine runs here).

use std::time::Duration;

use futures_util::StreamExt;

use super::{DockerRuntime, runtime_error};
use crate::runtime::{
    EXEC_STOP_TIMEOUT, ExecNotStopped, ExecOutput, OUTPUT_TAIL_BYTES, RuntimeError, tail,
};

impl DockerRuntime {
    /// Starts a created exec, reads its output to the end (keeping the tail), and reads its
    /// exit status.
    pub(super) async fn run_exec(&self, exec_id: &str) -> Result<ExecOutput, RuntimeError> {
        let mut output = String::new();
        match self
            .docker
            .start_exec(exec_id, None)
            .await
            .map_err(runtime_error)?
        {
            bollard::exec::StartExecResults::Attached {
                output: mut stream, ..
            } => {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(runtime_error)?;
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    if output.len() > 4 * OUTPUT_TAIL_BYTES {
                        output = tail(&output);
                    }
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(runtime_error)?;
        Ok(ExecOutput {
            exit_code: inspect
                .exit_code
                .and_then(|code| i32::try_from(code).ok())
                .unwrap_or(-1),
            output_tail: tail(&output),
        })
    }

    /// Stops an exec whose time is up: SIGKILL, from this host, to its process and every
    /// process it started ([`procfs`](crate::platform::procfs): the engine API has no way to stop an
    /// exec). `Err` says why it could not be, within [`EXEC_STOP_TIMEOUT`].
    pub(super) async fn stop_exec(&self, exec_id: &str) -> Result<(), ExecNotStopped> {
        let stop = async {
            let inspect = self
                .docker
                .inspect_exec(exec_id)
                .await
                .map_err(|error| ExecNotStopped::Unidentified(Some(error.to_string())))?;
            let pid = inspect
                .pid
                .and_then(|pid| i32::try_from(pid).ok())
                .filter(|pid| *pid > 0);
            let (Some(pid), Some(container)) = (pid, inspect.container_id) else {
                return match inspect.running {
                    Some(true) => Err(ExecNotStopped::Unidentified(None)),
                    _ => Ok(()),
                };
            };
            // Also when the command itself has exited: what it started may hold its output.
            let killed = tokio::task::spawn_blocking(move || {
                crate::platform::procfs::kill_exec(pid, &container)
            })
            .await
            .map_err(|error| ExecNotStopped::NotKilled(error.to_string()))?;
            match killed {
                Ok(_) => Ok(()),
                Err(why) => match self.docker.inspect_exec(exec_id).await {
                    // It ended meanwhile, by itself.
                    Ok(again) if again.running == Some(false) => Ok(()),
                    _ => Err(ExecNotStopped::NotKilled(why.to_string())),
                },
            }
        };
        tokio::time::timeout(EXEC_STOP_TIMEOUT, stop)
            .await
            .unwrap_or(Err(ExecNotStopped::NoAnswer(EXEC_STOP_TIMEOUT)))
    }
}

/// An exec that may still run: stopped when dropped before its step could stop it (the
/// service exited, the run was abandoned), as far as a runtime still runs to do it.
pub(super) struct RunningExec {
    /// The engine, while the exec may run.
    pub(super) runtime: Option<DockerRuntime>,
    pub(super) exec_id: String,
}

impl Drop for RunningExec {
    fn drop(&mut self) {
        if let (Some(runtime), Ok(handle)) =
            (self.runtime.take(), tokio::runtime::Handle::try_current())
        {
            let exec_id = std::mem::take(&mut self.exec_id);
            handle.spawn(async move {
                let _ = runtime.stop_exec(&exec_id).await;
            });
        }
    }
}

/// An instant no wait reaches (an `Instant + Duration` that would overflow).
pub(super) fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365 * 30)
}
