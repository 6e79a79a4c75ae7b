//! Compiling an untrusted component under a time and a memory limit (issue 17, class 2).
//!
//! Cranelift cannot be interrupted, and its cost grows faster than linearly with some shapes
//! of code, so a component from a policies directory is compiled in a separate process: the
//! `quiesce` binary itself, started with a hidden first argument ([`WORKER_ARG`]). The worker
//! reads the component on stdin, limits its own data segment (`RLIMIT_DATA`: the heap and
//! every private writable mapping) to the compile memory limit, asks to be killed with its
//! parent, compiles with the same engine settings (on-demand allocation: the pool is not
//! needed to compile, and does not change the artifact) and writes the compiled artifact on
//! stdout. The parent waits at most the compile time limit, then kills it. Whatever happens,
//! the parent decides from what it read, never from a status a reaper may have taken first
//! (`quiesce run` is PID 1 and reaps every child).
//!
//! The built-in policies are trusted (embedded in the binary) and compile in-process.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use super::engine::{PolicyLimits, base_config};
use super::error::LoadError;

/// The first argument that makes the `quiesce` binary a compile worker.
pub const WORKER_ARG: &str = "__quiesce-compile-worker";

/// The largest compiled artifact read back from a worker.
const MAX_ARTIFACT_BYTES: u64 = 512 << 20;
/// How much of the worker's stderr is kept for an error message.
const MAX_DIAGNOSTIC_BYTES: u64 = 16 << 10;
/// The worker's exit status when wasmtime rejects the component (invalid wasm).
const EXIT_INVALID: i32 = 2;

/// Where untrusted components are compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Compiler {
    /// In this process: no time or memory limit beyond the shape checks (a library's default;
    /// the `quiesce` binary uses a worker).
    #[default]
    InProcess,
    /// In a worker process running this program (a `quiesce` binary).
    Worker(PathBuf),
}

impl Compiler {
    /// A worker running the current executable, when it can be found.
    pub fn current_exe() -> Compiler {
        std::env::current_exe().map_or(Compiler::InProcess, Compiler::Worker)
    }
}

/// Compiles `wasm` in a worker running `program`, within `timeout` and the limits' compile
/// memory limit; returns the serialized artifact.
pub fn compile_in_worker(
    program: &Path,
    wasm: &[u8],
    limits: &PolicyLimits,
    timeout: Duration,
) -> Result<Vec<u8>, LoadError> {
    let mut child = Command::new(program)
        .arg(WORKER_ARG)
        .arg(limits.stack_bytes.to_string())
        .arg(limits.compile_memory_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            LoadError::Compiler(format!(
                "cannot start the compiler process {}: {error}",
                program.display()
            ))
        })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(LoadError::Compiler(
            "the compiler process has no pipes".into(),
        ));
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (artifact, diagnostic, timed_out) = std::thread::scope(|scope| {
        scope.spawn(move || {
            // A worker that dies early closes the pipe: the error is its own, reported below.
            let _ = stdin.write_all(wasm);
        });
        let artifact = scope.spawn(move || {
            let read = read_all(stdout, MAX_ARTIFACT_BYTES);
            let _ = done_tx.send(());
            read
        });
        let diagnostic = scope.spawn(move || read_all(stderr, MAX_DIAGNOSTIC_BYTES));
        // The worker's stdout closes when it exits (or is killed).
        let timed_out = done_rx.recv_timeout(timeout).is_err();
        if timed_out {
            let _ = child.kill();
        }
        (
            artifact.join().unwrap_or_default(),
            diagnostic.join().unwrap_or_default(),
            timed_out,
        )
    });
    // The status may have been reaped by `quiesce run`'s reaper: then it is unknown.
    let status = child.wait().ok();
    if timed_out {
        return Err(LoadError::CompileTimeLimit { limit: timeout });
    }
    let diagnostic = String::from_utf8_lossy(&diagnostic).trim().to_string();
    let out_of_memory = diagnostic.contains("memory allocation of")
        || diagnostic.contains("Cannot allocate memory")
        || diagnostic.contains("out of memory");
    if out_of_memory {
        return Err(LoadError::CompileMemoryLimit {
            limit: limits.compile_memory_bytes,
        });
    }
    let succeeded = status.is_none_or(|status| status.success());
    if succeeded && diagnostic.is_empty() && !artifact.is_empty() {
        if u64::try_from(artifact.len()).unwrap_or(u64::MAX) >= MAX_ARTIFACT_BYTES {
            return Err(LoadError::Compiler(format!(
                "its compiled form exceeds {} MiB",
                MAX_ARTIFACT_BYTES >> 20
            )));
        }
        return Ok(artifact);
    }
    if status.and_then(|status| status.code()) == Some(EXIT_INVALID) {
        return Err(LoadError::Invalid(diagnostic));
    }
    Err(LoadError::Compiler(format!(
        "the compiler process failed ({}): {}",
        status.map_or_else(|| "status unknown".to_string(), |status| status.to_string()),
        if diagnostic.is_empty() {
            "no message"
        } else {
            &diagnostic
        }
    )))
}

fn read_all(reader: impl Read, cap: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = reader.take(cap).read_to_end(&mut bytes);
    bytes
}

/// The worker's side: when `args` (the process's arguments) start with [`WORKER_ARG`], compile
/// the component on stdin and return the exit status; otherwise `None`.
pub fn worker_main(args: &[OsString]) -> Option<ExitCode> {
    if args.get(1).is_none_or(|arg| arg != WORKER_ARG) {
        return None;
    }
    let number = |index: usize| -> Option<u64> { args.get(index)?.to_str()?.parse().ok() };
    let (Some(stack_bytes), Some(memory_limit)) = (number(2), number(3)) else {
        eprintln!("usage: quiesce {WORKER_ARG} STACK_BYTES MEMORY_LIMIT_BYTES < component");
        return Some(ExitCode::FAILURE);
    };
    // SAFETY: prctl and setrlimit take plain integers and a pointer to a local struct.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let limit = libc::rlimit {
            rlim_cur: memory_limit,
            rlim_max: memory_limit,
        };
        libc::setrlimit(libc::RLIMIT_DATA, &limit);
    }
    let mut wasm = Vec::new();
    if let Err(error) = std::io::stdin()
        .take(MAX_ARTIFACT_BYTES)
        .read_to_end(&mut wasm)
    {
        eprintln!("cannot read the component: {error}");
        return Some(ExitCode::FAILURE);
    }
    let limits = PolicyLimits {
        stack_bytes: usize::try_from(stack_bytes).unwrap_or(usize::MAX),
        ..PolicyLimits::default()
    };
    let engine = match wasmtime::Engine::new(&base_config(&limits)) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("cannot create the wasm engine: {error:#}");
            return Some(ExitCode::FAILURE);
        }
    };
    let artifact = match engine.precompile_component(&wasm) {
        Ok(artifact) => artifact,
        Err(error) => {
            eprintln!("{error:#}");
            return Some(ExitCode::from(EXIT_INVALID as u8));
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(&artifact).and_then(|()| stdout.flush()) {
        eprintln!("cannot write the compiled component: {error}");
        return Some(ExitCode::FAILURE);
    }
    Some(ExitCode::SUCCESS)
}
