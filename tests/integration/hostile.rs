//! Hostile policies, each a real compiled component: every one is contained by a named limit,
//! in bounded time, and a service whose policy misbehaves falls back to the conservative
//! sequence while other services are unaffected. (Containment times are measured by the
//! `hostile-report` binary of this crate; the bound here only guards against a hang.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiesce::run::executor::ServiceJob;

use quiesce::model::report::ServiceOutcome;
use quiesce::policy::Decider;
use quiesce::policy::{
    CallFailure, LoadError, LoadedPolicy, MAX_POLICY_BYTES, PolicyLimits, PolicySource,
};
use quiesce::run::orchestrate::{Ordering, run_all};
use quiesce::runtime::simulate::SimulatedRuntime;
use quiesce::sdk::simulation::ServiceModel;
use quiesce::sdk::{Context, ServiceFacts, Signal};
use quiesce_tests::{builtin, fixtures, wasm};

const HANG_BOUND: Duration = Duration::from_secs(10);

fn load(path: &str) -> Arc<LoadedPolicy> {
    load_with(path, PolicyLimits::default())
}

/// Loaded with a call time limit no machine reaches (30 s), for fixtures that must be stopped
/// by another limit: on a busy machine a memory hog or an output flood could otherwise reach
/// the default 100 ms first, and the verdict would depend on the machine's speed.
fn load_timeless(path: &str) -> Arc<LoadedPolicy> {
    load_with(
        path,
        PolicyLimits {
            call_timeout: Duration::from_secs(30),
            ..PolicyLimits::default()
        },
    )
}

fn load_with(path: &str, limits: PolicyLimits) -> Arc<LoadedPolicy> {
    let engine = crate::engine(limits);
    Arc::new(
        engine
            .load_bytes(&wasm(path), PolicySource::File(path.into()))
            .unwrap_or_else(|error| panic!("{path}: {error}")),
    )
}

fn context(settings: &str) -> Context {
    Context {
        service: ServiceFacts {
            name: "svc".into(),
            ..ServiceFacts::default()
        },
        settings: settings.into(),
        remaining: Duration::from_secs(60),
        ..Context::default()
    }
}

/// Decides once, asserting containment within the hang bound; returns the failure.
fn contained(policy: &LoadedPolicy, settings: &str) -> CallFailure {
    let started = Instant::now();
    let error = policy
        .decide(&context(settings))
        .expect_err("the policy should fail");
    assert!(
        started.elapsed() < HANG_BOUND,
        "containment took {:?}",
        started.elapsed()
    );
    error.failure
}

#[test]
fn deep_recursion_is_stopped_by_the_stack_limit() {
    assert_eq!(
        contained(&load_timeless(fixtures::DEEP_RECURSION), ""),
        CallFailure::StackOverflow
    );
}

#[test]
fn a_panic_is_a_trap_and_its_message_is_kept() {
    let policy = load_timeless(fixtures::PANICS);
    let error = policy.decide(&context("")).unwrap_err();
    assert!(matches!(error.failure, CallFailure::Trap { .. }), "{error}");
    assert!(error.log.contains("index out of bounds"), "{}", error.log);
}

#[test]
fn megabytes_of_output_are_stopped_by_the_output_cap() {
    let policy = load_timeless(fixtures::OUTPUT_FLOOD);
    let error = policy.decide(&context("")).unwrap_err();
    assert_eq!(error.failure, CallFailure::OutputLimit { limit: 64 << 10 });
    assert!(error.log.len() <= 64 << 10);
}

#[test]
fn loops_in_metadata_and_validation_are_stopped_by_the_time_limit() {
    let engine = crate::engine(PolicyLimits::default());
    let bytes = wasm(fixtures::LOOP_IN_METADATA);
    // Compiled (and cached) first: the bound is on the call, not on a debug build's compile.
    engine.compile(&bytes, None).unwrap();
    let started = Instant::now();
    let error = engine
        .load_bytes(&bytes, PolicySource::Builtin)
        .unwrap_err();
    assert!(started.elapsed() < HANG_BOUND);
    match error {
        LoadError::Call(call) => {
            assert_eq!(call.function, "metadata");
            assert_eq!(call.failure.kind(), "time-limit");
        }
        other => panic!("expected a time limit in metadata(), got {other}"),
    }
    let validating = load(fixtures::LOOP_IN_VALIDATE);
    let error = validating.validate_settings("{}").unwrap_err();
    assert_eq!(error.function, "validate-settings");
    assert_eq!(error.failure.kind(), "time-limit");
}

#[test]
fn absurd_answers_are_refused_before_the_host_acts() {
    let absurd = load_timeless(fixtures::ABSURD);
    for (case, expected) in [
        ("unknown-signal", "unknown signal \"SIGNOPE\""),
        ("many-args", "10000 arguments"),
        ("giant-arg", "at most 256 arguments and 65536 bytes"),
        ("bad-url", "must be an absolute http:// URL"),
    ] {
        match contained(&absurd, case) {
            CallFailure::InvalidAnswer { reason } => {
                assert!(reason.contains(expected), "{case}: {reason}")
            }
            other => panic!("{case}: expected an invalid answer, got {other:?}"),
        }
    }
    match contained(&absurd, "huge-error") {
        CallFailure::Refused { message } => assert_eq!(message.len(), 8 << 20),
        other => panic!("huge-error: {other:?}"),
    }
    // A wait of 584 million years is a valid answer: the runner bounds it by the budget
    // (see executor::absurd_waits_are_bounded_by_the_budget_and_the_deadline).
    assert!(absurd.decide(&context("wait-years")).is_ok());
}

#[test]
fn an_import_the_sandbox_does_not_provide_is_refused_at_load() {
    let engine = crate::engine(PolicyLimits::default());
    match engine.load_bytes(&wasm(fixtures::UNKNOWN_IMPORT), PolicySource::Builtin) {
        Err(LoadError::Link(message)) => {
            assert!(message.contains("evil:host/backdoor"), "{message}")
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}

#[test]
fn a_file_larger_than_any_policy_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.wasm");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_POLICY_BYTES + 1).unwrap();
    let engine = crate::engine(PolicyLimits::default());
    let problem = engine.load_file(&path).unwrap_err();
    assert!(
        matches!(problem.error, LoadError::TooLarge { .. }),
        "{problem}"
    );
}

/// A scripted service per hostile policy, plus one well-behaved service, stopped together:
/// every hostile one falls back with its limit named, the good one is untouched by them.
#[test]
fn hostile_policies_fall_back_and_other_services_are_unaffected() {
    let hostile: Vec<(&str, Arc<dyn Decider>, &str, &str)> = vec![
        ("loop", load(fixtures::LOOP_FOREVER), "", "time-limit"),
        (
            "hog",
            load_timeless(fixtures::MEMORY_HOG),
            "",
            "memory-limit",
        ),
        (
            "recursion",
            load_timeless(fixtures::DEEP_RECURSION),
            "",
            "stack-overflow",
        ),
        ("panic", load_timeless(fixtures::PANICS), "", "trap"),
        (
            "flood",
            load_timeless(fixtures::OUTPUT_FLOOD),
            "",
            "output-limit",
        ),
        ("sleeper", load_timeless(fixtures::SLEEPER), "", "trap"),
        (
            "absurd",
            load_timeless(fixtures::ABSURD),
            "unknown-signal",
            "invalid-answer",
        ),
        (
            "dawdler",
            load_timeless(fixtures::NEVER_FINISHES),
            "",
            "invalid-answer",
        ),
    ];
    let engine = crate::engine(PolicyLimits::default());
    let good: Arc<dyn Decider> = Arc::new(
        engine
            .load_bytes(builtin("default"), PolicySource::Builtin)
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let simulation = Arc::new(SimulatedRuntime::new());
        let mut jobs = Vec::new();
        let mut add = |id: &str, policy: Arc<dyn Decider>, settings: &str| {
            simulation.add(
                id,
                ServiceModel::drains_on(Signal::TERM, Duration::from_secs(2)),
            );
            let facts = ServiceFacts {
                id: id.into(),
                name: id.into(),
                ..ServiceFacts::default()
            };
            jobs.push(ServiceJob::new(
                facts,
                policy,
                settings.into(),
                Duration::from_secs(60),
            ));
        };
        for (id, policy, settings, _) in &hostile {
            add(id, policy.clone(), settings);
        }
        add("good", good, "{}");
        let (_, never) = tokio::sync::watch::channel(quiesce::run::orchestrate::Interrupt::None);
        let count = jobs.len();
        let started = tokio::time::Instant::now();
        let outcome = run_all(
            simulation,
            jobs,
            &Ordering::independent(count),
            count,
            started + Duration::from_secs(120),
            None,
            never,
        )
        .await;
        (outcome, started.elapsed())
    });
    let (outcome, virtual_elapsed) = outcome;
    assert!(
        virtual_elapsed <= Duration::from_secs(60),
        "{virtual_elapsed:?}"
    );
    for (id, _, _, kind) in &hostile {
        let report = outcome.reports.iter().find(|r| r.name == *id).unwrap();
        assert_eq!(report.outcome, ServiceOutcome::Fallback, "{id}: {report:?}");
        assert_eq!(
            report.fallback_kind.as_deref(),
            Some(*kind),
            "{id}: {:?}",
            report.fallback_reason
        );
        assert_eq!(
            report.exit_code,
            Some(0),
            "{id}: the conservative TERM drained it"
        );
    }
    let good = outcome.reports.iter().find(|r| r.name == "good").unwrap();
    assert_eq!(good.outcome, ServiceOutcome::Graceful);
    assert!(
        good.steps
            .iter()
            .all(|step| step.by == quiesce::model::report::StepOrigin::Policy)
    );
}
