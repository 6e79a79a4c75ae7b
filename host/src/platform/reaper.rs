//! A container's PID 1 duties, for `quiesce run`: receive every signal on one thread, pass on
//! the ones that are not stop signals, reap every child (orphans included), and start
//! processes in their own process group with a clean signal mask.
//!
//! Signals: [`block_signals`] blocks them in the whole process before any thread starts (so
//! every thread inherits the mask), and [`SignalThread`] takes them with `sigwaitinfo`, as tini
//! does. A blocked signal is never dropped, even for a namespace's PID 1 whose signals with a
//! default action the kernel would otherwise ignore. Faults (SEGV, BUS, FPE, ILL, ABRT, TRAP,
//! SYS) and the terminal's TTIN/TTOU stay unblocked.
//!
//! Reaping: one `waitpid(-1)` loop on SIGCHLD. A process started through [`Reaper::spawn`]
//! gets its exit status through a channel; any other child (an orphan reparented to PID 1, or
//! to quiesce as a child subreaper when it is not PID 1) is reaped and forgotten.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

use quiesce_policy_sdk::Signal;
use tokio::sync::{mpsc, oneshot};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ExitStatus {
    /// The status as a shell reports it: the code, or 128 + N after signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal(signal) => 128 + signal,
        }
    }

    fn from_wait(status: libc::c_int) -> Option<ExitStatus> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus::Signal(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

/// The signals left alone: faults must reach their default action, and TTIN/TTOU are the
/// terminal's business.
const UNBLOCKED: [libc::c_int; 9] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// The set of signals quiesce takes on its signal thread.
fn handled_set() -> libc::sigset_t {
    // SAFETY: sigfillset and sigdelset write into a sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for signal in UNBLOCKED {
            libc::sigdelset(&mut set, signal);
        }
        set
    }
}

/// Blocks every handled signal in the calling thread; call it before any other thread starts,
/// so that all of them inherit the mask and the signal thread alone receives the signals.
pub fn block_signals() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: pthread_sigmask reads a valid set; the old mask is not wanted.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

/// Makes quiesce the reaper of its descendants' orphans when it is not PID 1 (as PID 1 it is
/// already).
pub fn become_subreaper() {
    if std::process::id() != 1 {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }
}

/// Exit statuses kept for children reaped before anyone asked for them.
const UNCLAIMED_KEPT: usize = 256;

#[derive(Default)]
struct ReaperState {
    waiting: HashMap<i32, oneshot::Sender<ExitStatus>>,
    unclaimed: VecDeque<(i32, ExitStatus)>,
}

/// Starts processes and hands each its exit status; reaps every other child.
#[derive(Default)]
pub struct Reaper {
    state: Mutex<ReaperState>,
}

impl Reaper {
    /// Starts `command` in a process group of its own, with every signal unblocked and the
    /// default SIGPIPE; returns its pid and its exit status to come. When `foreground` and
    /// stdin is a terminal, its group becomes the terminal's foreground group.
    pub fn spawn(
        &self,
        command: &mut Command,
        foreground: bool,
    ) -> io::Result<(i32, oneshot::Receiver<ExitStatus>)> {
        // SAFETY: between fork and exec the closure only makes async-signal-safe calls.
        unsafe {
            command.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                if foreground && libc::isatty(0) == 1 {
                    libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                    libc::tcsetpgrp(0, libc::getpid());
                    libc::signal(libc::SIGTTOU, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        // Registered before the reaper can report it: the lock is held across the spawn.
        let mut state = self.state.lock().expect("the reaper's lock");
        let child = command.spawn()?;
        let pid = i32::try_from(child.id()).expect("a pid fits an i32");
        // The status is collected by `reap`, never by `Child::wait`.
        drop(child);
        Ok((pid, Self::register(&mut state, pid)))
    }

    /// The exit status to come of `pid`, a child of this process already running (an orphan
    /// it adopted included), or just reaped.
    pub fn watch(&self, pid: i32) -> oneshot::Receiver<ExitStatus> {
        Self::register(&mut self.state.lock().expect("the reaper's lock"), pid)
    }

    fn register(state: &mut ReaperState, pid: i32) -> oneshot::Receiver<ExitStatus> {
        let (sender, receiver) = oneshot::channel();
        match state.unclaimed.iter().position(|(seen, _)| *seen == pid) {
            Some(index) => {
                let (_, status) = state.unclaimed.remove(index).expect("an index in range");
                let _ = sender.send(status);
            }
            None => {
                state.waiting.insert(pid, sender);
            }
        }
        receiver
    }

    /// Reaps every child that has exited, without blocking.
    pub fn reap(&self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes the status into a local integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let Some(status) = ExitStatus::from_wait(status) else {
                continue;
            };
            let mut state = self.state.lock().expect("the reaper's lock");
            match state.waiting.remove(&pid) {
                Some(sender) => {
                    let _ = sender.send(status);
                }
                None => {
                    if state.unclaimed.len() == UNCLAIMED_KEPT {
                        state.unclaimed.pop_front();
                    }
                    state.unclaimed.push_back((pid, status));
                }
            }
        }
    }
}

/// Sends `signal` to the process `pid`, or to its whole process group.
pub fn send_signal(pid: i32, signal: Signal, group: bool) -> io::Result<()> {
    let number = libc::c_int::from(signal.number());
    // SAFETY: kill and killpg take plain integers.
    let result = unsafe {
        if group {
            libc::killpg(pid, number)
        } else {
            libc::kill(pid, number)
        }
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where the signals go.
pub struct SignalRouting {
    /// The main child, whose process group has the same id.
    pub child: i32,
    /// Pass signals on to the child's process group rather than the child.
    pub group: bool,
    /// Signals that start the stop instead of being passed on.
    pub stop_signals: Vec<Signal>,
    /// Where a stop signal is announced.
    pub stop: mpsc::UnboundedSender<Signal>,
}

/// The thread that receives every handled signal: SIGCHLD reaps, a stop signal is announced,
/// every other signal is passed on to the child.
pub struct SignalThread;

impl SignalThread {
    /// Starts it. It runs until the process exits.
    pub fn start(reaper: Arc<Reaper>, routing: SignalRouting) -> io::Result<()> {
        std::thread::Builder::new()
            .name("quiesce-signals".into())
            .spawn(move || {
                let set = handled_set();
                loop {
                    // SAFETY: sigwaitinfo fills a siginfo_t we own from a valid set.
                    let number = unsafe {
                        let mut info: libc::siginfo_t = std::mem::zeroed();
                        libc::sigwaitinfo(&set, &mut info)
                    };
                    if number < 0 {
                        continue; // EINTR
                    }
                    if number == libc::SIGCHLD {
                        reaper.reap();
                        continue;
                    }
                    let Some(signal) = u8::try_from(number).ok().and_then(Signal::from_number)
                    else {
                        continue;
                    };
                    if routing.stop_signals.contains(&signal) {
                        let _ = routing.stop.send(signal);
                    } else {
                        let _ = send_signal(routing.child, signal, routing.group);
                    }
                }
            })
            .map(|_| ())
    }
}

/// The address ranges of quiesce's own executable mapped with `permissions` (`r-xp`...).
fn own_mappings(permissions: &str) -> Vec<(usize, usize)> {
    let (Ok(exe), Ok(maps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/maps"),
    ) else {
        return Vec::new();
    };
    let exe = exe.to_string_lossy();
    maps.lines()
        .filter(|line| line.ends_with(exe.as_ref()))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            (fields.next()? == permissions).then_some(())?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

/// Keeps quiesce's resident memory small while it idles as PID 1: its executable's pages are
/// read on demand, one at a time (`MADV_RANDOM`: no fault-around mapping the neighbours of
/// every page touched), so only the code quiesce runs counts.
pub fn lean_code_pages() {
    for (start, end) in own_mappings("r--p").into_iter().chain(own_mappings("r-xp")) {
        // SAFETY: MADV_RANDOM only changes how a mapping of ours is read ahead.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
        }
    }
}

/// Drops the code pages start-up and compiling touched (the compiler's above all) from
/// quiesce's resident memory; they are read again from the executable if ever needed. Only
/// executable mappings, which are never written, are dropped.
pub fn drop_code_pages() {
    for (start, end) in own_mappings("r-xp") {
        // SAFETY: an executable, read-only file mapping holds no data of its own: dropped
        // pages fault in again from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Hands the memory freed after compiling a policy back to the system (glibc keeps it).
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
