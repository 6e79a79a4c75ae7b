//! `quiesce run --check`'s look at what the command hears (issue 27): the command is started
//! as `quiesce run` would start it (its own process group), given a moment to install its
//! signal handlers, and its masks are read from `/proc/PID/status` ([`crate::prepare::hearing`]); then
//! it is SIGKILLed with its group. The look ends early once every signal the policy's sequence
//! sends is caught (or blocked for a signal thread), so a service that handles them costs
//! milliseconds; one that never does costs the whole window.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_policy_sdk::Signal;

use crate::model::process::{Disposition, Dispositions};

/// How often the command's masks are read while it starts.
const READ_EVERY: Duration = Duration::from_millis(50);

/// What the look found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listened {
    /// The command's program when its masks were last read (a script that `exec`s its service
    /// shows the service).
    pub program: String,
    /// Its masks, last read (`None`: it ended before they could be read).
    pub masks: Option<Dispositions>,
    /// Its exit status, when it ended by itself during the look.
    pub exited: Option<std::process::ExitStatus>,
}

/// Starts `command` (its output to stderr: quiesce's stdout is the check's), reads its masks
/// every [`READ_EVERY`] for at most `within`, until it handles every one of `signals` or until
/// it exits, then SIGKILLs its process group (what it left running too) and reaps it.
pub fn listen(
    command: &[OsString],
    within: Duration,
    signals: &[Signal],
) -> std::io::Result<Listened> {
    let stdout = Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?);
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(stdout)
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let mut listened = Listened {
        program: String::new(),
        masks: None,
        exited: None,
    };
    let looked = look(&mut child, &proc, within, signals, &mut listened);
    // The command's whole group, on every path: what it started in the background and left
    // running when it exited goes too.
    let group = -i32::try_from(pid).unwrap_or(i32::MAX);
    // SAFETY: kill takes any pid and signal; the group is the command's own.
    unsafe { libc::kill(group, libc::SIGKILL) };
    if listened.exited.is_none() {
        child.wait()?;
    }
    looked?;
    Ok(listened)
}

/// Reads the command's masks until `within` has passed, it handles every one of `signals`, or
/// it exits (then `listened.exited` says how).
fn look(
    child: &mut std::process::Child,
    proc: &std::path::Path,
    within: Duration,
    signals: &[Signal],
    listened: &mut Listened,
) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        // A process that has ended (a zombie, until reaped below) has no command line and
        // no handlers left: only a living one's reading counts.
        if let (Some(program), Some(masks)) = (
            program_of(proc),
            std::fs::read_to_string(proc.join("status"))
                .ok()
                .and_then(|status| Dispositions::parse(&status)),
        ) {
            listened.masks = Some(masks);
            listened.program = program;
        }
        if let Some(status) = child.try_wait()? {
            listened.exited = Some(status);
            return Ok(());
        }
        let heard_all = listened.masks.is_some_and(|masks| {
            signals.iter().all(|signal| {
                matches!(
                    masks.of(*signal),
                    Disposition::Caught | Disposition::Blocked
                )
            })
        });
        let now = Instant::now();
        if heard_all || now >= deadline {
            return Ok(());
        }
        std::thread::sleep(READ_EVERY.min(deadline - now));
    }
}

/// The program a process runs, from its command line (`/usr/bin/node server.js`: `node`).
fn program_of(proc: &std::path::Path) -> Option<String> {
    let cmdline = std::fs::read(proc.join("cmdline")).ok()?;
    let first = cmdline.split(|byte| *byte == 0).next()?;
    let program = crate::model::process::program(&String::from_utf8_lossy(first)).to_string();
    (!program.is_empty()).then_some(program)
}
