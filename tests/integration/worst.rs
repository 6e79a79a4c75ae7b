//! A policy's worst case is its longest path (issue 30): the policy of issue 30, written from
//! the guide (`touch /tmp/drain`, `test -f /tmp/idle` every second for up to `drain_timeout`,
//! TERM, 10 s, SIGKILL), takes longest when its checks answer "not idle", not when every
//! command hangs. `plan` says so, its budget warning names the setting that makes the path
//! long and advises a budget that holds it, `generate kolla-dropins` writes a TimeoutStopSec
//! above it, and a real stop of a service that never becomes idle takes what the plan said.

use quiesce_tests::{dir_with, fixtures, wasm};
use serde_json::Value;

use crate::stop::{quiesce_json, service, with_host_usr};

/// The fixture's policies directory.
fn drain_file_policies() -> tempfile::TempDir {
    dir_with(&[("drain-file.wasm", &wasm(fixtures::DRAIN_FILE))])
}

/// The `budget-below-policy` warning of service `name`, if any.
fn budget_warning(report: &Value, name: &str) -> Option<String> {
    service(report, name)["warnings"]
        .as_array()?
        .iter()
        .find(|warning| warning["code"] == "budget-below-policy")
        .map(|warning| warning["message"].as_str().unwrap().to_string())
}

#[test]
fn the_worst_case_is_the_policys_longest_path_and_a_real_stop_takes_it() {
    let policies = drain_file_policies();
    let dir = policies.path().to_str().unwrap();
    // `touch` and `test` from the host's /usr; no /tmp/idle ever appears, and PID 1 has no
    // handler for TERM: the service never cooperates.
    let never_idle = with_host_usr(
        "worst-never-idle",
        r#"ENTRYPOINT ["/test-service", "sleep", "600000"]"#,
        &["--label", "quiesce.policy=drain-file"],
        &[],
    );
    let name = never_idle.name.as_str();

    // With its defaults: 30 s of checks, TERM, 10 s, SIGKILL.
    let (status, plan, stderr) = quiesce_json(&["plan", name, "--policies", dir]);
    assert_eq!(status, Some(0), "{stderr}");
    let worst_ms = plan["worst_case_ms"].as_u64().unwrap();
    assert!((40_000..41_000).contains(&worst_ms), "{plan:#}");

    // A 15 s budget cuts the drain: the warning names `drain_timeout` (not the fixed TERM
    // wait) and advises at least the whole path.
    let (_, plan, _) = quiesce_json(&["plan", name, "--policies", dir, "--budget", "15s"]);
    let warning = budget_warning(&plan, name).unwrap_or_else(|| panic!("{plan:#}"));
    assert!(
        warning.contains("setting `drain_timeout` = 30s makes it that long"),
        "{warning}"
    );
    assert!(warning.contains("`test -f /tmp/idle` fails"), "{warning}");
    let advised: u64 = warning
        .split("give it a budget of at least ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{warning}"));
    assert!(advised >= 40, "{warning}");
    // A budget that holds the path: nothing to say.
    let (_, plan, _) = quiesce_json(&["plan", name, "--policies", dir, "--budget", "45s"]);
    assert_eq!(budget_warning(&plan, name), None, "{plan:#}");

    // The drop-in's TimeoutStopSec is above the worst case.
    let dropins = tempfile::tempdir().unwrap();
    let generated = crate::stop::run(&[
        "generate",
        "kolla-dropins",
        name,
        "--policies",
        dir,
        "--dir",
        dropins.path().to_str().unwrap(),
    ]);
    assert!(generated.status.success(), "{generated:?}");
    let dropin = std::fs::read_to_string(
        dropins
            .path()
            .join(format!("kolla-{name}-container.service.d/quiesce.conf")),
    )
    .unwrap();
    let timeout: u64 = dropin
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{dropin}"));
    assert!(timeout * 1000 > worst_ms, "{dropin}");

    // A real stop of the service that never becomes idle, with an 8 s drain: it takes at least
    // the plan's worst case (8 s of checks, TERM, 10 s, SIGKILL; longer than a `touch` that
    // hangs for its 5 s and goes straight to TERM, as with a 3 s drain): the plan never
    // underestimates (what systemd's and the kubelet's timeouts are set from). Real commands
    // only add their own time, so no upper margin is asserted (a busy machine's execs are
    // slow); BENCHMARKS.md gives the measured difference.
    let short = r#"{"drain_timeout": "8s"}"#;
    let settings = ["--label", "quiesce.policy=drain-file", "--label"];
    let label = format!("quiesce.settings={short}");
    let short_drain = with_host_usr(
        "worst-short-drain",
        r#"ENTRYPOINT ["/test-service", "sleep", "600000"]"#,
        &[settings[0], settings[1], settings[2], &label],
        &[],
    );
    let (_, plan, _) = quiesce_json(&["plan", &short_drain.name, "--policies", dir]);
    let planned = plan["worst_case_ms"].as_u64().unwrap();
    let (_, report, stderr) = quiesce_json(&["stop", &short_drain.name, "--policies", dir]);
    let stopped = service(&report, &short_drain.name);
    assert_eq!(stopped["outcome"], "killed", "{report:#}\n{stderr}");
    let checks = stopped["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["detail"].as_str().unwrap_or("").contains("test -f"))
        .count();
    assert!(checks >= 8, "{report:#}");
    let elapsed = stopped["elapsed_ms"].as_u64().unwrap();
    // (Milliseconds are rounded on both sides.)
    assert!(
        elapsed + 10 >= planned,
        "planned {planned} ms, took {elapsed} ms: {report:#}"
    );
}
