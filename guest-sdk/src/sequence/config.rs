//! What a sequence is told before it starts: the service, its policy and settings, the budget
//! and the run's deadline, what happens when the budget runs out ([`SequenceConfig`],
//! [`OnBudgetExhausted`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ServiceFacts;

/// What happens when a service's budget runs out while it still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBudgetExhausted {
    /// SIGKILL (the default).
    #[default]
    Kill,
    /// Leave it running and report it as not stopped.
    LeaveRunning,
}

/// Everything a sequence needs to know before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceConfig {
    /// The service, as its policy sees it.
    pub facts: ServiceFacts,
    /// The policy's name, for notes about it.
    pub policy: String,
    /// The operator's settings for the policy (JSON).
    pub settings: String,
    /// The most time the service may take.
    pub budget: Duration,
    /// When the whole run's deadline falls, counted from this sequence's start, if it does.
    pub deadline: Option<Duration>,
    /// What happens when the budget runs out.
    pub on_exhausted: OnBudgetExhausted,
    /// `host:port` addresses besides loopback that HTTP steps may call.
    pub allow_http: Vec<String>,
}

impl SequenceConfig {
    /// A configuration with no settings, no deadline beyond the budget, SIGKILL at its end.
    pub fn new(facts: ServiceFacts, policy: &str, budget: Duration) -> SequenceConfig {
        SequenceConfig {
            facts,
            policy: policy.to_string(),
            settings: "{}".to_string(),
            budget,
            deadline: None,
            on_exhausted: OnBudgetExhausted::Kill,
            allow_http: Vec::new(),
        }
    }
}
