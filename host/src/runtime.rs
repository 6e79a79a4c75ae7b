//! What the executor needs from a container engine, as a small trait.
//!
//! The Docker implementation lives in `docker`; a simulated one (virtual time, scripted
//! behaviour) lives in `simulate` and serves `quiesce plan` and tests. The executor only
//! knows this trait, so both run the exact same shutdown logic.

use std::future::Future;
use std::time::SystemTime;

use quiesce_policy_sdk::{Health, Signal};

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

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The end of the body.
    pub body_tail: String,
}

/// A container's state at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// True while it runs.
    pub running: bool,
    /// Its exit status once stopped.
    pub exit_code: Option<i32>,
    /// Its health status, if it has a health check.
    pub health: Option<Health>,
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

/// A container engine, as the executor uses it. Every method concerns one container, by id.
pub trait Runtime: Send + Sync + 'static {
    /// Delivers `signal` to the container's PID 1.
    fn signal(
        &self,
        id: &str,
        signal: Signal,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Runs `argv` in the container and collects its exit status and output.
    /// The caller bounds the time; the implementation may abandon the command when dropped.
    fn exec(
        &self,
        id: &str,
        argv: &[String],
    ) -> impl Future<Output = Result<ExecOutput, RuntimeError>> + Send;

    /// Performs an HTTP request for container `id`'s policy (the caller has checked the
    /// address is allowed).
    fn http(
        &self,
        id: &str,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> impl Future<Output = Result<HttpResponse, RuntimeError>> + Send;

    /// The container's state now.
    fn observe(&self, id: &str) -> impl Future<Output = Result<Observed, RuntimeError>> + Send;

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
