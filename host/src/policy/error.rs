//! What can go wrong with a policy: loading it, and calling it.
//!
//! Every failure names the policy, the export that was called and the limit that caught it, so
//! a report can say exactly why a service fell back to the conservative sequence.

use std::path::PathBuf;
use std::time::Duration;

/// Why a call into a policy did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// The call ran past the per-call time limit (an endless loop, or far too much work).
    #[error("exceeded the time limit of {}ms", .limit.as_millis())]
    TimeLimit {
        /// The limit that was in force.
        limit: Duration,
    },
    /// The policy tried to grow its memory (all its linear memories and tables together) past
    /// the cap.
    #[error(
        "tried to grow its memory to {requested} bytes (its linear memories and tables \
         together), past the limit of {limit} bytes"
    )]
    MemoryLimit {
        /// The cap in bytes.
        limit: usize,
        /// The size it asked for.
        requested: usize,
    },
    /// The policy wrote more to stdout/stderr than the cap allows.
    #[error("wrote more than the output limit of {limit} bytes to stdout/stderr")]
    OutputLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The policy recursed past the wasm stack limit.
    #[error("overflowed its stack")]
    StackOverflow,
    /// The policy trapped (a panic, `unreachable`, an out-of-bounds access...).
    #[error("trapped: {message}")]
    Trap {
        /// The trap and its wasm backtrace, as wasmtime describes it.
        message: String,
    },
    /// The component could not be instantiated (missing imports, start function failure).
    #[error("could not be instantiated: {message}")]
    Instantiate {
        /// wasmtime's explanation.
        message: String,
    },
    /// The policy answered with an error of its own.
    #[error("returned an error: {message}")]
    Refused {
        /// The policy's text.
        message: String,
    },
    /// The policy answered something the contract does not allow.
    #[error("gave an invalid answer: {reason}")]
    InvalidAnswer {
        /// What is wrong with it.
        reason: String,
    },
}

/// `invalid settings {settings} for policy `{policy}`: {why}`, where `why` is the policy's
/// refusal (or what stopped the call) in its own words, said once: the SDK's own
/// `invalid settings: ` prefix is not repeated.
pub fn invalid_settings(policy: &str, settings: &str, why: &str) -> String {
    let why = why.strip_prefix("invalid settings: ").unwrap_or(why);
    format!("invalid settings {settings} for policy `{policy}`: {why}")
}

impl CallFailure {
    /// The policy's own words for a refusal, else what stopped the call.
    pub fn refusal(&self) -> String {
        match self {
            CallFailure::Refused { message } => message.clone(),
            other => other.to_string(),
        }
    }

    /// A short stable name for the report: `time-limit`, `memory-limit`, `output-limit`,
    /// `stack-overflow`, `trap`, `instantiate`, `refused`, `invalid-answer`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::TimeLimit { .. } => "time-limit",
            CallFailure::MemoryLimit { .. } => "memory-limit",
            CallFailure::OutputLimit { .. } => "output-limit",
            CallFailure::StackOverflow => "stack-overflow",
            CallFailure::Trap { .. } => "trap",
            CallFailure::Instantiate { .. } => "instantiate",
            CallFailure::Refused { .. } => "refused",
            CallFailure::InvalidAnswer { .. } => "invalid-answer",
        }
    }
}

/// A failed call, with the policy and export it concerns and what the policy printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy `{policy}`: {function}() {failure}")]
pub struct CallError {
    /// The policy's name (or its file, before its name is known).
    pub policy: String,
    /// The export called: `metadata`, `validate-settings` or `next`.
    pub function: &'static str,
    /// What went wrong.
    pub failure: CallFailure,
    /// What the policy wrote to stdout/stderr during the call (capped).
    pub log: String,
}

/// Why a file is not a usable policy.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// The path (after following any symlink) is not a regular file: it is not read.
    #[error("is {kind}, not a regular file; skipped without reading it")]
    NotAFile {
        /// What it is instead.
        kind: &'static str,
    },
    /// Reading the file would block (a special file): it is not waited for.
    #[error("reading it would block (a special file, not a policy component); skipped")]
    WouldBlock,
    /// The file is larger than any policy should be.
    #[error(
        "is larger than the {limit}-byte limit for a policy component (reading stopped there, \
         whatever size the file claims)"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The component exceeds a shape limit; it was not compiled.
    #[error("refused before compiling: {0}")]
    Shape(ShapeViolation),
    /// Compiling the component took longer than the compile time limit; it was stopped.
    #[error(
        "compiling it took longer than the compile time limit of {}; stopped and refused \
         (a policy compiles in well under a second)",
        humantime::format_duration(*.limit)
    )]
    CompileTimeLimit {
        /// The limit.
        limit: Duration,
    },
    /// Compiling the component needed more memory than the compile memory limit.
    #[error(
        "compiling it needed more than the compile memory limit of {} MiB; stopped and refused",
        .limit >> 20
    )]
    CompileMemoryLimit {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The separate compiler process could not run or failed without saying why.
    #[error("could not be compiled: {0}")]
    Compiler(String),
    /// The run's time for loading policies was over before this file's turn.
    #[error(
        "not compiled: loading policies reached its share of the run's deadline ({}) before \
         this file's turn; warm the compile cache (`quiesce policy check`) or raise --deadline",
        humantime::format_duration(*.limit)
    )]
    OutOfTime {
        /// The time loading policies may take.
        limit: Duration,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header); policies are wasm32-wasip2 components")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core WebAssembly module, not a component; build the policy for the wasm32-wasip2 target \
         (`cargo build --target wasm32-wasip2`), which produces a component"
    )]
    CoreModule,
    /// wasmtime rejected the component.
    #[error("not a valid component: {0}")]
    Invalid(String),
    /// The component does not export the contract's interface.
    #[error(
        "does not export `{expected}` (it exports: {found}); is it a quiesce policy built with the SDK?"
    )]
    WrongWorld {
        /// The interface the host looks for.
        expected: String,
        /// What the component exports instead.
        found: String,
    },
    /// The component was built for another contract version.
    #[error(
        "built for contract {found}, but this quiesce speaks {expected}; rebuild the policy against \
         quiesce-policy-sdk {expected}"
    )]
    IncompatibleContract {
        /// The contract version this host implements.
        expected: String,
        /// The version the policy was built for.
        found: String,
    },
    /// The component imports something the sandbox does not provide.
    #[error("cannot be linked: {0}; policies may import only WASI interfaces the sandbox denies")]
    Link(String),
    /// Calling one of its exports failed (`metadata()` while loading; any export in `check`).
    #[error("{0}")]
    Call(#[source] CallError),
    /// The metadata is unusable.
    #[error("has invalid metadata: {0}")]
    InvalidMetadata(String),
    /// Another policy of the same name was loaded first.
    #[error("has the name `{name}`, already taken by {other}; give each policy a distinct name")]
    DuplicateName {
        /// The duplicated name.
        name: String,
        /// Where the first one came from.
        other: String,
    },
}

/// A component that exceeds a shape limit: what, where, how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place} has {found} {what}, over the limit of {limit}")]
pub struct ShapeViolation {
    /// Where: "function 3 of core module 1", "the component"...
    pub place: String,
    /// What is counted: "bytes of code", "locals", "linear memories"...
    pub what: &'static str,
    /// How many there are.
    pub found: u64,
    /// The limit.
    pub limit: u64,
}

/// A policy file that could not be loaded, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", .path.display())]
pub struct LoadProblem {
    /// The file.
    pub path: PathBuf,
    /// The reason.
    #[source]
    pub error: LoadError,
}
