//! `gunicorn`: TERM (graceful: workers finish requests within graceful_timeout), then INT (quick), then SIGKILL.
//!
//! gunicorn: TERM is a graceful shutdown (workers get graceful_timeout, 30 s by default, to finish their requests); INT and QUIT are a quick shutdown.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `gunicorn` policy.
pub struct GunicornPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `gunicorn`.
    pub struct Settings {
        /// gunicorn's own --graceful-timeout.
        graceful_timeout: PositiveDuration = PositiveDuration::secs(30),
        /// Added to graceful_timeout before escalating.
        margin: PositiveDuration = PositiveDuration::secs(5),
        /// How long to wait after INT.
        fast_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after INT.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.graceful_timeout.get() + s.margin.get()),
        Rung::signal(Signal::INT, s.fast_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for GunicornPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "gunicorn",
            env!("CARGO_PKG_VERSION"),
            "gunicorn: TERM (graceful: workers finish requests within graceful_timeout), then INT (quick), then SIGKILL.",
        )
        .images(["*gunicorn*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(GunicornPolicy);

quiesce_policy_sdk::policy_tests!(
    GunicornPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/gunicorn.toml"),
);
