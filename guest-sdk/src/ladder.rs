//! Escalation ladders: most shutdown policies are a sequence of rungs (drain commands or
//! endpoints, a graceful signal and its wait, a faster signal, SIGKILL as the last resort).
//! A [`Ladder`] turns such a list into the next step for any context, replaying the history
//! to find where the sequence stands, so a policy is a few lines of configuration.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::ladder::{Ladder, Rung};
//! use quiesce_policy_sdk::{Context, Signal, Step};
//!
//! let nginx = Ladder::new(vec![
//!     Rung::signal(Signal::QUIT, Duration::from_secs(60)),   // graceful: workers finish requests
//!     Rung::signal(Signal::TERM, Duration::from_secs(10)),   // fast
//! ]);
//! assert_eq!(nginx.next(&Context::default()), Step::signal(Signal::QUIT));
//! ```
//!
//! A [`Rung::Until`] checks something every so often for at most so long: "exec `test -f
//! /tmp/idle` every second, for at most `drain_timeout`", moving on as soon as the check
//! exits 0. The issue-30 drain (touch a drain file, wait for an idle file, then TERM) is:
//!
//! ```
//! # use std::time::Duration;
//! # use quiesce_policy_sdk::ladder::{Ladder, Rung};
//! # use quiesce_policy_sdk::{Context, Signal, Step};
//! # let drain_timeout = Duration::from_secs(30);
//! let drain = Ladder::new(vec![
//!     Rung::exec(["touch", "/tmp/drain"], Duration::from_secs(5)),
//!     Rung::until(["test", "-f", "/tmp/idle"], Duration::from_secs(1), drain_timeout),
//!     Rung::signal(Signal::TERM, Duration::from_secs(10)),
//! ]);
//! # assert_eq!(drain.next(&Context { remaining: Duration::from_secs(60), ..Context::default() }),
//! #     Step::exec(["touch", "/tmp/drain"], Duration::from_secs(5)));
//! ```
//!
//! A [`Rung::Progress`] waits as long as in-flight work keeps finishing: it runs a probe command
//! every `interval`, reads the first number of its output, moves on when it reaches 0, when it
//! has not fallen for `stuck_after`, or after `max`; each of these is decided right after a
//! probe, on a fresh reading (a count that fell during the last pause is seen first). It takes
//! two steps per check: the runner's step allowance (200, plus two a second, at most 10,000)
//! fits 83 minutes of checks once a second.

use std::time::Duration;

use crate::{Context, Outcome, Signal, Step, WaitCondition};

/// One rung.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rung {
    /// Send a signal, then (unless `wait` is zero) wait up to `wait` for the exit. A signal that
    /// cannot be delivered skips its wait.
    Signal {
        /// The signal.
        signal: Signal,
        /// How long to wait for the exit after it.
        wait: Duration,
    },
    /// Run a command in the container (a drain command); its result does not stop the ladder.
    Exec {
        /// The command.
        argv: Vec<String>,
        /// How long it may run.
        timeout: Duration,
    },
    /// POST to an endpoint (a drain or health-fail endpoint).
    Http {
        /// The URL.
        url: String,
        /// How long the call may take.
        timeout: Duration,
    },
    /// Let time pass (e.g. a load balancer's drain time), ending early if the service exits.
    Sleep(Duration),
    /// Wait for the exit.
    WaitExit(Duration),
    /// Run a check every `every` until it exits 0, for at most `at_most`; a check that does
    /// not answer within `every` counts as not passed.
    Until {
        /// The check.
        check: Vec<String>,
        /// How often to run it (the pause between two checks).
        every: Duration,
        /// Move on after this long in any case.
        at_most: Duration,
    },
    /// Wait while in-flight work keeps finishing.
    Progress {
        /// The command that prints the in-flight count.
        probe: Vec<String>,
        /// How often to run it.
        interval: Duration,
        /// Move on when the count has not fallen for this long.
        stuck_after: Duration,
        /// Move on after this long in any case.
        max: Duration,
    },
}

impl Rung {
    /// A signal and its wait.
    pub fn signal(signal: Signal, wait: Duration) -> Rung {
        Rung::Signal { signal, wait }
    }

    /// A drain command.
    pub fn exec<I, S>(argv: I, timeout: Duration) -> Rung
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rung::Exec {
            argv: argv.into_iter().map(Into::into).collect(),
            timeout,
        }
    }
}

impl Rung {
    /// A check run every `every` until it exits 0, for at most `at_most`. A zero `every` is
    /// taken as the runner's poll interval (500 ms): zero pauses would spend the step
    /// allowance at once.
    pub fn until<I, S>(check: I, every: Duration, at_most: Duration) -> Rung
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rung::Until {
            check: check.into_iter().map(Into::into).collect(),
            every: if every.is_zero() {
                crate::rules::POLL_INTERVAL
            } else {
                every
            },
            at_most,
        }
    }
}

/// A ladder of rungs, then SIGKILL (unless `kill` is off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder {
    /// The rungs, in order.
    pub rungs: Vec<Rung>,
    /// SIGKILL after the last rung. When off, the policy keeps waiting for the exit until its
    /// budget ends, and the runner's budget rule decides (SIGKILL, unless the operator set
    /// `on_budget_exhausted = "leave-running"`).
    pub kill: bool,
}

/// Where the history replay stands.
enum Replay {
    /// This step is next.
    Next(Step),
    /// The rung is complete; continue at this history index.
    Done(usize),
}

/// The first whole number in a command's output, e.g. `in-flight: 12` gives 12.
pub fn first_number(output: &str) -> Option<u64> {
    output
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| !part.is_empty())
        .and_then(|digits| digits.parse().ok())
}

impl Ladder {
    /// A ladder ending in SIGKILL.
    pub fn new(rungs: Vec<Rung>) -> Ladder {
        Ladder { rungs, kill: true }
    }

    /// The same ladder, ending without SIGKILL when `kill` is false.
    pub fn with_kill(mut self, kill: bool) -> Ladder {
        self.kill = kill;
        self
    }

    /// The next step for `ctx`.
    pub fn next(&self, ctx: &Context) -> Step {
        if ctx.has_stopped() {
            return Step::finish();
        }
        let mut index = 0;
        for rung in &self.rungs {
            match replay(rung, ctx, index) {
                Replay::Next(step) => return step,
                Replay::Done(next) => index = next,
            }
        }
        match (index == ctx.history.len(), self.kill) {
            (true, true) => Step::kill(),
            (true, false) => Step::wait_for_exit(ctx.remaining),
            (false, _) => Step::finish(),
        }
    }
}

fn bounded(duration: Duration, ctx: &Context) -> Duration {
    duration.min(ctx.remaining)
}

/// Replays one rung from history index `index`.
fn replay(rung: &Rung, ctx: &Context, index: usize) -> Replay {
    let history = &ctx.history;
    let taken = |at: usize| history.get(at);
    match rung {
        Rung::Signal { signal, wait } => {
            let Some(record) = taken(index) else {
                return Replay::Next(Step::signal(*signal));
            };
            if record.outcome != Outcome::SignalDelivered || wait.is_zero() {
                return Replay::Done(index + 1);
            }
            match taken(index + 1) {
                None => Replay::Next(Step::wait_for_exit(bounded(*wait, ctx))),
                Some(_) => Replay::Done(index + 2),
            }
        }
        Rung::Exec { argv, timeout } => match taken(index) {
            None => Replay::Next(Step::exec(argv.clone(), bounded(*timeout, ctx))),
            Some(_) => Replay::Done(index + 1),
        },
        Rung::Http { url, timeout } => match taken(index) {
            None => Replay::Next(Step::http_post(url.clone(), bounded(*timeout, ctx))),
            Some(_) => Replay::Done(index + 1),
        },
        Rung::Sleep(duration) => match taken(index) {
            None => Replay::Next(Step::sleep(bounded(*duration, ctx))),
            Some(_) => Replay::Done(index + 1),
        },
        Rung::WaitExit(duration) => match taken(index) {
            None => Replay::Next(Step::wait_for_exit(bounded(*duration, ctx))),
            Some(_) => Replay::Done(index + 1),
        },
        Rung::Until {
            check,
            every,
            at_most,
        } => replay_polling(ctx, index, check, *every, *at_most, |record, _| {
            matches!(record.outcome, Outcome::ExecCompleted { exit_code: 0, .. })
        }),
        Rung::Progress {
            probe,
            interval,
            stuck_after,
            max,
        } => replay_progress(ctx, index, probe, *interval, *stuck_after, *max),
    }
}

/// The progress rung: (probe, sleep) pairs until the count reaches 0, stops falling for
/// `stuck_after`, or `max` passes.
fn replay_progress(
    ctx: &Context,
    index: usize,
    probe: &[String],
    interval: Duration,
    stuck_after: Duration,
    max: Duration,
) -> Replay {
    let mut lowest: Option<u64> = None;
    let mut last_progress = None;
    replay_polling(ctx, index, probe, interval, max, |record, started| {
        let mut finished = false;
        if let Outcome::ExecCompleted { output_tail, .. } = &record.outcome
            && let Some(count) = first_number(output_tail)
        {
            if lowest.is_none_or(|lowest| count < lowest) {
                lowest = Some(count);
                last_progress = Some(record.ended);
            }
            finished = count == 0;
        }
        finished
            || record
                .ended
                .saturating_sub(last_progress.unwrap_or(started))
                >= stuck_after
    })
}

/// A polling rung: (probe, sleep) pairs from history index `index`, until `settled` says a
/// probe's record (given the rung's start) settles it, or `max` passes. Each is decided right
/// after a probe, on a fresh reading, never at the end of a pause (what the probe reads may
/// have changed meanwhile; the next probe says). A probe may run for at most `interval`.
fn replay_polling(
    ctx: &Context,
    mut index: usize,
    probe: &[String],
    interval: Duration,
    max: Duration,
    mut settled: impl FnMut(&crate::StepRecord, Duration) -> bool,
) -> Replay {
    let history = &ctx.history;
    let started = history
        .get(index)
        .map_or(ctx.elapsed, |record| record.started);
    let mut last_was_probe = false;
    while let Some(record) = history.get(index) {
        match &record.step {
            Step::Exec { argv, .. } if argv == probe => {
                last_was_probe = true;
                if settled(record, started) || record.ended.saturating_sub(started) >= max {
                    return Replay::Done(index + 1);
                }
            }
            Step::Wait {
                until: WaitCondition::Elapsed,
                ..
            } if last_was_probe => last_was_probe = false,
            _ => return Replay::Done(index),
        }
        index += 1;
    }
    if last_was_probe {
        Replay::Next(Step::sleep(bounded(interval, ctx)))
    } else {
        Replay::Next(Step::exec(probe.to_vec(), bounded(interval, ctx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepRecord;

    fn push(ctx: &mut Context, step: Step, outcome: Outcome, seconds: u64) {
        let at = Duration::from_secs(seconds);
        ctx.history.push(StepRecord {
            step,
            outcome,
            started: at,
            ended: at,
        });
        ctx.elapsed = at;
    }

    fn ctx() -> Context {
        Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        }
    }

    #[test]
    fn a_signal_ladder_escalates_rung_by_rung_then_kills() {
        let ladder = Ladder::new(vec![
            Rung::signal(Signal::QUIT, Duration::from_secs(30)),
            Rung::signal(Signal::TERM, Duration::from_secs(10)),
        ]);
        let mut ctx = ctx();
        let mut expected = vec![
            Step::signal(Signal::QUIT),
            Step::wait_for_exit(Duration::from_secs(30)),
            Step::signal(Signal::TERM),
            Step::wait_for_exit(Duration::from_secs(10)),
            Step::kill(),
        ]
        .into_iter();
        for step in expected.by_ref() {
            assert_eq!(ladder.next(&ctx), step);
            let outcome = match step {
                Step::Signal(_) => Outcome::SignalDelivered,
                _ => Outcome::TimedOut,
            };
            push(&mut ctx, step, outcome, 0);
        }
        assert_eq!(ladder.clone().with_kill(false).next(&ctx), Step::finish());
        ctx.history.pop();
        assert_eq!(
            ladder.clone().with_kill(false).next(&ctx),
            Step::wait_for_exit(ctx.remaining)
        );
    }

    #[test]
    fn progress_waits_while_work_falls_and_moves_on_when_stuck() {
        let probe = vec!["inflight".to_string()];
        let ladder = Ladder::new(vec![
            Rung::signal(Signal::TERM, Duration::ZERO),
            Rung::Progress {
                probe: probe.clone(),
                interval: Duration::from_secs(10),
                stuck_after: Duration::from_secs(30),
                max: Duration::from_secs(600),
            },
            Rung::WaitExit(Duration::from_secs(5)),
        ]);
        let mut ctx = ctx();
        assert_eq!(ladder.next(&ctx), Step::signal(Signal::TERM));
        push(
            &mut ctx,
            Step::signal(Signal::TERM),
            Outcome::SignalDelivered,
            0,
        );
        let exec = Step::exec(probe.clone(), Duration::from_secs(10));
        let reading = |count: u64| Outcome::ExecCompleted {
            exit_code: 0,
            output_tail: format!("in-flight: {count}\n"),
        };
        // Falling: 5, 3 -> keep probing.
        for (count, second) in [(5, 0), (3, 10)] {
            assert_eq!(ladder.next(&ctx), exec);
            push(&mut ctx, exec.clone(), reading(count), second);
            assert_eq!(ladder.next(&ctx), Step::sleep(Duration::from_secs(10)));
            push(
                &mut ctx,
                Step::sleep(Duration::from_secs(10)),
                Outcome::TimedOut,
                second + 10,
            );
        }
        // Stuck at 3 since +10 s: 30 s without progress at +40 s, but that is the end of a
        // pause: the count is read again first, and only then the next rung.
        for second in [20, 30] {
            assert_eq!(ladder.next(&ctx), exec);
            push(&mut ctx, exec.clone(), reading(3), second);
            assert_eq!(ladder.next(&ctx), Step::sleep(Duration::from_secs(10)));
            push(
                &mut ctx,
                Step::sleep(Duration::from_secs(10)),
                Outcome::TimedOut,
                second + 10,
            );
        }
        assert_eq!(ladder.next(&ctx), exec);
        let mut fell = ctx.clone();
        push(&mut ctx, exec.clone(), reading(3), 40);
        assert_eq!(
            ladder.next(&ctx),
            Step::wait_for_exit(Duration::from_secs(5))
        );
        // Had it fallen during that pause, the drain would go on.
        push(&mut fell, exec.clone(), reading(2), 40);
        assert_eq!(ladder.next(&fell), Step::sleep(Duration::from_secs(10)));
    }

    #[test]
    fn progress_ends_when_the_count_reaches_zero() {
        let probe = vec!["inflight".to_string()];
        let ladder = Ladder::new(vec![
            Rung::Progress {
                probe: probe.clone(),
                interval: Duration::from_secs(10),
                stuck_after: Duration::from_secs(30),
                max: Duration::from_secs(600),
            },
            Rung::signal(Signal::TERM, Duration::from_secs(10)),
        ]);
        let mut ctx = ctx();
        push(
            &mut ctx,
            Step::exec(probe.clone(), Duration::from_secs(10)),
            Outcome::ExecCompleted {
                exit_code: 0,
                output_tail: "0".into(),
            },
            0,
        );
        assert_eq!(ladder.next(&ctx), Step::signal(Signal::TERM));
    }

    #[test]
    fn until_checks_at_its_interval_and_moves_on_once_the_check_passes_or_time_is_up() {
        let check = vec!["test".to_string(), "-f".into(), "/tmp/idle".into()];
        let second = Duration::from_secs(1);
        let ladder = Ladder::new(vec![
            Rung::until(check.clone(), second, Duration::from_secs(3)),
            Rung::signal(Signal::TERM, Duration::from_secs(10)),
        ]);
        let exec = Step::exec(check.clone(), second);
        let exit = |exit_code: i32| Outcome::ExecCompleted {
            exit_code,
            output_tail: String::new(),
        };
        let mut ctx = ctx();
        // Not idle at +0, +1, +2: a pause after each check.
        for at in 0..3 {
            assert_eq!(ladder.next(&ctx), exec);
            push(&mut ctx, exec.clone(), exit(1), at);
            assert_eq!(ladder.next(&ctx), Step::sleep(second));
            push(&mut ctx, Step::sleep(second), Outcome::TimedOut, at + 1);
        }
        let mut idle = ctx.clone();
        // Still not idle at +3: the 3 s are up, on to TERM.
        push(&mut ctx, exec.clone(), exit(1), 3);
        assert_eq!(ladder.next(&ctx), Step::signal(Signal::TERM));
        // Idle at +3: on to TERM as well; idle at once: no pause at all.
        push(&mut idle, exec.clone(), exit(0), 3);
        assert_eq!(ladder.next(&idle), Step::signal(Signal::TERM));
        let mut at_once = self::ctx();
        push(&mut at_once, exec, exit(0), 0);
        assert_eq!(ladder.next(&at_once), Step::signal(Signal::TERM));
    }

    #[test]
    fn first_numbers_are_read_from_output() {
        assert_eq!(first_number("in-flight: 12 (3 backups)"), Some(12));
        assert_eq!(first_number("0\n"), Some(0));
        assert_eq!(first_number("none"), None);
    }
}
