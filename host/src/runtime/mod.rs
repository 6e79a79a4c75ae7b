//! What the runner needs from a container engine, as one trait: finding and inspecting the
//! targets, and performing the primitive actions of a shutdown sequence on one of them.
//!
//! Each engine is one module: [`docker`] (the Docker Engine API, which Podman also serves),
//! [`process`] (a child process of `quiesce run`, inside the container) and [`simulate`]
//! (virtual time, scripted behaviour: `quiesce plan` and tests). The executor and
//! the preparation of a run only know this trait, so every engine runs the exact same shutdown
//! logic (the SDK's [`quiesce_policy_sdk::sequence`]).

use std::future::Future;
use std::time::SystemTime;

use quiesce_policy_sdk::{ContainerState, ServiceFacts, Signal};

use crate::model::process::Process;
use crate::model::report::EngineInfo;

pub mod docker;
pub mod endpoint;
pub mod http;
pub(crate) mod ping;
pub mod process;
pub(crate) mod raw;
pub mod simulate;

/// Why a runtime operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The container no longer exists.
    #[error("the container no longer exists")]
    Gone,
    /// The container is not running.
    #[error("the container is not running")]
    NotRunning,
    /// The engine could not be reached.
    #[error("the container engine is unreachable: {0}")]
    Unreachable(String),
    /// The engine does not offer the request (an endpoint it lacks).
    #[error("the engine does not support this request ({0})")]
    Unsupported(String),
    /// Anything else, in the engine's words.
    #[error("{0}")]
    Failed(String),
}

/// The result of a command run in a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit status.
    pub exit_code: i32,
    /// The end of its combined output.
    pub output_tail: String,
}

/// How a command run in a container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecEnd {
    /// It ended (its output closed and its exit status is known).
    Exited(ExecOutput),
    /// It ran out of time and was stopped, with every process it started (`Ok`), or could not
    /// be stopped (`Err`: why; it may still run in the container).
    TimedOut(Result<(), ExecNotStopped>),
}

/// Why a command whose time was up could not be stopped: it may still run in the container.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecNotStopped {
    /// The engine did not say which process runs it.
    #[error("the engine did not say which process it is{}", .0.as_ref().map(|why| format!(": {why}")).unwrap_or_default())]
    Unidentified(Option<String>),
    /// Its processes could not be signalled from here.
    #[error("{0}")]
    NotKilled(String),
    /// The engine did not answer in time.
    #[error("the engine did not answer within {}", humantime::format_duration(*.0))]
    NoAnswer(std::time::Duration),
}

/// The most a runtime takes, after an exec's time is up, to stop the command (the engine's
/// answer about it, and the signals).
pub const EXEC_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The end of the body.
    pub body_tail: String,
}

/// Which containers to stop.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// Names or ids.
    pub containers: Vec<String>,
    /// Every running container.
    pub all: bool,
    /// `KEY` or `KEY=VALUE` labels (all must match).
    pub labels: Vec<String>,
    /// A compose project.
    pub project: Option<String>,
}

impl Selector {
    /// True when it names nothing at all.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && !self.all && self.labels.is_empty() && self.project.is_none()
    }
}

/// A container the selector named, with its facts and state when selecting already read them.
#[derive(Clone, Debug)]
pub struct SelectedTarget {
    /// The full container id.
    pub id: String,
    /// The inspection made while resolving a name; `None` for listed containers.
    pub inspected: Option<Inspected>,
}

/// What one inspection of a target tells.
#[derive(Clone, Debug)]
pub struct Inspected {
    /// What the policy sees.
    pub facts: ServiceFacts,
    /// The state at that moment.
    pub state: ContainerState,
    /// The restart policy in Docker's CLI form when it says more than its name
    /// (`on-failure:5`), so that putting it back keeps the retry limit.
    pub restart_policy_spec: Option<String>,
    /// PID 1's process id in the engine host's PID namespace (`State.Pid`), while it runs.
    pub pid1: Option<i32>,
}

/// Why targets could not be found.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A named container does not exist.
    #[error("no such container: {0} (check `docker ps -a`)")]
    Unknown(String),
    /// The engine failed.
    #[error("{0}")]
    Engine(RuntimeError),
}

/// How much of an exec's or HTTP body's output is kept.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// Keeps the last `OUTPUT_TAIL_BYTES` of `text`, on a character boundary.
pub fn tail(text: &str) -> String {
    if text.len() <= OUTPUT_TAIL_BYTES {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// A container engine, as the runner uses it. Besides [`Runtime::select`], every method concerns
/// one container, by id.
pub trait Runtime: Send + Sync + 'static {
    /// Which engine this is.
    fn engine(&self) -> EngineInfo;

    /// The containers the selector names, without duplicates: named containers first, in the
    /// order given, then the listed ones by name. At most `concurrency` requests at once.
    fn select(
        &self,
        selector: &Selector,
        concurrency: usize,
    ) -> impl Future<Output = Result<Vec<SelectedTarget>, TargetError>> + Send;

    /// The facts a policy sees and the state now, from one inspection; `None` when the
    /// container is gone.
    fn inspect(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Inspected>, RuntimeError>> + Send;

    /// Delivers `signal` to the container's PID 1.
    fn signal(
        &self,
        id: &str,
        signal: Signal,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Delivers `signal` to the children of the container's PID 1 (see [`SignalTarget::Child`](crate::model::process::SignalTarget::Child)).
    /// Where PID 1 is the service's own parent (`quiesce run`, a simulation), that is PID 1.
    fn signal_children(
        &self,
        id: &str,
        signal: Signal,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        self.signal(id, signal)
    }

    /// The container's processes, when the engine lists them (an empty list otherwise).
    /// `pid1` is what inspection said of PID 1 ([`Inspected::pid1`]).
    fn processes(
        &self,
        id: &str,
        pid1: Option<i32>,
    ) -> impl Future<Output = Result<Vec<Process>, RuntimeError>> + Send {
        let _ = (id, pid1);
        async { Ok(Vec::new()) }
    }

    /// Runs `argv` in the container for at most `limit` and collects its exit status and
    /// output. At the limit the command is stopped, with the processes it started, before this
    /// returns [`ExecEnd::TimedOut`] (within [`EXEC_STOP_TIMEOUT`] more): nothing it started
    /// keeps running beside the rest of the sequence (issue 17, class 9). Dropped early (the
    /// service exited, the run was abandoned), the command is stopped as well, as far as the
    /// engine allows.
    fn exec(
        &self,
        id: &str,
        argv: &[String],
        limit: std::time::Duration,
    ) -> impl Future<Output = Result<ExecEnd, RuntimeError>> + Send;

    /// Performs an HTTP request for container `id`'s policy (the caller has checked the
    /// address is allowed). From this host, by default ([`http::request`]): the engines that
    /// reach the container's endpoints as the host does need nothing else.
    fn http(
        &self,
        _id: &str,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> impl Future<Output = Result<HttpResponse, RuntimeError>> + Send {
        http::request(method, url, body)
    }

    /// The container's state now.
    fn observe(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;

    /// Resolves with the exit status once the container is not running.
    fn wait_exit(&self, id: &str) -> impl Future<Output = Result<i32, RuntimeError>> + Send;

    /// Resolves once a line containing `text` appears in the container's output at or after
    /// `since`.
    fn wait_log_line(
        &self,
        id: &str,
        text: &str,
        since: SystemTime,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Sets the container's restart policy (`no`, `always`, `unless-stopped`, `on-failure`,
    /// or `on-failure:N` with a retry limit).
    fn set_restart_policy(
        &self,
        id: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// The time now, as the container engine's logs see it (wall clock, or virtual).
    fn wall_clock(&self) -> SystemTime;
}
