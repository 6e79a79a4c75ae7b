//! The stop tests of Docker, against real Podman (Debian 12's 4.3.1, its Docker-compatible API
//! on a unix socket: scripts/ensure-podman), reached as the docker CLI would reach it: `-H`, a
//! docker CLI context, `DOCKER_HOST`.

use std::time::Duration;

use quiesce_tests::docker::{Container, Engine, PODMAN_SOCKET};
use quiesce_tests::quiesce;
use serde_json::Value;

/// `quiesce stop ARGS --json` against Podman; (status, report, stderr).
fn stop(args: &[&str]) -> (Option<i32>, Value, String) {
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(["stop", "--json"])
        .args(Engine::Podman.quiesce_host())
        .args(args)
        .output()
        .expect("run quiesce");
    (
        output.status.code(),
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_draining_service_on_podman_stops_gracefully_and_the_report_names_the_engine() {
    let container = Container::run_on(Engine::Podman, "pm-drain", &[], &["--job-ms", "2000"]);
    container.wait_for_log("started job", Duration::from_secs(20));
    let (status, report, stderr) = stop(&[&container.name, "--budget", "1m"]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "graceful", "{report:#}");
    assert_eq!(service["exit_code"], 0);
    let (started, completed) = container.jobs();
    assert_eq!(started, completed, "{}", container.logs());
    assert_eq!(report["engine"]["kind"], "podman", "{report:#}");
    assert_eq!(report["engine"]["endpoint"], PODMAN_SOCKET);
    assert!(
        report["engine"]["version"]
            .as_str()
            .unwrap()
            .starts_with('4'),
        "{report:#}"
    );
}

#[test]
fn a_signal_deaf_service_on_podman_is_killed_at_the_end_of_its_budget() {
    let container = Container::run_on(Engine::Podman, "pm-deaf", &[], &["--ignore-all"]);
    let (status, report, stderr) = stop(&[&container.name, "--budget", "5s"]);
    assert_eq!(status, Some(1), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "killed", "{report:#}");
    assert_eq!(service["exit_code"], 137);
}

#[test]
fn a_quit_only_service_on_podman_drains_through_its_policy() {
    let container = Container::run_on(
        Engine::Podman,
        "pm-quit",
        &["--label", "quiesce.policy=nginx"],
        &["--graceful", "QUIT", "--job-ms", "2000"],
    );
    container.wait_for_log("started job", Duration::from_secs(20));
    let (status, report, stderr) = stop(&[&container.name]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["steps"][0]["detail"], "SIGQUIT");
    assert_eq!(service["outcome"], "graceful");
    let (started, completed) = container.jobs();
    assert_eq!(started, completed, "{}", container.logs());
}

#[test]
fn podman_4_with_a_restart_policy_is_refused_before_anything_is_touched() {
    // Podman before 5.1 cannot turn the restart policy off: the container would come back.
    let container = Container::run_on(Engine::Podman, "pm-always", &["--restart", "always"], &[]);
    let (status, report, stderr) = stop(&[&container.name]);
    assert_eq!(status, Some(2), "{stderr}\n{report:#}");
    assert!(stderr.contains(&container.name), "{stderr}");
    assert!(stderr.contains("podman 4."), "{stderr}");
    assert!(stderr.contains("restart policy `always`"), "{stderr}");
    assert!(stderr.contains("upgrade Podman to 5.1"), "{stderr}");
    assert!(stderr.contains("nothing was touched"), "{stderr}");
    assert!(container.running());
    assert_eq!(container.inspect("{{.RestartCount}}"), "0");
    assert!(!container.logs().contains("signal"), "{}", container.logs());
}

#[test]
fn a_compose_project_on_podman_is_stopped_by_its_labels() {
    // podman-compose sets the project and service labels (no depends_on).
    let labels = |service: &str| {
        vec![
            "--label".to_string(),
            "com.docker.compose.project=pmshop".to_string(),
            "--label".to_string(),
            format!("com.docker.compose.service={service}"),
        ]
    };
    let web_labels = labels("web");
    let web_args: Vec<&str> = web_labels.iter().map(String::as_str).collect();
    let db_labels = labels("db");
    let db_args: Vec<&str> = db_labels.iter().map(String::as_str).collect();
    let _web = Container::run_on(Engine::Podman, "pmshop-web", &web_args, &[]);
    let _db = Container::run_on(Engine::Podman, "pmshop-db", &db_args, &[]);
    let (status, report, stderr) = stop(&["--project", "pmshop"]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["graceful"], 2, "{report:#}");
}

#[test]
fn the_endpoint_is_chosen_as_the_docker_cli_chooses_it() {
    let container = Container::run_on(Engine::Podman, "pm-context", &[], &[]);
    // A docker CLI context for Podman, made by the docker CLI itself, in a private config dir.
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().to_str().unwrap();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new("docker")
            .env("DOCKER_CONFIG", config_dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    cli(&[
        "context",
        "create",
        "pm",
        "--docker",
        &format!("host={PODMAN_SOCKET}"),
    ]);
    let plan = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = quiesce(crate::quiesce_bin(), &crate::cache_dir());
        command
            .env("DOCKER_CONFIG", config_dir)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(["plan", "--json"])
            .args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            serde_json::from_slice::<Value>(&output.stdout).unwrap_or(Value::Null),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let name = container.name.as_str();
    // --context, DOCKER_CONTEXT, the CLI's current context: Podman answers.
    for (args, env) in [
        (vec!["--context", "pm", name], vec![]),
        (vec![name], vec![("DOCKER_CONTEXT", "pm")]),
    ] {
        let (status, report, stderr) = plan(&args, &env);
        assert_eq!(status, Some(0), "{args:?} {env:?}: {stderr}");
        assert_eq!(report["engine"]["kind"], "podman");
        assert_eq!(report["engine"]["context"], "pm");
    }
    cli(&["context", "use", "pm"]);
    let (status, report, stderr) = plan(&[name], &[]);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(report["engine"]["context"], "pm");
    // DOCKER_HOST wins over the current context: Docker answers, and knows no such container.
    let (status, _, stderr) = plan(&[name], &[("DOCKER_HOST", "unix:///var/run/docker.sock")]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("no such container"), "{stderr}");
    // -H with --context is an error, as for the docker CLI; an unknown context names itself.
    let (status, _, stderr) = plan(&["-H", PODMAN_SOCKET, "--context", "pm", name], &[]);
    assert_eq!(status, Some(2), "{stderr}");
    let (status, _, stderr) = plan(&[name], &[("DOCKER_CONTEXT", "nope")]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("context \"nope\""), "{stderr}");
    // The container is untouched by all of this (plan touches nothing).
    assert!(container.running());
}

/// quiesce's engine client for the endpoint `host`, connected.
async fn engine_at(host: &str) -> quiesce::runtime::docker::DockerRuntime {
    let endpoint = quiesce::runtime::endpoint::Endpoint {
        host: host.into(),
        context: "default".into(),
        source: "-H",
        tls: None,
    };
    quiesce::runtime::docker::DockerRuntime::connect(&endpoint)
        .await
        .unwrap()
}

/// A signal to a container that has exited is refused as "not running" by either engine, each
/// in its own words (Podman: "can only kill running containers ... container state
/// improper"): the runner takes the refusal as the news of an exit its wait may have missed.
#[tokio::test]
async fn a_signal_to_an_exited_container_is_not_running_on_podman_as_on_docker() {
    use quiesce::runtime::endpoint::DEFAULT_HOST;
    use quiesce::runtime::{Runtime, RuntimeError};
    use quiesce::sdk::Signal;

    for (engine, host) in [
        (Engine::Docker, DEFAULT_HOST),
        (Engine::Podman, PODMAN_SOCKET),
    ] {
        let container = Container::run_on(engine, "exited-signal", &[], &[]);
        engine.ok(&["stop", "-t", "10", &container.name]);
        let runtime = engine_at(host).await;
        let id = container.inspect("{{.Id}}");
        assert_eq!(
            runtime.signal(&id, Signal::TERM).await,
            Err(RuntimeError::NotRunning),
            "{engine:?}"
        );
    }
}

/// While `podman stop` waits for a container, Podman calls its state `stopping` and says
/// `Running: false`, a state bollard's types refuse: quiesce reads the inspection and a
/// listing that holds it anyway, and the container as running (its process runs until Podman
/// is done with it).
#[tokio::test]
async fn a_container_podman_is_stopping_is_inspected_listed_and_still_running() {
    use quiesce::runtime::Runtime;

    let label = format!("quiesce.test.stopping={}", std::process::id());
    let container = Container::run_on(
        Engine::Podman,
        "pm-stopping",
        &["--label", &label],
        &["--ignore-all"],
    );
    let mut stopping = std::process::Command::new("podman")
        .args(["stop", "-t", "60", &container.name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let since = std::time::Instant::now();
    while container.inspect("{{.State.Status}}") != "stopping" {
        assert!(since.elapsed() < Duration::from_secs(30), "never stopping");
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = engine_at(PODMAN_SOCKET).await;
    let id = container.inspect("{{.Id}}");
    let state = runtime.observe(&id).await.unwrap();
    assert!(state.running, "{state:?}");
    let inspected = runtime.inspect(&container.name).await.unwrap().unwrap();
    assert_eq!(inspected.facts.name, container.name);
    assert!(inspected.state.running);
    // A listing that holds it (a label, a compose project) is read too.
    let selector = quiesce::runtime::Selector {
        labels: vec![label.clone()],
        ..Default::default()
    };
    let selected = runtime.select(&selector, 4).await.unwrap();
    assert_eq!(
        selected.iter().map(|target| &target.id).collect::<Vec<_>>(),
        [&id]
    );
    let _ = stopping.kill();
    let _ = stopping.wait();
}
