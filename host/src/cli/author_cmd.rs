//! The policy author's commands: `quiesce policy new`, `build`, `test`, `eval` and `bench`.
//! Making and building a crate is the library's ([`crate::policy::new_policy_crate`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quiesce_policy_sdk::{CONTRACT_VERSION, Context};

use super::{
    BenchArgs, BuildArgs, EngineArgs, EvalArgs, Failure, NewArgs, TestArgs, Verbosity, exit,
};
use crate::model::config::Config;
use crate::model::text::{safe, safe_lines};
use crate::output::documents::{
    DOCUMENT_VERSION, EvalResult, ScenarioOutcome, TestResults, TranscriptReport, to_json,
};
use crate::output::stdout::print_out;
use crate::policy::{
    AuthoringError, LoadedPolicy, build_policy_crate, install_component, measure_decisions,
    new_policy_crate, sample_context,
};
use crate::prepare::scenario::{run_files, scenario_files};

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
    catalog.get(spec).ok_or_else(|| {
        Failure::invalid(format!(
            "no policy `{spec}` (give a .wasm file or a policy's name): {}",
            catalog.not_found(spec)
        ))
    })
}

fn read_context(path: &Path) -> Result<Context, Failure> {
    let text = crate::model::named_file::read_named(path)
        .map_err(|error| Failure::invalid(format!("cannot read {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| {
        Failure::invalid(format!(
            "{}: not a valid context: {error} (see `quiesce policy eval --help`)",
            path.display()
        ))
    })
}

/// `quiesce policy test`.
pub fn test(args: &TestArgs, verbosity: Verbosity) -> Result<u8, Failure> {
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
        let results = results
            .iter()
            .map(|result| ScenarioOutcome {
                file: result.file.display().to_string(),
                scenario: result.name.clone(),
                passed: result.verdict.is_ok(),
                diff: result.verdict.as_ref().err().cloned(),
                transcript: result.transcript.as_ref().map(TranscriptReport::from),
            })
            .collect();
        print_out(&to_json(&TestResults {
            test_version: DOCUMENT_VERSION,
            policy: policy.name().to_string(),
            results,
            failed,
        }));
    } else {
        let mut text = format!(
            "policy {} {} ({})\n",
            safe(policy.name()),
            safe(&policy.info().version),
            safe(&policy.source().to_string())
        );
        for result in &results {
            match &result.verdict {
                Ok(()) => text.push_str(&format!("ok    {}\n", safe(&result.name))),
                Err(diff) => text.push_str(&format!(
                    "FAIL  {} ({})\n{}\n",
                    safe(&result.name),
                    safe(&result.file.display().to_string()),
                    safe_lines(diff)
                )),
            }
            // What the policy wrote: for a failed scenario, and for every one with -v.
            let log = result
                .transcript
                .as_ref()
                .map_or("", |transcript| transcript.policy_log.trim_end());
            if !log.is_empty() && (result.verdict.is_err() || verbosity == Verbosity::Verbose) {
                text.push_str("      policy log:\n");
                for line in log.lines() {
                    text.push_str(&format!("      | {}\n", safe(line)));
                }
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
                print_out(&to_json(&EvalResult {
                    eval_version: DOCUMENT_VERSION,
                    step: decision.step.clone(),
                    log: decision.log.clone(),
                    elapsed_us: u64::try_from(decision.elapsed.as_micros()).unwrap_or(u64::MAX),
                    peak_memory_bytes: decision.peak_memory as u64,
                }));
            } else {
                print_out(&format!(
                    "step: {action} {}\nas JSON: {}\ntime: {} µs (fresh instance and call)\npeak memory: {} KiB\nlog:\n{}",
                    safe(&detail),
                    serde_json::to_string(&decision.step).expect("a step serializes"),
                    decision.elapsed.as_micros(),
                    decision.peak_memory / 1024,
                    if decision.log.is_empty() {
                        "(nothing)\n".to_string()
                    } else {
                        safe_lines(&decision.log)
                    }
                ));
            }
            Ok(exit::SUCCESS)
        }
        Err(error) => {
            print_out(&format!(
                "no step: {}\nlog:\n{}\n",
                safe(&error.to_string()),
                safe_lines(&error.log)
            ));
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
        safe(policy.name()),
        safe(&policy.info().version),
        stats.samples,
        micros(stats.p50),
        micros(stats.p99),
        micros(stats.max),
        stats.peak_memory / 1024
    ));
    Ok(exit::SUCCESS)
}

/// `quiesce policy new`: a policy crate that builds and passes its tests as generated.
pub fn new(args: &NewArgs) -> Result<u8, Failure> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let (root, crate_name) = new_policy_crate(&args.name, &dir).map_err(authoring_failure)?;
    print_out(&format!(
        "created {}: policy `{}` for contract {CONTRACT_VERSION}\nnext:\n  cd {}\n  cargo test\n  quiesce policy build .\n  quiesce policy test target/wasm32-wasip2/release/{}.wasm --scenarios scenarios/\n",
        root.display(),
        args.name,
        root.display(),
        crate_name.replace('-', "_")
    ));
    Ok(exit::SUCCESS)
}

/// `quiesce policy build`: `cargo build --release --target wasm32-wasip2` in the crate, then
/// the component's path (and a copy in `--install`).
pub fn build(args: &BuildArgs) -> Result<u8, Failure> {
    let wasm = build_policy_crate(&args.path, &super::vars()).map_err(authoring_failure)?;
    let mut text = format!("built {}\n", wasm.display());
    if let Some(dir) = &args.install {
        let installed = install_component(&wasm, dir).map_err(authoring_failure)?;
        text.push_str(&format!("installed {}\n", installed.display()));
    }
    print_out(&text);
    Ok(exit::SUCCESS)
}

fn authoring_failure(error: AuthoringError) -> Failure {
    if error.is_invalid_input() {
        Failure::invalid(error.to_string())
    } else {
        Failure::environment(error.to_string())
    }
}
