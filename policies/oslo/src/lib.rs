//! `oslo`: TERM, waiting at least graceful_shutdown_timeout plus a margin, then INT, then SIGKILL.
//!
//! OpenStack services on oslo.service (nova, neutron, cinder-api and -scheduler, glance...): TERM starts a graceful shutdown; the parent waits up to graceful_shutdown_timeout (60 s by default) for its children to finish their requests; INT stops at once.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `graceful_shutdown_timeout` (duration, default 1m): The service's own graceful_shutdown_timeout option.
//! - `margin` (duration, default 15s): Added before escalating.
//! - `fast_timeout` (duration, default 10s): How long to wait after INT.
//! - `kill` (bool, default true): SIGKILL after INT.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `oslo` policy.
pub struct OsloPolicy;

/// Operator settings for `oslo`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The service's own graceful_shutdown_timeout option.
    #[serde(with = "human_duration")]
    pub graceful_shutdown_timeout: Duration,
    /// Added before escalating.
    #[serde(with = "human_duration")]
    pub margin: Duration,
    /// How long to wait after INT.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after INT.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            graceful_shutdown_timeout: Duration::from_secs(60),
            margin: Duration::from_secs(15),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.graceful_shutdown_timeout + s.margin),
        Rung::signal(Signal::INT, s.fast_timeout),
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
        .settings_doc("- `graceful_shutdown_timeout` (duration, default 1m): The service's own graceful_shutdown_timeout option.\n\
- `margin` (duration, default 15s): Added before escalating.\n\
- `fast_timeout` (duration, default 10s): How long to wait after INT.\n\
- `kill` (bool, default true): SIGKILL after INT.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.graceful_shutdown_timeout.is_zero() {
            return Err("`graceful_shutdown_timeout` must be more than 0s".into());
        }
        if settings.margin.is_zero() {
            return Err("`margin` must be more than 0s".into());
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

quiesce_policy_sdk::export!(OsloPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = OsloPolicy::info();
        assert_eq!(info.name, "oslo");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<OsloPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<OsloPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<OsloPolicy>(include_str!(
            "../scenarios/oslo.toml"
        ));
    }
}
