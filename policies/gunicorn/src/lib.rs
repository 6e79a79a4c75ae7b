//! `gunicorn`: TERM (graceful: workers finish requests within graceful_timeout), then INT (quick), then SIGKILL.
//!
//! gunicorn: TERM is a graceful shutdown (workers get graceful_timeout, 30 s by default, to finish their requests); INT and QUIT are a quick shutdown.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `graceful_timeout` (duration, default 30s): gunicorn's own --graceful-timeout.
//! - `margin` (duration, default 5s): Added to graceful_timeout before escalating.
//! - `fast_timeout` (duration, default 10s): How long to wait after INT.
//! - `kill` (bool, default true): SIGKILL after INT.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `gunicorn` policy.
pub struct GunicornPolicy;

/// Operator settings for `gunicorn`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gunicorn's own --graceful-timeout.
    #[serde(with = "human_duration")]
    pub graceful_timeout: Duration,
    /// Added to graceful_timeout before escalating.
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
            graceful_timeout: Duration::from_secs(30),
            margin: Duration::from_secs(5),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.graceful_timeout + s.margin),
        Rung::signal(Signal::INT, s.fast_timeout),
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
        .settings_doc("- `graceful_timeout` (duration, default 30s): gunicorn's own --graceful-timeout.\n\
- `margin` (duration, default 5s): Added to graceful_timeout before escalating.\n\
- `fast_timeout` (duration, default 10s): How long to wait after INT.\n\
- `kill` (bool, default true): SIGKILL after INT.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.graceful_timeout.is_zero() {
            return Err("`graceful_timeout` must be more than 0s".into());
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

quiesce_policy_sdk::export!(GunicornPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = GunicornPolicy::info();
        assert_eq!(info.name, "gunicorn");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<GunicornPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<GunicornPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<GunicornPolicy>(include_str!(
            "../scenarios/gunicorn.toml"
        ));
    }
}
