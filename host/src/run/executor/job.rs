//! Everything needed to stop one service: its facts, its policy and settings, its budget, and
//! what keeps it stopped.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::{ContainerState, ServiceFacts};

use super::OnBudgetExhausted;
use crate::model::process::SignalTarget;
use crate::model::warning::Warning;
use crate::platform::claim::Claims;
use crate::platform::systemd::Supervision;
use crate::policy::Decider;

/// Everything needed to stop one service.
#[derive(Clone)]
pub struct ServiceJob {
    /// What the policy sees.
    pub facts: ServiceFacts,
    /// The policy.
    pub policy: Arc<dyn Decider>,
    /// Its settings (JSON).
    pub settings: String,
    /// The most time this service may take.
    pub budget: Duration,
    /// What happens when the budget runs out.
    pub on_exhausted: OnBudgetExhausted,
    /// `host:port` addresses besides loopback that HTTP steps may call.
    pub allow_http: Arc<Vec<String>>,
    /// Warnings found before the run (e.g. PID 1 will not forward signals).
    pub warnings: Vec<Warning>,
    /// The container's state as inspected while preparing; when given, the sequence starts
    /// from it instead of inspecting again (one engine round trip less per service).
    pub observed: Option<ContainerState>,
    /// The restart policy in Docker's CLI form when it says more than its name
    /// (`on-failure:5`): what is put back after the stop. `None`: `facts.restart_policy`.
    pub restart_policy_spec: Option<String>,
    /// The systemd unit that supervises the container, if one does.
    pub supervision: Option<Supervision>,
    /// Where the policy's signals go (SIGKILL always goes to the container).
    pub signal_target: SignalTarget,
    /// Where stops claim their containers (one stop per container on the host); `None` for
    /// runs that touch nothing real (`plan`, scenarios) or own their service (`quiesce run`).
    pub claims: Option<Claims>,
    /// The process the policy's signals reach and what it does with each, when known
    /// ([`crate::prepare::hearing`]).
    pub receiver: Option<crate::model::process::Receiver>,
}

impl ServiceJob {
    /// A job with nothing known beyond its facts, policy, settings and budget: SIGKILL when the
    /// budget runs out, HTTP to loopback only, no warnings, no engine state to restore, signals
    /// to PID 1. Callers set what they know more of.
    pub fn new(
        facts: ServiceFacts,
        policy: Arc<dyn Decider>,
        settings: String,
        budget: Duration,
    ) -> ServiceJob {
        ServiceJob {
            facts,
            policy,
            settings,
            budget,
            on_exhausted: OnBudgetExhausted::Kill,
            allow_http: Arc::new(Vec::new()),
            warnings: Vec::new(),
            observed: None,
            restart_policy_spec: None,
            supervision: None,
            signal_target: Default::default(),
            claims: None,
            receiver: None,
        }
    }
}
