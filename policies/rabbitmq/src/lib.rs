//! `rabbitmq`: `rabbitmq-upgrade drain` (move client connections and queue leaders away), then TERM, then QUIT, then SIGKILL.
//!
//! RabbitMQ: `rabbitmq-upgrade drain` puts the node in maintenance mode (closes client connections, transfers queue leadership to other nodes); TERM then stops the node cleanly; QUIT stops the Erlang VM at once.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `drain_command` (list of strings, default `["rabbitmq-upgrade", "drain"]`): The drain command run in the container first (empty: skip it).
//! - `drain_timeout` (duration, default 1m): How long the drain command may run.
//! - `graceful_timeout` (duration, default 2m): How long the node may take to stop after TERM.
//! - `fast_timeout` (duration, default 10s): How long to wait after QUIT.
//! - `kill` (bool, default true): SIGKILL after QUIT.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `rabbitmq` policy.
pub struct RabbitmqPolicy;

/// Operator settings for `rabbitmq`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The drain command run in the container first (empty: skip it).
    pub drain_command: Vec<String>,
    /// How long the drain command may run.
    #[serde(with = "human_duration")]
    pub drain_timeout: Duration,
    /// How long the node may take to stop after TERM.
    #[serde(with = "human_duration")]
    pub graceful_timeout: Duration,
    /// How long to wait after QUIT.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after QUIT.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            drain_command: vec!["rabbitmq-upgrade".to_string(), "drain".to_string()],
            drain_timeout: Duration::from_secs(60),
            graceful_timeout: Duration::from_secs(120),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let mut rungs = Vec::new();
    if !s.drain_command.is_empty() {
        rungs.push(Rung::exec(s.drain_command.clone(), s.drain_timeout));
    }
    rungs.push(Rung::signal(Signal::TERM, s.graceful_timeout));
    rungs.push(Rung::signal(Signal::QUIT, s.fast_timeout));
    Ladder::new(rungs).with_kill(s.kill)
}

impl Policy for RabbitmqPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "rabbitmq",
            env!("CARGO_PKG_VERSION"),
            "RabbitMQ: `rabbitmq-upgrade drain` (move client connections and queue leaders away), then TERM, then QUIT, then SIGKILL.",
        )
        .images(["rabbitmq*"])
        .settings_doc("- `drain_command` (list of strings, default `[\"rabbitmq-upgrade\", \"drain\"]`): The drain command run in the container first (empty: skip it).\n\
- `drain_timeout` (duration, default 1m): How long the drain command may run.\n\
- `graceful_timeout` (duration, default 2m): How long the node may take to stop after TERM.\n\
- `fast_timeout` (duration, default 10s): How long to wait after QUIT.\n\
- `kill` (bool, default true): SIGKILL after QUIT.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.drain_timeout.is_zero() {
            return Err("`drain_timeout` must be more than 0s".into());
        }
        if settings.graceful_timeout.is_zero() {
            return Err("`graceful_timeout` must be more than 0s".into());
        }
        if settings.fast_timeout.is_zero() {
            return Err("`fast_timeout` must be more than 0s".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(RabbitmqPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = RabbitmqPolicy::info();
        assert_eq!(info.name, "rabbitmq");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<RabbitmqPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<RabbitmqPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("exec rabbitmq-upgrade drain"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<RabbitmqPolicy>(include_str!(
            "../scenarios/rabbitmq.toml"
        ));
    }
}
