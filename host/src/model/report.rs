//! The run report: what happened to each service, step by step, as data.
//!
//! It is printed as JSON with `--json`, written with `--report FILE`, and summarised as a table
//! at the end of a run. The shape is documented in the README ("The report") and versioned by
//! `report_version`.

use quiesce_policy_sdk::sequence::TranscriptStep;
use quiesce_policy_sdk::{Outcome, Step};
use serde::Serialize;

use crate::model::units::{millis, timestamp};

pub use quiesce_policy_sdk::sequence::{ServiceOutcome, StepOrigin};

/// Which policy a service got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PolicyIdentity {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its component (`sha256:<hex>`); `native` for a policy type linked into the
    /// runner and run without wasm (policies under test); empty when the policy never loaded
    /// (`quiesce run`'s policy that failed to compile: the fallback sequence ran).
    pub digest: String,
    /// Where it came from: `(built-in)`, its file, or `REGISTRY/REPOSITORY@sha256:... (signed
    /// by KEY-ID, ...)` for a policy pulled from a registry; `native` for a policy type linked
    /// into the runner.
    pub source: String,
}

/// One step taken for a service: the typed step and outcome, written in the report as
/// `action` (`signal`, `exec`, `http`, `wait`, `kill`), `detail`, `result` (in words), times
/// and `by`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// What came of it.
    pub outcome: Outcome,
    /// Start, in ms since the service's sequence began.
    pub start_ms: u64,
    /// End, in ms since the service's sequence began.
    pub end_ms: u64,
    /// Who chose it.
    pub by: StepOrigin,
}

impl From<&TranscriptStep> for StepReport {
    fn from(step: &TranscriptStep) -> StepReport {
        StepReport {
            step: step.step.clone(),
            outcome: step.outcome.clone(),
            start_ms: millis(step.started),
            end_ms: millis(step.ended),
            by: step.by,
        }
    }
}

impl Serialize for StepReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (action, detail) = self.step.describe();
        let mut fields = serializer.serialize_struct("StepReport", 6)?;
        fields.serialize_field("action", &action)?;
        fields.serialize_field("detail", &detail)?;
        fields.serialize_field("start_ms", &self.start_ms)?;
        fields.serialize_field("end_ms", &self.end_ms)?;
        fields.serialize_field("result", &self.outcome.describe())?;
        fields.serialize_field("by", &self.by)?;
        fields.end()
    }
}

/// The shape of a [`StepReport`] in JSON (its schema).
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct StepReportShape {
    /// `signal`, `exec`, `http`, `wait`, `kill` or `finish`.
    action: String,
    /// The step in words: `SIGTERM`, `exit (up to 30s)`, `nginx -s quit (timeout 5s)`.
    detail: String,
    /// Start, in ms since the service's sequence began.
    start_ms: u64,
    /// End, in ms since the service's sequence began.
    end_ms: u64,
    /// What came of it, in words: `delivered`, `condition met`, `timed out`, `exit 0: ...`.
    result: String,
    /// Who chose it.
    by: StepOrigin,
}

impl schemars::JsonSchema for StepReport {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepReport".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        StepReportShape::json_schema(generator)
    }
}

/// What quiesce changed on the container to keep it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RestartPolicyChange {
    /// The restart policy the container had.
    pub original: String,
    /// True when the original was put back after the container stopped.
    pub restored: bool,
}

/// Everything about one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// The systemd unit that supervises the container, and what quiesce did about it.
    pub supervisor: Option<crate::model::supervision::SupervisorReport>,
    /// Set when another quiesce process was stopping the container: this run sent nothing,
    /// waited, and reports that process's outcome.
    pub stopped_by: Option<StoppedBy>,
    /// Things the operator should know about this service.
    pub warnings: Vec<crate::model::warning::Warning>,
}

/// The other quiesce process that stopped a container while this run waited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StoppedBy {
    /// Its process id.
    pub pid: u32,
    /// When it claimed the container (RFC 3339).
    pub started_at: String,
}

/// Counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Summary {
    /// Services that stopped gracefully.
    pub graceful: usize,
    /// Services that stopped after an escalation their policy chose.
    pub escalated: usize,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// The engine the targets were found on (kind, version, endpoint, context).
    pub engine: Option<EngineInfo>,
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
    pub warnings: Vec<crate::model::warning::Warning>,
}

impl Report {
    /// A report of `services` (version [`REPORT_VERSION`]), begun at `started_at` and finished
    /// now.
    pub fn new(
        services: Vec<ServiceReport>,
        started_at: std::time::SystemTime,
        deadline: std::time::Duration,
        dry_run: bool,
        warnings: Vec<crate::model::warning::Warning>,
    ) -> Report {
        Report {
            report_version: REPORT_VERSION,
            dry_run,
            started_at: timestamp(started_at),
            finished_at: timestamp(std::time::SystemTime::now()),
            deadline_ms: millis(deadline),
            engine: None,
            interrupted: false,
            worst_case_ms: None,
            summary: Summary::of(&services),
            services,
            warnings,
        }
    }

    /// The verdict as an exit status: 0 when every service stopped cleanly (gracefully, already
    /// stopped or gone) and the run was not interrupted, else 1.
    pub fn exit_status(&self) -> u8 {
        let clean = self.services.iter().all(|s| s.outcome.is_clean()) && !self.interrupted;
        if clean {
            crate::model::exit::SUCCESS
        } else {
            crate::model::exit::PROBLEMS
        }
    }
}

impl Summary {
    /// Counts the outcomes of `services`.
    pub fn of(services: &[ServiceReport]) -> Summary {
        let mut summary = Summary::default();
        for service in services {
            let count = match service.outcome {
                ServiceOutcome::Graceful => &mut summary.graceful,
                ServiceOutcome::Escalated => &mut summary.escalated,
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

/// The version of the report's shape. 2 added `engine`, each service's `supervisor` and the
/// outcome `escalated` (with its summary count); 3 (this release) made `supervisor.action`
/// `none` or `held` (it was text) and added `supervisor.not_held`, `supervisor.unit_state`
/// and each service's `stopped_by`; README "The report" lists the changes.
pub const REPORT_VERSION: u32 = 3;

/// Which engine answers, as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct EngineInfo {
    /// `docker`, `podman`, `process` (inside a container, `quiesce run`) or `simulated`.
    pub kind: String,
    /// The engine's version (Podman's own for Podman).
    pub version: String,
    /// The API version spoken (negotiated).
    pub api_version: String,
    /// Where it answers (`unix:///var/run/docker.sock`...).
    pub endpoint: String,
    /// The docker CLI context the endpoint came from.
    pub context: String,
}

impl EngineInfo {
    /// An engine of `kind` with nothing more to say (the simulation, a local process).
    pub fn local(kind: &str) -> EngineInfo {
        EngineInfo {
            kind: kind.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: String::new(),
            endpoint: String::new(),
            context: String::new(),
        }
    }

    /// Podman's version as (major, minor), when the engine is Podman.
    pub fn podman_version(&self) -> Option<(u32, u32)> {
        if self.kind != "podman" {
            return None;
        }
        let mut parts = self.version.split(['.', '-']).map(|part| part.parse().ok());
        Some((parts.next()??, parts.next()??))
    }

    /// Whether the engine can change a container's restart policy in place (Podman only from
    /// 5.1 on).
    pub fn updates_restart_policy(&self) -> bool {
        self.podman_version()
            .is_none_or(|version| version >= (5, 1))
    }

    /// `docker 20.10.24 at unix:///var/run/docker.sock (context default)`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.kind, self.version);
        if !self.endpoint.is_empty() {
            text.push_str(&format!(" at {} (context {})", self.endpoint, self.context));
        }
        text
    }
}
