//! `nginx`: QUIT (graceful: stop accepting, let workers finish in-flight requests), then TERM (fast), then SIGKILL.
//!
//! nginx: QUIT is a graceful shutdown (the master stops listening, workers finish their requests and exit, then the master exits); TERM and INT are a fast shutdown that drops in-flight requests.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `nginx` policy.
pub struct NginxPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `nginx`.
    pub struct Settings {
        /// How long workers may take to finish in-flight requests after QUIT.
        graceful_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// How long to wait after TERM.
        fast_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after the fast shutdown.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::QUIT, s.graceful_timeout.get()),
        Rung::signal(Signal::TERM, s.fast_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for NginxPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "nginx",
            env!("CARGO_PKG_VERSION"),
            "nginx: QUIT (graceful: stop accepting, let workers finish in-flight requests), then TERM (fast), then SIGKILL.",
        )
        .images(["nginx*", "openresty*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(NginxPolicy);

quiesce_policy_sdk::policy_tests!(
    NginxPolicy,
    "signal SIGQUIT",
    include_str!("../scenarios/nginx.toml"),
);
