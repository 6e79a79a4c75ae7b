//! `haproxy`: USR1 (soft-stop: stop listening, exit when the last connection closes), then TERM, then SIGKILL.
//!
//! HAProxy: USR1 is a soft-stop (listeners close, the process exits when no connection remains, or at hard-stop-after); TERM is a hard stop that closes every connection.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `haproxy` policy.
pub struct HaproxyPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `haproxy`.
    pub struct Settings {
        /// How long existing connections may last after USR1 (match hard-stop-after).
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
        Rung::signal(Signal::USR1, s.graceful_timeout.get()),
        Rung::signal(Signal::TERM, s.fast_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for HaproxyPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "haproxy",
            env!("CARGO_PKG_VERSION"),
            "HAProxy: USR1 (soft-stop: stop listening, exit when the last connection closes), then TERM, then SIGKILL.",
        )
        .images(["haproxy*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(HaproxyPolicy);

quiesce_policy_sdk::policy_tests!(
    HaproxyPolicy,
    "signal SIGUSR1",
    include_str!("../scenarios/haproxy.toml"),
);
