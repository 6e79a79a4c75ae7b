//! `envoy`: POST /healthcheck/fail and /drain_listeners?graceful on the admin endpoint, wait the drain time, then TERM, then SIGKILL.
//!
//! Envoy: the admin endpoint /healthcheck/fail makes health checks fail (load balancers stop sending traffic) and /drain_listeners?graceful starts draining listeners (connections are closed gracefully over the drain time); TERM then exits.
//!
//! Verified in virtual time only (its scenario file): Debian packages no Envoy server, and
//! images cannot be pulled here, so unlike the other built-ins this policy has no test against
//! a real server. The admin endpoint must be on loopback, or listed in `allow_http`.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `envoy` policy.
pub struct EnvoyPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `envoy`.
    pub struct Settings {
        /// The admin endpoint (loopback, or allowed with allow_http).
        admin_url: String = "http://127.0.0.1:9901".to_string(),
        /// How long connections may drain before TERM (match --drain-time-s).
        drain_time: PositiveDuration = PositiveDuration::secs(15),
        /// How long each admin call may take.
        call_timeout: PositiveDuration = PositiveDuration::secs(5),
        /// How long to wait after TERM.
        fast_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// SIGKILL after TERM.
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let admin = s.admin_url.trim_end_matches('/');
    Ladder::new(vec![
        Rung::Http {
            url: format!("{admin}/healthcheck/fail"),
            timeout: s.call_timeout.get(),
        },
        Rung::Http {
            url: format!("{admin}/drain_listeners?graceful"),
            timeout: s.call_timeout.get(),
        },
        Rung::Sleep(s.drain_time.get()),
        Rung::signal(Signal::TERM, s.fast_timeout.get()),
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
        .settings_doc(&Settings::doc())
    }

    fn validate(settings: &Settings) -> Result<(), String> {
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

quiesce_policy_sdk::policy_tests!(
    EnvoyPolicy,
    "http POST http://127.0.0.1:9901/healthcheck/fail (timeout 5s)",
    include_str!("../scenarios/envoy.toml"),
);
