//! `celery`: TERM (warm shutdown: finish running tasks), then QUIT (cold), then SIGKILL.
//!
//! Celery workers: TERM is a warm shutdown (stop consuming, finish the tasks being executed, then exit); QUIT is a cold shutdown (exit at once, tasks not acknowledged go back to the broker if acks_late).
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `warm_timeout` (duration, default 5m): How long running tasks may take to finish after TERM.
//! - `cold_timeout` (duration, default 10s): How long to wait after QUIT.
//! - `kill` (bool, default true): SIGKILL after QUIT.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `celery` policy.
pub struct CeleryPolicy;

/// Operator settings for `celery`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long running tasks may take to finish after TERM.
    #[serde(with = "human_duration")]
    pub warm_timeout: Duration,
    /// How long to wait after QUIT.
    #[serde(with = "human_duration")]
    pub cold_timeout: Duration,
    /// SIGKILL after QUIT.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            warm_timeout: Duration::from_secs(300),
            cold_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.warm_timeout),
        Rung::signal(Signal::QUIT, s.cold_timeout),
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
        .settings_doc("- `warm_timeout` (duration, default 5m): How long running tasks may take to finish after TERM.\n\
- `cold_timeout` (duration, default 10s): How long to wait after QUIT.\n\
- `kill` (bool, default true): SIGKILL after QUIT.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.warm_timeout.is_zero() {
            return Err("`warm_timeout` must be more than 0s".into());
        }
        if settings.cold_timeout.is_zero() {
            return Err("`cold_timeout` must be more than 0s".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(CeleryPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = CeleryPolicy::info();
        assert_eq!(info.name, "celery");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<CeleryPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<CeleryPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<CeleryPolicy>(include_str!(
            "../scenarios/celery.toml"
        ));
    }
}
