//! The exit statuses, as README.md's "Exit status" table lists them (the one place they are
//! documented): the table names exactly the statuses the CLI defines, and each status is
//! reached for real by every command family that documents it, against a real Docker Engine.

use std::process::Output;

use quiesce::cli::exit;
use quiesce_tests::dir_with;
use quiesce_tests::docker::Container;

fn run(args: &[&str]) -> Output {
    quiesce_tests::quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env_remove("QUIESCE_CONFIG")
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .output()
        .expect("run quiesce")
}

/// Runs `args` and asserts the status; `why` names the documented row.
fn expect(status: u8, why: &str, args: &[&str]) {
    let output = run(args);
    assert_eq!(
        output.status.code(),
        Some(i32::from(status)),
        "{why}: `quiesce {}` should exit {status}\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_readme_lists_exactly_the_statuses_the_cli_defines() {
    let readme = std::fs::read_to_string(quiesce_tests::workspace().join("README.md")).unwrap();
    let section = readme
        .split("## Exit status")
        .nth(1)
        .expect("README.md has an `Exit status` section");
    let section = section.split("\n## ").next().unwrap();
    let listed: Vec<u8> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" |").next()?.trim().parse().ok())
        .collect();
    let defined = [
        exit::SUCCESS,
        exit::PROBLEMS,
        exit::INVALID_INPUT,
        exit::ENVIRONMENT,
    ];
    assert_eq!(listed, defined);
    // `quiesce --help` summarises the same statuses.
    for status in defined {
        assert!(
            quiesce::cli::EXIT_STATUS_HELP.contains(&format!("\n  {status}  ")),
            "--help does not list exit status {status}"
        );
    }
}

#[test]
fn every_documented_status_is_reached_by_each_command_family() {
    let obedient = Container::run("exit-obedient", &[], &["--workers", "0"]);
    let stubborn = Container::run("exit-stubborn", &[], &["--ignore-all"]);
    let broken = dir_with(&[("broken.wasm", b"not a component")]);
    let broken_dir = broken.path().to_str().unwrap();
    let failing_scenario = dir_with(&[(
        "wrong.toml",
        br#"[[scenario]]
name = "expects a signal nginx never sends"
[scenario.service]
signals = { SIGQUIT = { exit_after = "1s" } }
[scenario.expect]
signals = ["SIGUSR2"]
"#,
    )]);
    let bad_config = dir_with(&[("quiesce.toml", b"budget = [")]);
    let bad_config_file = bad_config.path().join("quiesce.toml");

    // 0: success.
    expect(exit::SUCCESS, "policy list", &["policy", "list"]);
    expect(
        exit::SUCCESS,
        "policy check of the built-ins",
        &["policy", "check"],
    );
    expect(exit::SUCCESS, "a plan", &["plan", &obedient.name]);
    expect(exit::SUCCESS, "a graceful stop", &["stop", &obedient.name]);
    expect(exit::SUCCESS, "already stopped", &["stop", &obedient.name]);

    // 1: the command ran and found problems.
    expect(
        exit::PROBLEMS,
        "policy check: a policy is invalid",
        &["policy", "check", broken_dir],
    );
    expect(
        exit::PROBLEMS,
        "policy test: a scenario failed",
        &[
            "policy",
            "test",
            "nginx",
            "--scenarios",
            failing_scenario.path().to_str().unwrap(),
        ],
    );
    expect(
        exit::PROBLEMS,
        "plan --within: the worst case exceeds the window",
        &["plan", &stubborn.name, "--within", "1s"],
    );
    expect(
        exit::PROBLEMS,
        "stop: a service was SIGKILLed",
        &["stop", &stubborn.name, "--budget", "2s"],
    );

    // 2: invalid input; nothing touched.
    expect(
        exit::INVALID_INPUT,
        "an unknown container",
        &["stop", "quiesce-no-such-container"],
    );
    expect(
        exit::INVALID_INPUT,
        "a name no container can have (an unset shell variable)",
        &["stop", ""],
    );
    expect(
        exit::INVALID_INPUT,
        "a budget of 0",
        &["stop", &obedient.name, "--budget", "0"],
    );
    expect(
        exit::INVALID_INPUT,
        "one file for the report and the timeline",
        &[
            "stop",
            &obedient.name,
            "--report",
            "/tmp/quiesce-same-file",
            "--timeline",
            "/tmp/quiesce-same-file",
        ],
    );
    expect(
        exit::INVALID_INPUT,
        "a malformed config",
        &[
            "stop",
            "--config",
            bad_config_file.to_str().unwrap(),
            "--all",
        ],
    );
    expect(
        exit::INVALID_INPUT,
        "an unknown policy",
        &["policy", "eval", "no-such-policy", "--context", "/dev/null"],
    );

    // 3: the environment failed.
    expect(
        exit::ENVIRONMENT,
        "an unreachable daemon",
        &[
            "stop",
            "-H",
            "unix:///nonexistent/docker.sock",
            "some-container",
        ],
    );
    expect(
        exit::ENVIRONMENT,
        "an unreadable policies directory",
        &["policy", "list", "--policies", "/nonexistent/dir"],
    );
}

/// Runs `args` with stdout going to `stdout`.
fn run_into(args: &[&str], stdout: std::process::Stdio) -> Output {
    quiesce_tests::quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env_remove("QUIESCE_CONFIG")
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .stdout(stdout)
        .output()
        .expect("run quiesce")
}

#[test]
fn a_document_that_cannot_be_written_is_exit_3_and_a_closed_pipe_is_not() {
    let full = || std::process::Stdio::from(std::fs::File::create("/dev/full").unwrap());
    // Every command that prints a document, its output lost to a full device: 3, said.
    let container = Container::run("exit-full", &[], &["--workers", "0"]);
    for args in [
        vec!["policy", "list", "--json"],
        vec!["policy", "list"],
        vec!["plan", "--json", &container.name],
        vec!["generate", "systemd-unit"],
        vec!["stop", "--json", &container.name],
        vec!["--help"],
        vec!["--version"],
    ] {
        let output = run_into(&args, full());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit::ENVIRONMENT)),
            "`quiesce {}`: {stderr}",
            args.join(" ")
        );
        assert!(
            stderr.contains("cannot write to stdout") && stderr.contains("No space left"),
            "`quiesce {}`: {stderr}",
            args.join(" ")
        );
    }
    // The stop itself was done: only its report was lost.
    assert!(!container.running(), "the stop did its work");

    // A reader that went away (`| head`) is the reader's choice: 0. Its end of the pipe is
    // closed before quiesce starts, so every write meets the closed pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = run_into(&["policy", "list", "--json"], writer.into());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = run_into(&["--help"], writer.into());
    assert_eq!(output.status.code(), Some(0), "--help into a closed pipe");
}
