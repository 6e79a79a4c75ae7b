//! A process seen in a container, and what it does with each signal.
//!
//! Processes come from the engine's process list (`docker top`) or from this host's `/proc`
//! (`platform::procfs`); their signal masks from `/proc/PID/status`, read here or through the
//! engine. What a policy's signals meet in them is judged in `prepare::hearing`.

use quiesce_policy_sdk::Signal;

/// Where a policy's signals go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalTarget {
    /// The container's PID 1, as `docker kill` does.
    #[default]
    Pid1,
    /// PID 1's children: the service behind a shell or script that passes no signal on
    /// (`CMD apache2ctl -D FOREGROUND`).
    Child,
}

impl SignalTarget {
    /// How a label or a rule writes it: `pid1` or `child`.
    pub fn parse(text: &str) -> Option<SignalTarget> {
        match text {
            "pid1" => Some(SignalTarget::Pid1),
            "child" => Some(SignalTarget::Child),
            _ => None,
        }
    }
}

/// A process of a container, as the engine lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its pid (the host's for Docker, the container's for Podman).
    pub pid: u64,
    /// Its parent's pid, in the same namespace.
    pub ppid: u64,
    /// Its command line.
    pub args: String,
    /// What it does with each signal, where `/proc` was read (not through `docker top`).
    pub signals: Option<crate::model::process::Dispositions>,
}

/// The container's PID 1 and its children, from a process list: PID 1 is the process whose
/// parent is not in the list (processes started by `docker exec` have such parents too; PID 1
/// is the oldest, the lowest pid).
pub fn pid1_and_children(processes: &[Process]) -> Option<(&Process, Vec<&Process>)> {
    let listed = |pid: u64| processes.iter().any(|process| process.pid == pid);
    let pid1 = processes
        .iter()
        .filter(|process| !listed(process.ppid))
        .min_by_key(|process| process.pid)?;
    let children = processes
        .iter()
        .filter(|process| process.ppid == pid1.pid)
        .collect();
    Some((pid1, children))
}

/// One process's signal masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dispositions {
    /// Signals with a handler (bit N-1 for signal N).
    pub caught: u64,
    /// Signals set to be ignored.
    pub ignored: u64,
    /// Signals blocked (held pending).
    pub blocked: u64,
}

/// What a process does with one signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A handler runs.
    Caught,
    /// It is ignored.
    Ignored,
    /// Blocked without a handler: a program that takes its signals from a `signalfd` or
    /// `sigwait` (systemd, services with a signal thread) blocks them in every thread and
    /// reads them when they come; it hears them.
    Blocked,
    /// The default action.
    Default,
}

impl Disposition {
    /// `caught`, `ignored`, `blocked`, `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Caught => "caught",
            Disposition::Ignored => "ignored",
            Disposition::Blocked => "blocked, for a signal thread",
            Disposition::Default => "default",
        }
    }
}

impl Dispositions {
    /// The masks of a `/proc/PID/status` text, if it has them.
    pub fn parse(status: &str) -> Option<Dispositions> {
        let mask = |name: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?;
                u64::from_str_radix(value.trim(), 16).ok()
            })
        };
        Some(Dispositions {
            caught: mask("SigCgt")?,
            ignored: mask("SigIgn")?,
            blocked: mask("SigBlk")?,
        })
    }

    /// What the process does with `signal`.
    pub fn of(&self, signal: Signal) -> Disposition {
        let bit = 1u64 << (u32::from(signal.number()).saturating_sub(1) % 64);
        if self.ignored & bit != 0 {
            Disposition::Ignored
        } else if self.caught & bit != 0 {
            Disposition::Caught
        } else if self.blocked & bit != 0 {
            Disposition::Blocked
        } else {
            Disposition::Default
        }
    }
}

/// Which process a service's signals reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The container's PID 1, a namespace's init: a default action is not delivered to it.
    Pid1,
    /// One of PID 1's children (signal target `child`).
    Pid1Child,
    /// The command `quiesce run` started (quiesce is PID 1).
    Command,
}

/// The process a service's signals reach, and what it does with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    /// Its program (`node`, `sh`...).
    pub program: String,
    /// Which process it is.
    pub role: Role,
    /// Its masks, once read (`None`: not read, or not readable).
    pub signals: Option<Dispositions>,
}

impl Receiver {
    /// `PID 1`, `PID 1's child` or `the command`.
    pub fn who(&self) -> &'static str {
        match self.role {
            Role::Pid1 => "PID 1",
            Role::Pid1Child => "PID 1's child",
            Role::Command => "the command",
        }
    }

    /// `PID 1 (`node`)` or `PID 1's child (`worker`)`.
    pub fn describe(&self) -> String {
        format!("{} (`{}`)", self.who(), self.program)
    }
}

/// The program name of a command line: `/bin/sh /usr/sbin/apache2ctl` gives `sh`.
pub fn program(command: &str) -> &str {
    let first = command.split_whitespace().next().unwrap_or("");
    first.rsplit('/').next().unwrap_or(first)
}
