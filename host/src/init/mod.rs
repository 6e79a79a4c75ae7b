//! `quiesce run`: quiesce as a container's main process (its PID 1), the service its child, and
//! the same policies, settings and sequence as `quiesce stop` when the container is stopped.
//!
//! The order of things, so that start-up costs the service nothing:
//! 1. Before the child starts (microseconds): the policy is chosen and, for a built-in, its
//!    settings are checked by the policy's own code linked natively. An unknown policy or
//!    invalid settings end here, exit 2: a deploy fails loudly, not a stop. (A policy of the
//!    policies directory is compiled and checked here, before the start: warm the compile cache
//!    in the image with `quiesce run --check`.)
//! 2. The child starts at once, in its own process group; its output is passed through.
//! 3. Off the child's start path, the chosen policy alone is compiled (or read from the cache).
//! 4. On a stop signal (TERM, INT), the sequence runs against the child through the
//!    [`ProcessRuntime`](crate::runtime::process::ProcessRuntime), within the grace period minus
//!    a margin, so the orchestrator's SIGKILL never comes first; a policy still compiling is
//!    waited for within that budget. Later stop signals are logged and ignored: the sequence is
//!    the policy's, and the orchestrator's SIGKILL stays the last word.
//! 5. What the child left behind (`setsid` workers, orphans) gets the stop signal and what is
//!    left of the budget, then SIGKILL ([`leftovers`]); quiesce exits with the child's status
//!    (128 + N after signal N).
//!
//! Every other signal is passed on to the child; every child is reaped (`platform::reaper`).
//!
//! Its parts: `choice` (which policy, which settings), `loading` (the policy compiled off the
//! start path), [`listen`] (`run --check`'s look at the command's handlers), [`leftovers`],
//! [`podinfo`] (the pod's labels and annotations).

mod choice;
pub mod leftovers;
pub mod listen;
mod loading;
pub mod podinfo;

pub use choice::{
    PolicyChoice, PolicyOrigin, Pulled, UnknownPolicy, choose_policy, merge_settings,
};
pub use loading::{PolicyNotUsable, check};
use loading::{Unavailable, load};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::{ServiceFacts, Signal, Step};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::model::report::PolicyIdentity;
use crate::model::units::timestamp;
use crate::output::progress::{self, ProgressMode};
use crate::platform::pipes::{self, Lines};
use crate::platform::reaper::{self, ExitStatus, Reaper, SignalRouting, SignalThread};
use crate::policy::{Decider, LoadedPolicy, PolicyEngine};
use crate::run::executor::{ServiceJob, run_service};
use crate::runtime::process::ProcessRuntime;

/// The grace period assumed when none is given: `docker stop`'s.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// The part of the grace period quiesce leaves to the orchestrator: its SIGKILL must never
/// come first. A tenth of the grace period, at least 0.5 s and at most 2 s (at most half of a
/// tiny one).
pub fn engine_margin(grace_period: Duration) -> Duration {
    (grace_period / 10)
        .clamp(Duration::from_millis(500), Duration::from_secs(2))
        .min(grace_period / 2)
}

/// The time the policy's sequence gets: the grace period less the [`engine_margin`].
pub fn sequence_budget(grace_period: Duration) -> Duration {
    grace_period.saturating_sub(engine_margin(grace_period))
}

/// Everything `quiesce run` needs, checked.
pub struct Launch {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// The service as its policy sees it (the id is filled in once the child runs).
    pub facts: ServiceFacts,
    /// The policy.
    pub policy: PolicyChoice,
    /// Its settings (JSON), already checked.
    pub settings: String,
    /// The orchestrator's grace period.
    pub grace_period: Duration,
    /// The signals that start the stop.
    pub stop_signals: Vec<Signal>,
    /// Signals go to the child's process group.
    pub signal_group: bool,
    /// Where the JSON report goes (`-`: stderr).
    pub report: Option<PathBuf>,
    /// Progress lines on stderr (off with `--quiet`).
    pub progress: bool,
    /// Leave what the command leaves behind to the kernel ([`leftovers`]).
    pub leave_descendants: bool,
}

/// Starts the command, passes signals on, stops it with its policy when a stop signal comes,
/// and exits with its exit status. The handled signals must already be blocked
/// ([`block_signals`](crate::platform::reaper::block_signals)). `engine` starts the policy engine off the start path.
pub fn launch(
    launch: Launch,
    engine: impl FnOnce() -> Result<PolicyEngine, String> + Send + 'static,
) -> ! {
    reaper::become_subreaper();
    reaper::lean_code_pages();
    let reaper = Arc::new(Reaper::default());
    let lines = Lines::default();
    let program = launch.command[0].to_string_lossy().into_owned();
    let mut command = Command::new(&launch.command[0]);
    command.args(&launch.command[1..]).stdin(Stdio::inherit());
    // Output is captured (for log-line waits) unless it goes to a terminal, which the command
    // must see as one.
    let mut pipes = Vec::new();
    for fd in [1, 2] {
        // SAFETY: isatty takes any integer.
        if unsafe { libc::isatty(fd) } == 1 {
            continue;
        }
        match std::io::pipe() {
            Ok((reader, writer)) => {
                if fd == 1 {
                    command.stdout(Stdio::from(writer));
                } else {
                    command.stderr(Stdio::from(writer));
                }
                pipes.push((reader, fd));
            }
            Err(error) => {
                crate::output::logs::warning_text(&format!("cannot capture fd {fd}: {error}"))
            }
        }
    }
    let (pid, exited) = match reaper.spawn(&mut command, true) {
        Ok(spawned) => spawned,
        Err(error) => {
            crate::output::logs::error(&format!("cannot start `{program}`: {error}"));
            std::process::exit(match error.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            });
        }
    };
    drop(command);
    let (drained_tx, drained_rx) = std::sync::mpsc::channel();
    let mut outputs = 0;
    for (reader, fd) in pipes {
        match pipes::pass_through(reader, fd, lines.clone(), drained_tx.clone()) {
            Ok(()) => outputs += 1,
            Err(error) => {
                crate::output::logs::warning_text(&format!("cannot pass fd {fd} through: {error}"))
            }
        }
    }
    drop(drained_tx);
    let (stop_tx, stop_rx) = mpsc::unbounded_channel();
    let routing = SignalRouting {
        child: pid,
        group: launch.signal_group,
        stop_signals: launch.stop_signals.clone(),
        stop: stop_tx,
    };
    if let Err(error) = SignalThread::start(reaper.clone(), routing) {
        crate::output::logs::warning_text(&format!("cannot start the signal thread: {error}"));
    }
    // The policy, off the child's start path.
    let (policy_tx, policy_rx) = oneshot::channel();
    let (choice, settings) = (launch.policy.clone(), launch.settings.clone());
    let _ = std::thread::Builder::new()
        .name("quiesce-policy".into())
        .spawn(move || {
            let loaded = engine()
                .map_err(PolicyNotUsable::Engine)
                .and_then(|engine| load(&choice, &settings, &engine));
            // What compiling used is not needed while the service runs.
            reaper::release_free_memory();
            reaper::drop_code_pages();
            let _ = policy_tx.send(loaded);
        });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            crate::output::logs::error(&format!(
                "cannot start the async runtime: {error}; exiting"
            ));
            std::process::exit(1);
        }
    };
    let leave_descendants = launch.leave_descendants;
    let ended = runtime.block_on(supervise(
        launch,
        pid,
        exited,
        reaper.clone(),
        lines,
        stop_rx,
        policy_rx,
    ));
    if !leave_descendants {
        for left in runtime.block_on(leftovers::stop(&reaper, ended.signal, ended.until)) {
            crate::output::logs::info(
                None,
                &format!(
                    "left by the command: pid {} (`{}`): {}",
                    left.pid, left.command, left.ended
                ),
            );
        }
    }
    let status = ended.status;
    // What the command wrote last is passed on before quiesce exits (a straggler holding the
    // pipe does not hold quiesce).
    let drained = std::time::Instant::now() + Duration::from_millis(100);
    for _ in 0..outputs {
        let left = drained.saturating_duration_since(std::time::Instant::now());
        if drained_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    // Nothing is torn down: the process ends here, and the policy engine's threads and memory
    // go with it (joining them would only delay the exit the orchestrator waits for).
    std::process::exit(status.code() & 0xff)
}

/// What must outlive [`supervise`] until the process exits (the policy engine), so that its
/// teardown does not delay the exit.
type Kept = Box<dyn std::any::Any + Send>;

/// How the command ended, and what its leftovers get ([`leftovers`]).
struct Ended {
    /// The command's exit status.
    status: ExitStatus,
    /// The stop signal: the first the policy sent, else the container's.
    signal: Signal,
    /// The end of what is left of the budget.
    until: Instant,
    /// The policy engine, kept until the process exits.
    _kept: Kept,
}

/// Waits for the child's exit, or for a stop signal and then runs the stop.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    mut launch: Launch,
    pid: i32,
    exited: oneshot::Receiver<ExitStatus>,
    reaper: Arc<Reaper>,
    lines: Lines,
    mut stop_rx: mpsc::UnboundedReceiver<Signal>,
    policy_rx: oneshot::Receiver<Result<LoadedPolicy, PolicyNotUsable>>,
) -> Ended {
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(async move {
        if let Ok(status) = exited.await {
            let _ = exit_tx.send(Some(status));
        }
    });
    let mut exit_wait = exit_rx.clone();
    // Exited by itself: its leftovers get the container's stop signal and a sequence's budget.
    let stop_signal = launch.facts.stop_signal.unwrap_or(Signal::TERM);
    let by_itself = |status: ExitStatus, kept: Kept| Ended {
        status,
        signal: stop_signal,
        until: Instant::now() + sequence_budget(launch.grace_period),
        _kept: kept,
    };
    let stop = tokio::select! {
        status = child_status(&mut exit_wait) => return by_itself(status, Box::new(policy_rx)),
        stop = stop_rx.recv() => stop,
    };
    let Some(stop) = stop else {
        // The signal thread is gone: nothing to stop on; wait for the child.
        return by_itself(child_status(&mut exit_wait).await, Box::new(policy_rx));
    };
    let started = Instant::now();
    let budget = sequence_budget(launch.grace_period);
    let name = launch.facts.name.clone();
    if launch.progress {
        crate::output::logs::info(
            Some(&name),
            &format!(
                "{stop} received: stopping {name} (pid {pid}) with policy {} within {} (grace period {} less {} for the orchestrator)",
                launch.policy.name,
                humantime::format_duration(budget),
                humantime::format_duration(launch.grace_period),
                humantime::format_duration(engine_margin(launch.grace_period)),
            ),
        );
    }
    tokio::spawn(async move {
        while let Some(signal) = stop_rx.recv().await {
            crate::output::logs::info(
                None,
                &format!(
                    "{signal} received again: ignored, the stop is under way (the orchestrator's SIGKILL ends it)"
                ),
            );
        }
    });
    let identity = PolicyIdentity {
        name: launch.policy.name.clone(),
        version: String::new(),
        digest: String::new(),
        source: String::new(),
    };
    let policy: Arc<dyn Decider> = match tokio::time::timeout(budget, policy_rx).await {
        Ok(Ok(Ok(loaded))) => Arc::new(loaded),
        Ok(Ok(Err(reason))) => Arc::new(Unavailable {
            identity,
            reason: format!("could not be loaded: {reason}"),
        }),
        Ok(Err(_)) => Arc::new(Unavailable {
            identity,
            reason: "could not be loaded: the loader stopped".into(),
        }),
        Err(_) => Arc::new(Unavailable {
            identity,
            reason: "was still being compiled when the budget ran out".into(),
        }),
    };
    launch.facts.id = format!("pid-{pid}");
    let runtime = Arc::new(ProcessRuntime::new(
        launch.facts.clone(),
        pid,
        exit_rx.clone(),
        reaper,
        lines,
        launch.signal_group,
    ));
    let (events, shown) = progress::spawn(if launch.progress {
        ProgressMode::Lines
    } else {
        ProgressMode::Quiet
    });
    let kept: Kept = Box::new(policy.clone());
    let job = process_job(
        launch.facts.clone(),
        policy,
        launch.settings.clone(),
        budget,
    );
    let run = run_service(runtime, job, started + budget, events).await;
    let _ = shown.await;
    if let Some(path) = &launch.report {
        write_report(path, &run.report);
    }
    // The JSON log has the `finished` event already.
    if launch.progress && crate::output::logs::format() == crate::output::logs::Format::Text {
        eprintln!(
            "quiesce: {name}: {} (exit {}) after {:.1}s",
            run.report.outcome,
            run.report
                .exit_code
                .map_or("-".to_string(), |code| code.to_string()),
            started.elapsed().as_secs_f64()
        );
    }
    let signal = run
        .transcript
        .steps
        .iter()
        .find_map(|step| match step.step {
            Step::Signal(signal) => Some(signal),
            _ => None,
        })
        .unwrap_or(stop_signal);
    Ended {
        status: child_status(&mut exit_wait).await,
        signal,
        until: started + budget,
        _kept: kept,
    }
}

/// The child's exit status, once it has exited.
async fn child_status(exit: &mut watch::Receiver<Option<ExitStatus>>) -> ExitStatus {
    let status = exit.wait_for(Option::is_some).await;
    status
        .ok()
        .and_then(|status| *status)
        .unwrap_or(ExitStatus::Code(1))
}

fn write_report(path: &Path, report: &crate::model::report::ServiceReport) {
    let json = serde_json::to_string_pretty(report).expect("the report serializes") + "\n";
    let written = if path == Path::new("-") {
        std::io::Write::write_all(&mut std::io::stderr(), json.as_bytes())
    } else {
        std::fs::write(path, json)
    };
    if let Err(error) = written {
        crate::output::logs::error(&format!(
            "cannot write the report to {}: {error}",
            path.display()
        ));
    }
}

/// The stop of the child as one service's job: SIGKILL when the budget runs out (the
/// orchestrator's comes next), no engine state to restore, HTTP to loopback only.
pub fn process_job(
    facts: ServiceFacts,
    policy: Arc<dyn Decider>,
    settings: String,
    budget: Duration,
) -> ServiceJob {
    ServiceJob::new(facts, policy, settings, budget)
}

/// The service's facts for `quiesce run`: what a policy may know of a process quiesce started.
/// `stop_timeout` is what the orchestrator's grace period leaves for the wait before quiesce's
/// own SIGKILL (less the orchestrator's margin and the kill reserve): a policy that waits "the
/// container's stop timeout", as `default` does, then fits its budget, where waiting the whole
/// grace period would always be cut (and warned about whatever grace period was given). There
/// is no restart policy, no health check and no compose membership.
pub fn process_facts(
    name: &str,
    image: &str,
    command: &[OsString],
    labels: &BTreeMap<String, String>,
    grace_period: Duration,
) -> ServiceFacts {
    ServiceFacts {
        id: String::new(),
        name: name.to_string(),
        image: image.to_string(),
        labels: labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        stop_signal: None,
        stop_timeout: Some({
            let budget = sequence_budget(grace_period);
            budget.saturating_sub(quiesce_policy_sdk::rules::kill_reserve(budget))
        }),
        command: command
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect(),
        init: false,
        restart_policy: "no".to_string(),
        health: None,
        compose: None,
        started_at: Some(timestamp(SystemTime::now())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_leaves_the_orchestrator_a_tenth_within_bounds() {
        assert_eq!(
            engine_margin(Duration::from_secs(900)),
            Duration::from_secs(2)
        );
        assert_eq!(
            engine_margin(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            engine_margin(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            engine_margin(Duration::from_millis(600)),
            Duration::from_millis(300)
        );
    }
}
