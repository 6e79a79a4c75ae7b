//! The conservative sequence: what `docker stop` does, with the container's own configuration.
//! The configured stop signal (or SIGTERM), a wait for the exit up to the grace period (the
//! container's StopTimeout, or Docker's 10 s), then SIGKILL and a wait for the exit.
//!
//! It is written once, here: the built-in `default` policy answers with it, and the runner's
//! [`crate::sequence`] falls back to it when a service's policy fails.

use std::time::Duration;

use crate::{Context, Outcome, Signal, Step};

/// Docker's own grace period when a container configures none.
pub const DOCKER_DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long to wait for the exit after SIGKILL before handing back to the runner.
pub const AFTER_KILL_WAIT: Duration = Duration::from_secs(10);

/// The conservative sequence's choices; `None` takes the container's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conservative {
    /// The first signal instead of the container's StopSignal (else SIGTERM).
    pub signal: Option<Signal>,
    /// The grace period instead of the container's StopTimeout (else 10 s).
    pub grace_period: Option<Duration>,
}

impl Conservative {
    /// The next step for `ctx`: signal, wait up to the grace period, SIGKILL, wait, finish.
    pub fn next(&self, ctx: &Context) -> Step {
        if ctx.has_stopped() {
            return Step::finish();
        }
        let Some(last) = ctx.last() else {
            let signal = self
                .signal
                .or(ctx.service.stop_signal)
                .unwrap_or(Signal::TERM);
            return Step::signal(signal);
        };
        match (&last.step, &last.outcome) {
            (Step::Signal(_), Outcome::SignalDelivered) => {
                let grace = self
                    .grace_period
                    .or(ctx.service.stop_timeout)
                    .unwrap_or(DOCKER_DEFAULT_GRACE);
                Step::wait_for_exit(grace.min(ctx.remaining))
            }
            (Step::Kill, _) => Step::wait_for_exit(AFTER_KILL_WAIT.min(ctx.remaining)),
            (Step::Wait { .. }, _) if ctx.history.iter().any(|r| r.step == Step::Kill) => {
                Step::finish()
            }
            _ => Step::kill(),
        }
    }
}
