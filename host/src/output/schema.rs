//! The JSON Schemas of quiesce's machine interface, generated from the types that are
//! serialized (so they cannot drift from the output): the report of `stop --json` and
//! `plan --json` (`--report FILE` too), and the documents of `policy list`, `check`, `test`
//! and `eval` with `--json`. They are checked in under `schemas/`; a test keeps the
//! files equal to what the types generate and validates real outputs against them, and
//! `cargo run -p quiesce-tests --bin schemas` writes them again after a change.

use crate::model::report::Report;
use crate::output::documents::{CheckResults, EvalResult, PolicyList, TestResults};

/// Every schema: (file name, the schema as pretty JSON with a final newline).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("report.schema.json", pretty(schemars::schema_for!(Report))),
        (
            "policy-list.schema.json",
            pretty(schemars::schema_for!(PolicyList)),
        ),
        (
            "policy-check.schema.json",
            pretty(schemars::schema_for!(CheckResults)),
        ),
        (
            "policy-test.schema.json",
            pretty(schemars::schema_for!(TestResults)),
        ),
        (
            "policy-eval.schema.json",
            pretty(schemars::schema_for!(EvalResult)),
        ),
    ]
}

fn pretty(schema: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
