//! `default`: the conservative policy, used when no other policy applies.
//!
//! It does what `docker stop` does, with the container's own configuration: the configured
//! stop signal (or SIGTERM), a wait for the exit up to the grace period (the container's
//! StopTimeout, or Docker's 10 s default), then SIGKILL. Settings can override the signal and
//! the grace period. It never waits past the budget the runner gives it.

use quiesce_policy_sdk::conservative::Conservative;
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The default policy.
pub struct DefaultPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `default`.
    pub struct Settings {
        /// The signal to send first, e.g. `SIGQUIT`, instead of the container's StopSignal
        /// (else SIGTERM).
        signal: Option<Signal> = None,
        /// How long to wait for the exit before SIGKILL, e.g. `30s`, instead of the
        /// container's StopTimeout (else Docker's 10s).
        grace_period: Option<PositiveDuration> = None,
    }
}

impl Policy for DefaultPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "default",
            env!("CARGO_PKG_VERSION"),
            "Conservative stop: the configured stop signal (or SIGTERM), wait up to the grace period, then SIGKILL.",
        )
        .settings_doc(&Settings::doc())
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.signal == Some(Signal::KILL) {
            return Err("`signal` must not be SIGKILL: this policy sends SIGKILL only after the grace period; pick the service's graceful signal".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        let conservative = Conservative {
            signal: settings.signal,
            grace_period: settings.grace_period.map(PositiveDuration::get),
        };
        Ok(conservative.next(ctx))
    }
}

quiesce_policy_sdk::export!(DefaultPolicy);

quiesce_policy_sdk::policy_tests!(
    DefaultPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/default.toml"),
);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use quiesce_policy_sdk::conservative::AFTER_KILL_WAIT;
    use quiesce_policy_sdk::{Outcome, StepRecord, decide, validate_settings};

    fn ctx(settings: &str) -> Context {
        Context {
            settings: settings.into(),
            remaining: Duration::from_secs(600),
            ..Context::default()
        }
    }

    fn record(ctx: &mut Context, step: Step, outcome: Outcome) {
        ctx.history.push(StepRecord {
            step,
            outcome,
            started: ctx.elapsed,
            ended: ctx.elapsed,
        });
    }

    #[test]
    fn sends_the_configured_stop_signal_then_waits_its_stop_timeout_then_kills() {
        let mut ctx = ctx("");
        ctx.service.stop_signal = Some(Signal::QUIT);
        ctx.service.stop_timeout = Some(Duration::from_secs(42));
        let first = decide::<DefaultPolicy>(&ctx).unwrap();
        assert_eq!(first, Step::signal(Signal::QUIT));
        record(&mut ctx, first, Outcome::SignalDelivered);
        let second = decide::<DefaultPolicy>(&ctx).unwrap();
        assert_eq!(second, Step::wait_for_exit(Duration::from_secs(42)));
        record(&mut ctx, second, Outcome::TimedOut);
        assert_eq!(decide::<DefaultPolicy>(&ctx).unwrap(), Step::kill());
    }

    #[test]
    fn without_configuration_uses_sigterm_and_dockers_ten_seconds() {
        let mut ctx = ctx("{}");
        assert_eq!(
            decide::<DefaultPolicy>(&ctx).unwrap(),
            Step::signal(Signal::TERM)
        );
        record(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::SignalDelivered,
        );
        assert_eq!(
            decide::<DefaultPolicy>(&ctx).unwrap(),
            Step::wait_for_exit(Duration::from_secs(10))
        );
    }

    #[test]
    fn settings_override_signal_and_grace_period() {
        let mut ctx = ctx(r#"{"signal": "SIGINT", "grace_period": "2m"}"#);
        ctx.service.stop_signal = Some(Signal::QUIT);
        assert_eq!(
            decide::<DefaultPolicy>(&ctx).unwrap(),
            Step::signal(Signal::INT)
        );
        record(
            &mut ctx,
            Step::signal(Signal::INT),
            Outcome::SignalDelivered,
        );
        assert_eq!(
            decide::<DefaultPolicy>(&ctx).unwrap(),
            Step::wait_for_exit(Duration::from_secs(120))
        );
    }

    #[test]
    fn never_waits_past_the_remaining_budget() {
        let mut ctx = ctx(r#"{"grace_period": "1h"}"#);
        ctx.remaining = Duration::from_secs(5);
        record(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::SignalDelivered,
        );
        assert_eq!(
            decide::<DefaultPolicy>(&ctx).unwrap(),
            Step::wait_for_exit(Duration::from_secs(5))
        );
    }

    #[test]
    fn finishes_as_soon_as_the_container_has_stopped() {
        let mut ctx = ctx("");
        record(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::SignalDelivered,
        );
        ctx.state.running = false;
        ctx.state.exit_code = Some(0);
        assert_eq!(decide::<DefaultPolicy>(&ctx).unwrap(), Step::finish());
    }

    #[test]
    fn a_signal_that_could_not_be_delivered_escalates() {
        let mut ctx = ctx("");
        record(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::Failed("no such process".into()),
        );
        assert_eq!(decide::<DefaultPolicy>(&ctx).unwrap(), Step::kill());
    }

    #[test]
    fn after_sigkill_waits_for_the_exit_then_finishes() {
        let mut ctx = ctx("");
        record(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::SignalDelivered,
        );
        record(
            &mut ctx,
            Step::wait_for_exit(Duration::from_secs(10)),
            Outcome::TimedOut,
        );
        record(&mut ctx, Step::kill(), Outcome::Killed);
        let wait = decide::<DefaultPolicy>(&ctx).unwrap();
        assert_eq!(wait, Step::wait_for_exit(AFTER_KILL_WAIT));
        record(&mut ctx, wait, Outcome::TimedOut);
        assert_eq!(decide::<DefaultPolicy>(&ctx).unwrap(), Step::finish());
    }

    #[test]
    fn invalid_settings_are_rejected_with_the_reason() {
        let error = validate_settings::<DefaultPolicy>(r#"{"signal": "SIGKILL"}"#).unwrap_err();
        assert!(error.contains("SIGKILL"), "{error}");
        let error = validate_settings::<DefaultPolicy>(r#"{"grace": "10s"}"#).unwrap_err();
        assert!(error.contains("unknown field `grace`"), "{error}");
        let error = validate_settings::<DefaultPolicy>(r#"{"grace_period": "soon"}"#).unwrap_err();
        assert!(error.contains("invalid duration"), "{error}");
        let error = validate_settings::<DefaultPolicy>(r#"{"signal": "SIGNOPE"}"#).unwrap_err();
        assert!(error.contains("unknown signal"), "{error}");
        assert_eq!(
            validate_settings::<DefaultPolicy>(r#"{"grace_period": 30}"#),
            Ok(())
        );
    }
}
