//! Signal names, the per-signal policy, and the dedicated signal thread.
//!
//! The service runs as PID 1 in a container, where the kernel applies no default signal
//! dispositions, so every catchable signal has to be handled explicitly. We do that the
//! deterministic way: block all catchable signals in the main thread before any other
//! thread exists (every thread inherits the mask), then one thread takes them one at a
//! time with `sigwait` and acts on them in ordinary code, never inside a signal handler.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread;

use crate::service::{Drain, DrainOrigin, Service};

/// Signals that the kernel raises synchronously for faults in the faulting thread. They
/// are left alone: blocking them is undefined, and sending them to the service is not a
/// shutdown scenario the tests model.
const SYNCHRONOUS: [libc::c_int; 6] = [
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGSYS,
];

/// Canonical names (without the `SIG` prefix) of the standard Linux signals 1 to 31.
const NAMES: [(&str, libc::c_int); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A valid Linux signal number (a standard signal or a real-time one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(libc::c_int);

impl Signal {
    /// `SIGTERM`, the default graceful signal.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGINT`, the default immediate signal.
    pub const INT: Signal = Signal(libc::SIGINT);

    /// The signal with this number, if it is one the C library lets programs use.
    pub fn from_number(number: libc::c_int) -> Option<Signal> {
        let standard = (1..=31).contains(&number);
        let realtime = (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&number);
        (standard || realtime).then_some(Signal(number))
    }

    /// Parses `TERM`, `SIGTERM`, `term`, `15`, `RTMIN`, `RTMIN+3`, `SIGRTMAX-1`, ...
    pub fn parse(text: &str) -> Result<Signal, String> {
        let invalid = || format!("unknown signal {text:?}");
        let upper = text.trim().to_ascii_uppercase();
        if let Ok(number) = upper.parse::<libc::c_int>() {
            return Signal::from_number(number).ok_or_else(invalid);
        }
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(&(_, number)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(number));
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let offset = |digits: &str| digits.parse::<libc::c_int>().map_err(|_| invalid());
        let number = match bare {
            "RTMIN" => min,
            "RTMAX" => max,
            _ => match (bare.strip_prefix("RTMIN+"), bare.strip_prefix("RTMAX-")) {
                (Some(digits), _) => min + offset(digits)?,
                (_, Some(digits)) => max - offset(digits)?,
                _ => return Err(invalid()),
            },
        };
        if (min..=max).contains(&number) {
            Ok(Signal(number))
        } else {
            Err(invalid())
        }
    }

    /// The signal number, e.g. 15 for `SIGTERM`.
    pub fn number(self) -> libc::c_int {
        self.0
    }

    /// Whether the service can receive this signal through `sigwait`: everything except
    /// `SIGKILL`, `SIGSTOP` and the synchronous fault signals.
    pub fn is_catchable(self) -> bool {
        self.0 != libc::SIGKILL && self.0 != libc::SIGSTOP && !SYNCHRONOUS.contains(&self.0)
    }

    /// Every catchable signal, in ascending order.
    pub fn all_catchable() -> impl Iterator<Item = Signal> {
        (1..=libc::SIGRTMAX())
            .filter_map(Signal::from_number)
            .filter(|signal| signal.is_catchable())
    }
}

/// Prints the canonical name: `SIGTERM`, `SIGRTMIN`, `SIGRTMIN+3`.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, number)| *number == self.0) {
            return write!(f, "SIG{name}");
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        match self.0 {
            n if n == min => f.write_str("SIGRTMIN"),
            n if n == max => f.write_str("SIGRTMAX"),
            n => write!(f, "SIGRTMIN+{}", n - min),
        }
    }
}

/// What the service does when a signal arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop starting jobs, finish the in-flight ones, exit 0.
    Graceful,
    /// Exit at once with status 128 + signal number, abandoning in-flight jobs.
    Immediate,
    /// Log the signal and carry on.
    Ignore,
}

/// Which signals are graceful and which immediate; every other signal is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalPolicy {
    /// Signals that start a graceful drain.
    pub graceful: Vec<Signal>,
    /// Signals that make the service exit immediately.
    pub immediate: Vec<Signal>,
    /// A graceful signal received while draining exits immediately (oslo.service: a second
    /// SIGTERM means "now").
    pub repeat_is_immediate: bool,
}

impl SignalPolicy {
    /// The action configured for `signal`.
    pub fn action(&self, signal: Signal) -> Action {
        if self.graceful.contains(&signal) {
            Action::Graceful
        } else if self.immediate.contains(&signal) {
            Action::Immediate
        } else {
            Action::Ignore
        }
    }
}

/// The set of every catchable signal, for `pthread_sigmask` and `sigwait`.
fn catchable_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset fully initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for signal in Signal::all_catchable() {
        // SAFETY: `set` is valid and the number is a valid signal.
        unsafe { libc::sigaddset(&mut set, signal.number()) };
    }
    set
}

/// Blocks every catchable signal in the calling thread. Call it from the main thread
/// before spawning any thread, so that every thread inherits the mask and signals stay
/// queued until the signal thread takes them.
pub fn block_catchable() -> io::Result<()> {
    let set = catchable_set();
    // SAFETY: `set` is a valid sigset_t; a null old-mask pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Starts the thread that takes signals one at a time with `sigwait` and applies `policy`.
pub fn spawn_handler(policy: SignalPolicy, service: Arc<Service>, reap: bool) -> io::Result<()> {
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let set = catchable_set();
            loop {
                let mut number: libc::c_int = 0;
                // SAFETY: `set` and `number` are valid for the duration of the call.
                let rc = unsafe { libc::sigwait(&set, &mut number) };
                if rc != 0 {
                    eprintln!(
                        "test-service: sigwait failed: {}",
                        io::Error::from_raw_os_error(rc)
                    );
                    std::process::exit(1);
                }
                let Some(signal) = Signal::from_number(number) else {
                    continue;
                };
                if number == libc::SIGCHLD && reap {
                    reap_children();
                }
                match policy.action(signal) {
                    Action::Graceful => {
                        let drain = service.drain(DrainOrigin::Signal(signal));
                        if matches!(drain, Drain::AlreadyDraining(_)) && policy.repeat_is_immediate
                        {
                            service.abandon(signal);
                        }
                    }
                    Action::Immediate => service.abandon(signal),
                    Action::Ignore => service.ignored(signal),
                }
            }
        })
        .map(drop)
}

/// As PID 1 the service inherits orphaned processes (e.g. from `docker exec`); reap any
/// that have exited so they do not linger as zombies.
fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only writes to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_or_without_prefix_in_any_case() {
        for text in ["TERM", "SIGTERM", "term", "SigTerm", " TERM ", "15"] {
            assert_eq!(Signal::parse(text), Ok(Signal::TERM), "{text}");
        }
        let expected = [
            ("QUIT", libc::SIGQUIT),
            ("INT", libc::SIGINT),
            ("HUP", libc::SIGHUP),
            ("USR1", libc::SIGUSR1),
            ("USR2", libc::SIGUSR2),
            ("WINCH", libc::SIGWINCH),
            ("TSTP", libc::SIGTSTP),
            ("KILL", libc::SIGKILL),
        ];
        for (name, number) in expected {
            assert_eq!(
                Signal::parse(name).map(Signal::number),
                Ok(number),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_unknown_names_and_numbers() {
        for text in [
            "",
            "SIG",
            "TERMINATE",
            "0",
            "32",
            "65",
            "-1",
            "RTMIN+99",
            "RTMAX-x",
        ] {
            assert!(Signal::parse(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn prints_canonical_names() {
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::parse("quit").unwrap().to_string(), "SIGQUIT");
        assert_eq!(Signal::parse("28").unwrap().to_string(), "SIGWINCH");
        assert_eq!(Signal::parse("RTMIN").unwrap().to_string(), "SIGRTMIN");
        assert_eq!(
            Signal::parse("SIGRTMIN+3").unwrap().to_string(),
            "SIGRTMIN+3"
        );
        assert_eq!(Signal::parse("RTMAX").unwrap().to_string(), "SIGRTMAX");
        let rtmax_minus_one = Signal::parse("RTMAX-1").unwrap();
        assert_eq!(rtmax_minus_one.number(), libc::SIGRTMAX() - 1);
    }

    #[test]
    fn kill_stop_and_faults_are_not_catchable() {
        for name in ["KILL", "STOP", "SEGV", "BUS", "FPE", "ILL", "TRAP", "SYS"] {
            assert!(!Signal::parse(name).unwrap().is_catchable(), "{name}");
        }
        let catchable: Vec<_> = Signal::all_catchable().collect();
        assert!(catchable.contains(&Signal::TERM));
        assert!(catchable.contains(&Signal::parse("RTMAX").unwrap()));
        assert!(!catchable.contains(&Signal::parse("KILL").unwrap()));
    }

    #[test]
    fn policy_maps_unlisted_signals_to_ignore() {
        let policy = SignalPolicy {
            graceful: vec![Signal::TERM],
            immediate: vec![Signal::INT],
            repeat_is_immediate: false,
        };
        assert_eq!(policy.action(Signal::TERM), Action::Graceful);
        assert_eq!(policy.action(Signal::INT), Action::Immediate);
        assert_eq!(policy.action(Signal::parse("HUP").unwrap()), Action::Ignore);
    }
}
