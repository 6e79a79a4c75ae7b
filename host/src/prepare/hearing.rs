//! What the service can hear (issue 27): for each signal a policy's sequence would send, what
//! the process receiving it does with it, as the kernel says in `/proc/PID/status` (`SigCgt`
//! caught by a handler, `SigIgn` ignored, `SigBlk` blocked; otherwise the default action).
//!
//! The most common reason a container ignores its stop signal is a PID 1 with no handler for
//! it: the kernel does not deliver a signal whose action is the default to a PID namespace's
//! init (only SIGKILL and SIGSTOP are forced), so such a PID 1 neither drains nor dies and the
//! wait runs out. A child target without a handler dies of a terminating signal (that is its
//! own way of stopping), but not of one whose default is to do nothing (WINCH, CHLD, URG,
//! CONT). `plan` and `stop` warn (`signal-not-handled`) naming the process, the signals and
//! what will happen; `plan` shows what the receiver does with each signal step.
//!
//! Where the engine runs on this host the PID 1 look reads `/proc` and has the masks at once.
//! Where it does not (a remote engine, quiesce in a PID namespace of its own: the look went
//! through `docker top`), they are read through the engine, `cat /proc/1/status` exec'd in the
//! container ([`read_through_exec`]), beside the stop since they decide nothing. An image
//! without `cat` says nothing, and nothing is warned about. Under `quiesce run` the receiver is
//! the command itself, which is not a namespace's init (`quiesce run --check`).

use std::time::Duration;

use quiesce_policy_sdk::{Signal, Step};

use crate::model::process::{
    Disposition, Dispositions, Process, Receiver, Role, SignalTarget, pid1_and_children, program,
};
use crate::model::report::ServiceReport;
use crate::model::warning::{Warning, WarningCode};
use crate::runtime::{ExecEnd, Runtime};

/// The process `target` names among a running container's `processes` (PID 1, or PID 1's
/// first child), with its masks when the look read them. `None` under an init (`docker run
/// --init`: the init forwards every signal to the service).
pub fn receiver(processes: &[Process], target: SignalTarget, init: bool) -> Option<Receiver> {
    if init {
        return None;
    }
    let (pid1, children) = pid1_and_children(processes)?;
    let (process, role) = match target {
        SignalTarget::Pid1 => (pid1, Role::Pid1),
        SignalTarget::Child => (*children.first()?, Role::Pid1Child),
    };
    Some(Receiver {
        program: program(&process.args).to_string(),
        role,
        signals: process.signals,
    })
}

/// How long reading one container's masks through the engine may take.
pub const THROUGH_EXEC_LIMIT: Duration = Duration::from_secs(5);

/// The masks of the process `target` names in container `id`, read through the engine: `cat
/// /proc/1/status` exec'd in the container (for `child`, the lowest pid of
/// `/proc/1/task/1/children` first: children forked by PID 1's other threads are not seen).
/// `None` when the image has no `cat`, the container ended, or the engine did not answer
/// within [`THROUGH_EXEC_LIMIT`] in all: nothing is known. The image's `cat` says what it says
/// (it could lie): this only decides a warning.
pub async fn read_through_exec<R: Runtime>(
    runtime: &R,
    id: &str,
    target: SignalTarget,
) -> Option<Dispositions> {
    tokio::time::timeout(THROUGH_EXEC_LIMIT, read_status(runtime, id, target))
        .await
        .ok()
        .flatten()
}

async fn read_status<R: Runtime>(
    runtime: &R,
    id: &str,
    target: SignalTarget,
) -> Option<Dispositions> {
    let read = |path: String| async move {
        let argv = ["cat".to_string(), path];
        match runtime.exec(id, &argv, THROUGH_EXEC_LIMIT).await {
            Ok(ExecEnd::Exited(output)) if output.exit_code == 0 => Some(output.output_tail),
            _ => None,
        }
    };
    let pid = match target {
        SignalTarget::Pid1 => 1,
        SignalTarget::Child => read("/proc/1/task/1/children".to_string())
            .await?
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .min()?,
    };
    Dispositions::parse(&read(format!("/proc/{pid}/status")).await?)
}

/// Signals whose default action is to do nothing.
fn harmless_by_default(signal: Signal) -> bool {
    // SIGCHLD 17, SIGCONT 18, SIGURG 23, SIGWINCH 28.
    matches!(signal.number(), 17 | 18 | 23 | 28)
}

/// The signals a policy's sequence sends in `report` (what can be handled: not SIGKILL or
/// SIGSTOP), in order, each once.
pub fn signals_sent(report: &ServiceReport) -> Vec<Signal> {
    let mut signals = Vec::new();
    for step in &report.steps {
        if let Step::Signal(signal) = step.step
            && !matches!(signal.number(), 9 | 19)
            && !signals.contains(&signal)
        {
            signals.push(signal);
        }
    }
    signals
}

/// A `signal-not-handled` warning when `receiver` will not act on some of `signals`.
pub fn warning(receiver: &Receiver, signals: &[Signal]) -> Option<Warning> {
    let masks = receiver.signals.as_ref()?;
    let unheard: Vec<Signal> = signals
        .iter()
        .copied()
        .filter(|signal| does_nothing_to(receiver, masks, *signal))
        .collect();
    if unheard.is_empty() {
        return None;
    }
    let what: Vec<String> = unheard
        .iter()
        .map(|signal| match masks.of(*signal) {
            Disposition::Ignored => format!("ignores {signal}"),
            _ => format!("has no handler for {signal}"),
        })
        .collect();
    let them = if unheard.len() == 1 { "it" } else { "them" };
    let consequence = if receiver.role == Role::Pid1 {
        format!(
            "as PID 1 it will neither drain nor die of {them} (the kernel does not deliver a default action to a namespace's init), so the wait after {them} runs out; install a handler, make the script `exec` the service, run the container with --init, or choose a policy whose signals it handles"
        )
    } else {
        format!(
            "it will not act on {them}, so the wait after {them} runs out; install a handler or choose a policy whose signals it handles"
        )
    };
    Some(Warning::new(
        WarningCode::SignalNotHandled,
        format!(
            "{} {} (its /proc status says so): {consequence}",
            receiver.describe(),
            join(&what)
        ),
    ))
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// True when `signal` changes nothing for `receiver` with `masks`: ignored, or left to a
/// default action that, for it, does nothing.
fn does_nothing_to(receiver: &Receiver, masks: &Dispositions, signal: Signal) -> bool {
    match masks.of(signal) {
        Disposition::Caught | Disposition::Blocked => false,
        Disposition::Ignored => true,
        Disposition::Default => receiver.role == Role::Pid1 || harmless_by_default(signal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE_AS_PID1: &str = "Name:\tnode\nSigQ:\t0/63379\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000188000602\n";

    #[test]
    fn the_kernels_masks_say_what_happens_to_each_signal() {
        let masks = Dispositions::parse(NODE_AS_PID1).unwrap();
        // SigCgt 0x188000602: INT (bit 1), USR1 and SEGV (bits 9, 10)...; TERM (bit 14) not.
        assert_eq!(masks.of(Signal::INT), Disposition::Caught);
        assert_eq!(masks.of(Signal::TERM), Disposition::Default);
        // SigIgn 0x1000: bit 12, SIGPIPE (13).
        assert_eq!(
            masks.of(Signal::from_number(13).unwrap()),
            Disposition::Ignored
        );
        assert_eq!(Dispositions::parse("Name:\tx\n"), None);
    }

    #[test]
    fn a_pid1_without_a_handler_is_warned_about_and_one_that_catches_is_not() {
        let receiver = |caught: u64, pid1: bool| Receiver {
            program: "node".into(),
            role: if pid1 { Role::Pid1 } else { Role::Pid1Child },
            signals: Some(Dispositions {
                caught,
                ..Dispositions::default()
            }),
        };
        let term_bit = 1 << 14;
        let deaf = warning(&receiver(0, true), &[Signal::TERM]).unwrap();
        assert_eq!(deaf.code, "signal-not-handled");
        assert!(
            deaf.message
                .starts_with("PID 1 (`node`) has no handler for SIGTERM"),
            "{}",
            deaf.message
        );
        assert_eq!(warning(&receiver(term_bit, true), &[Signal::TERM]), None);
        // Blocked without a handler: read from a signalfd or by sigwait.
        let sigwait = Receiver {
            signals: Some(Dispositions {
                blocked: term_bit,
                ..Dispositions::default()
            }),
            ..receiver(0, true)
        };
        assert_eq!(warning(&sigwait, &[Signal::TERM]), None);
        // A child dies of TERM's default action (its way of stopping), not of WINCH's.
        assert_eq!(warning(&receiver(0, false), &[Signal::TERM]), None);
        assert!(warning(&receiver(0, false), &[Signal::WINCH]).is_some());
        // Under `quiesce run` the command is not an init: TERM's default ends it.
        let command = Receiver {
            role: Role::Command,
            ..receiver(0, true)
        };
        assert_eq!(warning(&command, &[Signal::TERM]), None);
        // Masks not read (a remote engine, an image without `cat`): nothing is said.
        let unread = Receiver {
            signals: None,
            ..receiver(0, true)
        };
        assert_eq!(warning(&unread, &[Signal::TERM]), None);
        let both = warning(&receiver(0, true), &[Signal::QUIT, Signal::TERM]).unwrap();
        assert!(
            both.message
                .contains("has no handler for SIGQUIT and has no handler for SIGTERM"),
            "{}",
            both.message
        );
    }
}
