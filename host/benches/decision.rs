//! Benchmark: one decision with a fresh instance, for every built-in policy, as the runner pays
//! it. Prints p50, p99 and max over many samples. Run in release: `cargo bench --bench decision`.
//!
//! The context is a service mid-sequence (a signal delivered, a wait timed out), so policies
//! walk their real decision path rather than the first step.

use std::time::Duration;

use quiesce::policy::{
    BUILTIN_POLICIES, PolicyEngine, PolicyLimits, PolicySource, measure_decisions,
};
use quiesce::sdk::{Context, Outcome, ServiceFacts, Signal, Step, StepRecord};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn context() -> Context {
    Context {
        service: ServiceFacts {
            id: "4f1c".repeat(16),
            name: "web-1".into(),
            image: "nginx:1.25".into(),
            labels: vec![
                ("com.docker.compose.project".into(), "shop".into()),
                ("com.docker.compose.service".into(), "web".into()),
            ],
            stop_signal: Some(Signal::QUIT),
            stop_timeout: Some(Duration::from_secs(20)),
            command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            restart_policy: "always".into(),
            ..ServiceFacts::default()
        },
        settings: "{}".into(),
        history: vec![
            StepRecord {
                step: Step::signal(Signal::QUIT),
                outcome: Outcome::SignalDelivered,
                started: Duration::ZERO,
                ended: Duration::from_millis(2),
            },
            StepRecord {
                step: Step::wait_for_exit(Duration::from_secs(20)),
                outcome: Outcome::TimedOut,
                started: Duration::from_millis(2),
                ended: Duration::from_millis(20_002),
            },
        ],
        elapsed: Duration::from_millis(20_002),
        remaining: Duration::from_secs(40),
        ..Context::default()
    }
}

fn main() {
    // `cargo test --all-targets` runs benches in test mode with `--test`: keep that quick.
    let quick = std::env::args().any(|arg| arg == "--test");
    let (warmup, samples) = if quick { (10, 100) } else { (WARMUP, SAMPLES) };
    let engine = PolicyEngine::new(PolicyLimits::default(), None).expect("start the engine");
    let ctx = context();
    println!(
        "decision latency, fresh instance per decision ({samples} samples after {warmup} warm-up)"
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>12}",
        "policy", "p50", "p99", "max", "peak memory"
    );
    for (name, wasm) in BUILTIN_POLICIES {
        let policy = engine
            .load_bytes(wasm, PolicySource::Builtin)
            .unwrap_or_else(|error| panic!("load {name}: {error}"));
        let stats = measure_decisions(&policy, &ctx, warmup, samples)
            .unwrap_or_else(|error| panic!("decide with {name}: {error}"));
        println!(
            "{:<16} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>9} KiB",
            name,
            stats.p50.as_secs_f64() * 1e6,
            stats.p99.as_secs_f64() * 1e6,
            stats.max.as_secs_f64() * 1e6,
            stats.peak_memory / 1024
        );
    }
}
