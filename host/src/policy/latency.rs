//! Measuring decision latency the way production pays it: a fresh instance per decision.
//! Used by the benchmark (`cargo bench --bench decision`) and by tools that report latency.

use std::time::{Duration, Instant};

use quiesce_policy_sdk::{Context, Outcome, ServiceFacts, Signal, Step, StepRecord};

use super::error::CallError;
use super::loaded::LoadedPolicy;

/// Latency figures over a number of decisions.
#[derive(Clone, Debug)]
pub struct LatencyStats {
    /// How many decisions were measured.
    pub samples: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
    /// The largest linear memory any instance reached, in bytes.
    pub peak_memory: usize,
}

/// Runs `warmup` unmeasured decisions, then `samples` measured ones, each on a fresh instance,
/// timing the whole call as the runner makes it (store, instantiation, call, conversions).
pub fn measure_decisions(
    policy: &LoadedPolicy,
    ctx: &Context,
    warmup: usize,
    samples: usize,
) -> Result<LatencyStats, CallError> {
    for _ in 0..warmup {
        policy.decide(ctx)?;
    }
    let mut times = Vec::with_capacity(samples);
    let mut peak_memory = 0;
    for _ in 0..samples {
        let started = Instant::now();
        let decision = policy.decide(ctx)?;
        times.push(started.elapsed());
        peak_memory = peak_memory.max(decision.peak_memory);
    }
    times.sort_unstable();
    let at = |quantile: f64| {
        let index = ((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1;
        times[index]
    };
    Ok(LatencyStats {
        samples,
        p50: at(0.50),
        p99: at(0.99),
        max: times.last().copied().unwrap_or_default(),
        peak_memory,
    })
}

/// A service mid-sequence (SIGQUIT delivered, a 20 s wait timed out, 40 s left): the context
/// the benchmarks decide on, so a policy walks a real decision path.
pub fn sample_context() -> Context {
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
