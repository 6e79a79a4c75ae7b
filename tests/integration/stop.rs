//! `quiesce stop` and `quiesce plan` against a real Docker Engine, with containers of our own
//! test service (`tests/test-service`), which logs every job it starts and completes.

use std::process::Output;
use std::time::{Duration, Instant};

use quiesce_tests::docker::{Container, docker_ok};
use quiesce_tests::{dir_with, fixtures, quiesce, wasm};
use serde_json::Value;

/// Runs `quiesce ARGS --json` and returns the exit status, the report and stderr.
pub(crate) fn quiesce_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let output = run(args
        .iter()
        .copied()
        .chain(["--json"])
        .collect::<Vec<_>>()
        .as_slice());
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.code(),
        report,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn run(args: &[&str]) -> Output {
    quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env_remove("QUIESCE_CONFIG")
        .args(args)
        .output()
        .expect("run quiesce")
}

pub(crate) fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {report:#}"))
}

/// One string field of every element of a JSON array.
fn field_of_each<'a>(array: &'a Value, field: &str) -> Vec<&'a str> {
    let elements = array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"));
    elements
        .iter()
        .map(|element| {
            element[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {element}"))
        })
        .collect()
}

fn policies_dir() -> tempfile::TempDir {
    dir_with(&[
        ("quit-first.wasm", &wasm(fixtures::QUIT_FIRST)),
        ("exec-stop.wasm", &wasm(fixtures::EXEC_STOP)),
    ])
}

#[test]
fn a_slow_drain_loses_jobs_under_docker_stop_and_none_under_quiesce() {
    // Two workers with 3 s jobs: a stop right after start finds ~3 s of work in flight.
    let service_args = ["--workers", "2", "--job-ms", "3000"];
    let docker_args = ["--stop-timeout", "1"];

    let baseline = Container::run("drain-docker", &docker_args, &service_args);
    baseline.wait_for_log("started job 2", Duration::from_secs(5));
    docker_ok(&["stop", &baseline.name]);
    let (started, completed) = baseline.jobs();
    assert!(
        completed < started,
        "docker stop should lose jobs: {started} started, {completed} completed"
    );
    assert_eq!(baseline.inspect("{{.State.ExitCode}}"), "137");

    let graceful = Container::run(
        "drain-quiesce",
        &[
            &docker_args[..],
            &["--label", r#"quiesce.settings={"grace_period": "20s"}"#],
        ]
        .concat(),
        &service_args,
    );
    graceful.wait_for_log("started job 2", Duration::from_secs(5));
    let signalled = Instant::now();
    let (status, report, stderr) = quiesce_json(&["stop", &graceful.name]);
    let wall = signalled.elapsed();
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let (started, completed) = graceful.jobs();
    assert_eq!(
        started,
        completed,
        "quiesce lost jobs:\n{}",
        graceful.logs()
    );
    assert!(
        graceful.logs().contains("summary completed=2 abandoned=0"),
        "{}",
        graceful.logs()
    );
    let entry = service(&report, &graceful.name);
    assert_eq!(entry["outcome"], "graceful");
    assert_eq!(entry["exit_code"], 0);
    assert_eq!(entry["policy"]["name"], "default");
    assert_eq!(field_of_each(&entry["steps"], "action"), ["signal", "wait"]);
    assert_eq!(entry["steps"][1]["result"], "condition met");
    for key in ["action", "detail", "start_ms", "end_ms", "result", "by"] {
        assert!(
            entry["steps"][0].get(key).is_some(),
            "a step lacks {key}: {entry:#}"
        );
    }
    // The drain itself takes < 3 s; quiesce must not add a polling lag on top of it. The
    // precise overhead is measured by the benchmark; this only guards against seconds of lag.
    assert!(
        wall < Duration::from_secs(6),
        "quiesce took {wall:?} for a < 3 s drain"
    );
}

#[test]
fn a_service_that_drains_only_on_sigquit_gets_sigquit_from_its_labelled_policy() {
    let policies = policies_dir();
    let container = Container::run(
        "quit",
        &["--label", "quiesce.policy=quit-first"],
        &[
            "--graceful",
            "QUIT",
            "--immediate",
            "TERM,INT",
            "--job-ms",
            "500",
        ],
    );
    let (status, report, stderr) = quiesce_json(&[
        "stop",
        &container.name,
        "--policies",
        policies.path().to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let entry = service(&report, &container.name);
    assert_eq!(entry["policy"]["name"], "quit-first");
    assert_eq!(entry["steps"][0]["detail"], "SIGQUIT");
    assert_eq!(entry["outcome"], "graceful");
    assert!(
        container.logs().contains("signal SIGQUIT graceful"),
        "{}",
        container.logs()
    );
    assert!(
        !container.logs().contains("signal SIGTERM"),
        "{}",
        container.logs()
    );
}

#[test]
fn a_service_that_ignores_every_signal_is_killed_when_its_budget_ends() {
    let container = Container::run("stubborn", &[], &["--ignore-all"]);
    let started = Instant::now();
    let (status, report, stderr) = quiesce_json(&["stop", &container.name, "--budget", "3s"]);
    let elapsed = started.elapsed();
    assert_eq!(
        status,
        Some(1),
        "killed means exit status 1: {stderr}\n{report:#}"
    );
    let entry = service(&report, &container.name);
    assert_eq!(entry["outcome"], "killed");
    assert_eq!(entry["exit_code"], 137);
    let steps = field_of_each(&entry["steps"], "action");
    // After SIGKILL the policy may still see the container running and wait for the exit.
    assert_eq!(steps[..3], ["signal", "wait", "kill"], "{entry:#}");
    assert!(steps[3..].iter().all(|step| *step == "wait"), "{entry:#}");
    assert!(entry["elapsed_ms"].as_u64().unwrap() <= 3_500, "{entry:#}");
    assert!(elapsed < Duration::from_secs(10));
    assert!(!container.running());
}

#[test]
fn the_timeline_draws_a_real_run_one_row_per_service_with_its_phases() {
    let obedient = Container::run(
        "timeline-obedient",
        &[],
        &["--workers", "0", "--linger-ms", "300"],
    );
    let stubborn = Container::run("timeline-stubborn", &[], &["--ignore-all"]);
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("run.svg");
    let (status, report, stderr) = quiesce_json(&[
        "stop",
        &obedient.name,
        &stubborn.name,
        "--budget",
        "3s",
        "--timeline",
        picture.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(1), "{stderr}\n{report:#}");
    let svg = std::fs::read_to_string(&picture).expect("the timeline was written");
    let document = roxmltree::Document::parse(&svg).expect("the timeline is well-formed XML");
    let rows: Vec<_> = document
        .descendants()
        .filter(|node| node.attribute("class") == Some("service"))
        .collect();
    let drawn: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| {
            (
                row.attribute("data-service").unwrap(),
                row.attribute("data-outcome").unwrap(),
            )
        })
        .collect();
    // The rows follow the report's order, with the report's outcomes.
    let expected: Vec<(&str, &str)> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(drawn, expected);
    assert!(
        drawn.contains(&(obedient.name.as_str(), "graceful")),
        "{drawn:?}"
    );
    assert!(
        drawn.contains(&(stubborn.name.as_str(), "killed")),
        "{drawn:?}"
    );
    let phases = |name: &str| -> Vec<String> {
        let row = rows
            .iter()
            .find(|row| row.attribute("data-service") == Some(name))
            .unwrap();
        row.descendants()
            .filter_map(|node| node.attribute("data-phase").map(str::to_string))
            .collect()
    };
    assert_eq!(phases(&obedient.name), ["signal", "draining"]);
    let stubborn_phases = phases(&stubborn.name);
    assert_eq!(
        stubborn_phases[..3],
        ["signal", "draining", "escalation"],
        "{stubborn_phases:?}"
    );
    assert!(
        stubborn_phases[3..]
            .iter()
            .all(|phase| phase == "escalation")
    );
}

#[test]
fn restart_always_containers_stay_stopped_even_when_an_exec_stops_them() {
    let policies = policies_dir();
    let by_signal = Container::run(
        "always-signal",
        &["--restart", "always"],
        &["--job-ms", "200"],
    );
    let by_exec = Container::run(
        "always-exec",
        &["--restart", "always", "--label", "quiesce.policy=exec-stop"],
        &["--job-ms", "200"],
    );
    let (status, report, stderr) = quiesce_json(&[
        "stop",
        &by_signal.name,
        &by_exec.name,
        "--policies",
        policies.path().to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    assert_eq!(
        service(&report, &by_exec.name)["steps"][0]["action"],
        "exec"
    );
    // Docker's restart manager acts within ~100 ms of an exit; give it far longer.
    std::thread::sleep(Duration::from_secs(2));
    for container in [&by_signal, &by_exec] {
        assert!(!container.running(), "{} was restarted", container.name);
        assert_eq!(
            container.inspect("{{.RestartCount}}"),
            "0",
            "{}",
            container.name
        );
        assert_eq!(
            container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
            "always",
            "restart policy not restored"
        );
        let entry = service(&report, &container.name);
        assert_eq!(entry["restart_policy"]["original"], "always");
        assert_eq!(entry["restart_policy"]["restored"], true);
    }
}

#[test]
fn a_restart_policy_with_a_retry_limit_is_put_back_whole() {
    let container = Container::run("on-failure", &["--restart", "on-failure:3"], &[]);
    let (status, report, stderr) = quiesce_json(&["stop", &container.name]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let entry = service(&report, &container.name);
    assert_eq!(entry["restart_policy"]["original"], "on-failure:3");
    assert_eq!(entry["restart_policy"]["restored"], true);
    assert_eq!(
        container.inspect(
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
}

#[test]
fn a_compose_dependant_exits_before_its_dependency_and_independents_run_concurrently() {
    let project = format!("qtshop{}", std::process::id());
    let labels = |service: &str, depends: &str| {
        vec![
            "--label".to_string(),
            format!("com.docker.compose.project={project}"),
            "--label".to_string(),
            format!("com.docker.compose.service={service}"),
            "--label".to_string(),
            format!("com.docker.compose.depends_on={depends}"),
        ]
    };
    let service_args = ["--job-ms", "1500", "--workers", "1"];
    let db = Container::run("compose-db", &strs(&labels("db", "")), &service_args);
    let web = Container::run(
        "compose-web",
        &strs(&labels("web", "db:service_started:false")),
        &service_args,
    );
    let worker = Container::run(
        "compose-worker",
        &strs(&labels("worker", "")),
        &service_args,
    );

    let (status, report, stderr) = quiesce_json(&["stop", "--project", &project]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    // The report lists the services in the order they are stopped: dependants first, and
    // by name within a wave (Docker lists the newest first: worker, web, db).
    assert_eq!(
        field_of_each(&report["services"], "name"),
        [web.name.as_str(), worker.name.as_str(), db.name.as_str()],
        "{report:#}"
    );
    let time = |value: &Value| humantime::parse_rfc3339(value.as_str().unwrap()).unwrap();
    let web_stopped = time(&service(&report, &web.name)["stopped_at"]);
    let db_entry = service(&report, &db.name);
    let db_first_signal = time(&db_entry["started_at"])
        + Duration::from_millis(db_entry["steps"][0]["start_ms"].as_u64().unwrap());
    assert!(
        web_stopped <= db_first_signal,
        "db was signalled before web had stopped:\n{report:#}"
    );

    // web and worker are independent: their sequences overlap in time.
    let interval = |name: &str| {
        let entry = service(&report, name);
        (time(&entry["started_at"]), time(&entry["stopped_at"]))
    };
    let (web_start, web_end) = interval(&web.name);
    let (worker_start, worker_end) = interval(&worker.name);
    assert!(
        web_start < worker_end && worker_start < web_end,
        "web and worker did not overlap:\n{report:#}"
    );
}

#[test]
fn the_overall_deadline_is_enforced() {
    let container = Container::run("deadline", &[], &["--ignore-all"]);
    let started = Instant::now();
    let (status, report, _) = quiesce_json(&[
        "stop",
        &container.name,
        "--budget",
        "10m",
        "--deadline",
        "3s",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(status, Some(1));
    assert_eq!(service(&report, &container.name)["outcome"], "killed");
    assert!(
        elapsed < Duration::from_secs(8),
        "took {elapsed:?} with a 3 s deadline"
    );
}

#[test]
fn plan_shows_the_steps_and_the_worst_case_and_touches_nothing() {
    let container = Container::run("plan", &["--restart", "always", "--stop-timeout", "7"], &[]);
    let logs_before = container
        .logs()
        .lines()
        .filter(|l| l.starts_with("signal"))
        .count();
    let (status, report, stderr) = quiesce_json(&["plan", &container.name, "--within", "5s"]);
    assert_eq!(status, Some(1), "over the window: exit 1; {stderr}");
    assert_eq!(report["dry_run"], true);
    let entry = service(&report, &container.name);
    assert_eq!(entry["steps"][0]["detail"], "SIGTERM");
    assert_eq!(entry["outcome"], "graceful");
    // Worst case: TERM, 7 s wait, SIGKILL, which exceeds --within 5s.
    assert!(
        report["worst_case_ms"].as_u64().unwrap() >= 7_000,
        "{report:#}"
    );
    assert!(
        report["warnings"]
            .to_string()
            .contains("exceeds the enclosing limit"),
        "{report:#}"
    );
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning["code"] == "over-window"),
        "{report:#}"
    );

    let (status, _, _) = quiesce_json(&["plan", &container.name, "--within", "10s"]);
    assert_eq!(status, Some(0), "within the window: exit 0");
    let text = run(&["plan", &container.name]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("policy default") && text.contains("worst case"),
        "{text}"
    );

    assert!(container.running());
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let logs_after = container
        .logs()
        .lines()
        .filter(|l| l.starts_with("signal"))
        .count();
    assert_eq!(logs_before, logs_after, "plan sent a signal");
}

#[test]
fn bad_input_is_refused_before_anything_is_touched() {
    let healthy = Container::run(
        "bad-input",
        &["--label", "quiesce.policy=no-such-policy"],
        &[],
    );
    let (status, _, stderr) = quiesce_json(&["stop", &healthy.name]);
    assert_eq!(status, Some(2));
    assert!(
        stderr.contains("policy `no-such-policy`") && stderr.contains("nothing was touched"),
        "{stderr}"
    );

    let (status, _, stderr) = quiesce_json(&["stop", "qt-no-such-container-here"]);
    assert_eq!(status, Some(2));
    assert!(
        stderr.contains("no such container: qt-no-such-container-here"),
        "{stderr}"
    );

    let bad_settings = Container::run(
        "bad-settings",
        &["--label", r#"quiesce.settings={"grace": "5s"}"#],
        &[],
    );
    let (status, _, stderr) = quiesce_json(&["stop", &bad_settings.name, &healthy.name]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("unknown field `grace`"), "{stderr}");

    let config = dir_with(&[(
        "quiesce.toml",
        b"parallel = 2\n[[rules]]\nname = \"x\"\npolicy = \"default\"\nbudgett = \"1m\"\n",
    )]);
    let config_path = config.path().join("quiesce.toml");
    let (status, _, stderr) = quiesce_json(&[
        "stop",
        &bad_settings.name,
        "--config",
        config_path.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2));
    assert!(
        stderr.contains("quiesce.toml") && stderr.contains("line 5") && stderr.contains("budgett"),
        "{stderr}"
    );

    let (status, _, stderr) = quiesce_json(&["stop", "--label", "quiesce.test=matches-nothing"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("matched no container"), "{stderr}");

    for container in [&healthy, &bad_settings] {
        assert!(container.running(), "{} was touched", container.name);
        assert!(
            !container.logs().contains("signal SIG"),
            "{} got a signal",
            container.name
        );
    }
}

#[test]
fn an_unreachable_daemon_is_an_environment_error() {
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["stop", "--all"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The message names the endpoint, what chose it, and the way out.
    assert!(
        stderr.contains("unix:///nonexistent/docker.sock (context default, from DOCKER_HOST)")
            && stderr.contains("Is the engine running?")
            && stderr.contains("Nothing was touched"),
        "{stderr}"
    );
}

#[test]
fn already_stopped_targets_are_reported_and_the_report_has_the_documented_shape() {
    let stopped = Container::run(
        "already",
        &[],
        &["--exit-after-ms", "100", "--workers", "0"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while stopped.running() {
        assert!(
            Instant::now() < deadline,
            "the service did not exit by itself"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report_file = tempfile::NamedTempFile::new().unwrap();
    let (status, report, stderr) = quiesce_json(&[
        "stop",
        &stopped.name,
        "--report",
        report_file.path().to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stderr}");
    let written: Value =
        serde_json::from_slice(&std::fs::read(report_file.path()).unwrap()).unwrap();
    assert_eq!(written, report);
    for key in [
        "report_version",
        "dry_run",
        "started_at",
        "finished_at",
        "deadline_ms",
        "summary",
        "services",
        "warnings",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}: {report:#}");
    }
    let entry = service(&report, &stopped.name);
    for key in [
        "name",
        "id",
        "policy",
        "outcome",
        "exit_code",
        "started_at",
        "stopped_at",
        "steps",
        "warnings",
    ] {
        assert!(
            entry.get(key).is_some(),
            "service entry lacks {key}: {entry:#}"
        );
    }
    for key in ["name", "version", "digest"] {
        assert!(entry["policy"].get(key).is_some(), "policy lacks {key}");
    }
    assert_eq!(entry["outcome"], "already-stopped");
    assert_eq!(report["summary"]["already_stopped"], 1);
}

fn strs(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

#[test]
fn log_line_and_probe_waits_work_against_a_real_container() {
    let policies = dir_with(&[("watchful.wasm", &wasm(fixtures::WATCHFUL))]);
    let container = Container::run(
        "watchful",
        &["--label", "quiesce.policy=watchful"],
        &["--workers", "1", "--job-ms", "1500", "--linger-ms", "2500"],
    );
    container.wait_for_log("started job 1", Duration::from_secs(5));
    let (status, report, stderr) = quiesce_json(&[
        "stop",
        &container.name,
        "--policies",
        policies.path().to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let entry = service(&report, &container.name);
    let results = field_of_each(&entry["steps"], "result");
    assert_eq!(
        results,
        [
            "delivered",
            "condition met",
            "condition met",
            "condition met"
        ],
        "{entry:#}"
    );
    assert!(
        entry["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("log line \"lingering\"")
    );
    assert!(
        entry["steps"][2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("probe `/test-service idle`")
    );
    // The probe passed during the linger, before the exit.
    assert!(
        entry["steps"][2]["end_ms"].as_u64() < entry["steps"][3]["end_ms"].as_u64(),
        "{entry:#}"
    );
}

#[test]
fn an_exit_forced_by_the_policys_escalation_is_reported_escalated_not_graceful() {
    // QUIT (nginx's graceful signal) is ignored; TERM, the policy's next rung, exits at once
    // and abandons the jobs in flight.
    let container = Container::run(
        "escalated",
        &[
            "--label",
            "quiesce.policy=nginx",
            "--label",
            r#"quiesce.settings={"graceful_timeout": "2s"}"#,
        ],
        &[
            "--workers",
            "1",
            "--job-ms",
            "60000",
            "--graceful",
            "none",
            "--immediate",
            "TERM",
            "--ignore",
            "QUIT",
        ],
    );
    container.wait_for_log("started job 1", Duration::from_secs(10));
    let (status, report, stderr) = quiesce_json(&["stop", &container.name]);
    let stopped = service(&report, &container.name);
    assert_eq!(stopped["outcome"], "escalated", "{report:#}\n{stderr}");
    assert_eq!(stopped["exit_code"], 143, "{report:#}");
    assert_eq!(
        field_of_each(&stopped["steps"], "detail")
            .into_iter()
            .filter(|detail| detail.starts_with("SIG"))
            .collect::<Vec<_>>(),
        ["SIGQUIT", "SIGTERM"],
        "{report:#}"
    );
    assert_eq!(report["summary"]["escalated"], 1, "{report:#}");
    assert_eq!(report["summary"]["graceful"], 0, "{report:#}");
    assert_eq!(
        status,
        Some(1),
        "an escalation is not a clean stop: {stderr}"
    );
    assert!(
        container.logs().contains("abandoning 1 in-flight job"),
        "{}",
        container.logs()
    );
}

/// `plan` has nothing to say about container `name`, and `stop` ends it gracefully: the
/// stop's exit status, report and stderr.
fn quiet_plan_graceful_stop(name: &str) -> (Option<i32>, Value, String) {
    let (status, plan, _) = quiesce_json(&["plan", name]);
    assert_eq!(status, Some(0), "{plan:#}");
    assert_eq!(
        service(&plan, name)["warnings"],
        serde_json::json!([]),
        "{plan:#}"
    );
    let (status, report, stderr) = quiesce_json(&["stop", name]);
    assert_eq!(
        service(&report, name)["outcome"],
        "graceful",
        "{report:#}\n{stderr}"
    );
    (status, report, stderr)
}

/// An image whose PID 1 is a shell script that runs the test service as its child and passes
/// no signal on (as `CMD apache2ctl -D FOREGROUND` does); the host's /usr provides `sh`.
fn shell_pid1_image() -> String {
    let service = std::fs::read(fixtures::TEST_SERVICE_BIN).unwrap();
    let script = b"#!/bin/sh\n# Not `exec`: the service is this shell's child.\n/test-service serve --workers 1 --job-ms 3000 --graceful WINCH --immediate none\necho \"run.sh: the service exited with $?\"\n";
    quiesce_tests::servers::host_usr_image(
        "quiesce-test-shell-pid1",
        &[
            ("/test-service", &service, 0o755),
            ("/app/run.sh", script, 0o755),
        ],
        &[],
        &["ENTRYPOINT [\"/bin/sh\", \"/app/run.sh\"]"],
    )
}

#[test]
fn a_service_behind_a_shell_is_found_and_reached_with_signal_target_child() {
    let [usr_flag, usr_mount] = quiesce_tests::servers::HOST_USR;
    let image = shell_pid1_image();
    let start = |name: &str, target: &str| {
        let container = Container::start(
            name,
            &[
                "--network",
                "none",
                usr_flag,
                usr_mount,
                "--label",
                "quiesce.policy=httpd",
                "--label",
                r#"quiesce.settings={"graceful_timeout": "20s", "fast_timeout": "1s"}"#,
                "--label",
                &format!("quiesce.signal-target={target}"),
            ],
            &image,
            &[],
        );
        container.wait_for_log("started job 1", Duration::from_secs(20));
        container
    };

    // Signals to PID 1 (the shell): the plan warns, and WINCH and TERM are lost on the shell;
    // SIGKILL ends it.
    let deaf = start("shell-pid1", "pid1");
    let (status, plan, _) = quiesce_json(&["plan", &deaf.name]);
    assert_eq!(status, Some(0));
    let warnings = &service(&plan, &deaf.name)["warnings"];
    assert!(
        warnings.to_string().contains("\"pid1-shell\"")
            && warnings.to_string().contains("/test-service serve"),
        "{plan:#}"
    );
    let (_, report, stderr) = quiesce_json(&["stop", &deaf.name]);
    assert_eq!(
        service(&report, &deaf.name)["outcome"],
        "killed",
        "{report:#}"
    );
    assert!(
        stderr.contains("pid1-shell"),
        "warned before the stop: {stderr}"
    );

    // Signals to PID 1's children: the service drains on WINCH, the shell exits after it.
    let reached = start("shell-child", "child");
    let (status, report, stderr) = quiet_plan_graceful_stop(&reached.name);
    assert_eq!(
        service(&report, &reached.name)["exit_code"],
        0,
        "{report:#}"
    );
    assert_eq!(status, Some(0), "{stderr}");
    let logs = reached.logs();
    assert!(logs.contains("signal SIGWINCH graceful"), "{logs}");
    assert!(logs.contains("run.sh: the service exited with 0"), "{logs}");
    let (started, completed) = reached.jobs();
    assert_eq!(started, completed, "{logs}");
}

/// Asserts that the stop `report` (its progress on `stderr`) SIGKILLed service `name`, which
/// never heard its signal, and said so.
fn killed_unheard(report: &Value, stderr: &str, name: &str) {
    assert_eq!(service(report, name)["outcome"], "killed", "{report:#}");
    assert_eq!(unheard(report, name).len(), 1, "{report:#}");
    assert!(stderr.contains("[signal-not-handled]"), "{stderr}");
}

/// The `signal-not-handled` warnings of a service in a report or plan.
fn unheard(report: &Value, name: &str) -> Vec<String> {
    service(report, name)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|warning| warning["code"] == "signal-not-handled")
        .map(|warning| warning["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_pid1_that_cannot_hear_its_signal_is_warned_about_and_a_shell_that_traps_it_is_not() {
    // `test-service sleep` installs no handler: as PID 1, SIGTERM neither drains nor ends it.
    let deaf = Container::start(
        "hear-deaf",
        &[
            "--network",
            "none",
            "--label",
            r#"quiesce.settings={"grace_period": "2s"}"#,
        ],
        quiesce_tests::docker::test_image(),
        &["sleep", "600000"],
    );
    let (status, plan, _) = quiesce_json(&["plan", &deaf.name]);
    assert_eq!(status, Some(0));
    let warned = unheard(&plan, &deaf.name);
    assert!(
        warned.len() == 1
            && warned[0].starts_with("PID 1 (`test-service`) has no handler for SIGTERM")
            && warned[0].contains("neither drain nor die"),
        "{plan:#}"
    );
    let (_, report, stderr) = quiesce_json(&["stop", &deaf.name]);
    killed_unheard(&report, &stderr, &deaf.name);

    // The test service handles its signals (blocked, read by a signal thread): nothing to say.
    let hearing = Container::run("hear-ok", &[], &["--workers", "0"]);
    let (_, plan, _) = quiesce_json(&["plan", &hearing.name]);
    assert_eq!(
        unheard(&plan, &hearing.name),
        Vec::<String>::new(),
        "{plan:#}"
    );

    // A shell as PID 1 that traps TERM itself needs nothing passed on: no `pid1-shell`, no
    // `signal-not-handled`, and the trap ends it gracefully.
    let trapping = with_host_usr(
        "hear-trap",
        r#"ENTRYPOINT ["/bin/sh", "-c", "trap 'echo trapped; exit 0' TERM; /test-service sleep 600000 & wait"]"#,
        &[],
        &[],
    );
    quiet_plan_graceful_stop(&trapping.name);
    assert!(trapping.logs().contains("trapped"), "{}", trapping.logs());
}

/// A container of an image holding the test service at `/test-service` with `entrypoint` (a
/// `docker import -c` line), the host's /usr mounted (a shell, `cat`).
pub(crate) fn with_host_usr(
    name: &str,
    entrypoint: &str,
    docker_args: &[&str],
    args: &[&str],
) -> Container {
    let service_bin = std::fs::read(fixtures::TEST_SERVICE_BIN).unwrap();
    let image = quiesce_tests::servers::host_usr_image(
        "quiesce-test-usr-service",
        &[("/test-service", &service_bin, 0o755)],
        &[],
        &[entrypoint],
    );
    let [usr_flag, usr_mount] = quiesce_tests::servers::HOST_USR;
    let mut all = vec!["--network", "none", usr_flag, usr_mount];
    all.extend_from_slice(docker_args);
    Container::start(name, &all, &image, args)
}

/// Issue 27, a remote engine: where the engine's processes are not in quiesce's `/proc` (here
/// quiesce runs in a container of its own, in its own PID namespace, and talks to the engine
/// through the mounted socket), the masks of the process a service's signals reach are read
/// through the engine, `cat /proc/1/status` exec'd in the container: a PID 1 without a
/// handler is warned about by `plan` and `stop`, a shell that traps TERM is not, and an image
/// without `cat` (the test service alone) says nothing rather than guess.
#[test]
fn where_quiesce_cannot_see_the_engines_processes_it_reads_their_handlers_through_the_engine() {
    let two_seconds = r#"quiesce.settings={"grace_period": "2s"}"#;
    let deaf = with_host_usr(
        "remote-deaf",
        r#"ENTRYPOINT ["/test-service", "sleep", "600000"]"#,
        &["--label", two_seconds],
        &[],
    );
    let trapping = with_host_usr(
        "remote-trap",
        r#"ENTRYPOINT ["/bin/sh", "-c", "trap 'exit 0' TERM; /test-service sleep 600000 & wait"]"#,
        &[],
        &[],
    );
    let bare = Container::start(
        "remote-bare",
        &["--network", "none", "--label", two_seconds],
        quiesce_tests::docker::test_image(),
        &["sleep", "600000"],
    );
    let remote = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "--entrypoint",
            "/quiesce",
        ];
        let image = crate::run::run_image();
        all.push(&image);
        all.extend_from_slice(args);
        let output = quiesce_tests::docker::docker(&all);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stderr)));
        (report, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (plan, stderr) = remote(&["plan", &deaf.name, &trapping.name, &bare.name, "--json"]);
    let warned = unheard(&plan, &deaf.name);
    assert!(
        warned.len() == 1
            && warned[0].starts_with("PID 1 (`test-service`) has no handler for SIGTERM"),
        "{plan:#}\n{stderr}"
    );
    assert_eq!(
        unheard(&plan, &trapping.name),
        Vec::<String>::new(),
        "{plan:#}"
    );
    assert_eq!(unheard(&plan, &bare.name), Vec::<String>::new(), "{plan:#}");

    // The stop reads them beside its first signal, and says so in the report.
    let (report, stderr) = remote(&["stop", &deaf.name, &bare.name, "--json"]);
    killed_unheard(&report, &stderr, &deaf.name);
    assert_eq!(
        unheard(&report, &bare.name),
        Vec::<String>::new(),
        "{report:#}"
    );
}

#[test]
fn a_file_policy_cannot_take_images_over_silently() {
    // `greedy` claims `*` (every image) and `nginx*` (the built-in nginx policy's pattern).
    let policies = dir_with(&[("greedy.wasm", &wasm(fixtures::GREEDY_PATTERNS))]);
    let tag = format!("nginx-lookalike-{}:1", std::process::id());
    docker_ok(&["tag", quiesce_tests::docker::test_image(), &tag]);
    let nginx_like = Container::start("lookalike", &["--network", "none"], &tag, &["serve"]);
    let plain = Container::run("unlabelled", &[], &[]);
    let (status, plan, stderr) = quiesce_json(&[
        "plan",
        &nginx_like.name,
        &plain.name,
        "--policies",
        policies.path().to_str().unwrap(),
    ]);
    docker_ok(&["rmi", &tag]);
    assert_eq!(status, Some(0), "{stderr}");
    // At equal specificity the built-in keeps its images, and the overlap is named.
    let lookalike = service(&plan, &nginx_like.name);
    assert_eq!(lookalike["policy"]["name"], "nginx", "{plan:#}");
    let overlap = lookalike["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|warning| warning["code"] == "pattern-overlap")
        .unwrap_or_else(|| panic!("no overlap warning: {plan:#}"));
    assert!(
        overlap["message"]
            .as_str()
            .unwrap()
            .contains("policy greedy"),
        "{overlap}"
    );
    // The catch-all is ignored: an unlabelled container keeps `default`, with a run warning.
    assert_eq!(service(&plan, &plain.name)["policy"]["name"], "default");
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning["code"] == "pattern-matches-everything"),
        "{plan:#}"
    );
}
