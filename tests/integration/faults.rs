//! Faults around a real Docker Engine: execs and drain endpoints that hang or refuse, a
//! container removed or restarted by someone else mid-sequence, quiesce itself interrupted,
//! and a report that cannot be written. The `playback` fixture policy plays exactly the steps
//! each test needs.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use quiesce_tests::docker::{Container, PrivateDaemon, docker_ok};
use quiesce_tests::{dir_with, fixtures, quiesce, wasm};
use serde_json::{Value, json};

fn policies() -> tempfile::TempDir {
    dir_with(&[("playback.wasm", &wasm(fixtures::PLAYBACK))])
}

/// A container of the test service whose policy plays `steps`.
fn playback_container(name: &str, steps: Value, service_args: &[&str]) -> Container {
    let settings = format!("quiesce.settings={}", json!({ "steps": steps }));
    Container::run(
        name,
        &["--label", "quiesce.policy=playback", "--label", &settings],
        service_args,
    )
}

fn stop(args: &[&str], policies: &tempfile::TempDir) -> (Option<i32>, Value, String) {
    let output: Output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args([
            "stop",
            "--json",
            "--policies",
            policies.path().to_str().unwrap(),
        ])
        .args(args)
        .output()
        .expect("run quiesce");
    (
        output.status.code(),
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn results(service: &Value) -> Vec<String> {
    service["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            format!(
                "{} {}",
                step["action"].as_str().unwrap(),
                step["result"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_exec_that_hangs_is_abandoned_at_its_timeout() {
    let policies = policies();
    let steps = json!([
        { "exec": { "argv": ["/test-service", "serve", "--workers", "0"], "timeout_ms": 1500 } },
        { "signal": "SIGTERM" },
        { "wait": { "until": "exited", "timeout_ms": 10000 } }
    ]);
    let container = playback_container("exec-hangs", steps, &[]);
    let (status, report, stderr) = stop(&[&container.name], &policies);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(
        results(service),
        ["exec timed out", "signal delivered", "wait condition met"]
    );
    let exec = &service["steps"][0];
    let took = exec["end_ms"].as_u64().unwrap() - exec["start_ms"].as_u64().unwrap();
    assert!((1500..3000).contains(&took), "the exec step took {took} ms");
}

#[test]
fn a_drain_endpoint_that_hangs_or_refuses_does_not_stall_the_stop() {
    let policies = policies();
    // An endpoint that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let refused_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let steps = json!([
        { "http": { "method": "POST", "url": format!("http://127.0.0.1:{silent_port}/drain"), "timeout_ms": 1000 } },
        { "http": { "method": "POST", "url": format!("http://127.0.0.1:{refused_port}/drain"), "timeout_ms": 1000 } },
        { "signal": "SIGTERM" },
        { "wait": { "until": "exited", "timeout_ms": 10000 } }
    ]);
    let container = playback_container("http-faults", steps, &[]);
    let (status, report, stderr) = stop(&[&container.name], &policies);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let steps = &report["services"][0]["steps"];
    assert_eq!(steps[0]["result"], "timed out");
    assert!(
        steps[1]["result"].as_str().unwrap().contains("refused"),
        "{steps:#}"
    );
    assert_eq!(steps[3]["result"], "condition met");
    drop(silent);
}

#[test]
fn a_container_removed_mid_sequence_is_reported_gone() {
    let policies = policies();
    let steps =
        json!([{ "signal": "SIGTERM" }, { "wait": { "until": "elapsed", "timeout_ms": 20000 } }]);
    let container = playback_container("removed", steps, &["--ignore-all"]);
    let watcher = Container {
        name: container.name.clone(),
        engine: container.engine,
    };
    let remover = std::thread::spawn(move || {
        // Once quiesce's sequence is under way (the service logs the signal it ignores).
        watcher.wait_for_log("signal SIGTERM ignored", Duration::from_secs(60));
        docker_ok(&["rm", "-f", &watcher.name]);
        std::mem::forget(watcher);
    });
    let started = Instant::now();
    let (status, report, stderr) = stop(&[&container.name], &policies);
    remover.join().unwrap();
    assert_eq!(
        status,
        Some(0),
        "gone is not an error: {stderr}\n{report:#}"
    );
    assert_eq!(report["services"][0]["outcome"], "gone");
    assert!(started.elapsed() < Duration::from_secs(12));
}

#[test]
fn a_container_restarted_by_someone_else_is_not_reported_stopped() {
    let policies = policies();
    let steps =
        json!([{ "signal": "SIGTERM" }, { "wait": { "until": "elapsed", "timeout_ms": 8000 } }]);
    let container = playback_container("restarted", steps, &["--ignore-all"]);
    let watcher = Container {
        name: container.name.clone(),
        engine: container.engine,
    };
    let restarter = std::thread::spawn(move || {
        watcher.wait_for_log("signal SIGTERM ignored", Duration::from_secs(60));
        docker_ok(&["restart", "-t", "0", &watcher.name]);
        std::mem::forget(watcher);
    });
    let (status, report, stderr) = stop(&[&container.name], &policies);
    restarter.join().unwrap();
    assert_eq!(status, Some(1), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "failed");
    assert!(
        service["warnings"].to_string().contains("running again"),
        "{service:#}"
    );
    assert!(container.running());
}

fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn spawn_stop(args: &[&str]) -> std::process::Child {
    quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(["stop", "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quiesce")
}

#[test]
fn one_interrupt_lets_running_sequences_finish_and_starts_nothing_new() {
    let first = Container::run(
        "interrupt-first",
        &["--label", "quiesce.order=1"],
        &["--ignore-all"],
    );
    let second = Container::run("interrupt-second", &[], &["--ignore-all"]);
    let report_file = tempfile::NamedTempFile::new().unwrap();
    let child = spawn_stop(&[
        &first.name,
        &second.name,
        "--parallel",
        "1",
        "--budget",
        "4s",
        "--report",
        report_file.path().to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(report_file.path()).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(
        report["services"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(
        report["services"][0]["outcome"], "killed",
        "the running sequence finished"
    );
    assert!(
        report["warnings"].to_string().contains("not stopped"),
        "{report:#}"
    );
    // Whichever started first was stopped; the other was never touched.
    let untouched = [&first, &second]
        .into_iter()
        .filter(|c| c.running())
        .count();
    assert_eq!(untouched, 1);
}

#[test]
fn a_second_interrupt_abandons_without_killing_and_writes_the_partial_report() {
    let container = Container::run("abandon", &[], &["--ignore-all"]);
    let report_file = tempfile::NamedTempFile::new().unwrap();
    let child = spawn_stop(&[
        &container.name,
        "--budget",
        "60s",
        "--report",
        report_file.path().to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    let abandoned_at = Instant::now();
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert!(
        abandoned_at.elapsed() < Duration::from_secs(3),
        "abandoning took {:?}",
        abandoned_at.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let report: Value =
        serde_json::from_slice(&std::fs::read(report_file.path()).unwrap()).unwrap();
    assert!(
        report["warnings"]
            .to_string()
            .contains("abandoned while being stopped"),
        "{report:#}"
    );
    assert!(container.running(), "abandoning must not kill");
    assert!(!container.logs().contains("signal SIGKILL"));
}

#[test]
fn a_report_that_cannot_be_written_does_not_prevent_the_stop() {
    let container = Container::run("report-fails", &[], &[]);
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args([
            "stop",
            &container.name,
            "--report",
            "/proc/quiesce/report.json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write the report to /proc/quiesce/report.json"),
        "{stderr}"
    );
    assert!(!container.running(), "the stop itself must happen");
}

#[test]
fn a_daemon_restart_mid_sequence_is_survived_and_not_reported_as_success() {
    let mut daemon = PrivateDaemon::start();
    // The test service image, into the private daemon.
    let image = quiesce_tests::docker::test_image();
    let saved = tempfile::NamedTempFile::new().unwrap();
    docker_ok(&["save", "-o", saved.path().to_str().unwrap(), image]);
    daemon.docker_ok(&["load", "-i", saved.path().to_str().unwrap()]);
    let settings = format!(
        "quiesce.settings={}",
        json!({ "steps": [{ "signal": "SIGUSR1" }, { "wait": { "until": "elapsed", "timeout_ms": 30000 } }] })
    );
    daemon.docker_ok(&[
        "run",
        "-d",
        "--name",
        "quiesce-daemon-test",
        "--network",
        "none",
        "--restart",
        "always",
        "--label",
        "quiesce.policy=playback",
        "--label",
        &settings,
        image,
        "serve",
        "--ignore-all",
    ]);
    let policies = policies();
    let report_file = tempfile::NamedTempFile::new().unwrap();
    let child = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env("DOCKER_HOST", daemon.host())
        .args([
            "stop",
            "quiesce-daemon-test",
            "--json",
            "--budget",
            "60s",
            "--policies",
        ])
        .arg(policies.path())
        .arg("--report")
        .arg(report_file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !daemon
        .docker_ok(&["logs", "quiesce-daemon-test"])
        .contains("signal SIGUSR1 ignored")
    {
        assert!(
            Instant::now() < deadline,
            "quiesce never signalled the container"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The engine goes away (stopping its containers, as on a host shutdown) and comes back.
    daemon.stop();
    std::thread::sleep(Duration::from_secs(1));
    daemon.resume();
    let output = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(report_file.path()).unwrap())
        .unwrap_or_else(|_| panic!("no report: {}", String::from_utf8_lossy(&output.stderr)));
    let service = &report["services"][0];
    // quiesce reconnected and saw the container stopped, killed by its engine's shutdown: it
    // says so, and does not claim a graceful stop.
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(service["outcome"], "killed", "{service:#}");
    assert!(
        service["warnings"]
            .to_string()
            .contains("other than quiesce"),
        "{service:#}"
    );
    assert!(
        service["warnings"].to_string().contains("\"foreign-kill\""),
        "{service:#}"
    );
    // The restart policy quiesce turned off kept the engine from starting it again.
    let state = daemon.docker_ok(&[
        "inspect",
        "--format",
        "{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}",
        "quiesce-daemon-test",
    ]);
    assert!(state.starts_with("false"), "{state}");
}
