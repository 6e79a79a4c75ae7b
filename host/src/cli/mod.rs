//! The `quiesce` command line: argument parsing, dispatch, and exit statuses.
//!
//! Exit statuses: [`exit`]; their one documented list is README.md's "Exit status" table
//! (`quiesce --help` summarises it; a test keeps both equal to [`exit`]).

mod args;
mod author_cmd;
mod connect;
mod distribution_cmd;
mod generate_cmd;
mod interrupts;
mod policy_cmd;
mod recover_cmd;
mod run_cmd;
mod stop_cmd;

pub use args::{
    BenchArgs, BuildArgs, Cli, ColorChoice, Command, EXIT_STATUS_HELP, EngineArgs, EvalArgs,
    GenerateCommand, KeygenArgs, KollaDropinsArgs, LogFormat, NewArgs, PolicyCommand, PullArgs,
    PushArgs, RecoverArgs, RegistryArgs, RunArgs, Shell, SignArgs, StopArgs, TestArgs, VerifyArgs,
};
pub use generate_cmd::{COMPLETIONS, MAN_PAGES};

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use crate::distribution::pulled::add_pulled;
use crate::distribution::store::Store;
use crate::model::config::Config;
use crate::policy::{
    CompileCache, Compiler, DEFAULT_POLICIES_DIR, PolicyCatalog, PolicyEngine, PolicyLimits,
};

/// The process's environment variables: the entry points read them, and hand them down.
pub(crate) fn vars() -> Vars {
    std::env::vars_os().collect()
}

/// The documented exit statuses.
pub use crate::model::exit;
use crate::model::vars::Vars;

fn parse_duration(text: &str) -> Result<Duration, String> {
    quiesce_policy_sdk::human_duration::parse(text)
}

/// A budget or a deadline: more than zero, as the config and the labels require (`--budget 0`
/// would SIGKILL at once, without a signal the service could drain on).
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err("must be more than 0s, e.g. 90s".into()),
        duration => Ok(duration),
    }
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
        self.catalog_until(config, None)
    }

    /// [`EngineArgs::catalog`], compiling the policies directory only until `until` (a run's
    /// share of its deadline); the files left are named, not loaded.
    pub fn catalog_until(
        &self,
        config: &Config,
        until: Option<std::time::Instant>,
    ) -> Result<PolicyCatalog, Failure> {
        let engine = self.engine_with(config)?;
        let (dir, required) = self.policies_dir_with(config);
        let mut catalog = engine
            .catalog_until(Some(&dir), required, until)
            .map_err(|error| Failure::environment(error.to_string()))?;
        add_registry_policies(&engine, &mut catalog, config, None, until);
        for problem in catalog.problems() {
            crate::output::logs::warning_text(&format!("policy not loaded: {problem}"));
        }
        Ok(catalog)
    }

    /// Starts the policy engine.
    pub fn engine(&self) -> Result<PolicyEngine, Failure> {
        self.engine_with(&Config::default())
    }

    /// Starts the policy engine with the config's limits; untrusted policies compile in a
    /// worker process (this binary). A compile cache that cannot be trusted is not used, with
    /// a warning.
    pub fn engine_with(&self, config: &Config) -> Result<PolicyEngine, Failure> {
        let cache = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(|| CompileCache::default_dir(&vars()))
                .map(CompileCache::new)
        };
        let engine = PolicyEngine::new(self.limits(config), cache)
            .map_err(|error| {
                Failure::environment(format!("cannot start the policy engine: {error:#}"))
            })?
            .with_compiler(Compiler::current_exe());
        if let Some(refused) = engine.cache_refused() {
            crate::output::logs::warning_text(&refused.to_string());
        }
        Ok(engine)
    }
}

/// The store of pulled policies, the same for every command: `flag` (`--store`), else
/// `QUIESCE_STORE`, else the configuration's, else the default ([`Store::default_dir`]).
pub(crate) fn store_of(flag: Option<&std::path::Path>, config: &Config) -> Store {
    let vars = vars();
    Store::new(
        flag.map(std::path::Path::to_path_buf)
            .or_else(|| vars.get("QUIESCE_STORE").map(PathBuf::from))
            .or_else(|| config.registry.store.clone())
            .unwrap_or_else(|| Store::default_dir(&vars)),
    )
}

/// Adds the configured registry policies, verified from the store, to `catalog`; each one
/// withheld (services choosing it get `default`) is said as a warning.
pub(crate) fn add_registry_policies(
    engine: &PolicyEngine,
    catalog: &mut PolicyCatalog,
    config: &Config,
    store_flag: Option<&std::path::Path>,
    until: Option<std::time::Instant>,
) {
    let store = store_of(store_flag, config);
    add_pulled(
        engine,
        catalog,
        &config.registry,
        &config.trust,
        &store,
        until,
    );
    for (name, why) in catalog.withheld_all() {
        crate::output::logs::warning_text(&format!(
            "registry policy `{name}` withheld (services choosing it get `default`): {why}"
        ));
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

/// How much a command prints: `--quiet`, `--verbose`, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Only the result.
    Quiet,
    /// Live progress on a terminal, log lines otherwise.
    Normal,
    /// Every event as a log line, and what each policy wrote.
    Verbose,
}

/// Runs a parsed command line; `Ok` carries the exit status.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Normal,
    };
    match cli.command {
        Command::Stop { args, dry_run } => stop_cmd::stop(&args, dry_run, verbosity),
        Command::Plan { args } => stop_cmd::stop(&args, true, verbosity),
        Command::Run(args) => run_cmd::run(&args, verbosity),
        Command::Generate(command) => generate_cmd::generate(&command),
        Command::Recover(args) => recover_cmd::recover(&args),
        Command::Policy(PolicyCommand::List {
            engine,
            registry,
            json,
        }) => policy_cmd::list(&engine, &registry, json),
        Command::Policy(PolicyCommand::Push(args)) => distribution_cmd::push(&args),
        Command::Policy(PolicyCommand::Sign(args)) => distribution_cmd::sign(&args),
        Command::Policy(PolicyCommand::Pull(args)) => distribution_cmd::pull(&args),
        Command::Policy(PolicyCommand::Verify(args)) => distribution_cmd::verify(&args),
        Command::Policy(PolicyCommand::Keygen(args)) => distribution_cmd::keygen(&args),
        Command::Policy(PolicyCommand::New(args)) => author_cmd::new(&args),
        Command::Policy(PolicyCommand::Build(args)) => author_cmd::build(&args),
        Command::Policy(PolicyCommand::Test(args)) => author_cmd::test(&args, verbosity),
        Command::Policy(PolicyCommand::Eval(args)) => author_cmd::eval(&args),
        Command::Policy(PolicyCommand::Bench(args)) => author_cmd::bench(&args),
        Command::Policy(PolicyCommand::Check {
            paths,
            engine,
            json,
        }) => policy_cmd::check(&paths, &engine, json),
    }
}

/// The command line with every option whose variable is set but empty (`QUIESCE_CONFIG=`)
/// read as if the variable were unset, as an empty `DOCKER_HOST` or `NO_COLOR` is: clap would
/// take it for an empty value and refuse it, naming a flag that was never given.
fn without_empty_variables(mut command: clap::Command) -> clap::Command {
    let empty: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty())
        })
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in empty {
        command = command.mut_arg(id, |arg| arg.env(None::<&str>));
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, without_empty_variables);
    }
    command
}

/// The binary's entry point: parse, run, map to an exit status. A closed stdout (`| head`)
/// is not an error; stdout that cannot be written is ([`crate::output::stdout`]).
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The hidden compile worker (see `policy::compile`): this binary compiling one untrusted
    // component for its parent, under limits.
    if let Some(status) = crate::policy::worker_main(&args) {
        return status;
    }
    let vars = vars();
    let environment = crate::output::style::Environment::of(&vars);
    // clap's own help and errors follow `--color` too, so it is read before clap parses.
    let color = match color_from_args(&args) {
        crate::output::style::When::Always => clap::ColorChoice::Always,
        crate::output::style::When::Never => clap::ColorChoice::Never,
        crate::output::style::When::Auto
            if crate::output::style::would_colour(
                crate::output::style::When::Auto,
                environment,
                crate::output::style::Stream::Stderr,
            ) =>
        {
            clap::ColorChoice::Auto
        }
        crate::output::style::When::Auto => clap::ColorChoice::Never,
    };
    let cli = without_empty_variables(Cli::command())
        .color(color)
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match cli {
        Ok(cli) => cli,
        // --help and --version exit 0 (3 when stdout cannot take them, as for every command);
        // usage errors exit 2, like every invalid input.
        Err(error) => {
            let printed = error.print();
            if error.use_stderr() {
                return ExitCode::from(exit::INVALID_INPUT);
            }
            crate::output::stdout::written(printed.and_then(|()| {
                use std::io::Write;
                std::io::stdout().flush()
            }));
            return ExitCode::from(crate::output::stdout::settle(exit::SUCCESS));
        }
    };
    crate::output::style::init(
        match cli.color {
            ColorChoice::Auto => crate::output::style::When::Auto,
            ColorChoice::Always => crate::output::style::When::Always,
            ColorChoice::Never => crate::output::style::When::Never,
        },
        environment,
    );
    crate::output::logs::init(
        match cli.log_format {
            LogFormat::Text => crate::output::logs::Format::Text,
            LogFormat::Json => crate::output::logs::Format::Json,
        },
        cli.verbose,
        vars.text("QUIESCE_LOG"),
    );
    let status = match run(cli) {
        Ok(status) => status,
        Err(failure) => {
            crate::output::logs::error(&failure.message);
            failure.status
        }
    };
    ExitCode::from(crate::output::stdout::settle(status))
}

/// `--color WHEN` (or `--color=WHEN`) from the raw arguments: colours must be settled before
/// clap prints help or an error. Anything unparsable is left to clap to report.
fn color_from_args(args: &[std::ffi::OsString]) -> crate::output::style::When {
    let mut value = None;
    let mut iter = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        } else if arg == "--color" {
            value = iter.next().map(|next| next.into_owned());
        } else if let Some(rest) = arg.strip_prefix("--color=") {
            value = Some(rest.to_string());
        }
    }
    match value.as_deref() {
        Some("always") => crate::output::style::When::Always,
        Some("never") => crate::output::style::When::Never,
        _ => crate::output::style::When::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_or_deadline_of_zero_is_refused_as_the_config_refuses_it() {
        assert_eq!(parse_positive_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("abc").is_err());
    }
}
