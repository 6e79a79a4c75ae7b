//! The policy author's commands: `quiesce policy new`, `build`, `test`, `eval` and `bench`.
//!
//! `new` writes a policy crate that builds and passes its tests as generated: the SDK and the
//! contract it is built against are vendored into it from this binary, so it needs nothing but
//! crates.io and the wasm32-wasip2 target.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use clap::Args;
use quiesce_policy_sdk::{CONTRACT_VERSION, Context};
use serde_json::json;

use super::policy_cmd::print_out;
use super::{EngineArgs, Failure, exit};
use crate::config::Config;
use crate::policy::{LoadedPolicy, measure_decisions, sample_context};
use crate::scenario::{run_files, scenario_files};

/// The SDK's sources and the contract, vendored into new policy crates (path, contents).
const VENDORED: &[(&str, &str)] = &[
    ("wit/policy.wit", include_str!("../../../wit/policy.wit")),
    (
        "quiesce-policy-sdk/src/lib.rs",
        include_str!("../../../guest-sdk/src/lib.rs"),
    ),
    (
        "quiesce-policy-sdk/src/rules.rs",
        include_str!("../../../guest-sdk/src/rules.rs"),
    ),
    (
        "quiesce-policy-sdk/src/signal.rs",
        include_str!("../../../guest-sdk/src/signal.rs"),
    ),
    (
        "quiesce-policy-sdk/src/types.rs",
        include_str!("../../../guest-sdk/src/types.rs"),
    ),
    (
        "quiesce-policy-sdk/src/wit_conversions.rs",
        include_str!("../../../guest-sdk/src/wit_conversions.rs"),
    ),
    (
        "quiesce-policy-sdk/src/testing/mod.rs",
        include_str!("../../../guest-sdk/src/testing/mod.rs"),
    ),
    (
        "quiesce-policy-sdk/src/testing/harness.rs",
        include_str!("../../../guest-sdk/src/testing/harness.rs"),
    ),
    (
        "quiesce-policy-sdk/src/testing/model.rs",
        include_str!("../../../guest-sdk/src/testing/model.rs"),
    ),
    (
        "quiesce-policy-sdk/src/testing/scenario.rs",
        include_str!("../../../guest-sdk/src/testing/scenario.rs"),
    ),
];

/// The vendored SDK's manifest: the workspace's, made standalone.
const VENDORED_SDK_MANIFEST: &str = r#"[package]
name = "quiesce-policy-sdk"
version = "{{version}}"
edition = "2024"
description = "Write quiesce shutdown policies in Rust (vendored by `quiesce policy new`)."
license = "Apache-2.0"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc"] }
humantime = "2"
toml = { version = "1", optional = true }

[features]
testing = ["dep:toml"]
"#;

/// The policy crate's own files (path, template).
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/policy/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/policy/src/lib.rs.tmpl"),
    ),
    (
        "scenarios/basic.toml",
        include_str!("../../templates/policy/scenarios/basic.toml"),
    ),
    (
        "README.md",
        include_str!("../../templates/policy/README.md.tmpl"),
    ),
    (".gitignore", "/target\n"),
];

/// `quiesce policy new`.
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The policy's name (lowercase letters, digits, `-`); also the crate's directory.
    pub name: String,
    /// Where to create the crate's directory [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `quiesce policy build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The policy crate's directory.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Also copy the component into this policies directory.
    #[arg(long, value_name = "DIR")]
    pub install: Option<PathBuf>,
}

/// `quiesce policy test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// A scenario file, or a directory of them (`*.toml`).
    #[arg(long, value_name = "PATH")]
    pub scenarios: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// The context, as JSON (the SDK's `Context`; `quiesce policy eval --help` for an example).
    #[arg(long, value_name = "FILE")]
    pub context: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `quiesce policy bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The policy: a `.wasm` file, or the name of a loaded policy.
    pub policy: String,
    /// The context to decide on (JSON) [default: a service mid-sequence].
    #[arg(long, value_name = "FILE")]
    pub context: Option<PathBuf>,
    /// How many decisions to measure.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Where the policies are and their limits.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Loads a policy by file or by name.
fn load_policy(spec: &str, engine: &EngineArgs) -> Result<Arc<LoadedPolicy>, Failure> {
    let config = Config::default();
    let path = Path::new(spec);
    if spec.ends_with(".wasm") || path.is_file() {
        let policy_engine = engine.engine_with(&config)?;
        return policy_engine
            .load_file(path)
            .map(Arc::new)
            .map_err(|problem| Failure::invalid(problem.to_string()));
    }
    let catalog = engine.catalog(&config)?;
    catalog.get(spec).cloned().ok_or_else(|| {
        Failure::invalid(format!(
            "no policy `{spec}`: give a .wasm file or one of the names `quiesce policy list` shows"
        ))
    })
}

fn read_context(path: &Path) -> Result<Context, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::invalid(format!("cannot read {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| {
        Failure::invalid(format!(
            "{}: not a valid context: {error} (see `quiesce policy eval --help`)",
            path.display()
        ))
    })
}

/// `quiesce policy test`.
pub fn test(args: &TestArgs) -> Result<u8, Failure> {
    let policy = load_policy(&args.policy, &args.engine)?;
    let files = scenario_files(&args.scenarios)
        .map_err(|error| Failure::invalid(format!("{}: {error}", args.scenarios.display())))?;
    if files.is_empty() {
        return Err(Failure::invalid(format!(
            "{}: no scenario files (*.toml)",
            args.scenarios.display()
        )));
    }
    let results = run_files(&policy, &files).map_err(Failure::invalid)?;
    let failed = results
        .iter()
        .filter(|result| result.verdict.is_err())
        .count();
    if args.json {
        let entries: Vec<_> = results
            .iter()
            .map(|result| {
                json!({
                    "file": result.file.display().to_string(),
                    "scenario": result.name,
                    "passed": result.verdict.is_ok(),
                    "diff": result.verdict.as_ref().err(),
                    "transcript": result.transcript,
                })
            })
            .collect();
        print_out(&format!(
            "{:#}\n",
            json!({ "policy": policy.name(), "results": entries, "failed": failed })
        ));
    } else {
        let mut text = format!(
            "policy {} {} ({})\n",
            policy.name(),
            policy.info().version,
            policy.source()
        );
        for result in &results {
            match &result.verdict {
                Ok(()) => text.push_str(&format!("ok    {}\n", result.name)),
                Err(diff) => text.push_str(&format!(
                    "FAIL  {} ({})\n{diff}\n",
                    result.name,
                    result.file.display()
                )),
            }
        }
        text.push_str(&format!(
            "{} passed, {failed} failed\n",
            results.len() - failed
        ));
        print_out(&text);
    }
    Ok(if failed == 0 {
        exit::SUCCESS
    } else {
        exit::PROBLEMS
    })
}

/// `quiesce policy eval`.
pub fn eval(args: &EvalArgs) -> Result<u8, Failure> {
    let policy = load_policy(&args.policy, &args.engine)?;
    let ctx = read_context(&args.context)?;
    match policy.decide(&ctx) {
        Ok(decision) => {
            let (action, detail) = decision.step.describe();
            if args.json {
                print_out(&format!(
                    "{:#}\n",
                    json!({
                        "step": decision.step,
                        "log": decision.log,
                        "elapsed_us": decision.elapsed.as_micros() as u64,
                        "peak_memory_bytes": decision.peak_memory,
                    })
                ));
            } else {
                print_out(&format!(
                    "step: {action} {detail}\nas JSON: {}\ntime: {} µs (fresh instance and call)\npeak memory: {} KiB\nlog:\n{}",
                    serde_json::to_string(&decision.step).expect("a step serializes"),
                    decision.elapsed.as_micros(),
                    decision.peak_memory / 1024,
                    if decision.log.is_empty() {
                        "(nothing)\n".to_string()
                    } else {
                        decision.log.clone()
                    }
                ));
            }
            Ok(exit::SUCCESS)
        }
        Err(error) => {
            print_out(&format!("no step: {error}\nlog:\n{}\n", error.log));
            Ok(exit::PROBLEMS)
        }
    }
}

/// `quiesce policy bench`.
pub fn bench(args: &BenchArgs) -> Result<u8, Failure> {
    let policy = load_policy(&args.policy, &args.engine)?;
    let ctx = match &args.context {
        Some(path) => read_context(path)?,
        None => sample_context(),
    };
    let samples = args.samples.max(1);
    let stats =
        measure_decisions(&policy, &ctx, (samples / 10).max(1), samples).map_err(|error| {
            Failure::invalid(format!("the policy failed during the benchmark: {error}"))
        })?;
    let micros = |duration: std::time::Duration| duration.as_secs_f64() * 1e6;
    print_out(&format!(
        "policy {} {}: {} decisions, fresh instance each\np50 {:.1} µs, p99 {:.1} µs, max {:.1} µs, peak memory {} KiB\n",
        policy.name(),
        policy.info().version,
        stats.samples,
        micros(stats.p50),
        micros(stats.p99),
        micros(stats.max),
        stats.peak_memory / 1024
    ));
    Ok(exit::SUCCESS)
}

/// `quiesce policy new`.
pub fn new(args: &NewArgs) -> Result<u8, Failure> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(Failure::invalid(format!(
            "invalid policy name {name:?}: use lowercase letters, digits and `-`, starting with a letter"
        )));
    }
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(name);
    if root.exists() {
        return Err(Failure::invalid(format!(
            "{} already exists; choose another name or --dir",
            root.display()
        )));
    }
    let crate_name = format!("{name}-policy");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{crate_file}}", &crate_name.replace('-', "_"))
            .replace("{{contract}}", CONTRACT_VERSION)
            .replace("{{version}}", env!("CARGO_PKG_VERSION"))
    };
    let write = |relative: &str, contents: &str| -> Result<(), Failure> {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| {
                Failure::environment(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        std::fs::write(&path, contents).map_err(|error| {
            Failure::environment(format!("cannot write {}: {error}", path.display()))
        })
    };
    for (relative, template) in TEMPLATE {
        write(relative, &fill(template))?;
    }
    for (relative, contents) in VENDORED {
        write(&format!("vendor/{relative}"), contents)?;
    }
    write(
        "vendor/quiesce-policy-sdk/Cargo.toml",
        &fill(VENDORED_SDK_MANIFEST),
    )?;
    print_out(&format!(
        "created {}: policy `{name}` for contract {CONTRACT_VERSION}\nnext:\n  cd {}\n  cargo test\n  quiesce policy build .\n  quiesce policy test target/wasm32-wasip2/release/{}.wasm --scenarios scenarios/\n",
        root.display(),
        root.display(),
        crate_name.replace('-', "_")
    ));
    Ok(exit::SUCCESS)
}

/// `quiesce policy build`: `cargo build --release --target wasm32-wasip2` in the crate, then
/// the component's path (and a copy in `--install`).
pub fn build(args: &BuildArgs) -> Result<u8, Failure> {
    let manifest = args.path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|error| {
        Failure::invalid(format!(
            "{}: {error}; give the policy crate's directory",
            manifest.display()
        ))
    })?;
    let package = text
        .lines()
        .skip_while(|line| line.trim() != "[package]")
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| Failure::invalid(format!("{}: no [package] name", manifest.display())))?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .status()
        .map_err(|error| Failure::environment(format!("cannot run cargo: {error}")))?;
    if !status.success() {
        return Err(Failure::invalid(
            "the build failed (see above); if the target is missing: rustup target add wasm32-wasip2",
        ));
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| args.path.join("target"));
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !wasm.is_file() {
        return Err(Failure::environment(format!(
            "cargo did not produce {}",
            wasm.display()
        )));
    }
    let mut text = format!("built {}\n", wasm.display());
    if let Some(dir) = &args.install {
        std::fs::create_dir_all(dir).map_err(|error| {
            Failure::environment(format!("cannot create {}: {error}", dir.display()))
        })?;
        let target = dir.join(wasm.file_name().expect("a file name"));
        std::fs::copy(&wasm, &target).map_err(|error| {
            Failure::environment(format!("cannot copy to {}: {error}", target.display()))
        })?;
        text.push_str(&format!("installed {}\n", target.display()));
    }
    print_out(&text);
    Ok(exit::SUCCESS)
}
