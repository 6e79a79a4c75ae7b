//! The job bookkeeping at the heart of the service: workers, the in-flight count, the
//! graceful drain, the immediate exit, and every line written to stdout.
//!
//! All state lives behind one mutex and every event line is printed while holding it, so
//! the log is a faithful, totally ordered record: at any point, the jobs `started` minus
//! the jobs `completed` so far is exactly the in-flight count the next line reports.
//! Integration tests rely on that to tell whether a shutdown lost work.

use std::fmt;
use std::io::{self, Write};
use std::process;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::signals::Signal;
use crate::state::StateStore;

/// How long a job sleeps at a time; a job is a sequence of these slices.
const SLICE: Duration = Duration::from_millis(10);

/// Counters protected by the service mutex.
#[derive(Debug, Default)]
struct Counters {
    /// The id the next job gets; ids start at 1 and are shared by all workers.
    next_id: u64,
    /// Jobs started and not yet completed.
    inflight: u64,
    /// Jobs completed so far.
    completed: u64,
    /// Set once a graceful drain started; no job starts afterwards.
    draining: bool,
    /// Live [`ExitHold`]s: a drained service waits for them before exiting.
    holds: u32,
}

/// What asked for a graceful drain, as it appears at the start of the log line.
#[derive(Debug, Clone, Copy)]
pub enum DrainOrigin {
    /// A signal configured as graceful.
    Signal(Signal),
    /// `POST /drain` on the loopback HTTP server.
    Http,
}

impl fmt::Display for DrainOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainOrigin::Signal(signal) => write!(f, "signal {signal} graceful"),
            DrainOrigin::Http => f.write_str("http drain"),
        }
    }
}

/// The result of a drain request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// This request started the drain, with this many jobs in flight.
    Started(u64),
    /// A drain was already running, with this many jobs still in flight.
    AlreadyDraining(u64),
}

/// Shared state of one serving process.
#[derive(Debug)]
pub struct Service {
    /// Job counters; hold the lock while printing an event.
    counters: Mutex<Counters>,
    /// Notified whenever a job completes, a drain starts or an [`ExitHold`] ends.
    changed: Condvar,
    /// The files read by `docker exec` commands.
    store: StateStore,
    /// How long each job lasts.
    job: Duration,
}

impl Service {
    /// A service whose jobs last `job`, mirroring its state into `store`.
    pub fn new(store: StateStore, job: Duration) -> Self {
        Service {
            counters: Mutex::new(Counters {
                next_id: 1,
                ..Counters::default()
            }),
            changed: Condvar::new(),
            store,
            job,
        }
    }

    /// Locks the counters. A poisoned lock is still used: the counters are only ever
    /// updated in one step, so they are consistent even if a thread panicked.
    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints a line that is not tied to a job (startup banner), in log order.
    pub fn announce(&self, line: fmt::Arguments<'_>) {
        let _counters = self.lock();
        emit(line);
    }

    /// The current number of in-flight jobs.
    pub fn inflight(&self) -> u64 {
        self.lock().inflight
    }

    /// Runs jobs back to back until a drain starts. Called on each worker thread.
    pub fn run_worker(&self) {
        while let Some(id) = self.start_job() {
            let started = Instant::now();
            loop {
                let elapsed = started.elapsed();
                if elapsed >= self.job {
                    break;
                }
                thread::sleep((self.job - elapsed).min(SLICE));
            }
            self.complete_job(id);
        }
    }

    /// Starts a job and returns its id, or `None` once draining.
    fn start_job(&self) -> Option<u64> {
        let mut counters = self.lock();
        if counters.draining {
            return None;
        }
        let id = counters.next_id;
        counters.next_id += 1;
        counters.inflight += 1;
        self.store_inflight(counters.inflight);
        emit(format_args!("started job {id}"));
        Some(id)
    }

    /// Records that job `id` finished.
    fn complete_job(&self, id: u64) {
        let mut counters = self.lock();
        counters.inflight -= 1;
        counters.completed += 1;
        self.store_inflight(counters.inflight);
        emit(format_args!("completed job {id}"));
        self.changed.notify_all();
    }

    /// Starts a graceful drain: no new jobs, in-flight jobs run to completion, and
    /// [`Service::run_until_exit`] exits once none is left. A second request is logged
    /// and otherwise ignored.
    pub fn drain(&self, origin: DrainOrigin) -> Drain {
        let mut counters = self.lock();
        let inflight = counters.inflight;
        if counters.draining {
            emit(format_args!(
                "{origin}: already draining, {inflight} in-flight job(s) left"
            ));
            return Drain::AlreadyDraining(inflight);
        }
        counters.draining = true;
        if let Err(err) = self.store.mark_draining() {
            eprintln!("test-service: cannot create the draining marker: {err}");
        }
        emit(format_args!(
            "{origin}: draining {inflight} in-flight job(s)"
        ));
        self.changed.notify_all();
        Drain::Started(inflight)
    }

    /// Exits at once with status 128 + signal number, abandoning the in-flight jobs.
    pub fn abandon(&self, signal: Signal) -> ! {
        let counters = self.lock();
        let inflight = counters.inflight;
        emit(format_args!(
            "signal {signal} immediate: abandoning {inflight} in-flight job(s)"
        ));
        exit_with_summary(&counters, 128 + signal.number())
    }

    /// Logs a signal that is ignored.
    pub fn ignored(&self, signal: Signal) {
        let _counters = self.lock();
        emit(format_args!("signal {signal} ignored"));
    }

    /// Delays a graceful exit until the returned guard is dropped. The HTTP server holds
    /// one while it answers `POST /drain`, so the client gets its response even when the
    /// drain completes at once.
    pub fn hold_exit(&self) -> ExitHold<'_> {
        self.lock().holds += 1;
        ExitHold { service: self }
    }

    /// Blocks the main thread until the service should stop, then exits the process:
    /// after a completed drain and `linger`, with status 0 and nothing abandoned; or at
    /// `deadline` (from `--exit-after-ms`), with status 0 and whatever was in flight
    /// reported as abandoned.
    pub fn run_until_exit(&self, linger: Duration, deadline: Option<Instant>) -> ! {
        let mut counters = self.lock();
        while !(counters.draining && counters.inflight == 0 && counters.holds == 0) {
            counters = match deadline {
                None => self
                    .changed
                    .wait(counters)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        emit(format_args!(
                            "exit-after-ms elapsed: abandoning {} in-flight job(s)",
                            counters.inflight
                        ));
                        exit_with_summary(&counters, 0)
                    };
                    self.changed
                        .wait_timeout(counters, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        emit(format_args!(
            "drained: 0 in-flight job(s), lingering {} ms",
            linger.as_millis()
        ));
        drop(counters);
        thread::sleep(linger);
        exit_with_summary(&self.lock(), 0)
    }

    /// Mirrors the in-flight count to the state file; a failure is reported, not fatal.
    fn store_inflight(&self, count: u64) {
        if let Err(err) = self.store.write_inflight(count) {
            eprintln!("test-service: cannot update the in-flight count: {err}");
        }
    }
}

/// Keeps a drained service from exiting while it lives; see [`Service::hold_exit`].
#[derive(Debug)]
pub struct ExitHold<'a> {
    /// The service whose exit is held.
    service: &'a Service,
}

impl Drop for ExitHold<'_> {
    fn drop(&mut self) {
        self.service.lock().holds -= 1;
        self.service.changed.notify_all();
    }
}

/// Prints the summary line and exits. Takes the locked counters so that no other line
/// can follow the summary.
fn exit_with_summary(counters: &Counters, code: i32) -> ! {
    emit(format_args!(
        "summary completed={} abandoned={}",
        counters.completed, counters.inflight
    ));
    process::exit(code)
}

/// Writes one line to stdout and flushes it, so `docker logs` sees it at once.
/// Callers hold the counters lock, which keeps lines in event order.
fn emit(line: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    // There is nowhere to report a broken stdout; the exit status still tells the story.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
