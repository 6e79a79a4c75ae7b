//! One shutdown sequence, three drivers: for every built-in policy's scenario files, and for
//! fixtures that trap mid-sequence, hit the step cap, fail at their last word, decide on a
//! health status that changes during the run or are left running, the transcript is the same
//! from the SDK's native harness (`cargo test` of a policy), from the executor with the native
//! policy, and from the executor with the compiled component. Every scenario must also pass.

use std::path::PathBuf;
use std::sync::Arc;

use quiesce::policy::{Decider, NativePolicy};
use quiesce::policy::{PolicyLimits, PolicySource};
use quiesce::prepare::scenario::run_scenario;
use quiesce::sdk::Policy;
use quiesce::sdk::sequence::Transcript;
use quiesce::sdk::simulation::{Scenario, run};
use quiesce_tests::{builtin, fixtures, wasm, workspace};

/// A policy as native code, as a compiled component, and its scenario file.
struct Case {
    name: String,
    harness: fn(&Scenario) -> Transcript,
    native: Arc<dyn Decider>,
    component: Vec<u8>,
    scenarios: PathBuf,
}

fn case<P: Policy + 'static>(component: Vec<u8>, scenarios: PathBuf) -> Case {
    Case {
        name: P::info().name,
        harness: run::<P>,
        native: Arc::new(NativePolicy::<P>::new()),
        component,
        scenarios,
    }
}

fn builtin_case<P: Policy + 'static>() -> Case {
    let name = P::info().name;
    let scenarios = workspace()
        .join("policies")
        .join(&name)
        .join("scenarios")
        .join(format!("{name}.toml"));
    case::<P>(builtin(&name).to_vec(), scenarios)
}

fn fixture_case<P: Policy + 'static>(component: &str) -> Case {
    let scenarios = workspace()
        .join("tests/fixtures/scenarios")
        .join(format!("{}.toml", P::info().name));
    case::<P>(wasm(component), scenarios)
}

/// What must agree: everything but texts that quote the failure in the words of its runtime
/// (a native panic and a wasm trap are described differently) and what the policy printed.
fn comparable(transcript: &Transcript) -> Transcript {
    let mut transcript = transcript.clone();
    transcript.policy_log.clear();
    if let Some(failure) = &mut transcript.fallback {
        let reason = transcript.fallback_reason.take().unwrap_or_default();
        for note in &mut transcript.notes {
            if note.text == reason {
                note.text = format!("fallback: {}", failure.kind);
            }
        }
        failure.message.clear();
        failure.log.clear();
    }
    transcript
}

#[test]
fn native_harness_native_executor_and_compiled_executor_give_one_transcript() {
    let cases = vec![
        builtin_case::<quiesce_policy_default::DefaultPolicy>(),
        builtin_case::<quiesce_policy_celery::CeleryPolicy>(),
        builtin_case::<quiesce_policy_cinder_volume::CinderVolumePolicy>(),
        builtin_case::<quiesce_policy_envoy::EnvoyPolicy>(),
        builtin_case::<quiesce_policy_gunicorn::GunicornPolicy>(),
        builtin_case::<quiesce_policy_haproxy::HaproxyPolicy>(),
        builtin_case::<quiesce_policy_httpd::HttpdPolicy>(),
        builtin_case::<quiesce_policy_mysql::MysqlPolicy>(),
        builtin_case::<quiesce_policy_nginx::NginxPolicy>(),
        builtin_case::<quiesce_policy_oslo::OsloPolicy>(),
        builtin_case::<quiesce_policy_postgres::PostgresPolicy>(),
        builtin_case::<quiesce_policy_rabbitmq::RabbitmqPolicy>(),
        builtin_case::<quiesce_policy_redis::RedisPolicy>(),
        builtin_case::<quiesce_policy_sidekiq::SidekiqPolicy>(),
        fixture_case::<fixture_traps_midway::TrapsMidway>(fixtures::TRAPS_MIDWAY),
        fixture_case::<fixture_refuses_last_word::RefusesLastWord>(fixtures::REFUSES_LAST_WORD),
        fixture_case::<fixture_never_finishes::NeverFinishes>(fixtures::NEVER_FINISHES),
        fixture_case::<fixture_health_gated::HealthGated>(fixtures::HEALTH_GATED),
        fixture_case::<fixture_playback::Playback>(fixtures::PLAYBACK),
    ];
    assert_eq!(
        cases.len() - 5,
        quiesce::policy::BUILTIN_POLICIES.len(),
        "every built-in policy has a parity case"
    );
    // A generous time limit per call: the transcripts are compared here, and a long drain's
    // decisions (over a thousand history records) are slow in a debug build on a busy machine;
    // the limit itself is tested in hostile.rs.
    let engine = crate::engine(PolicyLimits {
        call_timeout: std::time::Duration::from_secs(10),
        ..PolicyLimits::default()
    });
    let mut compared = 0;
    for case in &cases {
        let compiled: Arc<dyn Decider> = Arc::new(
            engine
                .load_bytes(&case.component, PolicySource::Builtin)
                .unwrap_or_else(|error| panic!("{}: {error}", case.name)),
        );
        let text = std::fs::read_to_string(&case.scenarios)
            .unwrap_or_else(|error| panic!("{}: {error}", case.scenarios.display()));
        let scenarios = Scenario::parse_file(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", case.scenarios.display()));
        for scenario in scenarios
            .iter()
            .filter(|scenario| scenario.expect.settings_error.is_none())
        {
            let label = format!("{} / {:?}", case.name, scenario.name);
            let harness = (case.harness)(scenario);
            let native = run_scenario(case.native.clone(), scenario);
            let compiled = run_scenario(compiled.clone(), scenario);
            assert_eq!(
                comparable(&harness),
                comparable(&native),
                "{label}:\nnative harness:\n{harness}\nexecutor, native policy:\n{native}"
            );
            assert_eq!(
                comparable(&native),
                comparable(&compiled),
                "{label}:\nexecutor, native policy:\n{native}\nexecutor, compiled:\n{compiled}"
            );
            if let Err(diff) = harness.check(&scenario.expect) {
                panic!("{label} failed:\n{diff}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} scenarios compared");
}
