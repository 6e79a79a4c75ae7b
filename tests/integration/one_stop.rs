//! One stop per container, whoever asks, and nothing undone by a killed stop or a daemon
//! restart (issue 29), against real engines: two `quiesce stop`s of one container at once, a
//! stop SIGKILLed mid-sequence followed by `plan`, another stop and `quiesce recover`, and
//! containers of every restart policy stopped by quiesce and by `docker stop` before a real
//! daemon restart.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use quiesce_tests::docker::{Container, PrivateDaemon, PrivatePodman5, docker_ok};
use quiesce_tests::{dir_with, fixtures, quiesce, wasm};
use serde_json::Value;

/// Generous: a cold compile cache makes a debug quiesce compile the built-ins first.
const STEP_SEEN: Duration = Duration::from_secs(300);

/// `quiesce ARGS` with its stop records in `state` (each test its own, so no test recovers
/// another's records).
fn quiesce_in(state: &Path, args: &[&str]) -> Command {
    let mut command = quiesce(crate::quiesce_bin(), &crate::cache_dir());
    command
        .env("QUIESCE_STATE_DIR", state)
        .env_remove("QUIESCE_CONFIG")
        .args(args);
    command
}

fn spawn_stop(state: &Path, container: &str) -> Child {
    quiesce_in(state, &["stop", container, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run quiesce")
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn codes(service: &Value) -> Vec<String> {
    service["warnings"]
        .as_array()
        .map(|warnings| {
            warnings
                .iter()
                .filter_map(|w| w["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_stops_of_one_container_at_once_signal_it_once_and_report_one_outcome() {
    let state = tempfile::tempdir().unwrap();
    // oslo.service's behaviour: the first SIGTERM drains, a second one means "now".
    let container = Container::run(
        "twice",
        &["--restart", "always"],
        &["--job-ms", "3000", "--repeat-immediate"],
    );
    container.wait_for_log("started job", Duration::from_secs(10));
    let first = spawn_stop(state.path(), &container.name);
    container.wait_for_log("graceful: draining", STEP_SEEN);
    let second = quiesce_in(state.path(), &["stop", &container.name, "--json"])
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let (first, second) = (report(&first), report(&second));
    let (mine, theirs) = (&first["services"][0], &second["services"][0]);
    assert_eq!(mine["outcome"], "graceful", "{first:#}");
    assert_eq!(theirs["outcome"], "graceful", "{second:#}");
    assert_eq!(theirs["exit_code"], 0);
    assert!(theirs["steps"].as_array().unwrap().is_empty(), "{second:#}");
    assert!(theirs["stopped_by"]["pid"].as_u64().is_some(), "{second:#}");
    assert!(mine["stopped_by"].is_null());
    // The second changed nothing, and read the restart policy as the container's own.
    assert!(theirs["restart_policy"].is_null(), "{second:#}");
    assert_eq!(mine["restart_policy"]["original"], "always", "{first:#}");
    // One signal, nothing cut.
    let logs = container.logs();
    assert_eq!(logs.matches("signal SIGTERM").count(), 1, "{logs}");
    assert!(logs.contains("abandoned=0"), "{logs}");
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
}

/// Starts a stop of `container` and SIGKILLs it once the service is draining, with the
/// container's restart policy turned off by it.
fn killed_stop(state: &Path, container: &Container) {
    let mut stop = spawn_stop(state, &container.name);
    container.wait_for_log("graceful: draining", STEP_SEEN);
    stop.kill().unwrap();
    stop.wait().unwrap();
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "no",
        "the killed stop had turned the restart policy off"
    );
}

#[test]
fn a_stop_killed_mid_sequence_blocks_nothing_and_its_restart_policy_comes_back() {
    let state = tempfile::tempdir().unwrap();
    let container = Container::run("killed", &["--restart", "always"], &["--job-ms", "4000"]);
    container.wait_for_log("started job", Duration::from_secs(10));
    killed_stop(state.path(), &container);
    // `plan` says so, and plans with the container's own restart policy; it touches nothing.
    let plan = quiesce_in(state.path(), &["plan", &container.name, "--json"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    let planned = report(&plan);
    let warned = &planned["services"][0];
    assert!(
        codes(warned).contains(&"earlier-stop-killed".to_string()),
        "{planned:#}"
    );
    assert!(
        warned.to_string().contains("its own is `always`"),
        "{planned:#}"
    );
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "no"
    );
    // The next stop is not blocked, says what it took over, and puts `always` back.
    let next = quiesce_in(state.path(), &["stop", &container.name, "--json"])
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let stopped = report(&next);
    let service = &stopped["services"][0];
    assert_eq!(service["outcome"], "graceful", "{stopped:#}");
    assert!(
        codes(service).contains(&"earlier-stop-killed".to_string()),
        "{stopped:#}"
    );
    assert_eq!(
        service["restart_policy"]["original"], "always",
        "{stopped:#}"
    );
    assert_eq!(service["restart_policy"]["restored"], true, "{stopped:#}");
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    assert!(!container.running());
}

#[test]
fn recover_puts_back_what_a_killed_stop_left_and_then_has_nothing_to_do() {
    let state = tempfile::tempdir().unwrap();
    let container = Container::run(
        "recover",
        &["--restart", "on-failure:3"],
        &["--job-ms", "4000"],
    );
    container.wait_for_log("started job", Duration::from_secs(10));
    killed_stop(state.path(), &container);
    let recover = quiesce_in(state.path(), &["recover"]).output().unwrap();
    let text = String::from_utf8_lossy(&recover.stdout);
    assert_eq!(recover.status.code(), Some(0), "{text}{}", stderr(&recover));
    assert!(
        text.contains(&format!(
            "{}: restart policy `on-failure:3` (left `no`): put back",
            container.name
        )),
        "{text}"
    );
    assert_eq!(
        container.inspect(
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    let again = quiesce_in(state.path(), &["recover"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("nothing to recover"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn a_container_left_running_keeps_its_record_until_recover_puts_its_restart_policy_back() {
    let state = tempfile::tempdir().unwrap();
    let config_dir = dir_with(&[
        ("quiesce.toml", b"on_budget_exhausted = \"leave-running\"\n"),
        ("health-gated.wasm", &wasm(fixtures::HEALTH_GATED)),
    ]);
    let config = config_dir.path().join("quiesce.toml");
    // A policy that waits for the service to say it is unhealthy, which this one never does:
    // the budget ends first, and the runner leaves the container running.
    let container = Container::run(
        "left-running",
        &[
            "--restart",
            "always",
            "--label",
            "quiesce.policy=health-gated",
        ],
        &[],
    );
    let stop = quiesce_in(
        state.path(),
        &[
            "stop",
            "--config",
            config.to_str().unwrap(),
            "--policies",
            config_dir.path().to_str().unwrap(),
            "--budget",
            "2s",
            &container.name,
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(stop.status.code(), Some(1), "{}", stderr(&stop));
    let stopped = report(&stop);
    let service = &stopped["services"][0];
    assert!(
        codes(service).contains(&"restart-policy-not-restored".to_string()),
        "{stopped:#}"
    );
    assert_eq!(service["restart_policy"]["restored"], false, "{stopped:#}");
    assert!(container.running());
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "no"
    );
    // The finished stop's record still says what to put back.
    let recover = quiesce_in(state.path(), &["recover"]).output().unwrap();
    let text = String::from_utf8_lossy(&recover.stdout);
    assert_eq!(recover.status.code(), Some(0), "{text}{}", stderr(&recover));
    assert!(
        text.contains(&format!(
            "{}: restart policy `always` (left `no`): put back",
            container.name
        )),
        "{text}"
    );
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let again = quiesce_in(state.path(), &["recover"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("nothing to recover"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

/// An engine a test may restart, reached with `docker -H`.
trait Restartable {
    /// `unix://` endpoint.
    fn host(&self) -> String;
    /// `docker -H <it> ARGS`, which must succeed; trimmed stdout.
    fn docker_ok(&self, args: &[&str]) -> String;
    /// The test-service image in its store.
    fn image(&self) -> String;
    /// What brings containers back after a host or daemon restart, done.
    fn restart(&mut self);
}

impl Restartable for PrivateDaemon {
    fn host(&self) -> String {
        PrivateDaemon::host(self)
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        PrivateDaemon::docker_ok(self, args)
    }

    fn image(&self) -> String {
        let image = quiesce_tests::docker::test_image();
        let saved = tempfile::NamedTempFile::new().unwrap();
        docker_ok(&["save", "-o", saved.path().to_str().unwrap(), image]);
        PrivateDaemon::docker_ok(self, &["load", "-i", saved.path().to_str().unwrap()]);
        image.to_string()
    }

    fn restart(&mut self) {
        self.stop();
        self.resume();
    }
}

impl Restartable for PrivatePodman5 {
    fn host(&self) -> String {
        PrivatePodman5::host(self)
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        PrivatePodman5::docker_ok(self, args)
    }

    fn image(&self) -> String {
        self.test_image()
    }

    fn restart(&mut self) {
        self.reboot();
    }
}

/// Per restart policy, one container stopped by `docker stop` (the reference), one by quiesce
/// with a signal (the default policy), one by quiesce with an exec'd command (the service
/// exits by itself: no signal goes through the engine); then `engine` restarts, and each of
/// quiesce's must be running again exactly when the reference is. `expected`: whether the
/// reference comes back, per policy (always, unless-stopped, on-failure:3).
fn back_after_restart_as_after_docker_stop(engine: &mut impl Restartable, expected: [bool; 3]) {
    let image = engine.image();
    let policies = dir_with(&[("exec-stop.wasm", &wasm(fixtures::EXEC_STOP))]);
    let restart_policies = ["always", "unless-stopped", "on-failure:3"];
    let mut by_docker = Vec::new();
    let mut by_quiesce = Vec::new();
    for (index, policy) in restart_policies.iter().enumerate() {
        for kind in ["docker", "signal", "exec"] {
            let name = format!("qt-{}-restart-{index}-{kind}", std::process::id());
            let mut args = vec![
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "--restart",
                policy,
            ];
            if kind == "exec" {
                args.extend(["--label", "quiesce.policy=exec-stop"]);
            }
            args.extend([image.as_str(), "serve", "--job-ms", "200"]);
            engine.docker_ok(&args);
            if kind == "docker" {
                by_docker.push(name);
            } else {
                by_quiesce.push(name);
            }
        }
    }
    for name in &by_docker {
        engine.docker_ok(&["stop", name]);
    }
    let state = tempfile::tempdir().unwrap();
    let mut args = vec![
        "stop",
        "--json",
        "--policies",
        policies.path().to_str().unwrap(),
    ];
    args.extend(by_quiesce.iter().map(String::as_str));
    let output = quiesce_in(state.path(), &args)
        .env("DOCKER_HOST", engine.host())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stopped = report(&output);
    for service in stopped["services"].as_array().unwrap() {
        assert_eq!(service["restart_policy"]["restored"], true, "{stopped:#}");
    }
    engine.restart();
    let running = |names: &[String]| -> Vec<(String, bool)> {
        names
            .iter()
            .map(|name| {
                let state = engine.docker_ok(&["inspect", "--format", "{{.State.Running}}", name]);
                (name.clone(), state == "true")
            })
            .collect()
    };
    let docker_after = running(&by_docker);
    let quiesce_after = running(&by_quiesce);
    for (index, policy) in restart_policies.iter().enumerate() {
        assert_eq!(
            docker_after[index].1, expected[index],
            "docker stop, {policy}: {docker_after:?}"
        );
        for drain in 0..2 {
            let (name, back) = &quiesce_after[index * 2 + drain];
            assert_eq!(
                *back, docker_after[index].1,
                "{name} ({policy}) after the restart: quiesce {quiesce_after:?}, docker stop {docker_after:?}"
            );
        }
    }
    for name in by_docker.iter().chain(&by_quiesce) {
        let _ = engine.docker_ok(&["rm", "-f", name]);
    }
}

#[test]
fn after_a_docker_daemon_restart_quiesces_stops_come_back_exactly_as_docker_stops() {
    // Docker documents it: `always` comes back, `unless-stopped` not when stopped by its
    // operator, `on-failure` not after an exit 0.
    back_after_restart_as_after_docker_stop(&mut PrivateDaemon::start(), [true, false, false]);
}

#[test]
fn after_a_reboot_podman_5_brings_back_quiesces_stops_exactly_as_its_own() {
    // Podman 5.4's podman-restart.service starts `always` containers at boot, and no others.
    back_after_restart_as_after_docker_stop(
        &mut PrivatePodman5::start("reboot"),
        [true, false, false],
    );
}
