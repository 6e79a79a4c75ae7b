//! `test-service`: a deterministic workload that quiesce's integration tests run as PID 1
//! in a `FROM scratch` container, to prove whether a shutdown lost work.
//!
//! Workers run timed jobs and log `started job <id>` / `completed job <id>`; each signal
//! drains gracefully, exits immediately or is ignored, as configured; so the log alone
//! shows how many jobs a stop abandoned. The same static binary also provides the small
//! commands tests run through `docker exec` (`inflight`, `idle`, `signal`), and the process
//! chores that test an init (`exit`, `raise`, `orphan`, `sleep`, `zombies`). This file
//! parses the command line and dispatches; see `test-service help` for the interface.

mod cli;
mod http;
mod service;
mod signals;
mod state;

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cli::{Command, ServeConfig};
use service::Service;
use signals::Signal;
use state::StateStore;

fn main() -> ExitCode {
    // Before anything else: the moment the program starts, for start-up benchmarks.
    let started = std::time::SystemTime::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Ok(Command::Serve(config)) => serve(config),
        Ok(Command::Inflight { state_dir }) => inflight(&StateStore::new(state_dir)),
        Ok(Command::Idle { state_dir }) => idle(&StateStore::new(state_dir)),
        Ok(Command::Signal(signal)) => send_to_pid_1(signal),
        Ok(Command::Exit(code)) => ExitCode::from(code),
        Ok(Command::Raise(signal)) => raise(signal),
        Ok(Command::Orphan(ms)) => orphan(ms),
        Ok(Command::Worker(ms)) => worker(ms),
        Ok(Command::Work(ms)) => work(ms),
        Ok(Command::Sleep(ms)) => {
            thread::sleep(Duration::from_millis(ms));
            ExitCode::SUCCESS
        }
        Ok(Command::Zombies) => zombies(),
        Ok(Command::Stamp(ms)) => {
            let moment = if ms == 0 {
                started
            } else {
                thread::sleep(Duration::from_millis(ms));
                std::time::SystemTime::now()
            };
            let ns = moment
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos());
            println!("stamp {ns}");
            ExitCode::SUCCESS
        }
        Ok(Command::PidState(pid)) => {
            println!(
                "{}",
                process_state(&format!("/proc/{pid}/stat")).unwrap_or("gone".into())
            );
            ExitCode::SUCCESS
        }
        Ok(Command::Procs) => {
            let count = std::fs::read_dir("/proc").map_or(0, |entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            });
            println!("processes {count}");
            ExitCode::SUCCESS
        }
        Ok(Command::Say(words)) => {
            println!("{}", words.join(" "));
            ExitCode::SUCCESS
        }
        Ok(Command::Spew(bytes, text)) => spew(bytes, &text),
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("test-service: {err}\nRun `test-service help` for usage.");
            ExitCode::from(2)
        }
    }
}

/// Writes `bytes` of `x` without a newline, then ` text` and a newline, until killed: a
/// container whose log lines are as long as a test wants.
fn spew(bytes: u64, text: &str) -> ExitCode {
    use std::io::Write;
    let block = [b'x'; 64 << 10];
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut left = bytes;
        while left > 0 {
            let now = left.min(block.len() as u64) as usize;
            if stdout.write_all(&block[..now]).is_err() {
                return ExitCode::FAILURE;
            }
            left -= now as u64;
        }
        if writeln!(stdout, " {text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
}

/// Reports a startup failure; the service exits with status 1.
fn startup_failure(what: &str, err: impl std::fmt::Display) -> ExitCode {
    eprintln!("test-service: {what}: {err}");
    ExitCode::FAILURE
}

/// Formats a signal list for the `config` line: `SIGTERM,SIGQUIT` or `none`.
fn list(signals: &[Signal]) -> String {
    if signals.is_empty() {
        return "none".into();
    }
    signals
        .iter()
        .map(Signal::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the service. Returns only if startup fails; otherwise the process exits from
/// [`Service::run_until_exit`] or [`Service::abandon`].
fn serve(config: ServeConfig) -> ExitCode {
    let deadline = config
        .exit_after_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    // Before any thread exists, so that every thread inherits the mask.
    if let Err(err) = signals::block_catchable() {
        return startup_failure("cannot block signals", err);
    }
    let store = StateStore::new(config.state_dir.clone());
    if let Err(err) = store.init() {
        let what = format!("cannot initialise {}", store.dir().display());
        return startup_failure(&what, err);
    }
    let listener = match config.http_port.map(http::bind).transpose() {
        Ok(listener) => listener,
        Err(err) => return startup_failure("cannot listen on 127.0.0.1", err),
    };

    let service = Arc::new(Service::new(store, Duration::from_millis(config.job_ms)));
    let exit_after = config
        .exit_after_ms
        .map_or_else(|| "none".to_string(), |ms| ms.to_string());
    service.announce(format_args!(
        "config graceful={} immediate={} linger_ms={} exit_after_ms={exit_after}",
        list(&config.signals.graceful),
        list(&config.signals.immediate),
        config.linger_ms,
    ));
    if let Some(listener) = &listener {
        match listener.local_addr() {
            Ok(addr) => service.announce(format_args!("http listening on {addr}")),
            Err(err) => return startup_failure("cannot read the listening address", err),
        }
    }
    service.announce(format_args!(
        "ready pid={} workers={} job_ms={}",
        std::process::id(),
        config.workers,
        config.job_ms
    ));

    if let Err(err) =
        signals::spawn_handler(config.signals.clone(), Arc::clone(&service), config.reap)
    {
        return startup_failure("cannot start the signal thread", err);
    }
    if let Some(listener) = listener
        && let Err(err) = http::spawn(listener, Arc::clone(&service))
    {
        return startup_failure("cannot start the http thread", err);
    }
    for index in 0..config.workers {
        let worker = Arc::clone(&service);
        let spawned = thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || worker.run_worker());
        if let Err(err) = spawned {
            return startup_failure("cannot start a worker thread", err);
        }
    }
    if let Some(ms) = config.orphan_ms {
        // The child exits at once (waited for here), its own child lives on without a parent.
        let status = std::process::Command::new("/proc/self/exe")
            .args(["orphan", &ms.to_string()])
            .status();
        if let Err(err) = status {
            return startup_failure("cannot leave an orphan", err);
        }
    }
    service.run_until_exit(Duration::from_millis(config.linger_ms), deadline)
}

/// `test-service inflight`: prints the in-flight count; exit 0, or 1 if unreadable.
fn inflight(store: &StateStore) -> ExitCode {
    match store.read_inflight() {
        Ok(count) => {
            println!("{count}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("test-service: cannot read the in-flight count: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `test-service idle`: exit 0 if draining started and nothing is in flight, else 1.
fn idle(store: &StateStore) -> ExitCode {
    let draining = store.is_draining();
    let count = match store.read_inflight() {
        Ok(count) => count,
        Err(err) => {
            eprintln!("test-service: cannot read the in-flight count: {err}");
            println!("busy inflight=unknown draining={draining}");
            return ExitCode::FAILURE;
        }
    };
    if draining && count == 0 {
        println!("idle inflight=0 draining=true");
        ExitCode::SUCCESS
    } else {
        println!("busy inflight={count} draining={draining}");
        ExitCode::FAILURE
    }
}

/// `test-service signal NAME`: sends the signal to PID 1; exit 0, or 1 if `kill` fails.
fn send_to_pid_1(signal: Signal) -> ExitCode {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(1, signal.number()) } == 0 {
        println!("sent {signal} to pid 1");
        ExitCode::SUCCESS
    } else {
        let err = std::io::Error::last_os_error();
        eprintln!("test-service: cannot send {signal} to pid 1: {err}");
        ExitCode::FAILURE
    }
}

/// `test-service raise NAME`: dies by the signal, its action reset to the default.
fn raise(signal: Signal) -> ExitCode {
    // SAFETY: resetting a disposition and raising a signal have no memory preconditions.
    unsafe {
        libc::signal(signal.number(), libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::raise(signal.number());
    }
    eprintln!("test-service: {signal} did not end the process");
    ExitCode::FAILURE
}

/// `test-service orphan MS`: starts `test-service sleep MS` and exits without waiting for it,
/// so that it is reparented to PID 1 (or the nearest subreaper), which must reap it.
fn orphan(ms: u64) -> ExitCode {
    match std::process::Command::new("/proc/self/exe")
        .args(["sleep", &ms.to_string()])
        .spawn()
    {
        Ok(child) => {
            println!("orphaned pid={}", child.id());
            ExitCode::SUCCESS
        }
        Err(err) => startup_failure("cannot start the orphan", err),
    }
}

/// The signals a worker's work is not cut by.
const WORK_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP];

/// `test-service worker MS`: starts `test-service work MS` in a session of its own (as a
/// daemonizing service starts its workers) and exits without waiting for it.
fn worker(ms: u64) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("/proc/self/exe");
    command.args(["work", &ms.to_string()]);
    // SAFETY: setsid and signal are async-signal-safe and have no preconditions. Ignored
    // signals stay ignored across exec: the worker ignores them from its first instruction,
    // before this process exits (`spawn` returns once the exec has happened).
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            for signal in WORK_SIGNALS {
                libc::signal(signal, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    match command.spawn() {
        Ok(child) => {
            println!("worker pid={}", child.id());
            ExitCode::SUCCESS
        }
        Err(err) => startup_failure("cannot start the worker", err),
    }
}

/// `test-service work MS`: MS ms of work that TERM, INT, QUIT and HUP do not cut.
fn work(ms: u64) -> ExitCode {
    // SAFETY: setting dispositions to SIG_IGN has no memory preconditions.
    unsafe {
        for signal in WORK_SIGNALS {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(ms));
    println!("worker done after {ms} ms");
    ExitCode::SUCCESS
}

/// `test-service zombies`: prints the number of zombie processes (state Z in /proc).
fn zombies() -> ExitCode {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return startup_failure("cannot read /proc", "not mounted");
    };
    let count = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| process_state(&entry.path().join("stat").to_string_lossy()))
        .filter(|state| state == "Z")
        .count();
    println!("zombies={count}");
    ExitCode::SUCCESS
}

/// The state letter in a `/proc/PID/stat` file (`pid (comm) S ...`: it follows the last `)`).
fn process_state(stat: &str) -> Option<String> {
    let text = std::fs::read_to_string(stat).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    rest.split_whitespace().next().map(str::to_string)
}
