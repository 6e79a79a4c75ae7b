//! `celery`: TERM (warm shutdown: finish running tasks), then QUIT (cold), then SIGKILL.
//!
//! Celery workers: TERM is a warm shutdown (stop consuming, finish the tasks being executed, then exit); QUIT is a cold shutdown (exit at once, tasks not acknowledged go back to the broker if acks_late).
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `celery` policy.
pub struct CeleryPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `celery`.
    pub struct Settings {
        /// How long running tasks may take to finish after TERM.
        warm_timeout: PositiveDuration = PositiveDuration::secs(300),
        /// How long to wait after QUIT.
        cold_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after QUIT.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.warm_timeout.get()),
        Rung::signal(Signal::QUIT, s.cold_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for CeleryPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "celery",
            env!("CARGO_PKG_VERSION"),
            "Celery worker: TERM (warm shutdown: finish running tasks), then QUIT (cold), then SIGKILL.",
        )
        .images(["*celery*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(CeleryPolicy);

quiesce_policy_sdk::policy_tests!(
    CeleryPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/celery.toml"),
);
