//! The policy author's path: scenario files against compiled policies, `policy eval` and
//! `policy bench`, and `policy new` tried as a new user would. (Native and compiled runs
//! agreeing: `parity`.)

use std::path::Path;
use std::process::{Command, Output};

use quiesce_tests::{dir_with, quiesce, workspace};

fn run_quiesce(args: &[&str]) -> Output {
    quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(args)
        .output()
        .expect("run quiesce")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn every_builtin_policy_passes_its_scenario_files_compiled() {
    for name in quiesce::policy::BUILTIN_POLICIES
        .iter()
        .map(|builtin| builtin.name)
    {
        let scenarios = workspace().join("policies").join(name).join("scenarios");
        assert!(
            scenarios.is_dir(),
            "built-in policy {name} has no scenarios directory"
        );
        let output = run_quiesce(&[
            "policy",
            "test",
            name,
            "--scenarios",
            scenarios.to_str().unwrap(),
            // Long drains' decisions are slow in a debug build on a busy machine; the outcome,
            // not the per-call limit (tested in hostile.rs), is what this test checks.
            "--policy-timeout",
            "10s",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        assert!(
            text(&output).contains(" passed, 0 failed"),
            "{}",
            text(&output)
        );
    }
}

#[test]
fn a_scenario_expecting_the_wrong_signal_fails_with_a_diff_naming_the_step_and_time() {
    let scenarios = dir_with(&[(
        "wrong.toml",
        br#"
[[scenario]]
name = "expects QUIT"
[scenario.service]
signals = { SIGTERM = { exit_after = "1s" } }
[scenario.expect]
steps = ["signal SIGQUIT", "wait exit"]
signals = ["SIGQUIT"]
"#,
    )]);
    let output = run_quiesce(&[
        "policy",
        "test",
        "default",
        "--scenarios",
        scenarios.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = text(&output);
    assert!(report.contains("FAIL  expects QUIT"), "{report}");
    assert!(
        report.contains("step 1 at +0.000s: expected `signal SIGQUIT`, got `signal SIGTERM`"),
        "{report}"
    );
    assert!(report.contains("signals: expected [SIGQUIT], got [SIGTERM] (first difference: SIGTERM at +0.000s in step 1)"), "{report}");
    assert!(report.contains("transcript:"), "{report}");
    assert!(report.contains("0 passed, 1 failed"), "{report}");

    let output = run_quiesce(&[
        "policy",
        "test",
        "default",
        "--json",
        "--scenarios",
        scenarios.path().to_str().unwrap(),
    ]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["failed"], 1);
    assert_eq!(
        document["results"][0]["transcript"]["steps"][0]["detail"],
        "SIGTERM"
    );
}

#[test]
fn policy_eval_prints_the_step_the_log_and_the_cost() {
    let context = dir_with(&[(
        "ctx.json",
        br#"{ "service": { "name": "web-1", "stop_signal": "SIGQUIT", "stop_timeout_ms": 20000 },
              "history": [ { "step": { "signal": "SIGQUIT" }, "outcome": "signal_delivered",
                             "started_ms": 0, "ended_ms": 2 } ],
              "state": { "running": true }, "elapsed_ms": 2, "remaining_ms": 60000 }"#,
    )]);
    let path = context.path().join("ctx.json");
    let output = run_quiesce(&[
        "policy",
        "eval",
        "default",
        "--context",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let shown = text(&output);
    assert!(shown.contains("step: wait exit (up to 20s)"), "{shown}");
    assert!(
        shown.contains("peak memory:") && shown.contains("µs"),
        "{shown}"
    );

    let output = run_quiesce(&[
        "policy",
        "eval",
        "default",
        "--json",
        "--context",
        path.to_str().unwrap(),
    ]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["step"]["wait"]["until"], "exited");
    assert_eq!(document["step"]["wait"]["timeout_ms"], 20000);
    assert!(document["peak_memory_bytes"].as_u64().unwrap() > 0);

    let broken = dir_with(&[("ctx.json", b"{ \"history\": 3 }")]);
    let output = run_quiesce(&[
        "policy",
        "eval",
        "default",
        "--context",
        broken.path().join("ctx.json").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("not a valid context"),
        "{}",
        text(&output)
    );
}

#[test]
fn policy_bench_reports_latency_percentiles() {
    let output = run_quiesce(&["policy", "bench", "default", "--samples", "200"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains("200 decisions") && shown.contains("p50") && shown.contains("p99"),
        "{shown}"
    );
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(args)
        // A shared target directory keeps repeated runs fast; it is outside the new crate.
        .env("CARGO_TARGET_DIR", workspace().join("target/scaffold"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo")
}

#[test]
fn a_new_policy_builds_and_passes_its_tests_as_generated_and_a_changed_signal_fails_them() {
    let outside = tempfile::tempdir().unwrap();
    let output = run_quiesce(&[
        "policy",
        "new",
        "my-policy",
        "--dir",
        outside.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let root = outside.path().join("my-policy");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "scenarios/basic.toml",
        "README.md",
        "vendor/wit/policy.wit",
    ] {
        assert!(root.join(file).is_file(), "{file} was not generated");
    }

    let tests = cargo(&root, &["test", "--quiet"]);
    assert!(
        tests.status.success(),
        "the generated tests fail:\n{}",
        text(&tests)
    );
    // As generated, the crate and its vendored SDK build without a warning.
    assert!(!text(&tests).contains("warning"), "{}", text(&tests));

    let built = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env("CARGO_TARGET_DIR", workspace().join("target/scaffold"))
        .args(["policy", "build", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(built.status.code(), Some(0), "{}", text(&built));
    let wasm = workspace().join("target/scaffold/wasm32-wasip2/release/my_policy_policy.wasm");
    let shown = text(&built);
    assert!(shown.contains("my_policy_policy.wasm"), "{shown}");
    assert!(!shown.contains("warning"), "{shown}");

    let check = run_quiesce(&["policy", "check", wasm.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let scenario_test = run_quiesce(&[
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--scenarios",
        root.join("scenarios").to_str().unwrap(),
    ]);
    assert_eq!(
        scenario_test.status.code(),
        Some(0),
        "{}",
        text(&scenario_test)
    );

    // Change the graceful signal: the tests must fail, saying which step and signal differ.
    let lib = root.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace(
            "signal: Signal = Signal::TERM,",
            "signal: Signal = Signal::QUIT,",
        ),
    )
    .unwrap();
    let tests = cargo(&root, &["test", "--quiet"]);
    assert!(
        !tests.status.success(),
        "tests still pass after changing the signal"
    );
    let failure = text(&tests);
    assert!(
        failure.contains("step 1 at +0.000s: expected `signal SIGTERM`, got `signal SIGQUIT`"),
        "{failure}"
    );

    // Issue 30: every scenario file is `cargo test`'s, not only basic.toml: a failing
    // extra.toml fails it (and `policy test`), naming the file.
    std::fs::write(&lib, &source).unwrap();
    std::fs::write(
        root.join("scenarios/extra.toml"),
        "[[scenario]]\nname = \"expects QUIT\"\n[scenario.expect]\nsignals = [\"SIGQUIT\", \"SIGKILL\"]\n",
    )
    .unwrap();
    let tests = cargo(&root, &["test", "--quiet"]);
    assert!(!tests.status.success(), "extra.toml was not run");
    assert!(text(&tests).contains("extra.toml"), "{}", text(&tests));

    // Installed under the policy's name, which `quiesce run --policy` and `policy test` find.
    let installed = tempfile::tempdir().unwrap();
    let install = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env("CARGO_TARGET_DIR", workspace().join("target/scaffold"))
        .args(["policy", "build", root.to_str().unwrap(), "--install"])
        .arg(installed.path())
        .output()
        .unwrap();
    assert_eq!(install.status.code(), Some(0), "{}", text(&install));
    assert!(
        installed.path().join("my-policy.wasm").is_file(),
        "{}",
        text(&install)
    );
}

/// Issue 30: the drain of the issue written with the SDK's `until` rung (tests/fixtures/
/// policies/drain-ladder, ten lines of ladder) passes its scenarios through the runner as
/// natively (its crate's `cargo test`): a phase triggered by an exec, a repeated block of
/// steps and an expectation on the policy's log; the log is in `--json` and shown for a
/// failed scenario.
#[test]
fn the_drain_as_a_ladder_passes_its_scenarios_through_the_runner_and_its_log_is_shown() {
    let wasm = quiesce_tests::fixtures::DRAIN_LADDER;
    let scenarios = workspace().join("tests/fixtures/policies/drain-ladder/scenarios");
    let output = run_quiesce(&[
        "policy",
        "test",
        wasm,
        "--json",
        "--scenarios",
        scenarios.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["failed"], 0, "{document:#}");
    let log = document["results"][0]["transcript"]["policy_log"]
        .as_str()
        .unwrap();
    assert!(log.contains("TERM"), "{document:#}");

    let wrong = dir_with(&[(
        "wrong.toml",
        br#"
[[scenario]]
name = "expects another log"
[scenario.service]
signals = { SIGTERM = { exit_after = "1s" } }
[[scenario.service.exec]]
command = ["test", "-f", "/tmp/idle"]
[scenario.expect]
log = ["never written"]
"#,
    )]);
    let output = run_quiesce(&[
        "policy",
        "test",
        wasm,
        "--scenarios",
        wrong.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains("the policy's log should contain \"never written\""),
        "{shown}"
    );
    assert!(
        shown.contains("policy log:\n      | drained for"),
        "{shown}"
    );
}

/// Issue 30, a newcomer's errors: a misspelt policy gets the nearest name and the directory
/// searched; a negative duration says what a duration is; a refusal is said once.
#[test]
fn a_newcomers_mistakes_get_messages_that_say_what_to_do() {
    let policies = tempfile::tempdir().unwrap();
    let output = run_quiesce(&[
        "policy",
        "bench",
        "ngnix",
        "--policies",
        policies.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("did you mean `nginx`?"), "{said}");
    assert!(
        said.contains(&format!("the .wasm files of {}", policies.path().display())),
        "{said}"
    );

    let output = run_quiesce(&[
        "run",
        "--check",
        "--check-for",
        "0",
        "--policy",
        "default",
        "--settings",
        r#"{"grace_period": -5}"#,
        "--",
        "/bin/true",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("a duration cannot be negative (-5)"),
        "{said}"
    );
    assert_eq!(said.matches("invalid settings").count(), 1, "{said}");
}
