//! `quiesce generate`: shell completions and man pages (generated from the command line's
//! definition by the build script, `host/build/cli_docs.rs`, and embedded here), and the systemd
//! unit that runs quiesce at host shutdown.

use std::path::Path;
use std::time::Duration;

use super::{Failure, GenerateCommand, KollaDropinsArgs, exit};
use crate::model::config::Config;
use crate::platform::paths::SYSTEM_CACHE_DIR;
use crate::platform::systemd::{Systemd, kolla_drop_in, kolla_unit_name};
use crate::prepare::RunRequest;
use crate::runtime::Selector;

include!(concat!(env!("OUT_DIR"), "/cli_docs.rs"));

/// What the shutdown unit's stop timeout adds to the deadline: process start-up, connecting to
/// the engine, loading policies, writing the report.
pub const UNIT_STOP_MARGIN: Duration = Duration::from_secs(30);

/// Where the unit writes the report of the shutdown run.
const UNIT_REPORT: &str = "/var/log/quiesce/shutdown-report.json";

/// `quiesce generate ...`
pub fn generate(command: &GenerateCommand) -> Result<u8, Failure> {
    match command {
        GenerateCommand::Completions { shell } => {
            let (_, script) = COMPLETIONS
                .iter()
                .find(|(name, _)| *name == shell.name())
                .expect("the build generates completions for every shell");
            crate::output::stdout::print_out(script);
        }
        GenerateCommand::Man { dir } => {
            let write = |name: &str, page: &str| std::fs::write(dir.join(name), page);
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    MAN_PAGES
                        .iter()
                        .try_for_each(|(name, page)| write(name, page))
                })
                .map_err(|error| {
                    Failure::environment(format!(
                        "cannot write the man pages to {}: {error}; choose a writable directory with --dir",
                        dir.display()
                    ))
                })?;
            for (name, _) in MAN_PAGES {
                crate::output::stdout::print_line!("{}", dir.join(name).display());
            }
        }
        GenerateCommand::SystemdUnit {
            binary,
            config,
            deadline,
        } => {
            let config =
                Config::load(config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
            let deadline = config.run_deadline(*deadline);
            crate::output::stdout::print_out(&systemd_unit(binary, deadline));
        }
        GenerateCommand::KollaDropins(args) => kolla_dropins(args)?,
    }
    Ok(exit::SUCCESS)
}

/// `quiesce generate kolla-dropins`: plans every Kolla container's stop and writes its unit's
/// drop-in.
fn kolla_dropins(args: &KollaDropinsArgs) -> Result<(), Failure> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let systemd = Systemd::from_vars(&super::vars());
    let containers = if args.containers.is_empty() {
        systemd.kolla_containers()
    } else {
        args.containers.clone()
    };
    if containers.is_empty() {
        return Err(Failure::invalid(format!(
            "no kolla-*-container.service unit below {}: name the containers, or run this on a Kolla host",
            systemd.root.display()
        )));
    }
    let request = RunRequest {
        selector: Selector {
            containers: containers.clone(),
            ..Selector::default()
        },
        systemd: systemd.clone(),
        ..RunRequest::default()
    };
    // The policies are loaded through the cache the drop-ins' stops use (system units have no
    // HOME: /var/cache/quiesce for root), so those stops find them compiled.
    let mut engine = args.engine.clone();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && engine.cache_dir.is_none() && !engine.no_cache {
        engine.cache_dir = Some(SYSTEM_CACHE_DIR.into());
    }
    let runtime = super::connect::tokio_runtime()?;
    let mut prepared = runtime.block_on(async {
        let target = super::connect::Target {
            host: args.host.clone(),
            context: args.context.clone(),
            engine: &engine,
            config: &config,
        };
        let (docker, mut prepared) = super::connect::connect_and_prepare(&target, &request).await?;
        crate::prepare::needs::hear_through_engine(&docker, &mut prepared.jobs).await;
        Ok::<_, Failure>(prepared)
    })?;
    crate::prepare::needs::warn_about_needs(&mut prepared);
    let plan = crate::prepare::plan::plan(&prepared, None);
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| systemd.root.join("etc/systemd/system"));
    for worst in &plan.worst {
        let unit = kolla_unit_name(&worst.name);
        let drop_in = kolla_drop_in(
            &stop_command(args),
            &worst.name,
            &worst.policy.name,
            Duration::from_millis(worst.elapsed_ms),
            UNIT_STOP_MARGIN,
        );
        let path = dir.join(format!("{unit}.d")).join("quiesce.conf");
        std::fs::create_dir_all(path.parent().expect("a drop-in has a directory"))
            .and_then(|()| std::fs::write(&path, drop_in))
            .map_err(|error| {
                Failure::environment(format!(
                    "cannot write {}: {error}; choose a writable directory with --dir",
                    path.display()
                ))
            })?;
        crate::output::stdout::print_line!(
            "{}: worst case {} with policy {}",
            path.display(),
            humantime::format_duration(Duration::from_millis(worst.elapsed_ms)),
            worst.policy.name
        );
    }
    crate::output::stdout::print_line!("then: systemctl daemon-reload");
    Ok(())
}

/// The `quiesce stop` a Kolla drop-in runs, up to the container's name: the binary, and the
/// configuration and engine this command was given (a Podman host's API socket, say).
fn stop_command(args: &KollaDropinsArgs) -> Vec<String> {
    let mut words = vec![args.binary.display().to_string(), "stop".to_string()];
    if let Some(config) = &args.config {
        words.extend(["--config".to_string(), config.display().to_string()]);
    }
    if let Some(host) = &args.host {
        words.extend(["-H".to_string(), host.clone()]);
    }
    if let Some(context) = &args.context {
        words.extend(["--context".to_string(), context.clone()]);
    }
    words
}

/// The systemd unit that stops every container gracefully before docker.service stops, for a
/// run bounded by `deadline`.
pub fn systemd_unit(binary: &Path, deadline: Duration) -> String {
    let binary = binary.display();
    let deadline_text = humantime::format_duration(deadline).to_string();
    let timeout = systemd_timespan(deadline + UNIT_STOP_MARGIN);
    let margin = UNIT_STOP_MARGIN.as_secs();
    format!(
        "\
# quiesce.service: stops this host's containers gracefully, each as its policy decides,
# before the Docker daemon stops them at shutdown.
# Generated by `quiesce generate systemd-unit` for a deadline of {deadline_text}: regenerate it
# after changing `deadline` in /etc/quiesce/quiesce.toml, so TimeoutStopSec still covers it.
#
# Ordering: at shutdown systemd stops units in the reverse of their start order. This unit
# starts After=docker.service and containerd.service, so it is stopped before them: its
# ExecStop runs `quiesce stop --all` while dockerd still runs, and docker.service (whose
# dockerd would give every container its stop signal and SIGKILL it 10 s later) is stopped
# only once quiesce has returned. TimeoutStopSec is the deadline plus {margin} s for start-up
# and the report; quiesce itself never runs past the deadline.
#
# Install: copy to /etc/systemd/system/quiesce.service, then
#   systemctl daemon-reload && systemctl enable --now quiesce.service
# Beware: `systemctl stop quiesce` (and restart) stops every running container, gracefully.
# Restarting docker.service alone does not involve this unit.

[Unit]
Description=Graceful shutdown of containers by their policies (quiesce)
Wants=docker.service
After=docker.service containerd.service

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=QUIESCE_CACHE_DIR=/var/cache/quiesce
# The compile cache holds native code: private (systemd sets this mode at every start).
CacheDirectory=quiesce
CacheDirectoryMode=0700
LogsDirectory=quiesce
# At boot: load and check every policy, filling the compile cache, so the shutdown run
# compiles nothing. A broken policy file is reported in the journal but must not disable the
# shutdown run, hence the leading `-`.
ExecStart=-{binary} policy check
ExecStop={binary} stop --all --deadline {deadline_text} --report {UNIT_REPORT}
# Exit status 1: some service needed SIGKILL or the fallback sequence. That is recorded in
# the report and the journal; it is no reason to fail the shutdown.
SuccessExitStatus=1
TimeoutStopSec={timeout}

[Install]
WantedBy=multi-user.target
"
    )
}

/// A duration in systemd's time-span syntax, e.g. `30min 30s`.
fn systemd_timespan(duration: Duration) -> String {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    match (seconds / 60, seconds % 60) {
        (0, seconds) => format!("{seconds}s"),
        (minutes, 0) => format!("{minutes}min"),
        (minutes, seconds) => format!("{minutes}min {seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_timeout_covers_the_deadline_and_the_margin() {
        let unit = systemd_unit(Path::new("/usr/bin/quiesce"), Duration::from_secs(15 * 60));
        assert!(unit.contains("\nTimeoutStopSec=15min 30s\n"), "{unit}");
        assert!(unit.contains("\nExecStop=/usr/bin/quiesce stop --all --deadline 15m "));
        assert_eq!(systemd_timespan(Duration::from_millis(90_500)), "1min 31s");
        assert_eq!(systemd_timespan(Duration::from_secs(45)), "45s");
        assert_eq!(systemd_timespan(Duration::from_secs(600)), "10min");
    }

    #[test]
    fn the_unit_in_contrib_is_the_one_generated_for_the_defaults() {
        let generated = systemd_unit(
            Path::new("/usr/local/bin/quiesce"),
            crate::model::config::DEFAULT_DEADLINE,
        );
        let shipped = include_str!("../../../contrib/systemd/quiesce.service");
        assert_eq!(
            shipped, generated,
            "contrib/systemd/quiesce.service is stale: regenerate it with `quiesce generate systemd-unit > contrib/systemd/quiesce.service`"
        );
    }
}
