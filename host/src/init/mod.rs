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
//! Every other signal is passed on to the child; every child is reaped ([`reaper`](crate::platform::reaper)).

pub mod leftovers;
pub mod listen;
pub mod podinfo;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::sequence::{Decided, PolicyFailure};
use quiesce_policy_sdk::{Context, ServiceFacts, Signal, Step};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::run::executor::{ServiceJob, run_service};

use crate::model::report::PolicyIdentity;
use crate::model::units::timestamp;
use crate::output::progress::{self, ProgressMode};
use crate::platform::pipes::{self, Lines};
use crate::platform::reaper::{self, ExitStatus, Reaper, SignalRouting, SignalThread};
use crate::policy::{
    BUILTIN_NATIVE, BUILTIN_POLICIES, LoadedPolicy, PolicyEngine, PolicySource, builtin_policy,
};
use crate::policy::{Decider, LoadError, LoadProblem};
use crate::prepare::selection::{
    self, POLICY_LABEL, SETTINGS_LABEL, SettingsNotAnObject, overlap_warning, ranked_image_matches,
};
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

/// Where the chosen policy comes from.
#[derive(Clone, Debug)]
pub enum PolicyOrigin {
    /// A built-in: its component.
    Builtin(&'static [u8]),
    /// `<name>.wasm` in the policies directory.
    File(PathBuf),
}

/// The chosen policy.
#[derive(Clone, Debug)]
pub struct PolicyChoice {
    /// Its name.
    pub name: String,
    /// Why it was chosen, in words.
    pub reason: String,
    /// Its component.
    pub origin: PolicyOrigin,
    /// `pattern-overlap` when several built-ins' image patterns matched.
    pub overlap: Option<crate::model::warning::Warning>,
}

/// Chooses the policy: the pod's `quiesce.policy`, else `explicit` (`--policy`,
/// `QUIESCE_POLICY`), else a built-in whose image patterns match `image` or the command's name,
/// else `default`. A policy of `policies_dir` (`<name>.wasm`) takes precedence over a built-in
/// of the same name. Nothing is compiled.
pub fn choose_policy(
    explicit: Option<&str>,
    pod: &BTreeMap<String, String>,
    image: &str,
    command_name: &str,
    policies_dir: Option<&Path>,
) -> Result<PolicyChoice, UnknownPolicy> {
    let mut overlap = None;
    let (name, reason) = if let Some(name) = pod.get(POLICY_LABEL) {
        (name.clone(), format!("the pod's {POLICY_LABEL}"))
    } else if let Some(name) = explicit {
        (name.to_string(), "--policy".to_string())
    } else {
        // The built-ins' image patterns, ranked as `quiesce stop` ranks them: the image
        // first, else the command's name.
        let matched = [image, command_name]
            .into_iter()
            .filter(|candidate| !candidate.is_empty())
            .find_map(|candidate| {
                let matches = ranked_image_matches(
                    BUILTIN_NATIVE.iter().map(|builtin| {
                        ((), builtin.name.to_string(), true, (builtin.info)().images)
                    }),
                    candidate,
                );
                overlap = overlap_warning(candidate, &matches);
                matches.into_iter().next()
            });
        match matched {
            Some(found) => (found.name, format!("image pattern {}", found.pattern)),
            None => ("default".to_string(), "default".to_string()),
        }
    };
    let file = policies_dir
        .map(|dir| dir.join(format!("{name}.wasm")))
        .filter(|file| file.is_file());
    let origin = match file {
        Some(file) => PolicyOrigin::File(file),
        None => match builtin_policy(&name) {
            Some(builtin) => PolicyOrigin::Builtin(builtin.wasm),
            None => {
                let builtins: Vec<&str> = BUILTIN_POLICIES
                    .iter()
                    .map(|builtin| builtin.name)
                    .collect();
                let files: Vec<String> = policies_dir
                    .and_then(|dir| crate::policy::wasm_files(dir).ok())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|file| Some(file.file_stem()?.to_string_lossy().into_owned()))
                    .collect();
                let guess = crate::policy::nearest_name(
                    &name,
                    builtins
                        .iter()
                        .copied()
                        .chain(files.iter().map(String::as_str)),
                )
                .map(str::to_string);
                return Err(UnknownPolicy {
                    name,
                    chosen_by: reason,
                    nearest: guess,
                    builtins: builtins.join(", "),
                    policies_dir: policies_dir.map(Path::to_path_buf),
                });
            }
        },
    };
    Ok(PolicyChoice {
        name,
        reason,
        origin,
        overlap,
    })
}

/// A policy `quiesce run` was asked for that is neither a built-in nor a file of the policies
/// directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown policy `{name}` (from {chosen_by}): {}the built-ins are {builtins}; a policy of the policies directory{} must be in `{name}.wasm` there",
    nearest.as_ref().map(|near| format!("did you mean `{near}`? ")).unwrap_or_default(),
    policies_dir.as_ref().map(|dir| format!(" ({})", dir.display())).unwrap_or_default()
)]
pub struct UnknownPolicy {
    /// The name asked for.
    pub name: String,
    /// What asked for it (`--policy`, the pod's `quiesce.policy`).
    pub chosen_by: String,
    /// The nearest known name, if one is near.
    pub nearest: Option<String>,
    /// The built-ins, comma-separated.
    pub builtins: String,
    /// The policies directory searched.
    pub policies_dir: Option<PathBuf>,
}

/// The settings: `base` (`--settings`, `QUIESCE_SETTINGS`), overridden key by key by the pod's
/// `quiesce.settings`. Both must be JSON objects.
pub fn merge_settings(
    base: Option<&str>,
    pod: &BTreeMap<String, String>,
) -> Result<String, SettingsNotAnObject> {
    let label = format!("the pod's {SETTINGS_LABEL}");
    selection::merge_settings(
        base.map(|text| ("--settings", text)),
        pod.get(SETTINGS_LABEL)
            .map(|text| (label.as_str(), text.as_str())),
    )
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

/// A policy that could not be made ready: every decision fails, so the sequence's conservative
/// fallback stops the service, and the report says why.
struct Unavailable {
    identity: PolicyIdentity,
    reason: String,
}

impl Decider for Unavailable {
    fn identity(&self) -> PolicyIdentity {
        self.identity.clone()
    }

    fn decide(&self, _ctx: &Context) -> Result<Decided, PolicyFailure> {
        Err(PolicyFailure::new("not-loaded", self.reason.clone()))
    }
}

/// Why the chosen policy cannot be used under `quiesce run`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyNotUsable {
    /// The policy engine did not start.
    #[error("{0}")]
    Engine(String),
    /// A built-in did not load (a bug of this build).
    #[error("built-in policy `{name}`: {error}")]
    Builtin {
        /// The built-in.
        name: String,
        /// Why.
        error: LoadError,
    },
    /// The policies directory's file did not load.
    #[error(transparent)]
    File(LoadProblem),
    /// The file holds another policy than its name says.
    #[error("{file} holds the policy `{found}`, not `{asked}`: name the file after the policy")]
    WrongName {
        /// The file.
        file: String,
        /// The policy it holds.
        found: String,
        /// The policy asked for.
        asked: String,
    },
    /// The policy refused the settings (its words).
    #[error("{0}")]
    InvalidSettings(String),
}

/// Compiles the chosen policy with `engine` and checks the settings in the sandbox.
fn load(
    choice: &PolicyChoice,
    settings: &str,
    engine: &PolicyEngine,
) -> Result<LoadedPolicy, PolicyNotUsable> {
    let loaded = match &choice.origin {
        PolicyOrigin::Builtin(wasm) => {
            engine
                .load_bytes(wasm, PolicySource::Builtin)
                .map_err(|error| PolicyNotUsable::Builtin {
                    name: choice.name.clone(),
                    error,
                })?
        }
        PolicyOrigin::File(path) => engine.load_file(path).map_err(PolicyNotUsable::File)?,
    };
    if loaded.name() != choice.name {
        return Err(PolicyNotUsable::WrongName {
            file: loaded.source().to_string(),
            found: loaded.name().to_string(),
            asked: choice.name.clone(),
        });
    }
    loaded.validate_settings(settings).map_err(|error| {
        PolicyNotUsable::InvalidSettings(crate::policy::invalid_settings(
            &choice.name,
            settings,
            &error.failure.refusal(),
        ))
    })?;
    Ok(loaded)
}

/// `quiesce run --check`, and the check of a file policy before its child starts: the policy,
/// compiled, with its settings checked in the sandbox.
pub fn check(
    choice: &PolicyChoice,
    settings: &str,
    engine: &PolicyEngine,
) -> Result<LoadedPolicy, PolicyNotUsable> {
    load(choice, settings, engine)
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

    #[test]
    fn the_pod_names_the_policy_before_the_flag_and_patterns_pick_by_command() {
        let mut pod = BTreeMap::new();
        let chosen = choose_policy(None, &pod, "", "nginx", None).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.reason.as_str()),
            ("nginx", "image pattern nginx*")
        );
        let chosen = choose_policy(Some("postgres"), &pod, "", "nginx", None).unwrap();
        assert_eq!(chosen.name, "postgres");
        pod.insert(POLICY_LABEL.to_string(), "redis".to_string());
        assert_eq!(
            choose_policy(Some("postgres"), &pod, "", "x", None)
                .unwrap()
                .name,
            "redis"
        );
        let chosen = choose_policy(None, &BTreeMap::new(), "", "my-app", None).unwrap();
        assert_eq!(chosen.name, "default");
        let error = choose_policy(Some("nope"), &BTreeMap::new(), "", "x", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown policy `nope`") && error.contains("nginx"),
            "{error}"
        );
        let error = choose_policy(Some("ngnix"), &BTreeMap::new(), "", "x", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean `nginx`?"), "{error}");
    }

    /// Issue 25's example: `run` chose `redis` (the first built-in whose pattern matched) where
    /// `stop` chose `sidekiq` (the most specific pattern). Both rank alike now, and say so.
    #[test]
    fn run_chooses_the_same_built_in_as_stop_for_an_image_two_patterns_match() {
        let image = "acme/redis-sidekiq:1";
        let chosen = choose_policy(None, &BTreeMap::new(), image, "x", None).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.reason.as_str()),
            ("sidekiq", "image pattern *sidekiq*")
        );
        let overlap = chosen.overlap.expect("a pattern-overlap warning");
        assert_eq!(overlap.code, "pattern-overlap");
        assert!(overlap.message.contains("redis*"), "{}", overlap.message);
    }

    #[test]
    fn the_pods_settings_override_the_flags_key_by_key() {
        let mut pod = BTreeMap::new();
        pod.insert(SETTINGS_LABEL.to_string(), r#"{"b": 3}"#.to_string());
        let merged = merge_settings(Some(r#"{"a": 1, "b": 2}"#), &pod).unwrap();
        assert_eq!(merged, r#"{"a":1,"b":3}"#);
        assert!(merge_settings(Some("[1]"), &BTreeMap::new()).is_err());
    }
}
