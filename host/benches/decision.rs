//! Benchmark: one decision with a fresh instance, for every built-in policy, as the runner pays
//! it. Prints p50, p99 and max over many samples. Run in release: `cargo bench --bench decision`.
//!
//! The context is a service mid-sequence (a signal delivered, a wait timed out; see
//! `quiesce::policy::sample_context`), so policies walk a real decision path.

use quiesce::policy::{
    BUILTIN_POLICIES, PolicyEngine, PolicyLimits, PolicySource, measure_decisions, sample_context,
};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn main() {
    // `cargo test --all-targets` runs benches in test mode with `--test`: keep that quick.
    let quick = std::env::args().any(|arg| arg == "--test");
    let (warmup, samples) = if quick { (10, 100) } else { (WARMUP, SAMPLES) };
    let engine = PolicyEngine::new(PolicyLimits::default(), None).expect("start the engine");
    let ctx = sample_context();
    println!(
        "decision latency, fresh instance per decision ({samples} samples after {warmup} warm-up)"
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>12}",
        "policy", "p50", "p99", "max", "peak memory"
    );
    for builtin in BUILTIN_POLICIES {
        let name = builtin.name;
        let policy = engine
            .load_bytes(builtin.wasm, PolicySource::Builtin)
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
