//! `oslo`: TERM once, then wait graceful_shutdown_timeout plus a margin; SIGKILL only then.
//!
//! OpenStack services on oslo.service (nova, neutron, cinder-api and -scheduler, glance...): TERM
//! starts a graceful shutdown: the service stops taking work and lets what is in flight finish.
//! oslo.service resets its signal handlers as that shutdown starts, so nothing but SIGKILL can
//! speed it up afterwards: a second TERM or an INT kills it at once, cutting the work in flight,
//! when an init (tini, dumb-init) passes them on; and when the service is PID 1 (no init) the
//! kernel ignores them, and ignores the service's own graceful_shutdown_timeout alarm too, so the
//! service waits for its work however long that takes (measured with a real oslo.service 3.0
//! ServiceLauncher). The policy therefore sends TERM once and waits the service's timeout plus
//! a margin; then SIGKILL (version 2: the INT rung and its `fast_timeout` setting are gone).
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
        /// Added before SIGKILL.
        margin: PositiveDuration = PositiveDuration::secs(15),
        /// SIGKILL after the wait (off: the wait lasts until the budget ends).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![Rung::signal(
        Signal::TERM,
        s.graceful_shutdown_timeout.get() + s.margin.get(),
    )])
    .with_kill(s.kill)
}

impl Policy for OsloPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "oslo",
            env!("CARGO_PKG_VERSION"),
            "OpenStack oslo.service: TERM once, wait graceful_shutdown_timeout plus a margin (a second TERM or an INT would cut the work), then SIGKILL.",
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
