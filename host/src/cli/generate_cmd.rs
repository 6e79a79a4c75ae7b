//! `quiesce generate`: shell completions and man pages (generated from the command line's
//! definition by the build script, `host/build/cli_docs.rs`, and embedded here), the systemd
//! unit that runs quiesce at host shutdown (`platform::systemd::shutdown_unit`) and Kolla's
//! drop-ins.

use std::time::Duration;

use super::{Failure, GenerateCommand, KollaDropinsArgs, exit};
use crate::model::config::Config;
use crate::platform::paths::SYSTEM_CACHE_DIR;
use crate::platform::systemd::unit_file::fits_a_command_line;
use crate::platform::systemd::{
    Systemd, UNIT_STOP_MARGIN, kolla_drop_in, kolla_unit_name, systemd_unit,
};
use crate::prepare::RunRequest;
use crate::runtime::Selector;

include!(concat!(env!("OUT_DIR"), "/cli_docs.rs"));

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
            unit_binary(binary)?;
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
    unit_binary(&args.binary)?;
    if let Some(word) = stop_command(args)
        .into_iter()
        .find(|word| !fits_a_command_line(word))
    {
        return Err(Failure::invalid(format!(
            "{word:?} cannot go into a unit's command line: it holds a control character (a newline, a tab)"
        )));
    }
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

/// Refuses a `--binary` a unit cannot run: systemd wants an absolute path, and a control
/// character (a newline) would end the command line and start a line of its own.
fn unit_binary(binary: &std::path::Path) -> Result<(), Failure> {
    let text = binary.display().to_string();
    if binary.is_absolute() && fits_a_command_line(&text) {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "--binary {text:?} cannot go into a unit: give an absolute path without control characters (newlines, tabs)"
        )))
    }
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
