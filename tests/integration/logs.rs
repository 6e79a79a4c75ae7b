//! Logs for log shippers, against a real Docker Engine: `--log-format json` writes one JSON
//! object per event on stderr (every line, errors and warnings included), and `-v` adds what
//! the Docker client logs, filtered by target (`QUIESCE_LOG`).

use std::process::Output;

use quiesce_tests::docker::Container;
use serde_json::Value;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = quiesce_tests::quiesce(crate::quiesce_bin(), &crate::cache_dir());
    command
        .env_remove("QUIESCE_CONFIG")
        .env_remove("QUIESCE_LOG")
        .env_remove("QUIESCE_LOG_FORMAT");
    for (key, value) in env {
        command.env(key, value);
    }
    command.args(args).output().expect("run quiesce")
}

/// Every stderr line as JSON; panics on a line that is not an object with `time` and `event`.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line:?}"));
            assert!(record["time"].is_string(), "no time: {line}");
            assert!(record["event"].is_string(), "no event: {line}");
            record
        })
        .collect()
}

fn events<'a>(records: &'a [Value], event: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["event"] == event)
        .collect()
}

#[test]
fn a_json_log_has_one_object_per_event_warnings_and_errors_included() {
    let container = Container::run(
        "log-json",
        &["--label", "quiesce.policy=nginx"],
        &["--workers", "1", "--job-ms", "300", "--graceful", "QUIT"],
    );
    container.wait_for_log("started job 1", std::time::Duration::from_secs(10));
    // A budget below nginx's own sequence: a `budget-below-policy` warning (found beside the
    // stop, not before its first signal).
    let output = run(
        &[
            "stop",
            &container.name,
            "--budget",
            "30s",
            "--log-format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let records = json_lines(&output);
    let warnings = events(&records, "warning");
    assert_eq!(warnings.len(), 1, "{records:#?}");
    assert_eq!(warnings[0]["code"], "budget-below-policy");
    assert_eq!(warnings[0]["service"], container.name.as_str());
    let start = events(&records, "start");
    assert_eq!(start[0]["policy"], "nginx");
    assert_eq!(start[0]["budget_ms"], 30_000);
    let steps = events(&records, "step-start");
    assert_eq!(steps[0]["action"], "signal");
    assert_eq!(steps[0]["detail"], "SIGQUIT");
    assert_eq!(steps[0]["by"], "policy");
    assert_eq!(events(&records, "step-end")[0]["result"], "delivered");
    let finished = events(&records, "finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["outcome"], "graceful");
    assert_eq!(finished[0]["exit_code"], 0);

    // The environment variable does the same; an error is one object too.
    let output = run(
        &["stop", "quiesce-no-such-container"],
        &[("QUIESCE_LOG_FORMAT", "json")],
    );
    assert_eq!(output.status.code(), Some(2));
    let records = json_lines(&output);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["event"], "error");
    assert!(
        records[0]["message"]
            .as_str()
            .unwrap()
            .contains("quiesce-no-such-container"),
        "{records:#?}"
    );
}

#[test]
fn verbose_shows_the_docker_clients_log_filtered_by_target() {
    let container = Container::run("log-verbose", &[], &["--workers", "0"]);
    let output = run(&["plan", &container.name, "-v"], &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bollard::"), "{stderr}");

    // As JSON lines, with the target, when the log format is JSON.
    let output = run(
        &["plan", &container.name, "-v", "--log-format", "json"],
        &[],
    );
    let records = json_lines(&output);
    assert!(
        records.iter().any(|record| record["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("bollard"))),
        "{records:#?}"
    );

    // QUIESCE_LOG narrows it: the Docker client off, nothing of it shown.
    let output = run(
        &["plan", &container.name, "-v"],
        &[("QUIESCE_LOG", "bollard=off")],
    );
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("bollard::"), "{stderr}");

    // A stop's -v shows what was done to the container, not what the worst-case simulation
    // beside it did: one signal requested, TERM, and no SIGKILL for a service that obeyed.
    let output = run(&["stop", &container.name, "-v"], &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let requested: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("signal requested"))
        .collect();
    assert!(
        requested.len() == 1 && requested[0].contains("signal=SIGTERM"),
        "{stderr}"
    );
}
