//! `httpd`: WINCH (graceful-stop: children finish their requests), then TERM, then SIGKILL.
//!
//! Apache httpd: WINCH is graceful-stop (the parent stops listening and exits once its children have finished their current requests, up to GracefulShutdownTimeout); TERM stops at once, aborting requests.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `httpd` policy.
pub struct HttpdPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `httpd`.
    pub struct Settings {
        /// How long children may take to finish after WINCH (match GracefulShutdownTimeout).
        graceful_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// How long to wait after TERM.
        fast_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after TERM.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::WINCH, s.graceful_timeout.get()),
        Rung::signal(Signal::TERM, s.fast_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for HttpdPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "httpd",
            env!("CARGO_PKG_VERSION"),
            "Apache httpd: WINCH (graceful-stop: children finish their requests), then TERM, then SIGKILL.",
        )
        .images(["httpd*", "apache*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(HttpdPolicy);

quiesce_policy_sdk::policy_tests!(
    HttpdPolicy,
    "signal SIGWINCH",
    include_str!("../scenarios/httpd.toml"),
);
