//! `sidekiq`: TSTP (quiet: stop fetching jobs), a quiet period, then TERM (finish jobs within -t), then SIGKILL.
//!
//! Sidekiq: TSTP makes the process quiet (it stops fetching new jobs but keeps working on the current ones); TERM then shuts it down, giving running jobs the -t timeout (25 s by default) before pushing them back to Redis. SIGKILL loses the jobs in progress.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `sidekiq` policy.
pub struct SidekiqPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `sidekiq`.
    pub struct Settings {
        /// How long to stay quiet (TSTP) before TERM.
        quiet_period: PositiveDuration = PositiveDuration::secs(10),
        /// Sidekiq's own -t timeout.
        shutdown_timeout: PositiveDuration = PositiveDuration::secs(25),
        /// Added to shutdown_timeout before SIGKILL.
        margin: PositiveDuration = PositiveDuration::secs(5),
        /// SIGKILL after TERM (loses running jobs).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TSTP, Duration::ZERO),
        Rung::Sleep(s.quiet_period.get()),
        Rung::signal(Signal::TERM, s.shutdown_timeout.get() + s.margin.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for SidekiqPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "sidekiq",
            env!("CARGO_PKG_VERSION"),
            "Sidekiq: TSTP (quiet: stop fetching jobs), a quiet period, then TERM (finish jobs within -t), then SIGKILL.",
        )
        .images(["*sidekiq*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(SidekiqPolicy);

quiesce_policy_sdk::policy_tests!(
    SidekiqPolicy,
    "signal SIGTSTP",
    include_str!("../scenarios/sidekiq.toml"),
);
