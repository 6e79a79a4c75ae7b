//! `rabbitmq`: `rabbitmq-upgrade drain` (move client connections and queue leaders away), then TERM, then SIGKILL.
//!
//! RabbitMQ: `rabbitmq-upgrade drain` puts the node in maintenance mode (closes client
//! connections, transfers queue leadership to other nodes); TERM then stops the node cleanly
//! (the `rabbitmq-server` script traps it and runs `rabbitmqctl stop`). Version 2 dropped the
//! QUIT rung and its `fast_timeout` setting: in a container PID 1 is that script, which does not
//! trap QUIT, and the kernel ignores default-action signals for PID 1, so QUIT did nothing but
//! delay SIGKILL; and where it reaches the Erlang VM it halts it at once, which keeps no more
//! than SIGKILL does.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `rabbitmq` policy.
pub struct RabbitmqPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `rabbitmq`.
    pub struct Settings {
        /// The drain command run in the container first (empty: skip it).
        drain_command: Vec<String> = vec!["rabbitmq-upgrade".to_string(), "drain".to_string()],
        /// How long the drain command may run.
        drain_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// How long the node may take to stop after TERM.
        graceful_timeout: PositiveDuration = PositiveDuration::secs(120),
        /// SIGKILL after that (off: the wait lasts until the budget ends).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let mut rungs = Vec::new();
    if !s.drain_command.is_empty() {
        rungs.push(Rung::exec(s.drain_command.clone(), s.drain_timeout.get()));
    }
    rungs.push(Rung::signal(Signal::TERM, s.graceful_timeout.get()));
    Ladder::new(rungs).with_kill(s.kill)
}

impl Policy for RabbitmqPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "rabbitmq",
            env!("CARGO_PKG_VERSION"),
            "RabbitMQ: `rabbitmq-upgrade drain` (move client connections and queue leaders away), then TERM, then SIGKILL.",
        )
        .images(["rabbitmq*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(RabbitmqPolicy);

quiesce_policy_sdk::policy_tests!(
    RabbitmqPolicy,
    "exec rabbitmq-upgrade drain",
    include_str!("../scenarios/rabbitmq.toml"),
);
