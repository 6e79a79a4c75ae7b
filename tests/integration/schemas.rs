//! The machine interface: the checked-in JSON Schemas (`schemas/`) are what the types generate,
//! and real outputs of `quiesce stop --json` and `quiesce plan --json` against a real engine
//! validate against them, as do the documents of `quiesce policy list`, `check`, `test` and
//! `eval`.

use std::time::Duration;

use quiesce_tests::docker::Container;
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = quiesce_tests::workspace().join("schemas").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_checked_in_schemas_are_what_the_types_generate() {
    for (name, generated) in quiesce::output::schema::all() {
        let path = quiesce_tests::workspace().join("schemas").join(name);
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} is out of date: run `cargo run -p quiesce-tests --bin schemas` and commit it",
            path.display()
        );
    }
}

fn assert_valid(schema: &Value, document: &Value) {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{document:#}");
}

fn quiesce_json(args: &[&str]) -> Value {
    let output = quiesce_tests::quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env_remove("QUIESCE_CONFIG")
        .args(args)
        .arg("--json")
        .output()
        .expect("run quiesce");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn real_reports_and_plans_validate_against_the_report_schema() {
    let report_schema = schema("report.schema.json");
    let container = Container::run(
        "schema",
        &["--label", "quiesce.policy=nginx"],
        &["--workers", "1", "--job-ms", "500", "--graceful", "QUIT"],
    );
    container.wait_for_log("started job 1", Duration::from_secs(10));
    let plan = quiesce_json(&["plan", &container.name, "--within", "1s"]);
    assert_eq!(plan["dry_run"], true);
    assert_valid(&report_schema, &plan);
    let report = quiesce_json(&["stop", &container.name]);
    assert_eq!(report["services"][0]["outcome"], "graceful", "{report:#}");
    assert_valid(&report_schema, &report);
    // A stopped container: the `already-stopped` shape.
    let again = quiesce_json(&["stop", &container.name]);
    assert_valid(&report_schema, &again);
    // The schema is strict: an unknown outcome or an extra field does not pass.
    let validator = jsonschema::validator_for(&report_schema).unwrap();
    let mut unknown = report.clone();
    unknown["services"][0]["outcome"] = "lost".into();
    assert!(!validator.is_valid(&unknown));
    let mut extra = report;
    extra["services"][0]["steps"][0]["note"] = "x".into();
    assert!(!validator.is_valid(&extra));
}

#[test]
fn the_policy_commands_documents_validate_against_their_schemas() {
    // A policies directory with a working file policy and a file that is not one.
    let policies = quiesce_tests::dir_with(&[
        (
            "traps-midway.wasm",
            &quiesce_tests::wasm(quiesce_tests::fixtures::TRAPS_MIDWAY),
        ),
        ("broken.wasm", b"not a component"),
    ]);
    let dir = policies.path().to_str().unwrap();

    let list = quiesce_json(&["policy", "list", "--policies", dir]);
    assert_eq!(list["list_version"], 1);
    assert!(
        list["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|policy| policy["source"] == "file" && policy["name"] == "traps-midway"),
        "{list:#}"
    );
    assert_eq!(list["problems"][0]["file"], format!("{dir}/broken.wasm"));
    assert_valid(&schema("policy-list.schema.json"), &list);

    let check = quiesce_json(&["policy", "check", dir]);
    assert_eq!(check["check_version"], 1);
    assert_eq!(check["invalid"], 1, "{check:#}");
    assert_valid(&schema("policy-check.schema.json"), &check);

    let scenarios = quiesce_tests::workspace().join("policies/nginx/scenarios");
    let test = quiesce_json(&[
        "policy",
        "test",
        "nginx",
        "--scenarios",
        scenarios.to_str().unwrap(),
    ]);
    assert_eq!(test["test_version"], 1);
    assert_eq!(test["failed"], 0, "{test:#}");
    assert!(
        !test["results"][0]["transcript"]["steps"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_valid(&schema("policy-test.schema.json"), &test);

    let context = quiesce_tests::dir_with(&[(
        "ctx.json",
        br#"{ "service": { "name": "web-1" }, "state": { "running": true }, "remaining_ms": 60000 }"#,
    )]);
    let eval = quiesce_json(&[
        "policy",
        "eval",
        "default",
        "--context",
        context.path().join("ctx.json").to_str().unwrap(),
    ]);
    assert_eq!(eval["eval_version"], 1);
    assert_valid(&schema("policy-eval.schema.json"), &eval);

    // Strict: a field the schema does not know fails.
    let mut extra = check;
    extra["files"][0]["note"] = "x".into();
    assert!(
        !jsonschema::validator_for(&schema("policy-check.schema.json"))
            .unwrap()
            .is_valid(&extra)
    );
}
