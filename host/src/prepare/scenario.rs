//! Scenario files run through the real executor: the compiled policy meets the scripted
//! service of the SDK's scenario format, in virtual time, and the sequence's transcript is
//! compared with the scenario's expectations (the same transcript a native run gives).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quiesce_policy_sdk::sequence::Transcript;
use quiesce_policy_sdk::simulation::Scenario;

use crate::run::executor::{ServiceJob, run_service};

use crate::policy::Decider;
use crate::policy::LoadedPolicy;
use crate::runtime::simulate::SimulatedRuntime;

/// The result of one scenario.
#[derive(Debug)]
pub struct ScenarioResult {
    /// The file it came from.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// What happened (none when only the settings were checked).
    pub transcript: Option<Transcript>,
    /// `Err(diff)` when it failed.
    pub verdict: Result<(), String>,
}

/// The scenario files named by `path`: the file itself, or the `*.toml` files of a directory.
pub fn scenario_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|file| file.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs `scenario` with `policy` through the executor in virtual time.
pub fn run_scenario(policy: Arc<dyn Decider>, scenario: &Scenario) -> Transcript {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let simulation = Arc::new(SimulatedRuntime::new());
        let facts = scenario.service.facts();
        simulation.add(&facts.id, scenario.service.clone());
        let job = ServiceJob {
            on_exhausted: scenario.on_budget_exhausted,
            ..ServiceJob::new(facts, policy, scenario.settings_json(), scenario.budget)
        };
        let deadline = tokio::time::Instant::now() + scenario.budget;
        run_service(simulation, job, deadline, None)
            .await
            .transcript
    })
}

/// Runs every scenario of `files` against a loaded policy.
pub fn run_files(
    policy: &Arc<LoadedPolicy>,
    files: &[PathBuf],
) -> Result<Vec<ScenarioResult>, String> {
    let mut results = Vec::new();
    for file in files {
        let text = crate::model::named_file::read_named(file)
            .map_err(|error| format!("{}: {error}", file.display()))?;
        let scenarios =
            Scenario::parse_file(&text).map_err(|error| format!("{}: {error}", file.display()))?;
        for scenario in scenarios {
            let validation = policy
                .validate_settings(&scenario.settings_json())
                .map_err(|error| error.failure.refusal());
            let (transcript, verdict) = match scenario.expect.check_settings(validation) {
                Err(diff) => (None, Err(diff)),
                Ok(false) => (None, Ok(())),
                Ok(true) => {
                    let transcript = run_scenario(policy.clone(), &scenario);
                    let verdict = transcript.check(&scenario.expect);
                    (Some(transcript), verdict)
                }
            };
            results.push(ScenarioResult {
                file: file.clone(),
                name: scenario.name.clone(),
                transcript,
                verdict,
            });
        }
    }
    Ok(results)
}
