//! The policy engine with real compiled components: round trips, limits, the sandbox, loading.

use std::time::{Duration, Instant};

use quiesce::model::digest::content_digest;
use quiesce::policy::{CacheUse, CallFailure, KEY_FILE, LoadError, PolicyLimits, PolicySource};
use quiesce::sdk::{Context, Outcome, ServiceFacts, Signal, Step, StepRecord};
use quiesce_tests::{builtin, dir_with, fixtures, wasm};

use crate::engine;

/// Containment must be prompt; this bound only guards against a hang (the measured figures are
/// in the benchmark), so it is generous for slow CI machines.
const HANG_BOUND: Duration = Duration::from_secs(10);

fn context() -> Context {
    Context {
        service: ServiceFacts {
            id: "c0ffee".into(),
            name: "web".into(),
            image: "echo/web:2".into(),
            stop_signal: Some(Signal::QUIT),
            ..ServiceFacts::default()
        },
        remaining: Duration::from_secs(90),
        ..Context::default()
    }
}

#[test]
fn a_decision_round_trips_through_the_component() {
    let engine = engine(PolicyLimits::default());
    let policy = engine
        .load_bytes(
            &wasm(fixtures::ECHO),
            PolicySource::File(fixtures::ECHO.into()),
        )
        .unwrap();
    assert_eq!(policy.name(), "echo");
    assert_eq!(policy.info().version, "0.3.1");
    assert_eq!(policy.info().images, ["echo/*"]);
    assert_eq!(
        policy.info().contract_version,
        quiesce::sdk::CONTRACT_VERSION
    );

    let mut ctx = context();
    ctx.history.push(StepRecord {
        step: Step::signal(Signal::TERM),
        outcome: Outcome::SignalDelivered,
        started: Duration::ZERO,
        ended: Duration::from_millis(3),
    });
    let decision = policy.decide(&ctx).unwrap();
    assert_eq!(
        decision.step,
        Step::exec(
            [
                "web",
                "echo/web:2",
                "SIGQUIT",
                "remaining=90000",
                "history=1"
            ],
            Duration::from_millis(1234)
        )
    );
    assert_eq!(decision.log, "echo saw 1 steps for web\n");
    assert!(decision.peak_memory > 0);

    ctx.history.push(StepRecord {
        step: Step::signal(Signal::QUIT),
        outcome: Outcome::SignalDelivered,
        started: Duration::from_millis(3),
        ended: Duration::from_millis(4),
    });
    assert_eq!(policy.decide(&ctx).unwrap().step, Step::kill());
}

#[test]
fn the_builtin_default_policy_decides_like_docker_stop() {
    let engine = engine(PolicyLimits::default());
    let policy = engine
        .load_bytes(builtin("default"), PolicySource::Builtin)
        .unwrap();
    assert_eq!(policy.name(), "default");
    let mut ctx = context();
    assert_eq!(
        policy.decide(&ctx).unwrap().step,
        Step::signal(Signal::QUIT)
    );
    ctx.service.stop_timeout = Some(Duration::from_secs(7));
    ctx.history.push(StepRecord {
        step: Step::signal(Signal::QUIT),
        outcome: Outcome::SignalDelivered,
        started: Duration::ZERO,
        ended: Duration::ZERO,
    });
    assert_eq!(
        policy.decide(&ctx).unwrap().step,
        Step::wait_for_exit(Duration::from_secs(7))
    );
    let refused = policy.validate_settings(r#"{"grace": "5s"}"#).unwrap_err();
    assert!(
        matches!(refused.failure, CallFailure::Refused { ref message } if message.contains("unknown field `grace`")),
        "{refused}"
    );
    policy
        .validate_settings(r#"{"grace_period": "5s"}"#)
        .unwrap();
}

#[test]
fn a_policy_that_loops_forever_is_stopped_by_the_time_limit() {
    let limits = PolicyLimits {
        call_timeout: Duration::from_millis(50),
        ..PolicyLimits::default()
    };
    let engine = engine(limits);
    let policy = engine
        .load_bytes(&wasm(fixtures::LOOP_FOREVER), PolicySource::Builtin)
        .unwrap();
    let started = Instant::now();
    let error = policy.decide(&context()).unwrap_err();
    assert!(started.elapsed() < HANG_BOUND);
    assert_eq!(
        error.failure,
        CallFailure::TimeLimit {
            limit: Duration::from_millis(50)
        }
    );
    assert_eq!(error.function, "next");
    assert_eq!(error.policy, "loop-forever");
    assert!(
        error
            .to_string()
            .contains("exceeded the time limit of 50ms"),
        "{error}"
    );
}

#[test]
fn a_policy_that_grows_memory_past_the_cap_fails_cleanly_and_others_carry_on() {
    // A time limit no machine reaches, so only the memory cap can stop the hog.
    let limits = PolicyLimits {
        memory_bytes: 16 << 20,
        call_timeout: Duration::from_secs(30),
        ..PolicyLimits::default()
    };
    let engine = engine(limits);
    let hog = engine
        .load_bytes(&wasm(fixtures::MEMORY_HOG), PolicySource::Builtin)
        .unwrap();
    let error = hog.decide(&context()).unwrap_err();
    match error.failure {
        CallFailure::MemoryLimit { limit, requested } => {
            assert_eq!(limit, 16 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    // The engine and other policies are unaffected; the hog fails the same way again.
    let echo = engine
        .load_bytes(&wasm(fixtures::ECHO), PolicySource::Builtin)
        .unwrap();
    assert!(matches!(
        echo.decide(&context()).unwrap().step,
        Step::Exec { .. }
    ));
    assert_eq!(
        hog.decide(&context()).unwrap_err().failure.kind(),
        "memory-limit"
    );
}

#[test]
fn a_policy_gets_no_files_environment_sockets_name_lookup_or_clock() {
    // The test process has an environment and files; none of it may reach the policy.
    let engine = engine(PolicyLimits::default());
    let probe = engine
        .load_bytes(&wasm(fixtures::SANDBOX_PROBE), PolicySource::Builtin)
        .unwrap();
    let error = probe.decide(&context()).unwrap_err();
    let CallFailure::Refused { message } = error.failure else {
        panic!("the probe should report through its error text, got {error}");
    };
    assert_eq!(
        message,
        "file=denied dir=denied env=0 args=0 tcp=denied udp=denied lookup=denied clock=0"
    );
}

#[test]
fn a_policy_that_sleeps_is_refused_the_timer_instead_of_blocking_the_host() {
    let engine = engine(PolicyLimits::default());
    let sleeper = engine
        .load_bytes(&wasm(fixtures::SLEEPER), PolicySource::Builtin)
        .unwrap();
    let started = Instant::now();
    let error = sleeper.decide(&context()).unwrap_err();
    assert!(started.elapsed() < HANG_BOUND);
    match error.failure {
        CallFailure::Trap { message } => {
            assert!(message.contains("policies may not sleep"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn loading_a_directory_keeps_the_good_policy_and_names_every_bad_file() {
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let core_module: &[u8] = b"\0asm\x01\0\0\0";
    let dir = dir_with(&[
        ("echo.wasm", &wasm(fixtures::ECHO)),
        ("random.wasm", &random),
        ("core.wasm", core_module),
        ("other-world.wasm", &wasm(fixtures::NOT_A_POLICY)),
        ("future.wasm", &wasm(fixtures::FUTURE_CONTRACT)),
        ("truncated.wasm", &wasm(fixtures::ECHO)[..2000]),
        ("notes.txt", b"not a policy, not loaded"),
    ]);
    let engine = engine(PolicyLimits::default());
    let catalog = engine.catalog(Some(dir.path()), true).unwrap();

    let names: Vec<&str> = catalog.entries().map(|policy| policy.name()).collect();
    let mut expected: Vec<&str> = quiesce::policy::BUILTIN_POLICIES
        .iter()
        .map(|builtin| builtin.name)
        .collect();
    expected.push("echo");
    expected.sort_unstable();
    assert_eq!(names, expected);

    let problems: Vec<(String, &LoadError)> = catalog
        .problems()
        .iter()
        .map(|problem| {
            let file = problem
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, &problem.error)
        })
        .collect();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let reason = |file: &str| {
        problems
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, error)| *error)
            .unwrap_or_else(|| panic!("no problem reported for {file}"))
    };
    assert!(matches!(reason("random.wasm"), LoadError::NotWasm));
    assert!(matches!(reason("core.wasm"), LoadError::CoreModule));
    assert!(matches!(reason("truncated.wasm"), LoadError::Invalid(_)));
    match reason("other-world.wasm") {
        LoadError::WrongWorld { expected, found } => {
            assert_eq!(expected, "quiesce:policy/policy@0.1.0");
            assert!(found.contains("greet"), "{found}");
        }
        other => panic!("expected a wrong-world error, got {other}"),
    }
    match reason("future.wasm") {
        LoadError::IncompatibleContract { expected, found } => {
            assert_eq!((expected.as_str(), found.as_str()), ("0.1.0", "0.2.0"));
        }
        other => panic!("expected an incompatible-contract error, got {other}"),
    }
}

#[test]
fn a_file_policy_replaces_a_builtin_of_the_same_name_but_duplicates_are_refused() {
    let default = builtin("default");
    let dir = dir_with(&[("a.wasm", default), ("b.wasm", default)]);
    let engine = engine(PolicyLimits::default());
    let catalog = engine.catalog(Some(dir.path()), true).unwrap();
    let policy = catalog.get("default").unwrap();
    assert_eq!(
        policy.source(),
        &PolicySource::File(dir.path().join("a.wasm"))
    );
    assert_eq!(catalog.problems().len(), 1);
    assert!(matches!(
        catalog.problems()[0].error,
        LoadError::DuplicateName { .. }
    ));
}

#[test]
fn a_missing_policies_directory_is_an_error_only_when_named() {
    let engine = engine(PolicyLimits::default());
    let missing = std::path::Path::new("/nonexistent/quiesce-policies");
    assert!(
        engine
            .catalog(Some(missing), false)
            .unwrap()
            .get("default")
            .is_some()
    );
    let error = engine.catalog(Some(missing), true).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/quiesce-policies"),
        "{error}"
    );
}

#[test]
fn compiled_policies_are_cached_by_content_and_a_corrupt_entry_is_recompiled() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("nested");
    let engine = crate::engine_with_cache(PolicyLimits::default(), &cache);
    let bytes = wasm(fixtures::ECHO);
    let digest = content_digest(&bytes);

    let (_, first) = engine.compile(&bytes, None).unwrap();
    assert_eq!(first, CacheUse::Compiled);
    let (_, second) = engine.compile(&bytes, None).unwrap();
    assert_eq!(second, CacheUse::Hit);

    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| !path.ends_with(KEY_FILE))
        .collect();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(digest.trim_start_matches("sha256:"))
    );
    std::fs::write(&entries[0], b"garbage").unwrap();
    let (_, third) = engine.compile(&bytes, None).unwrap();
    assert_eq!(third, CacheUse::Compiled);
}
