//! What operators plug quiesce into: shell completions and man pages generated from the
//! command line's definition, the systemd unit for host shutdown (checked by
//! `systemd-analyze verify`), and colours (`--color`, `NO_COLOR`).

use std::process::Output;

use clap::CommandFactory;
use quiesce::cli::{COMPLETIONS, Cli, MAN_PAGES};
use quiesce_tests::quiesce;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = quiesce(crate::quiesce_bin(), &crate::cache_dir());
    command.env_remove("NO_COLOR").env_remove("QUIESCE_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.args(args).output().expect("run quiesce")
}

/// Every command and subcommand as its path (`["policy", "list"]`), with its long options.
fn commands() -> Vec<(Vec<String>, Vec<String>)> {
    fn walk(command: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
        let options = command
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_string))
            .collect();
        out.push((path.clone(), options));
        for sub in command.get_subcommands() {
            let mut sub_path = path.clone();
            sub_path.push(sub.get_name().to_string());
            walk(sub, sub_path, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn completions_cover_every_subcommand_and_option_in_every_shell() {
    let commands = commands();
    assert!(commands.len() >= 15, "{commands:?}");
    let shells: Vec<&str> = COMPLETIONS.iter().map(|(shell, _)| *shell).collect();
    assert_eq!(shells, ["bash", "zsh", "fish", "elvish", "powershell"]);
    for (shell, script) in COMPLETIONS {
        for (path, options) in &commands {
            if let Some(name) = path.last() {
                assert!(
                    script.contains(name.as_str()),
                    "{shell} completions lack `{}`",
                    path.join(" ")
                );
            }
            for option in options {
                assert!(
                    script.contains(&format!("--{option}"))
                        || script.contains(&format!("-l {option}")),
                    "{shell} completions lack `{} --{option}`",
                    path.join(" ")
                );
            }
        }
    }
    // The binary prints the generated script.
    let output = run(&["generate", "completions", "bash"], &[]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), COMPLETIONS[0].1);
}

#[test]
fn there_is_a_man_page_for_every_command_with_all_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &["generate", "man", "--dir", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (path, options) in commands() {
        let name = std::iter::once("quiesce".to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        let file = format!("{name}.1");
        let page = std::fs::read_to_string(dir.path().join(&file))
            .unwrap_or_else(|error| panic!("no man page {file}: {error}"));
        assert!(MAN_PAGES.iter().any(|(embedded, _)| *embedded == file));
        assert!(
            page.starts_with(".ie") || page.contains(".TH"),
            "{file} is not a man page"
        );
        for option in options {
            // roff escapes dashes: `\-\-timeline`.
            assert!(
                page.contains(&format!("\\-\\-{}", option.replace('-', "\\-"))),
                "{file} lacks --{option}"
            );
        }
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify_and_covers_the_configured_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quiesce.toml");
    std::fs::write(&config, "deadline = \"15m\"\n").unwrap();
    let output = run(
        &[
            "generate",
            "systemd-unit",
            "--binary",
            crate::quiesce_bin().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let unit = String::from_utf8(output.stdout).unwrap();
    // The deadline comes from the config, and the stop timeout covers it with the margin.
    assert!(unit.contains(" stop --all --deadline 15m "), "{unit}");
    assert!(unit.contains("\nTimeoutStopSec=15min 30s\n"), "{unit}");
    assert!(
        unit.contains("\nAfter=docker.service containerd.service\n"),
        "{unit}"
    );
    let path = dir.path().join("quiesce.service");
    std::fs::write(&path, &unit).unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package `systemd`) must be installed; scripts/test installs it");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn colours_follow_the_flag_and_no_color() {
    // An error is coloured on stderr when colours are on.
    let error_args = |color: &'static str| {
        [
            "--color",
            color,
            "plan",
            "--config",
            "/nonexistent/quiesce.toml",
            "x",
        ]
    };
    let coloured = |output: &Output| String::from_utf8_lossy(&output.stderr).contains("\x1b[");
    let always = run(&error_args("always"), &[]);
    assert_eq!(always.status.code(), Some(2));
    assert!(
        coloured(&always),
        "{}",
        String::from_utf8_lossy(&always.stderr)
    );
    // `always` beats NO_COLOR; `never` and `auto` through a pipe print no escape codes.
    assert!(coloured(&run(&error_args("always"), &[("NO_COLOR", "1")])));
    assert!(!coloured(&run(&error_args("never"), &[])));
    assert!(!coloured(&run(&error_args("auto"), &[])));
    let plain = run(&error_args("never"), &[]);
    assert!(
        String::from_utf8_lossy(&plain.stderr).starts_with("quiesce: error: "),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    // An unknown colour choice is a usage error (exit 2) naming the valid ones.
    let bad = run(&["--color", "sometimes", "policy", "list"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("always"));
}

#[test]
fn quiet_and_verbose_are_exclusive() {
    let output = run(&["-q", "-v", "policy", "list"], &[]);
    assert_eq!(output.status.code(), Some(2));
}
