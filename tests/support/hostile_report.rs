//! Measures how long the policy engine takes to contain each hostile fixture, and which limit
//! catches it: `cargo run --release -p quiesce-tests --bin hostile-report`. A measurement, not
//! a test: the integration tests assert the behaviour; this prints the figures. The loading
//! cases (issue 17) compile in a worker: the `quiesce-under-test` binary built beside this one
//! (`cargo build --release -p quiesce-tests --bins`).

use std::time::{Duration, Instant};

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use quiesce::model::digest::content_digest;
use quiesce::policy::{
    CompileCache, Compiler, INSTANCES_PER_POLICY, PolicyEngine, PolicyLimits, PolicySource,
    ShapeLimits, builtin_policy,
};
use quiesce::sdk::{Context, ServiceFacts};
use quiesce_tests::fixtures;

const RUNS: usize = 5;

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

fn row(case: &str, times: &mut [Duration], caught_by: &str) {
    times.sort_unstable();
    println!(
        "{case:<34} {:>10.1} ms {:>10.1} ms   {caught_by}",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}

fn main() {
    let limits = PolicyLimits::default();
    println!(
        "limits: time {} ms per call, memory {} MiB, output {} KiB, stack {} KiB; {RUNS} runs each",
        limits.call_timeout.as_millis(),
        limits.memory_bytes >> 20,
        limits.output_bytes >> 10,
        limits.stack_bytes >> 10
    );
    println!("{:<34} {:>13} {:>13}   caught by", "case", "median", "max");
    let engine = PolicyEngine::new(limits, None).expect("start the engine");
    let decisions = [
        ("endless loop in next()", fixtures::LOOP_FOREVER, ""),
        ("unbounded memory growth", fixtures::MEMORY_HOG, ""),
        ("deep recursion", fixtures::DEEP_RECURSION, ""),
        ("panic", fixtures::PANICS, ""),
        ("16 MiB to stderr", fixtures::OUTPUT_FLOOD, ""),
        ("sleeps an hour", fixtures::SLEEPER, ""),
        (
            "files, env, sockets, lookup, clock",
            fixtures::SANDBOX_PROBE,
            "",
        ),
        ("unknown signal", fixtures::ABSURD, "unknown-signal"),
        ("exec with 10,000 arguments", fixtures::ABSURD, "many-args"),
        ("exec with an 8 MiB argument", fixtures::ABSURD, "giant-arg"),
        ("8 MiB error string", fixtures::ABSURD, "huge-error"),
        ("file:// URL", fixtures::ABSURD, "bad-url"),
    ];
    for (case, path, settings) in decisions {
        let bytes = std::fs::read(path).expect("read a fixture");
        let policy = engine
            .load_bytes(&bytes, PolicySource::Builtin)
            .expect("load a fixture");
        let mut caught_by = String::new();
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let result = policy.decide(&context(settings));
                let elapsed = started.elapsed();
                caught_by = match result {
                    Ok(decision) => format!("answered {:?}", decision.step.describe()),
                    Err(error) => error.failure.kind().to_string(),
                };
                elapsed
            })
            .collect();
        row(case, &mut times, &caught_by);
    }
    let loads = [
        ("endless loop in metadata()", fixtures::LOOP_IN_METADATA),
        ("import the sandbox lacks", fixtures::UNKNOWN_IMPORT),
        ("another world", fixtures::NOT_A_POLICY),
        ("another contract version", fixtures::FUTURE_CONTRACT),
    ];
    for (case, path) in loads {
        let bytes = std::fs::read(path).expect("read a fixture");
        let mut caught_by = String::new();
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let result = engine.load_bytes(&bytes, PolicySource::Builtin);
                let elapsed = started.elapsed();
                caught_by = match result {
                    Ok(_) => "loaded".to_string(),
                    Err(error) => format!(
                        "load refused: {}",
                        error.to_string().chars().take(60).collect::<String>()
                    ),
                };
                elapsed
            })
            .collect();
        row(case, &mut times, &caught_by);
    }
    loading();
}

/// One measurement of `work`, with what it returned in words.
fn once(case: &str, work: impl FnOnce() -> String) {
    let started = Instant::now();
    let caught_by = work();
    row(case, &mut [started.elapsed()], &caught_by);
}

fn first_chars(text: impl ToString) -> String {
    text.to_string().chars().take(90).collect()
}

/// The loading cases of issue 17 (classes 1–4): one run each.
fn loading() {
    let worker = std::env::current_exe()
        .expect("this program's path")
        .with_file_name("quiesce-under-test");
    assert!(
        worker.exists(),
        "build it first: cargo build --release -p quiesce-tests --bins"
    );
    let limits = PolicyLimits::default();
    println!(
        "loading: compile limits {} s and {} MiB (in a worker), files up to {} MiB; one run each",
        limits.compile_timeout.as_secs(),
        limits.compile_memory_bytes >> 20,
        quiesce::policy::MAX_POLICY_BYTES >> 20
    );
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let engine_with = |limits: PolicyLimits, cache: Option<&std::path::Path>| {
        PolicyEngine::new(limits, cache.map(CompileCache::new))
            .expect("start the engine")
            .with_compiler(Compiler::Worker(worker.clone()))
    };
    // A copy of `default`'s bytes, as a policies directory would hold it: the built-in itself
    // comes precompiled and never touches the cache.
    let default_wasm = builtin_policy("default")
        .expect("the default built-in")
        .wasm
        .to_vec();

    // Class 1: a compiled entry planted for a copy of `default` in a private cache; a shared
    // cache.
    let cache = scratch.path().join("cache");
    let engine = engine_with(PolicyLimits::default(), Some(&cache));
    let planted = engine
        .sandbox()
        .engine()
        .precompile_component(&std::fs::read(fixtures::ECHO).expect("read echo"))
        .expect("compile echo");
    assert!(engine.cache_refused().is_none(), "a private cache is used");
    let entry = cache.join(CompileCache::entry_name(
        engine.sandbox().engine(),
        &content_digest(&default_wasm),
    ));
    std::fs::write(&entry, &planted).expect("plant an entry");
    once(
        "planted cache entry for a copy of `default`",
        || match engine.compile(&default_wasm, None) {
            Ok((_, used)) => format!("not loaded; recompiled ({used:?})"),
            Err(error) => first_chars(error),
        },
    );
    let shared = scratch.path().join("shared");
    std::fs::create_dir(&shared).expect("a shared directory");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    once("cache directory mode 0777", || {
        let engine = engine_with(PolicyLimits::default(), Some(&shared));
        engine
            .cache_refused()
            .map_or("used!".to_string(), |refused| first_chars(refused.reason))
    });

    // Class 2: the hard-to-compile fixture, with and without the shape checks.
    let tangle = std::fs::read(fixtures::HARD_TO_COMPILE).expect("read the fixture");
    let tangle_path = scratch.path().join("tangle.wasm");
    std::fs::write(&tangle_path, &tangle).expect("write the fixture");
    let engine = engine_with(PolicyLimits::default(), None);
    once("hard to compile: shape check", || {
        engine
            .load_file(&tangle_path)
            .map_or_else(|problem| first_chars(problem.error), |_| "loaded!".into())
    });
    let shapeless = engine_with(
        PolicyLimits {
            shape: ShapeLimits::unlimited(),
            ..PolicyLimits::default()
        },
        None,
    );
    once("hard to compile: compile limits", || {
        shapeless
            .load_file(&tangle_path)
            .map_or_else(|problem| first_chars(problem.error), |_| "loaded!".into())
    });

    // Class 3: 20 memories of 62.5 MiB; more calls of a loop than the pool holds.
    let memories_path = scratch.path().join("memories.wasm");
    std::fs::write(&memories_path, quiesce_tests::many_memories(20, 1000)).expect("write");
    once("20 memories of 62.5 MiB", || {
        engine
            .load_file(&memories_path)
            .map_or_else(|problem| first_chars(problem.error), |_| "loaded!".into())
    });
    once("  the same, shape checks lifted", || {
        shapeless
            .load_file(&memories_path)
            .map_or_else(|problem| first_chars(problem.error), |_| "loaded!".into())
    });
    let looping = Arc::new(
        engine
            .load_bytes(
                &std::fs::read(fixtures::LOOP_FOREVER).expect("read"),
                PolicySource::Builtin,
            )
            .expect("load the loop"),
    );
    let good = Arc::new(
        engine
            .load_bytes(&default_wasm, PolicySource::Builtin)
            .expect("load default"),
    );
    let ctx = context("{}");
    let hogs = INSTANCES_PER_POLICY * 5;
    let (slowest_good, failed_good) = std::thread::scope(|scope| {
        let hogs: Vec<_> = (0..hogs)
            .map(|_| scope.spawn(|| looping.decide(&ctx).is_err()))
            .collect();
        let goods: Vec<_> = (0..32)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let failed = good.decide(&ctx).is_err();
                    (started.elapsed(), failed)
                })
            })
            .collect();
        let results: Vec<(Duration, bool)> = goods
            .into_iter()
            .map(|good| good.join().expect("join"))
            .collect();
        for hog in hogs {
            assert!(hog.join().expect("join"), "a loop was not stopped");
        }
        (
            results
                .iter()
                .map(|(time, _)| *time)
                .max()
                .unwrap_or_default(),
            results.iter().filter(|(_, failed)| *failed).count(),
        )
    });
    row(
        &format!("{hogs} loops at once + 32 good calls"),
        &mut [slowest_good],
        &format!("slowest good call shown; {failed_good} good calls failed"),
    );

    // Class 4: entries that are not files.
    let fifo = scratch.path().join("fifo.wasm");
    let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let procfs = scratch.path().join("procfs.wasm");
    std::os::unix::fs::symlink("/proc/self/pagemap", &procfs).expect("symlink");
    let zero = scratch.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    for (case, path) in [
        ("FIFO without a writer", &fifo),
        ("symlink to /proc/self/pagemap", &procfs),
        ("symlink to /dev/zero", &zero),
    ] {
        once(case, || {
            engine
                .load_file(path)
                .map_or_else(|problem| first_chars(problem.error), |_| "loaded!".into())
        });
    }
}
