//! Benchmark: the cost of exploring a policy's worst case (issue 30, [`quiesce::prepare::worst`]) for
//! every built-in policy with its default settings, plus any component files given as
//! arguments: how many paths were run, how long the exploration took (median of several), the
//! worst case found and its path. Run in release: `cargo bench --bench worst [-- FILE.wasm...]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiesce::policy::{BUILTIN_POLICIES, LoadedPolicy, PolicyEngine, PolicyLimits, PolicySource};
use quiesce::prepare::worst::explore;
use quiesce::run::executor::ServiceJob;
use quiesce_policy_sdk::ServiceFacts;

const ROUNDS: usize = 7;

fn main() {
    // `cargo test --all-targets` runs benches in test mode with `--test`: keep that quick.
    let quick = std::env::args().any(|arg| arg == "--test");
    let rounds = if quick { 1 } else { ROUNDS };
    let engine = PolicyEngine::new(PolicyLimits::default(), None).expect("start the engine");
    let mut policies: Vec<(String, LoadedPolicy)> = BUILTIN_POLICIES
        .iter()
        .map(|builtin| {
            let loaded = engine
                .load_bytes(builtin.wasm, PolicySource::Builtin)
                .unwrap_or_else(|error| panic!("load {}: {error}", builtin.name));
            (builtin.name.to_string(), loaded)
        })
        .collect();
    for file in std::env::args()
        .skip(1)
        .filter(|arg| arg.ends_with(".wasm"))
    {
        let bytes = std::fs::read(&file).unwrap_or_else(|error| panic!("read {file}: {error}"));
        let loaded = engine
            .load_bytes(&bytes, PolicySource::Builtin)
            .unwrap_or_else(|error| panic!("load {file}: {error}"));
        policies.push((file, loaded));
    }
    println!("worst-case exploration per policy, default settings (median of {rounds})");
    println!(
        "{:<16} {:>5} {:>10} {:>10}  path",
        "policy", "runs", "time", "worst"
    );
    for (name, policy) in policies {
        let job = ServiceJob::new(
            ServiceFacts {
                id: "bench".into(),
                name: "bench".into(),
                ..ServiceFacts::default()
            },
            Arc::new(policy),
            "{}".into(),
            Duration::from_secs(300),
        );
        let mut times = Vec::new();
        let mut found = None;
        for _ in 0..rounds {
            let started = Instant::now();
            found = explore(std::slice::from_ref(&job)).pop().flatten();
            times.push(started.elapsed());
        }
        times.sort();
        let Some(worst) = found else {
            println!("{name:<16} no report");
            continue;
        };
        println!(
            "{:<16} {:>5} {:>8.1}ms {:>10}  {}{}",
            name.rsplit('/').next().unwrap_or(&name),
            worst.runs,
            times[times.len() / 2].as_secs_f64() * 1e3,
            humantime::format_duration(worst.needed()).to_string(),
            match worst.path.describe() {
                path if path.is_empty() => "no command called".to_string(),
                path => path,
            },
            if worst.complete {
                ""
            } else {
                " (run limit reached)"
            }
        );
    }
}
