//! POSIX signals by number, with the names Docker accepts.
//!
//! Policies name signals with the constants here (`Signal::TERM`, `Signal::QUIT`...); the host
//! parses the configured `StopSignal` of a container with [`Signal::from_str`], which accepts
//! what `docker kill --signal` accepts: `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`.

use std::fmt;
use std::str::FromStr;

/// A Linux signal, by number (1 to 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(u8);

/// Names of the standard signals 1..=31 on Linux (x86_64, aarch64), without the `SIG` prefix.
const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The first real-time signal number as Docker (and glibc userspace) sees it.
const RTMIN: u8 = 34;
/// The last real-time signal number.
const RTMAX: u8 = 64;

impl Signal {
    /// Hang-up: many daemons reload their configuration.
    pub const HUP: Signal = Signal(1);
    /// Interrupt: a fast shutdown for PostgreSQL, gunicorn, oslo.service.
    pub const INT: Signal = Signal(2);
    /// Quit: graceful for nginx, cold shutdown for Celery, immediate for PostgreSQL.
    pub const QUIT: Signal = Signal(3);
    /// Kill: cannot be caught; loses everything in flight.
    pub const KILL: Signal = Signal(9);
    /// User signal 1: HAProxy's soft-stop.
    pub const USR1: Signal = Signal(10);
    /// User signal 2.
    pub const USR2: Signal = Signal(12);
    /// Terminate: the default stop signal.
    pub const TERM: Signal = Signal(15);
    /// Continue a stopped process.
    pub const CONT: Signal = Signal(18);
    /// Terminal stop: Sidekiq's "quiet" (stop fetching new jobs).
    pub const TSTP: Signal = Signal(20);
    /// Window change: Apache httpd's graceful-stop.
    pub const WINCH: Signal = Signal(28);

    /// The signal with this number, if it is a valid Linux signal (1..=31 or 34..=64).
    pub fn from_number(number: u8) -> Option<Signal> {
        let valid = (1..=NAMES.len() as u8).contains(&number) || (RTMIN..=RTMAX).contains(&number);
        valid.then_some(Signal(number))
    }

    /// The signal's number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The canonical name with its `SIG` prefix, as Docker accepts it: `SIGTERM`, `SIGRTMIN+3`.
    pub fn name(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n @ 1..=31 => write!(f, "SIG{}", NAMES[usize::from(n) - 1]),
            RTMIN => f.write_str("SIGRTMIN"),
            RTMAX => f.write_str("SIGRTMAX"),
            n => write!(f, "SIGRTMIN+{}", n - RTMIN),
        }
    }
}

/// Why a signal name was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signal {:?}: use a name such as SIGTERM, TERM or SIGRTMIN+3, or a number 1-31 or 34-64",
            self.0
        )
    }
}

impl std::error::Error for UnknownSignal {}

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(text: &str) -> Result<Signal, UnknownSignal> {
        let unknown = || UnknownSignal(text.to_string());
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<u8>() {
            return Signal::from_number(number).ok_or_else(unknown);
        }
        let upper = trimmed.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(index) = NAMES.iter().position(|name| *name == bare) {
            return Ok(Signal(index as u8 + 1));
        }
        let realtime = match bare {
            "RTMIN" => Some(RTMIN),
            "RTMAX" => Some(RTMAX),
            _ => None
                .or_else(|| {
                    let offset: u8 = bare.strip_prefix("RTMIN+")?.parse().ok()?;
                    RTMIN.checked_add(offset)
                })
                .or_else(|| {
                    let offset: u8 = bare.strip_prefix("RTMAX-")?.parse().ok()?;
                    RTMAX.checked_sub(offset)
                }),
        };
        realtime
            .and_then(Signal::from_number)
            .filter(|signal| signal.0 >= RTMIN)
            .ok_or_else(unknown)
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Signal, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_docker_accepts() {
        for spelling in ["SIGTERM", "TERM", "term", "15", " SIGTERM "] {
            assert_eq!(spelling.parse::<Signal>(), Ok(Signal::TERM), "{spelling}");
        }
        assert_eq!("SIGWINCH".parse::<Signal>(), Ok(Signal::WINCH));
        assert_eq!("SIGRTMIN+3".parse::<Signal>().unwrap().number(), 37);
        assert_eq!("RTMAX-1".parse::<Signal>().unwrap().number(), 63);
    }

    #[test]
    fn names_round_trip() {
        for number in (1..=31).chain(34..=64) {
            let signal = Signal::from_number(number).unwrap();
            assert_eq!(signal.name().parse::<Signal>(), Ok(signal), "{signal}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_signal() {
        for bad in [
            "",
            "SIGFOO",
            "0",
            "32",
            "65",
            "300",
            "SIGRTMIN+40",
            "RTMAX-40",
            "-1",
        ] {
            assert!(bad.parse::<Signal>().is_err(), "{bad:?} was accepted");
        }
    }
}
