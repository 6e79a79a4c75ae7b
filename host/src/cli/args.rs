//! The command line's definition: every subcommand, argument and help text, and nothing else.
//!
//! It depends on clap and std only, so the build script can include it to generate the shell
//! completions and man pages (`host/build.rs`), which therefore always cover every subcommand.
//! Behaviour lives in the command modules (`stop_cmd`, `policy_cmd`, `author_cmd`,
//! `generate_cmd`, `recover_cmd`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::{parse_duration, parse_positive_duration};

/// The exit statuses in `quiesce --help`: a summary of README.md's table.
pub const EXIT_STATUS_HELP: &str = "\
Exit status (README.md, \"Exit status\", has the whole list):
  0  success: every target stopped gracefully (or was already stopped)
  1  problems: some service was escalated, SIGKILLed or fell back, or could not be stopped;
     plan --within: the worst case exceeds the window; policy check/test/eval: a policy is
     invalid, a scenario failed, no step
  2  invalid arguments, configuration or input: nothing was touched
  3  the environment failed (Docker daemon unreachable, unreadable policies directory,
     report not written)
quiesce run exits with its command's status.";

pub const EVAL_HELP: &str = r#"A context file (all fields optional; durations in ms):
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
    /// Colours: `auto` (on a terminal, unless NO_COLOR is set), `always` or `never`.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
    /// Print only the result: no live progress.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: every step as a log line (even on a terminal), what each policy wrote, and
    /// what the Docker client and wasmtime log (filter: QUIESCE_LOG, e.g. `bollard=trace`).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// stderr's log: `text` for people, or `json`: one JSON object per event (time, event,
    /// service, step, outcome...) for journald, ELK and other log shippers.
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        default_value = "text",
        env = "QUIESCE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// The format of stderr's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line and event.
    Json,
}

/// When to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (to anything but the empty string).
    Auto,
    /// Always, even through a pipe or with `NO_COLOR`.
    Always,
    /// Never.
    Never,
}

/// The version line: this build and the policy contract it speaks.
pub fn version() -> &'static str {
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
    /// Run a command as a container's main process (its PID 1), and stop it as its policy
    /// decides when the container is stopped (Kubernetes, Nomad, ECS, Podman, Docker).
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Show what `stop` would do, step by step, and the worst-case time; nothing is touched.
    Plan {
        /// Targets and options.
        #[command(flatten)]
        args: StopArgs,
    },
    /// Inspect and check shutdown policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print shell completions, write the man pages, or print a systemd unit for host shutdown.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Give back what earlier stops changed and did not give back (killed before they
    /// finished, or they left the container running): a restart policy left `no`, a systemd
    /// unit left held (`Restart=no`). Stops nothing.
    ///
    /// Each stop records what it changes in /run/quiesce (root; QUIESCE_STATE_DIR to choose);
    /// the next stop of the same container gives it back by itself, `plan` shows it.
    Recover(RecoverArgs),
}

/// `quiesce recover`.
#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    /// The engine's endpoint, as `docker -H`.
    #[arg(short = 'H', long = "host", value_name = "ENDPOINT")]
    pub host: Option<String>,
    /// The docker CLI context whose engine to use.
    #[arg(long, value_name = "NAME", conflicts_with = "host")]
    pub context: Option<String>,
}

/// `quiesce generate ...`
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Print the completion script for a shell (generated from this command line at build time).
    ///
    /// bash: `quiesce generate completions bash > /etc/bash_completion.d/quiesce`;
    /// zsh: into a directory of `$fpath` as `_quiesce`; fish: `~/.config/fish/completions/quiesce.fish`.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write the man pages (quiesce(1), quiesce-stop(1), ... one per subcommand) into a directory.
    Man {
        /// Where to write them, e.g. /usr/local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a systemd unit that runs `quiesce stop --all` before Docker stops its containers at
    /// host shutdown, with TimeoutStopSec derived from the deadline.
    SystemdUnit {
        /// The quiesce binary the unit runs.
        #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/quiesce")]
        binary: PathBuf,
        /// The configuration file whose `deadline` the unit is derived from
        /// [default: /etc/quiesce/quiesce.toml if it exists].
        #[arg(long, env = "QUIESCE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// The deadline of the shutdown run [default: the config's, or 30m].
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
        deadline: Option<Duration>,
    },
    /// Write a drop-in for each Kolla container unit (kolla-<name>-container.service) so that
    /// `systemctl stop` and `restart` (what kolla-ansible's handlers run) stop the container
    /// through quiesce, with TimeoutStopSec above its policy's worst case from `plan`.
    ///
    /// Then: `systemctl daemon-reload`. Regenerate after changing policies, settings or budgets.
    KollaDropins(KollaDropinsArgs),
}

/// `quiesce generate kolla-dropins`.
#[derive(Debug, Clone, Args)]
pub struct KollaDropinsArgs {
    /// The containers [default: every one a kolla-*-container.service unit runs].
    pub containers: Vec<String>,
    /// The quiesce binary the drop-ins run.
    #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/quiesce")]
    pub binary: PathBuf,
    /// Where the unit directories are written [default: /etc/systemd/system].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The configuration file the drop-ins' `quiesce stop` uses (and the plan here)
    /// [default: /etc/quiesce/quiesce.toml if it exists].
    #[arg(long, env = "QUIESCE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The engine's endpoint, as `docker -H`.
    #[arg(short = 'H', long = "host", value_name = "ENDPOINT")]
    pub host: Option<String>,
    /// The docker CLI context whose engine to use.
    #[arg(long, value_name = "NAME", conflicts_with = "host")]
    pub context: Option<String>,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The shells completions are generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

impl Shell {
    /// Every shell, in the order above.
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ];

    /// The shell's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Elvish => "elvish",
            Shell::Powershell => "powershell",
        }
    }
}

/// `quiesce policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the available policies: built-ins, the policies directory, and the configured
    /// policies from registries (verified in the store; those withheld are named).
    List {
        /// Where the policies are.
        #[command(flatten)]
        engine: EngineArgs,
        /// The configuration and the store of pulled policies.
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a policy crate that builds and passes its tests as generated.
    New(NewArgs),
    /// Build a policy crate to a wasm component (and optionally install it).
    Build(BuildArgs),
    /// Run scenario files against a compiled policy through the real executor, in virtual time.
    Test(TestArgs),
    /// One decision for a given context (JSON): the step, the policy's log, time and memory.
    #[command(after_help = EVAL_HELP)]
    Eval(EvalArgs),
    /// Decision latency (p50, p99, max) and peak memory, a fresh instance per decision.
    Bench(BenchArgs),
    /// Push a policy component to an OCI registry; prints REF@sha256:... to pin it by.
    Push(PushArgs),
    /// Sign the policy a reference names: a cosign-compatible key-based signature
    /// (the sha256-<hex>.sig tag), checked by `verify` and `cosign verify --key`.
    Sign(SignArgs),
    /// Pull policies into the local store, each verified by the trust rules first; without a
    /// reference, every [[registry.policies]] entry of the configuration. A failed pull keeps
    /// the last verified version.
    Pull(PullArgs),
    /// Verify the signatures of the policy a reference names: with --key, by those keys
    /// (like `cosign verify --key`); otherwise by the configuration's trust rules.
    Verify(VerifyArgs),
    /// Write a new ECDSA P-256 key pair for signing policies (PKCS#8 PEM; cosign reads both).
    Keygen(KeygenArgs),
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
    /// Where compiled policies are cached [default: $XDG_CACHE_HOME/quiesce, ~/.cache/quiesce, or for
    /// root without HOME (systemd units) /var/cache/quiesce].
    #[arg(long, env = "QUIESCE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not cache compiled policies.
    #[arg(long)]
    pub no_cache: bool,
    /// The most memory one policy instance may use, in MiB [default: 64, or the config's].
    #[arg(long, env = "QUIESCE_POLICY_MEMORY_MIB", value_name = "MIB")]
    pub policy_memory_mib: Option<usize>,
    /// The longest one policy call may run, e.g. 100ms [default: 100ms, or the config's].
    #[arg(long, env = "QUIESCE_POLICY_TIMEOUT", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub policy_timeout: Option<Duration>,
}

/// Where registry settings, trust rules and pulled policies are.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// The configuration file: [registry] (insecure hosts, the store, the policies by
    /// reference) and [trust] [default: /etc/quiesce/quiesce.toml if it exists].
    #[arg(long, env = "QUIESCE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store of pulled policies [default: the config's, else /var/lib/quiesce/store for
    /// root, else $XDG_DATA_HOME/quiesce/store or ~/.local/share/quiesce/store].
    #[arg(long, env = "QUIESCE_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// `quiesce policy push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The policy component (.wasm).
    pub file: PathBuf,
    /// Where to push it: REGISTRY/REPOSITORY:TAG.
    pub reference: String,
    /// The configuration and the limits the policy is checked under before it is pushed.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The policy engine's options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The policy to sign: REGISTRY/REPOSITORY:TAG or ...@sha256:... (the digest it resolves
    /// to is what is signed).
    pub reference: String,
    /// The private key: PKCS#8 PEM, ECDSA P-256 (`quiesce policy keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// An annotation to sign with the digest, KEY=VALUE (repeatable); trust rules may require
    /// it.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// The configuration ([registry] insecure hosts).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `quiesce policy pull`.
#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// The policy to pull [default: every [[registry.policies]] entry of the configuration].
    pub reference: Option<String>,
    /// The configuration (trust rules, insecure hosts, policies) and the store.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The policy engine's options (a pulled component is loaded once before it is stored).
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The policy: REGISTRY/REPOSITORY:TAG or ...@sha256:....
    pub reference: String,
    /// A public key (PEM) that must have signed it (repeatable: all must have); without
    /// --key, the configuration's trust rules decide.
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
    /// The configuration.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `quiesce policy keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (private, mode 0600) and PREFIX.pub; neither may exist.
    #[arg(long, value_name = "PREFIX", default_value = "quiesce")]
    pub out: PathBuf,
}

/// `quiesce policy new`.
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The policy's name (lowercase letters, digits, `-`); also the crate's directory.
    pub name: String,
    /// Where to create the crate's directory [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `quiesce policy build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The policy crate's directory.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Also copy the component into this policies directory.
    #[arg(long, value_name = "DIR")]
    pub install: Option<PathBuf>,
}

/// `quiesce policy test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// A scenario file, or a directory of them (`*.toml`).
    #[arg(long, value_name = "PATH")]
    pub scenarios: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// The context, as JSON (the SDK's `Context`; `quiesce policy eval --help` for an example).
    #[arg(long, value_name = "FILE")]
    pub context: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// The context to decide on (JSON) [default: a service mid-sequence].
    #[arg(long, value_name = "FILE")]
    pub context: Option<PathBuf>,
    /// How many decisions to measure.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub const RUN_HELP: &str = "\
Examples (as a container's entrypoint):
  ENTRYPOINT [\"/quiesce\", \"run\", \"--policy\", \"nginx\", \"--grace-period\", \"30s\", \"--\"]
  CMD [\"nginx\", \"-g\", \"daemon off;\"]

The stop signals (TERM, INT) start the policy's sequence against the command; every other
signal is passed on to it unchanged. The grace period is the orchestrator's own
(terminationGracePeriodSeconds, kill_timeout, docker stop -t): quiesce ends its whole sequence,
its own SIGKILL included, before it. Exit status: the command's (128 + N after signal N);
2 for invalid arguments, an unknown policy or settings it refuses; 127 when the command cannot
be found.";

/// `quiesce run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
    /// The policy that stops the command [default: the pod's `quiesce.policy` label or
    /// annotation, else a policy whose image patterns match --image or the command's name,
    /// else `default`]. A policy of the policies directory must be in `<name>.wasm` there.
    #[arg(long, env = "QUIESCE_POLICY", value_name = "NAME")]
    pub policy: Option<String>,
    /// The policy's settings (a JSON object); the pod's `quiesce.settings` overrides them
    /// key by key.
    #[arg(long, env = "QUIESCE_SETTINGS", value_name = "JSON")]
    pub settings: Option<String>,
    /// A Kubernetes downward-API file of the pod's labels or annotations (`key="value"`
    /// lines), or a directory holding `labels` and `annotations`; repeatable.
    #[arg(
        long,
        env = "QUIESCE_POD_INFO",
        value_name = "PATH",
        value_delimiter = ':'
    )]
    pub pod_info: Vec<PathBuf>,
    /// How long the orchestrator waits before its SIGKILL (terminationGracePeriodSeconds,
    /// a Nomad kill_timeout, docker stop -t) [default: 10s, docker stop's].
    #[arg(long, env = "QUIESCE_GRACE_PERIOD", value_name = "DURATION", value_parser = parse_duration)]
    pub grace_period: Option<Duration>,
    /// The signals that start the stop; every other signal is passed on to the command.
    #[arg(
        long,
        env = "QUIESCE_STOP_SIGNALS",
        value_name = "SIGNALS",
        value_delimiter = ',',
        default_value = "TERM,INT"
    )]
    pub stop_signals: Vec<String>,
    /// Deliver signals to the command's whole process group instead of the command alone.
    #[arg(long, env = "QUIESCE_SIGNAL_GROUP")]
    pub signal_group: bool,
    /// When the command exits, leave the processes it left behind (daemonized or `setsid`
    /// workers, orphans) to the kernel, which SIGKILLs them as quiesce exits. By default they
    /// get the stop signal, the rest of the budget to end, then SIGKILL, and each is reported.
    #[arg(long, env = "QUIESCE_LEAVE_DESCENDANTS")]
    pub leave_descendants: bool,
    /// The service's name in reports [default: $HOSTNAME, else the command's name].
    #[arg(long, env = "QUIESCE_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// The image reference, for policies' image patterns and the facts a policy sees.
    #[arg(long, env = "QUIESCE_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,
    /// Write the stop's JSON report (a `quiesce stop` service entry) to this file (`-`:
    /// stderr).
    #[arg(long, env = "QUIESCE_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Check the policy and its settings (compiling it into the cache), then what the command
    /// hears: it is started for at most --check-for, its signal handlers are read, and it is
    /// SIGKILLed. Exit 0 when valid (warnings on stderr), 2 when not.
    #[arg(long)]
    pub check: bool,
    /// How long --check lets the command start before reading its signal handlers (it ends
    /// sooner once every signal of the policy's sequence is handled); 0: the command is not
    /// started.
    #[arg(long, env = "QUIESCE_CHECK_FOR", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub check_for: Duration,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The configuration's registry policies and trust rules, and the store an image build
    /// step or an init container pulled them into (`quiesce policy pull`); `quiesce run`
    /// never pulls.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Options shared by `stop` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Containers to stop, by name or id.
    pub containers: Vec<String>,
    /// Every running container.
    #[arg(long)]
    pub all: bool,
    /// Containers with this label (`KEY` or `KEY=VALUE`); repeatable, all must match.
    #[arg(long = "label", value_name = "KEY[=VALUE]")]
    pub labels: Vec<String>,
    /// The containers of this compose project.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// The engine's endpoint, as `docker -H`, e.g. unix:///run/podman/podman.sock [default: as
    /// the docker CLI chooses: --context, DOCKER_HOST, DOCKER_CONTEXT, its current context, the
    /// local socket].
    #[arg(short = 'H', long = "host", value_name = "ENDPOINT")]
    pub host: Option<String>,
    /// The docker CLI context whose engine to use, as `docker --context`.
    #[arg(long, value_name = "NAME", conflicts_with = "host")]
    pub context: Option<String>,
    /// The configuration file [default: /etc/quiesce/quiesce.toml if it exists].
    #[arg(long, env = "QUIESCE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How many services stop at once [default: 50, or the config's].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// The deadline for the whole run, e.g. 15m [default: 30m, or the config's].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub deadline: Option<Duration>,
    /// Each service's budget unless a rule sets one, e.g. 2m [default: 5m, or the config's].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub budget: Option<Duration>,
    /// Print the JSON report on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also draw the run as a timeline picture (SVG: one row per service, its phases on a
    /// shared time axis, the deadline, the outcomes); open it in a browser.
    #[arg(long, value_name = "FILE.svg")]
    pub timeline: Option<PathBuf>,
    /// Warn when the worst case exceeds this enclosing limit (systemd's TimeoutStopSec,
    /// dockerd's --shutdown-timeout), e.g. 90s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub within: Option<Duration>,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}
