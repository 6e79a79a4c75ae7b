//! Measures how long the policy engine takes to contain each hostile fixture, and which limit
//! catches it: `cargo run --release -p quiesce-tests --bin hostile-report`. A measurement, not
//! a test: the integration tests assert the behaviour; this prints the figures.

use std::time::{Duration, Instant};

use quiesce::policy::{PolicyEngine, PolicyLimits, PolicySource};
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
}
