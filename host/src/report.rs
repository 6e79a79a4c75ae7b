//! The run report: what happened to each service, step by step, as data.
//!
//! It is printed as JSON with `--json`, written with `--report FILE`, and summarised as a table
//! at the end of a run. The shape is documented in the README ("The report") and versioned by
//! `report_version`.

use serde::Serialize;

/// How a service's shutdown ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceOutcome {
    /// It exited by itself after the policy's graceful steps; nothing was killed.
    Graceful,
    /// It needed SIGKILL (the policy asked for it, or its budget ran out).
    Killed,
    /// The policy failed; the conservative sequence stopped it.
    Fallback,
    /// It was not running when quiesce started.
    AlreadyStopped,
    /// It disappeared during the sequence (removed by someone else).
    Gone,
    /// It could not be stopped (an engine error, or left running at the end of its budget).
    Failed,
}

impl ServiceOutcome {
    /// The name used in the report and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceOutcome::Graceful => "graceful",
            ServiceOutcome::Killed => "killed",
            ServiceOutcome::Fallback => "fallback",
            ServiceOutcome::AlreadyStopped => "already-stopped",
            ServiceOutcome::Gone => "gone",
            ServiceOutcome::Failed => "failed",
        }
    }

    /// True for the outcomes that count as a clean stop for the exit status.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            ServiceOutcome::Graceful | ServiceOutcome::AlreadyStopped | ServiceOutcome::Gone
        )
    }
}

/// Which policy a service got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyIdentity {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its component (`sha256:<hex>`), or `native` for the runner's own fallback.
    pub digest: String,
}

/// Who chose a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOrigin {
    /// The service's policy.
    Policy,
    /// The conservative fallback sequence, after the policy failed.
    Fallback,
    /// The runner itself (budget exhausted, or verifying a `finish`).
    Runner,
}

/// One step taken for a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// `signal`, `exec`, `http`, `wait`, `kill`.
    pub action: String,
    /// What exactly: the signal, the command, the URL, the condition and timeout.
    pub detail: String,
    /// Start, in ms since the service's sequence began.
    pub start_ms: u64,
    /// End, in ms since the service's sequence began.
    pub end_ms: u64,
    /// What came of it, in words (`delivered`, `exit 0`, `condition met`, `timed out`...).
    pub result: String,
    /// Who chose it.
    pub by: StepOrigin,
}

/// What quiesce changed on the container to keep it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestartPolicyChange {
    /// The restart policy the container had.
    pub original: String,
    /// True when the original was put back after the container stopped.
    pub restored: bool,
}

/// Everything about one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceReport {
    /// The container name.
    pub name: String,
    /// The container id.
    pub id: String,
    /// The policy it got.
    pub policy: PolicyIdentity,
    /// How it ended.
    pub outcome: ServiceOutcome,
    /// Its exit status, when it stopped.
    pub exit_code: Option<i32>,
    /// When its sequence began (RFC 3339).
    pub started_at: String,
    /// When it was seen stopped (RFC 3339), if it was.
    pub stopped_at: Option<String>,
    /// The budget it had, in ms.
    pub budget_ms: u64,
    /// How long its sequence took, in ms.
    pub elapsed_ms: u64,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// Why the policy was replaced by the conservative sequence, if it was.
    pub fallback_reason: Option<String>,
    /// The limit or fault behind the fallback (`time-limit`, `memory-limit`, `trap`...).
    pub fallback_kind: Option<String>,
    /// What the policy wrote to stdout/stderr (capped).
    pub policy_log: String,
    /// The restart policy quiesce turned off while stopping, if any.
    pub restart_policy: Option<RestartPolicyChange>,
    /// Things the operator should know about this service.
    pub warnings: Vec<String>,
}

/// Counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Services that stopped gracefully.
    pub graceful: usize,
    /// Services that needed SIGKILL.
    pub killed: usize,
    /// Services stopped by the fallback sequence.
    pub fallback: usize,
    /// Services that were already stopped.
    pub already_stopped: usize,
    /// Services that disappeared.
    pub gone: usize,
    /// Services that could not be stopped.
    pub failed: usize,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The version of this document's shape.
    pub report_version: u32,
    /// True for `quiesce plan` / `stop --dry-run` (a simulation; nothing was touched).
    pub dry_run: bool,
    /// When the run began (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// The overall deadline, in ms.
    pub deadline_ms: u64,
    /// Whether the run was interrupted (SIGINT/SIGTERM) before every service was handled.
    pub interrupted: bool,
    /// For dry runs: the whole run's duration if no service cooperates, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_case_ms: Option<u64>,
    /// Counts by outcome.
    pub summary: Summary,
    /// One entry per service, in the order they were started.
    pub services: Vec<ServiceReport>,
    /// Run-wide warnings.
    pub warnings: Vec<String>,
}

impl Summary {
    /// Counts the outcomes of `services`.
    pub fn of(services: &[ServiceReport]) -> Summary {
        let mut summary = Summary::default();
        for service in services {
            let count = match service.outcome {
                ServiceOutcome::Graceful => &mut summary.graceful,
                ServiceOutcome::Killed => &mut summary.killed,
                ServiceOutcome::Fallback => &mut summary.fallback,
                ServiceOutcome::AlreadyStopped => &mut summary.already_stopped,
                ServiceOutcome::Gone => &mut summary.gone,
                ServiceOutcome::Failed => &mut summary.failed,
            };
            *count += 1;
        }
        summary
    }
}

/// Milliseconds of a duration, saturating.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// RFC 3339 with milliseconds.
pub fn timestamp(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
