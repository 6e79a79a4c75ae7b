//! `envoy`: POST /healthcheck/fail and /drain_listeners?graceful on the admin endpoint, wait the drain time, then TERM, then SIGKILL.
//!
//! Envoy: the admin endpoint /healthcheck/fail makes health checks fail (load balancers stop sending traffic) and /drain_listeners?graceful starts draining listeners (connections are closed gracefully over the drain time); TERM then exits.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `admin_url` (string, default `http://127.0.0.1:9901`): The admin endpoint (loopback, or allowed with allow_http).
//! - `drain_time` (duration, default 15s): How long connections may drain before TERM (match --drain-time-s).
//! - `call_timeout` (duration, default 5s): How long each admin call may take.
//! - `fast_timeout` (duration, default 10s): How long to wait after TERM.
//! - `kill` (bool, default true): SIGKILL after TERM.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `envoy` policy.
pub struct EnvoyPolicy;

/// Operator settings for `envoy`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The admin endpoint (loopback, or allowed with allow_http).
    pub admin_url: String,
    /// How long connections may drain before TERM (match --drain-time-s).
    #[serde(with = "human_duration")]
    pub drain_time: Duration,
    /// How long each admin call may take.
    #[serde(with = "human_duration")]
    pub call_timeout: Duration,
    /// How long to wait after TERM.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after TERM.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            admin_url: "http://127.0.0.1:9901".to_string(),
            drain_time: Duration::from_secs(15),
            call_timeout: Duration::from_secs(5),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let admin = s.admin_url.trim_end_matches('/');
    Ladder::new(vec![
        Rung::Http {
            url: format!("{admin}/healthcheck/fail"),
            timeout: s.call_timeout,
        },
        Rung::Http {
            url: format!("{admin}/drain_listeners?graceful"),
            timeout: s.call_timeout,
        },
        Rung::Sleep(s.drain_time),
        Rung::signal(Signal::TERM, s.fast_timeout),
    ])
    .with_kill(s.kill)
}

impl Policy for EnvoyPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "envoy",
            env!("CARGO_PKG_VERSION"),
            "Envoy: POST /healthcheck/fail and /drain_listeners?graceful on the admin endpoint, wait the drain time, then TERM, then SIGKILL.",
        )
        .images(["envoyproxy/envoy*", "envoy*"])
        .settings_doc("- `admin_url` (string, default `http://127.0.0.1:9901`): The admin endpoint (loopback, or allowed with allow_http).\n\
- `drain_time` (duration, default 15s): How long connections may drain before TERM (match --drain-time-s).\n\
- `call_timeout` (duration, default 5s): How long each admin call may take.\n\
- `fast_timeout` (duration, default 10s): How long to wait after TERM.\n\
- `kill` (bool, default true): SIGKILL after TERM.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.drain_time.is_zero() {
            return Err("`drain_time` must be more than 0s".into());
        }
        if settings.call_timeout.is_zero() {
            return Err("`call_timeout` must be more than 0s".into());
        }
        if settings.fast_timeout.is_zero() {
            return Err("`fast_timeout` must be more than 0s".into());
        }
        if !settings.admin_url.starts_with("http://") {
            return Err(format!(
                "`admin_url` must be an http:// URL, got {:?}",
                settings.admin_url
            ));
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(EnvoyPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = EnvoyPolicy::info();
        assert_eq!(info.name, "envoy");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<EnvoyPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<EnvoyPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(
            step.starts_with("http POST http://127.0.0.1:9901/healthcheck/fail (timeout 5s)"),
            "{step}"
        );
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<EnvoyPolicy>(include_str!(
            "../scenarios/envoy.toml"
        ));
    }
}
