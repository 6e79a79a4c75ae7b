//! The `quiesce policy` commands, run as a user runs them: the real binary, real files.

use std::process::Output;

use quiesce_tests::{builtin, dir_with, fixtures, quiesce, wasm};

fn run(args: &[&str]) -> Output {
    quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(args)
        .output()
        .expect("run quiesce")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_names_the_contract_it_speaks() {
    let output = run(&["--version"]);
    assert!(output.status.success());
    let expected = format!("(policy contract {})", quiesce::sdk::CONTRACT_VERSION);
    assert!(stdout(&output).contains(&expected), "{}", stdout(&output));
}

#[test]
fn policy_list_shows_the_default_policy_with_its_metadata() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let output = run(&["policy", "list", "--policies", dir]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let header = text.lines().next().unwrap();
    for column in [
        "NAME",
        "VERSION",
        "CONTRACT",
        "DIGEST",
        "SOURCE",
        "DESCRIPTION",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = text
        .lines()
        .find(|line| line.starts_with("default "))
        .expect(&text);
    assert!(
        row.contains("(built-in)") && row.contains("sha256:"),
        "{row}"
    );

    let output = run(&["policy", "list", "--policies", dir, "--json"]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let default = document["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|policy| policy["name"] == "default")
        .expect("default is listed");
    assert_eq!(default["name"], "default");
    assert_eq!(default["version"], "1.0.0");
    assert_eq!(default["contract_version"], quiesce::sdk::CONTRACT_VERSION);
    assert_eq!(default["source"], "builtin");
    assert_eq!(
        default["digest"],
        quiesce::model::digest::content_digest(builtin("default"))
    );
    assert!(
        default["settings_doc"]
            .as_str()
            .unwrap()
            .contains("grace_period")
    );
    assert_eq!(document["problems"], serde_json::json!([]));
}

#[test]
fn policy_list_includes_directory_policies_and_warns_about_bad_files() {
    let dir = dir_with(&[("echo.wasm", &wasm(fixtures::ECHO)), ("junk.wasm", b"junk")]);
    let output = run(&["policy", "list", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let echo_row = stdout(&output)
        .lines()
        .find(|line| line.starts_with("echo "))
        .map(str::to_string)
        .expect("echo listed");
    assert!(echo_row.contains("echo.wasm"), "{echo_row}");
    assert!(
        stderr(&output).contains("junk.wasm: not a WebAssembly file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn policy_check_reports_each_bad_file_with_its_reason_and_exits_1() {
    let dir = dir_with(&[
        ("good.wasm", builtin("default")),
        ("random.wasm", &[0x5a; 300]),
        ("core.wasm", b"\0asm\x01\0\0\0"),
        ("other-world.wasm", &wasm(fixtures::NOT_A_POLICY)),
    ]);
    let output = run(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    let line = |file: &str| {
        text.lines()
            .find(|line| line.contains(file))
            .unwrap_or_else(|| panic!("{file} not reported:\n{text}"))
            .to_string()
    };
    assert!(line("good.wasm").starts_with("ok "), "{text}");
    assert!(line("good.wasm").contains("default 1.0.0"), "{text}");
    assert!(
        line("random.wasm").starts_with("invalid ")
            && line("random.wasm").contains("not a WebAssembly file")
    );
    assert!(
        line("core.wasm").starts_with("invalid ")
            && line("core.wasm").contains("core WebAssembly module")
    );
    assert!(
        line("other-world.wasm").starts_with("invalid ")
            && line("other-world.wasm").contains("does not export `quiesce:policy/policy@0.1.0`")
    );
    assert!(text.contains("4 checked, 1 valid, 3 invalid"), "{text}");
}

#[test]
fn policy_check_catches_a_policy_that_loads_but_loops() {
    let dir = dir_with(&[("loop.wasm", &wasm(fixtures::LOOP_FOREVER))]);
    let output = run(&[
        "policy",
        "check",
        "--policy-timeout",
        "50ms",
        "--json",
        dir.path().join("loop.wasm").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let reason = document["files"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("next() exceeded the time limit of 50ms"),
        "{reason}"
    );
    assert_eq!(document["invalid"], 1);
}

#[test]
fn policy_check_on_good_policies_exits_0() {
    let dir = dir_with(&[
        ("default.wasm", builtin("default")),
        ("echo.wasm", &wasm(fixtures::ECHO)),
    ]);
    let output = run(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("2 checked, 2 valid, 0 invalid"));
}

#[test]
fn bad_paths_and_directories_have_documented_exit_statuses() {
    let output = run(&["policy", "check", "/nonexistent/policy.wasm"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/policy.wasm: no such file"),
        "{}",
        stderr(&output)
    );

    let output = run(&["policy", "list", "--policies", "/nonexistent/dir"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("cannot read the policies directory /nonexistent/dir"));

    let output = run(&["policy", "list", "--policy-timeout", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid duration"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_empty_variable_counts_as_unset_as_an_empty_docker_host_does() {
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env("QUIESCE_CONFIG", "")
        .env("QUIESCE_POLICIES", "")
        .env("QUIESCE_POLICY_TIMEOUT", "")
        .args(["policy", "list"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("default"));
}
