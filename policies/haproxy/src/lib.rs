//! `haproxy`: USR1 (soft-stop: stop listening, exit when the last connection closes), then TERM, then SIGKILL.
//!
//! HAProxy: USR1 is a soft-stop (listeners close, the process exits when no connection remains, or at hard-stop-after); TERM is a hard stop that closes every connection.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `graceful_timeout` (duration, default 1m): How long existing connections may last after USR1 (match hard-stop-after).
//! - `fast_timeout` (duration, default 10s): How long to wait after TERM.
//! - `kill` (bool, default true): SIGKILL after TERM.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `haproxy` policy.
pub struct HaproxyPolicy;

/// Operator settings for `haproxy`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long existing connections may last after USR1 (match hard-stop-after).
    #[serde(with = "human_duration")]
    pub graceful_timeout: Duration,
    /// How long to wait after TERM.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after TERM.
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
        Rung::signal(Signal::USR1, s.graceful_timeout),
        Rung::signal(Signal::TERM, s.fast_timeout),
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
        .settings_doc("- `graceful_timeout` (duration, default 1m): How long existing connections may last after USR1 (match hard-stop-after).\n\
- `fast_timeout` (duration, default 10s): How long to wait after TERM.\n\
- `kill` (bool, default true): SIGKILL after TERM.")
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

quiesce_policy_sdk::export!(HaproxyPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = HaproxyPolicy::info();
        assert_eq!(info.name, "haproxy");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<HaproxyPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<HaproxyPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGUSR1"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<HaproxyPolicy>(include_str!(
            "../scenarios/haproxy.toml"
        ));
    }
}
