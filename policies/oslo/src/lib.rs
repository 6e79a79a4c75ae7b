//! `oslo`: TERM, waiting at least graceful_shutdown_timeout plus a margin, then INT, then SIGKILL.
//!
//! OpenStack services on oslo.service (nova, neutron, cinder-api and -scheduler, glance...): TERM starts a graceful shutdown; the parent waits up to graceful_shutdown_timeout (60 s by default) for its children to finish their requests; INT stops at once.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `oslo` policy.
pub struct OsloPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `oslo`.
    pub struct Settings {
        /// The service's own graceful_shutdown_timeout option.
        graceful_shutdown_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// Added before escalating.
        margin: PositiveDuration = PositiveDuration::secs(15),
        /// How long to wait after INT.
        fast_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after INT.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(
            Signal::TERM,
            s.graceful_shutdown_timeout.get() + s.margin.get(),
        ),
        Rung::signal(Signal::INT, s.fast_timeout.get()),
    ])
    .with_kill(s.kill)
}

impl Policy for OsloPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "oslo",
            env!("CARGO_PKG_VERSION"),
            "OpenStack oslo.service: TERM, waiting at least graceful_shutdown_timeout plus a margin, then INT, then SIGKILL.",
        )
        .images(["*nova*", "*neutron*", "*cinder-api*", "*cinder-scheduler*", "*glance*", "*heat*", "*octavia*", "*manila*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(OsloPolicy);

quiesce_policy_sdk::policy_tests!(
    OsloPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/oslo.toml"),
);
