//! `nginx`: QUIT (graceful: stop accepting, let workers finish in-flight requests), then TERM (fast), then SIGKILL.
//!
//! nginx: QUIT is a graceful shutdown (the master stops listening, workers finish their requests and exit, then the master exits); TERM and INT are a fast shutdown that drops in-flight requests.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `graceful_timeout` (duration, default 1m): How long workers may take to finish in-flight requests after QUIT.
//! - `fast_timeout` (duration, default 10s): How long to wait after TERM.
//! - `kill` (bool, default true): SIGKILL after the fast shutdown.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `nginx` policy.
pub struct NginxPolicy;

/// Operator settings for `nginx`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long workers may take to finish in-flight requests after QUIT.
    #[serde(with = "human_duration")]
    pub graceful_timeout: Duration,
    /// How long to wait after TERM.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after the fast shutdown.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            graceful_timeout: Duration::from_secs(60),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::QUIT, s.graceful_timeout),
        Rung::signal(Signal::TERM, s.fast_timeout),
    ])
    .with_kill(s.kill)
}

impl Policy for NginxPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "nginx",
            env!("CARGO_PKG_VERSION"),
            "nginx: QUIT (graceful: stop accepting, let workers finish in-flight requests), then TERM (fast), then SIGKILL.",
        )
        .images(["nginx*", "openresty*"])
        .settings_doc("- `graceful_timeout` (duration, default 1m): How long workers may take to finish in-flight requests after QUIT.\n\
- `fast_timeout` (duration, default 10s): How long to wait after TERM.\n\
- `kill` (bool, default true): SIGKILL after the fast shutdown.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.graceful_timeout.is_zero() {
            return Err("`graceful_timeout` must be more than 0s".into());
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

quiesce_policy_sdk::export!(NginxPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = NginxPolicy::info();
        assert_eq!(info.name, "nginx");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<NginxPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<NginxPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGQUIT"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<NginxPolicy>(include_str!(
            "../scenarios/nginx.toml"
        ));
    }
}
