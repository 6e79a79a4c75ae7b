//! Command-line parsing: turns the arguments into a [`Command`] with no side effects, so
//! every rule (defaults, signal lists and their conflicts) is unit-tested.

use std::fmt;
use std::path::PathBuf;

use crate::signals::{Signal, SignalPolicy};
use crate::state;

/// The usage text printed by `test-service help`.
pub const USAGE: &str = "\
test-service: a deterministic workload for quiesce's Docker integration tests.

USAGE:
    test-service [serve] [OPTIONS]     run the service (normally as PID 1)
    test-service inflight [--state-dir DIR]
                                       print the in-flight job count; exit 0
    test-service idle [--state-dir DIR]
                                       exit 0 if draining started and no job is in
                                       flight, else exit 1
    test-service signal NAME           send signal NAME to PID 1; exit 0
    test-service exit CODE             exit with status CODE at once
    test-service raise NAME            die by signal NAME (its default action)
    test-service orphan MS             start a child that sleeps MS ms, and exit at once,
                                       leaving it to be reaped by PID 1
    test-service worker MS             start a `setsid` worker that does MS ms of work whatever
                                       signal comes but SIGKILL (`worker done` when it ends),
                                       and exit at once, leaving it behind
    test-service work MS               the worker itself: MS ms of work; exit 0
    test-service sleep MS              sleep MS ms; exit 0
    test-service stamp [MS]            sleep MS ms (default 0), then print `stamp <ns>` (the
                                       wall clock in ns: when it started when MS is 0, else
                                       when it exits); exit 0
    test-service zombies               print how many zombie processes there are; exit 0
    test-service pid-state PID         print the state letter of process PID (R, S, Z...),
                                       or `gone`; exit 0
    test-service procs                 print how many processes the container runs; exit 0
    test-service say TEXT...           print TEXT as given (control characters included)
    test-service spew BYTES TEXT       forever: write BYTES `x` without a newline, then
                                       ` TEXT` and a newline (a log without line ends)
    test-service help                  print this text

SERVE OPTIONS:
    --workers N          worker threads, each running jobs back to back [default: 2]
    --job-ms MS          duration of one job, at least 1 [default: 1000]
    --graceful SIGS      signals that drain: finish in-flight jobs, exit 0 [default: TERM]
    --immediate SIGS     signals that exit at once with 128+signo [default: INT]
    --ignore SIGS        signals that are logged and ignored (overrides the defaults)
    --ignore-all         ignore every signal (not with --graceful/--immediate)
    --repeat-immediate   a graceful signal while draining exits at once, as an immediate one
                         (oslo.service: a second SIGTERM means 'now')
    --linger-ms MS       wait after the drain before exiting [default: 0]
    --http-port PORT     serve GET /inflight and POST /drain on 127.0.0.1:PORT
    --exit-after-ms MS   exit 0 on its own after MS, abandoning in-flight jobs
    --orphan-ms MS       once ready, start a child that leaves a grandchild living MS ms
                         (reparented to PID 1 or the nearest subreaper, which must reap it)
    --no-reap            never reap children, as most services do not (as PID 1: orphans
                         stay zombies)
    --state-dir DIR      where the state files live [default: /run/test-service]

SIGS is a comma-separated list such as TERM,QUIT or SIGUSR1,10, or `none`.
Signals not listed as graceful or immediate are logged and ignored.

OUTPUT (stdout, one line per event):
    config graceful=<SIGS> immediate=<SIGS> linger_ms=<MS> exit_after_ms=<MS|none>
    http listening on 127.0.0.1:<PORT>
    ready pid=<PID> workers=<N> job_ms=<MS>
    started job <ID>
    completed job <ID>
    signal <SIG> graceful: draining <K> in-flight job(s)
    signal <SIG> graceful: already draining, <K> in-flight job(s) left
    http drain: draining <K> in-flight job(s)
    signal <SIG> immediate: abandoning <K> in-flight job(s)
    signal <SIG> ignored
    exit-after-ms elapsed: abandoning <K> in-flight job(s)
    drained: 0 in-flight job(s), lingering <MS> ms
    summary completed=<C> abandoned=<K>

EXIT STATUS (serve): 0 after a drain or --exit-after-ms; 128+signo after an immediate
signal; 1 if startup fails; 2 for a usage error.
";

/// What to do, as chosen on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the service.
    Serve(ServeConfig),
    /// Print the in-flight count from the state directory.
    Inflight {
        /// The state directory to read.
        state_dir: PathBuf,
    },
    /// Probe: drained and idle?
    Idle {
        /// The state directory to read.
        state_dir: PathBuf,
    },
    /// Send a signal to PID 1.
    Signal(Signal),
    /// Exit at once with this status.
    Exit(u8),
    /// Die by this signal.
    Raise(Signal),
    /// Orphan a child that sleeps this many milliseconds.
    Orphan(u64),
    /// Leave a `setsid` worker behind that works this many milliseconds.
    Worker(u64),
    /// Work this many milliseconds, whatever signal comes but SIGKILL.
    Work(u64),
    /// Sleep this many milliseconds.
    Sleep(u64),
    /// Sleep this many milliseconds, then print the wall clock in nanoseconds.
    Stamp(u64),
    /// Count the zombie processes.
    Zombies,
    /// Print a process's state.
    PidState(u32),
    /// Count the processes.
    Procs,
    /// Print these words, as given.
    Say(Vec<String>),
    /// Write this many bytes without a newline, then this text and a newline, forever.
    Spew(u64, String),
    /// Print the usage text.
    Help,
}

/// Options of `test-service serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Number of worker threads.
    pub workers: usize,
    /// Duration of one job in milliseconds.
    pub job_ms: u64,
    /// Wait after the drain before exiting, in milliseconds.
    pub linger_ms: u64,
    /// Exit on its own after this many milliseconds.
    pub exit_after_ms: Option<u64>,
    /// Once ready, leave an orphan that lives this many milliseconds (for init tests).
    pub orphan_ms: Option<u64>,
    /// Reap exited children (as PID 1, orphans); off, as most services are, with --no-reap.
    pub reap: bool,
    /// Port of the loopback HTTP server, if any.
    pub http_port: Option<u16>,
    /// Directory of the state files.
    pub state_dir: PathBuf,
    /// What each signal does.
    pub signals: SignalPolicy,
}

/// A command-line mistake, reported with exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shorthand for building a [`UsageError`].
fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(Command::Help);
    }
    let (subcommand, rest) = match args.split_first() {
        Some((first, rest)) if !first.starts_with('-') => (first.as_str(), rest),
        _ => ("serve", args),
    };
    match subcommand {
        "serve" => parse_serve(rest).map(Command::Serve),
        "inflight" => parse_state_dir(rest).map(|state_dir| Command::Inflight { state_dir }),
        "idle" => parse_state_dir(rest).map(|state_dir| Command::Idle { state_dir }),
        "signal" => match rest {
            [name] => Signal::parse(name).map(Command::Signal).map_err(UsageError),
            _ => usage("`signal` takes exactly one signal name, e.g. `signal TERM`"),
        },
        "exit" => match rest {
            [code] => number("exit", code).map(Command::Exit),
            _ => usage("`exit` takes exactly one status, e.g. `exit 3`"),
        },
        "raise" => match rest {
            [name] => Signal::parse(name).map(Command::Raise).map_err(UsageError),
            _ => usage("`raise` takes exactly one signal name, e.g. `raise TERM`"),
        },
        "orphan" | "sleep" | "worker" | "work" => match rest {
            [ms] => number(subcommand, ms).map(|ms| match subcommand {
                "orphan" => Command::Orphan(ms),
                "worker" => Command::Worker(ms),
                "work" => Command::Work(ms),
                _ => Command::Sleep(ms),
            }),
            _ => usage(format!("`{subcommand}` takes exactly one duration in ms")),
        },
        "zombies" if rest.is_empty() => Ok(Command::Zombies),
        "stamp" => match rest {
            [] => Ok(Command::Stamp(0)),
            [ms] => number("stamp", ms).map(Command::Stamp),
            _ => usage("`stamp` takes at most one duration in ms"),
        },
        "pid-state" => match rest {
            [pid] => number("pid-state", pid).map(Command::PidState),
            _ => usage("`pid-state` takes exactly one pid"),
        },
        "procs" if rest.is_empty() => Ok(Command::Procs),
        "say" => Ok(Command::Say(rest.to_vec())),
        "spew" => match rest {
            [bytes, text] => number("spew", bytes).map(|bytes| Command::Spew(bytes, text.clone())),
            _ => usage("`spew` takes a byte count and a text"),
        },
        "help" if rest.is_empty() => Ok(Command::Help),
        "help" => usage("`help` takes no arguments"),
        other => usage(format!("unknown subcommand {other:?}")),
    }
}

/// Splits the arguments into flags and their values; accepts `--flag value` and
/// `--flag=value`.
struct Flags<'a> {
    /// The remaining arguments.
    args: std::slice::Iter<'a, String>,
}

impl<'a> Flags<'a> {
    /// The next flag and, when given as `--flag=value`, its inline value.
    fn next_flag(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let arg = self.args.next()?;
        Some(match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg.as_str(), None),
        })
    }

    /// The value of `flag`: inline, or the next argument.
    fn value(&mut self, flag: &str, inline: Option<&'a str>) -> Result<&'a str, UsageError> {
        match inline.or_else(|| self.args.next().map(String::as_str)) {
            Some(value) => Ok(value),
            None => usage(format!("{flag} needs a value")),
        }
    }
}

/// Parses a decimal number for `flag`.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, UsageError> {
    match value.parse() {
        Ok(n) => Ok(n),
        Err(_) => usage(format!("{flag}: {value:?} is not a valid number")),
    }
}

/// Parses a comma-separated list of catchable signals; `none` or empty is the empty list.
fn signal_list(flag: &str, value: &str) -> Result<Vec<Signal>, UsageError> {
    if value.trim().is_empty() || value.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut signals = Vec::new();
    for name in value.split(',') {
        let signal = Signal::parse(name).or_else(|err| usage(format!("{flag}: {err}")))?;
        if !signal.is_catchable() {
            return usage(format!("{flag}: {signal} cannot be handled"));
        }
        if !signals.contains(&signal) {
            signals.push(signal);
        }
    }
    Ok(signals)
}

/// Parses the options of `inflight` and `idle`.
fn parse_state_dir(args: &[String]) -> Result<PathBuf, UsageError> {
    let mut state_dir = PathBuf::from(state::DEFAULT_DIR);
    let mut flags = Flags { args: args.iter() };
    while let Some((flag, inline)) = flags.next_flag() {
        match flag {
            "--state-dir" => state_dir = flags.value(flag, inline)?.into(),
            _ => return usage(format!("unknown option {flag:?}")),
        }
    }
    Ok(state_dir)
}

/// Parses the options of `serve`.
fn parse_serve(args: &[String]) -> Result<ServeConfig, UsageError> {
    let mut config = ServeConfig {
        workers: 2,
        job_ms: 1000,
        linger_ms: 0,
        exit_after_ms: None,
        orphan_ms: None,
        reap: true,
        http_port: None,
        state_dir: PathBuf::from(state::DEFAULT_DIR),
        signals: SignalPolicy {
            graceful: Vec::new(),
            immediate: Vec::new(),
            repeat_is_immediate: false,
        },
    };
    let (mut graceful, mut immediate) = (None::<Vec<Signal>>, None::<Vec<Signal>>);
    let (mut ignore, mut ignore_all, mut repeat_immediate) = (Vec::new(), false, false);
    let mut flags = Flags { args: args.iter() };
    while let Some((flag, inline)) = flags.next_flag() {
        match flag {
            "--ignore-all" if inline.is_none() => ignore_all = true,
            "--ignore-all" => return usage("--ignore-all takes no value"),
            "--repeat-immediate" if inline.is_none() => repeat_immediate = true,
            "--repeat-immediate" => return usage("--repeat-immediate takes no value"),
            "--no-reap" if inline.is_none() => config.reap = false,
            "--no-reap" => return usage("--no-reap takes no value"),
            "--workers" => config.workers = number(flag, flags.value(flag, inline)?)?,
            "--job-ms" => config.job_ms = number(flag, flags.value(flag, inline)?)?,
            "--linger-ms" => config.linger_ms = number(flag, flags.value(flag, inline)?)?,
            "--exit-after-ms" => {
                config.exit_after_ms = Some(number(flag, flags.value(flag, inline)?)?);
            }
            "--http-port" => config.http_port = Some(number(flag, flags.value(flag, inline)?)?),
            "--orphan-ms" => config.orphan_ms = Some(number(flag, flags.value(flag, inline)?)?),
            "--state-dir" => config.state_dir = flags.value(flag, inline)?.into(),
            "--graceful" | "--immediate" | "--ignore" => {
                let list = signal_list(flag, flags.value(flag, inline)?)?;
                let target = match flag {
                    "--graceful" => graceful.get_or_insert_with(Vec::new),
                    "--immediate" => immediate.get_or_insert_with(Vec::new),
                    _ => &mut ignore,
                };
                for signal in list {
                    if !target.contains(&signal) {
                        target.push(signal);
                    }
                }
            }
            _ => return usage(format!("unknown option {flag:?}")),
        }
    }
    if config.job_ms == 0 {
        return usage("--job-ms must be at least 1");
    }
    config.signals = if ignore_all {
        if graceful.is_some() || immediate.is_some() {
            return usage("--ignore-all cannot be combined with --graceful or --immediate");
        }
        SignalPolicy {
            graceful: Vec::new(),
            immediate: Vec::new(),
            repeat_is_immediate: false,
        }
    } else {
        resolve_signals(graceful, immediate, &ignore)?
    };
    config.signals.repeat_is_immediate = repeat_immediate;
    Ok(config)
}

/// Combines the signal lists. A list given on the command line overrides the default of
/// another list (`--immediate TERM` takes TERM away from the default graceful list), but
/// two explicit lists naming the same signal are an error.
fn resolve_signals(
    graceful: Option<Vec<Signal>>,
    immediate: Option<Vec<Signal>>,
    ignore: &[Signal],
) -> Result<SignalPolicy, UsageError> {
    let (graceful_given, immediate_given) = (graceful.is_some(), immediate.is_some());
    let mut graceful = graceful.unwrap_or_else(|| vec![Signal::TERM]);
    let mut immediate = immediate.unwrap_or_else(|| vec![Signal::INT]);
    if graceful_given && !immediate_given {
        immediate.retain(|s| !graceful.contains(s));
    }
    if immediate_given && !graceful_given {
        graceful.retain(|s| !immediate.contains(s));
    }
    if let Some(signal) = graceful.iter().find(|s| immediate.contains(s)) {
        return usage(format!("{signal} is both graceful and immediate"));
    }
    for signal in ignore {
        if graceful_given && graceful.contains(signal) {
            return usage(format!("{signal} is both graceful and ignored"));
        }
        if immediate_given && immediate.contains(signal) {
            return usage(format!("{signal} is both immediate and ignored"));
        }
    }
    graceful.retain(|s| !ignore.contains(s));
    immediate.retain(|s| !ignore.contains(s));
    Ok(SignalPolicy {
        graceful,
        immediate,
        repeat_is_immediate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a space-separated command line.
    fn parse_line(line: &str) -> Result<Command, UsageError> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&args)
    }

    /// Parses a `serve` command line and returns its configuration.
    fn serve(line: &str) -> ServeConfig {
        match parse_line(line) {
            Ok(Command::Serve(config)) => config,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    /// Signals by name.
    fn sigs(names: &[&str]) -> Vec<Signal> {
        names.iter().map(|n| Signal::parse(n).unwrap()).collect()
    }

    #[test]
    fn no_arguments_serve_with_defaults() {
        let config = serve("");
        assert_eq!(config, serve("serve"));
        assert_eq!(config.workers, 2);
        assert_eq!(config.job_ms, 1000);
        assert_eq!(config.linger_ms, 0);
        assert_eq!(config.exit_after_ms, None);
        assert_eq!(config.http_port, None);
        assert_eq!(config.state_dir, PathBuf::from("/run/test-service"));
        assert_eq!(config.signals.graceful, sigs(&["TERM"]));
        assert_eq!(config.signals.immediate, sigs(&["INT"]));
    }

    #[test]
    fn options_take_separate_or_inline_values() {
        let config = serve(
            "--workers 3 --job-ms=250 --linger-ms 40 --exit-after-ms=5000 --http-port 8080 \
             --state-dir=/tmp/x --graceful TERM,SIGQUIT --immediate=usr1",
        );
        assert_eq!(config.workers, 3);
        assert_eq!(config.job_ms, 250);
        assert_eq!(config.linger_ms, 40);
        assert_eq!(config.exit_after_ms, Some(5000));
        assert_eq!(config.http_port, Some(8080));
        assert_eq!(config.state_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.signals.graceful, sigs(&["TERM", "QUIT"]));
        assert_eq!(config.signals.immediate, sigs(&["USR1"]));
        assert_eq!(serve("serve --workers 0").workers, 0);
    }

    #[test]
    fn repeated_lists_accumulate_without_duplicates() {
        let config = serve("--graceful TERM --graceful QUIT,TERM,15");
        assert_eq!(config.signals.graceful, sigs(&["TERM", "QUIT"]));
    }

    #[test]
    fn explicit_lists_override_defaults() {
        let config = serve("--immediate TERM");
        assert_eq!(config.signals.graceful, sigs(&[]));
        assert_eq!(config.signals.immediate, sigs(&["TERM"]));

        let config = serve("--graceful INT,QUIT");
        assert_eq!(config.signals.graceful, sigs(&["INT", "QUIT"]));
        assert_eq!(config.signals.immediate, sigs(&[]));

        let config = serve("--ignore TERM,HUP");
        assert_eq!(config.signals.graceful, sigs(&[]));
        assert_eq!(config.signals.immediate, sigs(&["INT"]));

        let config = serve("--graceful none --immediate none");
        assert!(config.signals.graceful.is_empty() && config.signals.immediate.is_empty());
    }

    #[test]
    fn a_repeated_graceful_signal_may_mean_now() {
        assert!(serve("--repeat-immediate").signals.repeat_is_immediate);
        assert!(!serve("").signals.repeat_is_immediate);
        assert!(parse_line("--repeat-immediate=1").is_err());
    }

    #[test]
    fn ignore_all_ignores_everything() {
        let config = serve("--ignore-all");
        assert!(config.signals.graceful.is_empty());
        assert!(config.signals.immediate.is_empty());
        assert!(parse_line("--ignore-all --graceful TERM").is_err());
        assert!(parse_line("--ignore-all --immediate INT").is_err());
        assert!(parse_line("--ignore-all=yes").is_err());
    }

    #[test]
    fn conflicting_or_invalid_options_are_usage_errors() {
        for line in [
            "--graceful TERM --immediate TERM",
            "--graceful TERM --ignore TERM",
            "--immediate INT --ignore INT",
            "--graceful KILL",
            "--immediate STOP",
            "--ignore SEGV",
            "--graceful BOGUS",
            "--workers",
            "--workers two",
            "--workers -1",
            "--job-ms 0",
            "--http-port 70000",
            "--frobnicate",
            "serve extra",
            "launch",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} should be rejected");
        }
    }

    #[test]
    fn parses_subcommands() {
        let default_dir = PathBuf::from("/run/test-service");
        assert_eq!(
            parse_line("inflight"),
            Ok(Command::Inflight {
                state_dir: default_dir.clone()
            })
        );
        assert_eq!(
            parse_line("idle --state-dir /tmp/s"),
            Ok(Command::Idle {
                state_dir: PathBuf::from("/tmp/s")
            })
        );
        assert_eq!(parse_line("signal TERM"), Ok(Command::Signal(Signal::TERM)));
        assert_eq!(
            parse_line("signal sigterm"),
            Ok(Command::Signal(Signal::TERM))
        );
        assert_eq!(
            parse_line("signal KILL"),
            Ok(Command::Signal(Signal::parse("KILL").unwrap()))
        );
        assert_eq!(parse_line("help"), Ok(Command::Help));
        assert_eq!(parse_line("--help"), Ok(Command::Help));
        assert_eq!(parse_line("serve --workers 3 -h"), Ok(Command::Help));
        for line in [
            "signal",
            "signal TERM INT",
            "signal NOPE",
            "inflight --x",
            "help me",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} should be rejected");
        }
    }
}
