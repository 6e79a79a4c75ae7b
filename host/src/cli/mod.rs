//! The `quiesce` command line: argument parsing, dispatch, and exit statuses.
//!
//! Exit statuses (also in `quiesce --help` and the README):
//! - 0 ([`exit::SUCCESS`]): everything asked for succeeded;
//! - 1 ([`exit::PROBLEMS`]): the command ran and found problems: `stop` needed SIGKILL or a
//!   fallback for some service (or could not stop it, or was interrupted); `policy check` found an
//!   invalid policy;
//! - 2 ([`exit::INVALID_INPUT`]): bad arguments, configuration or input; nothing was touched;
//! - 3 ([`exit::ENVIRONMENT`]): the environment failed (the Docker daemon is unreachable, an
//!   unreadable policies directory, a report that could not be written).

mod author_cmd;
mod policy_cmd;
mod stop_cmd;

pub use stop_cmd::StopArgs;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::policy::{
    CompileCache, DEFAULT_POLICIES_DIR, PolicyCatalog, PolicyEngine, PolicyLimits,
};

/// Documented exit statuses.
pub mod exit {
    /// Everything asked for succeeded.
    pub const SUCCESS: u8 = 0;
    /// The command ran and found problems.
    pub const PROBLEMS: u8 = 1;
    /// Bad arguments, configuration or input; nothing was touched.
    pub const INVALID_INPUT: u8 = 2;
    /// The environment failed.
    pub const ENVIRONMENT: u8 = 3;
}

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success: every target stopped gracefully (or was already stopped)
  1  problems: some service needed SIGKILL or a fallback, or could not be stopped
     (policy check: some policy is invalid)
  2  invalid arguments, configuration or input: nothing was touched
  3  the environment failed (Docker daemon unreachable, unreadable policies directory,
     report not written)";

const EVAL_HELP: &str = r#"A context file (all fields optional; durations in ms):
  {
    "service": { "name": "web-1", "image": "nginx:1.25", "stop_signal": "SIGQUIT",
                 "stop_timeout_ms": 20000, "labels": [["tier", "web"]], "restart_policy": "always" },
    "settings": "{\"grace_period\": \"30s\"}",
    "history": [ { "step": { "signal": "SIGQUIT" }, "outcome": "signal_delivered",
                   "started_ms": 0, "ended_ms": 2 } ],
    "state": { "running": true },
    "elapsed_ms": 2, "remaining_ms": 60000
  }"#;

/// Stop containers the way their software wants to be stopped.
#[derive(Debug, Parser)]
#[command(name = "quiesce", version = version(), after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The version line: this build and the policy contract it speaks.
fn version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (policy contract 0.1.0)")
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stop containers gracefully, each as its policy decides.
    Stop {
        /// Targets and options.
        #[command(flatten)]
        args: StopArgs,
        /// Simulate instead (same as `quiesce plan`): nothing is touched.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what `stop` would do, step by step, and the worst-case time; nothing is touched.
    Plan {
        /// Targets and options.
        #[command(flatten)]
        args: StopArgs,
    },
    /// Inspect and check shutdown policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// `quiesce policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the available policies: built-ins and the policies directory.
    List {
        /// Where the policies are.
        #[command(flatten)]
        engine: EngineArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a policy crate that builds and passes its tests as generated.
    New(author_cmd::NewArgs),
    /// Build a policy crate to a wasm component (and optionally install it).
    Build(author_cmd::BuildArgs),
    /// Run scenario files against a compiled policy through the real executor, in virtual time.
    Test(author_cmd::TestArgs),
    /// One decision for a given context (JSON): the step, the policy's log, time and memory.
    #[command(after_help = EVAL_HELP)]
    Eval(author_cmd::EvalArgs),
    /// Decision latency (p50, p99, max) and peak memory, a fresh instance per decision.
    Bench(author_cmd::BenchArgs),
    /// Load and exercise policies; report every problem; exit 1 if any is invalid.
    Check {
        /// Policy files or directories [default: the built-ins and the policies directory].
        paths: Vec<PathBuf>,
        /// Where the policies are, and the limits to check them under.
        #[command(flatten)]
        engine: EngineArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options for loading and running policies.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// The directory holding custom policies (*.wasm); they add to, or replace, the built-ins.
    #[arg(long, env = "QUIESCE_POLICIES", value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// Where compiled policies are cached [default: $XDG_CACHE_HOME/quiesce or ~/.cache/quiesce].
    #[arg(long, env = "QUIESCE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not cache compiled policies.
    #[arg(long)]
    pub no_cache: bool,
    /// The most memory one policy instance may use, in MiB [default: 64, or the config's].
    #[arg(long, env = "QUIESCE_POLICY_MEMORY_MIB", value_name = "MIB")]
    pub policy_memory_mib: Option<usize>,
    /// The longest one policy call may run, e.g. 100ms [default: 100ms, or the config's].
    #[arg(long, env = "QUIESCE_POLICY_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub policy_timeout: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    quiesce_policy_sdk::human_duration::parse(text)
}

impl EngineArgs {
    /// The policies directory, and whether it was named explicitly (then it must exist).
    pub fn policies_dir(&self) -> (PathBuf, bool) {
        self.policies_dir_with(&Config::default())
    }

    /// The same, with the config file's `policies` below the flag and above the default.
    pub fn policies_dir_with(&self, config: &Config) -> (PathBuf, bool) {
        match self.policies.as_ref().or(config.policies.as_ref()) {
            Some(dir) => (dir.clone(), true),
            None => (PathBuf::from(DEFAULT_POLICIES_DIR), false),
        }
    }

    /// The limits: flags, then the config's `[limits]`, then the defaults.
    pub fn limits(&self, config: &Config) -> PolicyLimits {
        let defaults = PolicyLimits::default();
        PolicyLimits {
            memory_bytes: self
                .policy_memory_mib
                .or(config.limits.memory_mib)
                .map_or(defaults.memory_bytes, |mib| mib.saturating_mul(1 << 20)),
            call_timeout: self
                .policy_timeout
                .or(config.limits.call_timeout)
                .unwrap_or(defaults.call_timeout),
            ..defaults
        }
    }

    /// Starts the engine and loads the built-ins and the policies directory; load problems are
    /// printed as warnings (those policies are simply not available).
    pub fn catalog(&self, config: &Config) -> Result<PolicyCatalog, Failure> {
        let engine = self.engine_with(config)?;
        let (dir, required) = self.policies_dir_with(config);
        let catalog = engine
            .catalog(Some(&dir), required)
            .map_err(|error| Failure::environment(error.to_string()))?;
        for problem in catalog.problems() {
            eprintln!("quiesce: warning: policy not loaded: {problem}");
        }
        Ok(catalog)
    }

    /// Starts the policy engine.
    pub fn engine(&self) -> Result<PolicyEngine, Failure> {
        self.engine_with(&Config::default())
    }

    /// Starts the policy engine with the config's limits.
    pub fn engine_with(&self, config: &Config) -> Result<PolicyEngine, Failure> {
        let cache = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(CompileCache::default_dir)
                .map(CompileCache::new)
        };
        PolicyEngine::new(self.limits(config), cache).map_err(|error| {
            Failure::environment(format!("cannot start the policy engine: {error:#}"))
        })
    }
}

/// A command's failure: a message and the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub status: u8,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// Invalid input (exit 2).
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            status: exit::INVALID_INPUT,
            message: message.into(),
        }
    }

    /// The environment failed (exit 3).
    pub fn environment(message: impl Into<String>) -> Failure {
        Failure {
            status: exit::ENVIRONMENT,
            message: message.into(),
        }
    }
}

/// Runs a parsed command line; `Ok` carries the exit status.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Stop { args, dry_run } => stop_cmd::stop(&args, dry_run),
        Command::Plan { args } => stop_cmd::stop(&args, true),
        Command::Policy(PolicyCommand::List { engine, json }) => policy_cmd::list(&engine, json),
        Command::Policy(PolicyCommand::New(args)) => author_cmd::new(&args),
        Command::Policy(PolicyCommand::Build(args)) => author_cmd::build(&args),
        Command::Policy(PolicyCommand::Test(args)) => author_cmd::test(&args),
        Command::Policy(PolicyCommand::Eval(args)) => author_cmd::eval(&args),
        Command::Policy(PolicyCommand::Bench(args)) => author_cmd::bench(&args),
        Command::Policy(PolicyCommand::Check {
            paths,
            engine,
            json,
        }) => policy_cmd::check(&paths, &engine, json),
    }
}

/// The binary's entry point: parse, run, map to an exit status. A closed stdout (`| head`)
/// is not an error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            eprintln!("quiesce: error: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}
