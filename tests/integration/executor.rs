//! The executor's guarantees, in virtual time against scripted services (the simulated
//! runtime): minutes of shutdown run in milliseconds, and every timing is exact.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quiesce::run::executor::{OnBudgetExhausted, ServiceJob, run_service};

use quiesce::model::config::Config;
use quiesce::model::report::{PolicyIdentity, ServiceOutcome, StepOrigin};
use quiesce::platform::claim::Claims;
use quiesce::platform::systemd::Systemd;
use quiesce::policy::{Decider, NativePolicy};
use quiesce::prepare::{PrepareError, RunRequest, prepare};
use quiesce::run::executor::ENGINE_ANSWER_TIMEOUT;
use quiesce::run::orchestrate::{Ordering, run_all};
use quiesce::runtime::Selector;
use quiesce::runtime::simulate::SimulatedRuntime;
use quiesce::sdk::sequence::{Decided, PolicyFailure};
use quiesce::sdk::simulation::ServiceModel;
use quiesce::sdk::{Context, Outcome, ServiceFacts, Signal, Step};
use quiesce_policy_default::DefaultPolicy;
use tokio::time::Instant;

fn facts(id: &str) -> ServiceFacts {
    ServiceFacts {
        id: id.into(),
        name: id.into(),
        restart_policy: "always".into(),
        ..ServiceFacts::default()
    }
}

fn job(id: &str, policy: Arc<dyn Decider>, settings: &str, budget: Duration) -> ServiceJob {
    ServiceJob::new(facts(id), policy, settings.into(), budget)
}

fn default_policy() -> Arc<dyn Decider> {
    Arc::new(NativePolicy::<DefaultPolicy>::new())
}

/// A policy whose every answer comes from a closure.
struct Scripted(fn(&Context) -> Result<Step, PolicyFailure>);

impl Decider for Scripted {
    fn identity(&self) -> PolicyIdentity {
        PolicyIdentity {
            name: "scripted".into(),
            version: "0".into(),
            digest: "native".into(),
            source: "native".into(),
        }
    }

    fn decide(&self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        (self.0)(ctx)
            .map(|step| Decided {
                step,
                log: String::new(),
            })
            .map_err(|failure| PolicyFailure {
                log: "policy log\n".into(),
                ..failure
            })
    }
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(24 * 3600)
}

#[tokio::test(start_paused = true)]
async fn a_draining_service_is_seen_to_exit_the_moment_it_exits() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add(
        "svc",
        ServiceModel::drains_on(Signal::TERM, Duration::from_secs(42)),
    );
    let started = Instant::now();
    let job = job(
        "svc",
        default_policy(),
        r#"{"grace_period": "5m"}"#,
        Duration::from_secs(600),
    );
    let report = run_service(runtime.clone(), job, far_deadline(), None)
        .await
        .report;
    assert_eq!(report.outcome, ServiceOutcome::Graceful);
    assert_eq!(report.exit_code, Some(0));
    // Virtual time is exact: the exit is noticed at 42 s, with no polling lag at all.
    assert_eq!(started.elapsed(), Duration::from_secs(42));
    assert_eq!(report.steps[1].outcome, Outcome::ConditionMet);
    assert_eq!(report.steps[1].end_ms, 42_000);
    assert_eq!(runtime.signals("svc"), [(Duration::ZERO, Signal::TERM)]);
}

/// An engine whose wait misses an exit (Podman 5's once did) and then refuses the policy's
/// next signal because the container no longer runs: that refusal is the news. quiesce looks,
/// the policy hears the service has exited, and the stop ends; it once asked the policy again
/// as if the service still ran, and sent its kill as fast as the engine refused it.
#[tokio::test(start_paused = true)]
async fn a_signal_refused_because_the_service_exited_ends_the_stop_when_the_wait_missed_the_exit() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add(
        "svc",
        ServiceModel::drains_on(Signal::TERM, Duration::from_secs(1)),
    );
    runtime.miss_exits();
    let policy = Arc::new(Scripted(|ctx| {
        Ok(match ctx.steps_taken() {
            0 => Step::signal(Signal::TERM),
            1 => Step::sleep(Duration::from_secs(5)),
            _ if ctx.state.running => Step::Kill,
            _ => Step::Finish,
        })
    }));
    let started = Instant::now();
    let report = run_service(
        runtime.clone(),
        job("svc", policy, "{}", Duration::from_secs(60)),
        far_deadline(),
        None,
    )
    .await
    .report;
    assert_eq!(report.outcome, ServiceOutcome::Graceful, "{report:?}");
    assert_eq!(report.exit_code, Some(0));
    let outcomes: Vec<&Outcome> = report.steps.iter().map(|step| &step.outcome).collect();
    assert_eq!(
        outcomes,
        [
            &Outcome::SignalDelivered,
            &Outcome::TimedOut,
            &Outcome::ContainerStopped
        ]
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(runtime.signals("svc"), [(Duration::ZERO, Signal::TERM)]);
}

#[tokio::test(start_paused = true)]
async fn a_policy_that_fails_is_replaced_by_the_conservative_sequence() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add(
        "svc",
        ServiceModel::drains_on(Signal::TERM, Duration::from_secs(3)),
    );
    let trapping = Arc::new(Scripted(|_| {
        Err(PolicyFailure::new("trap", "trapped: unreachable"))
    }));
    let report = run_service(
        runtime.clone(),
        job("svc", trapping, "{}", Duration::from_secs(60)),
        far_deadline(),
        None,
    )
    .await
    .report;
    assert_eq!(report.outcome, ServiceOutcome::Fallback);
    assert_eq!(report.fallback_kind.as_deref(), Some("trap"));
    assert!(
        report
            .fallback_reason
            .as_ref()
            .unwrap()
            .contains("conservative sequence")
    );
    assert_eq!(report.policy_log, "policy log\n");
    assert!(
        report
            .steps
            .iter()
            .all(|step| step.by == StepOrigin::Fallback)
    );
    assert_eq!(report.steps[0].step, Step::signal(Signal::TERM));
    assert_eq!(report.exit_code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_policy_that_never_finishes_is_cut_off_and_the_budget_holds() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add("svc", ServiceModel::stubborn());
    let dawdler = Arc::new(Scripted(|_| Ok(Step::sleep(Duration::from_millis(1)))));
    let started = Instant::now();
    let budget = Duration::from_secs(30);
    let report = run_service(
        runtime.clone(),
        job("svc", dawdler, "{}", budget),
        far_deadline(),
        None,
    )
    .await
    .report;
    assert!(started.elapsed() <= budget, "took {:?}", started.elapsed());
    assert_eq!(report.outcome, ServiceOutcome::Fallback);
    assert!(
        report
            .fallback_reason
            .unwrap()
            .contains("more than 200 steps")
    );
    assert_eq!(report.exit_code, Some(137));
}

#[tokio::test(start_paused = true)]
async fn absurd_waits_are_bounded_by_the_budget_and_the_deadline() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add("svc", ServiceModel::stubborn());
    let patient = Arc::new(Scripted(|ctx| {
        Ok(match ctx.steps_taken() {
            0 => Step::signal(Signal::TERM),
            _ => Step::wait_for_exit(Duration::from_secs(10 * 365 * 24 * 3600)),
        })
    }));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let report = run_service(
        runtime.clone(),
        job("svc", patient, "{}", Duration::from_secs(3600)),
        deadline,
        None,
    )
    .await
    .report;
    assert!(
        started.elapsed() <= Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.outcome, ServiceOutcome::Killed);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.code == "budget-exhausted" && w.message.contains("budget of 1h exhausted")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.steps.last().unwrap().by, StepOrigin::Runner);
}

#[tokio::test(start_paused = true)]
async fn leave_running_is_honoured_at_the_end_of_the_budget() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add(
        "svc",
        ServiceModel {
            restart_policy: "always".into(),
            ..ServiceModel::stubborn()
        },
    );
    let mut job = job("svc", default_policy(), "{}", Duration::from_secs(30));
    job.on_exhausted = OnBudgetExhausted::LeaveRunning;
    let records = tempfile::tempdir().unwrap();
    let claims = Claims::open(records.path().join("state")).unwrap();
    job.claims = Some(claims.clone());
    // The default policy kills within its budget by itself; a policy that only waits shows
    // the runner's own ending.
    job.policy = Arc::new(Scripted(|ctx| {
        Ok(if ctx.steps_taken() == 0 {
            Step::signal(Signal::TERM)
        } else {
            Step::wait_for_exit(ctx.remaining)
        })
    }));
    let report = run_service(runtime.clone(), job, far_deadline(), None)
        .await
        .report;
    assert_eq!(report.outcome, ServiceOutcome::Failed);
    assert!(
        runtime
            .signals("svc")
            .iter()
            .all(|(_, signal)| *signal != Signal::KILL)
    );
    // Still running, so the restart policy stays off, and the report says so.
    assert_eq!(runtime.restart_policy("svc").as_deref(), Some("no"));
    assert!(!report.restart_policy.unwrap().restored);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.code == "restart-policy-not-restored"
                && w.message.contains("still `no`, not its own `always`")),
        "{:#?}",
        report.warnings
    );
    // The finished stop's record keeps the original for `quiesce recover` and the next stop.
    let left = claims.left_behind();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1.original_restart_policy(), Some("always"));
    assert!(left[0].1.finished_at_ms.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_wedged_engine_fails_the_preparation_instead_of_hanging_it() {
    let runtime = SimulatedRuntime::new();
    runtime.add("svc", ServiceModel::stubborn());
    runtime.wedge();
    let request = RunRequest {
        selector: Selector {
            all: true,
            ..Selector::default()
        },
        budget: None,
        parallel: None,
        deadline: None,
        claims: None,
        systemd: Systemd::at(PathBuf::from("/nonexistent"), PathBuf::from("systemctl")),
    };
    let started = Instant::now();
    // The policies are never needed: the engine's answer comes first.
    let prepared = prepare(
        &runtime,
        &request,
        &Config::default(),
        std::future::pending(),
    )
    .await;
    let Err(PrepareError::Environment(message)) = prepared else {
        panic!("expected an environment error");
    };
    assert!(
        message.contains("did not list the containers within 30s"),
        "{message}"
    );
    assert_eq!(started.elapsed(), ENGINE_ANSWER_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_wedged_engine_fails_the_service_instead_of_hanging_the_run() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add(
        "svc",
        ServiceModel::drains_on(Signal::TERM, Duration::from_secs(1)),
    );
    // The engine stops answering before the first signal, as a deadlocked dockerd does.
    runtime.wedge();
    let started = Instant::now();
    let mut wedged = job("svc", default_policy(), "{}", Duration::from_secs(60));
    wedged.observed = None;
    let report = run_service(runtime.clone(), wedged, far_deadline(), None)
        .await
        .report;
    let elapsed = started.elapsed();
    assert_eq!(report.outcome, ServiceOutcome::Failed, "{report:#?}");
    assert_eq!(report.exit_code, None);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.message.contains("did not answer within 30s")),
        "{report:#?}"
    );
    // Every request is bounded: the inspect gives up after 30 s and the run ends there.
    assert_eq!(elapsed, quiesce::run::executor::ENGINE_ANSWER_TIMEOUT);
    assert!(runtime.signals("svc").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_wedged_engine_mid_sequence_fails_each_step_within_its_bound() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add("svc", ServiceModel::stubborn());
    let wedger = runtime.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        wedger.wedge();
    });
    let started = Instant::now();
    let report = run_service(
        runtime.clone(),
        job(
            "svc",
            default_policy(),
            r#"{"grace_period": "10s"}"#,
            Duration::from_secs(60),
        ),
        far_deadline(),
        None,
    )
    .await
    .report;
    let elapsed = started.elapsed();
    // TERM went through; the SIGKILL after the grace period met a silent engine.
    assert_eq!(runtime.signals("svc").len(), 1, "{report:#?}");
    assert_eq!(report.outcome, ServiceOutcome::Failed, "{report:#?}");
    let kill = report
        .steps
        .iter()
        .find(|step| step.step == Step::Kill)
        .expect("a kill step");
    assert!(
        kill.outcome.describe().contains("did not answer"),
        "{report:#?}"
    );
    // Budget (60 s) plus at most one bounded request past it: the run ends.
    assert!(
        elapsed <= Duration::from_secs(60) + quiesce::run::executor::ENGINE_ANSWER_TIMEOUT,
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_removed_mid_sequence_is_reported_gone() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add("svc", ServiceModel::stubborn());
    let remover = runtime.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        remover.remove("svc");
    });
    let report = run_service(
        runtime.clone(),
        job("svc", default_policy(), "{}", Duration::from_secs(60)),
        far_deadline(),
        None,
    )
    .await
    .report;
    assert_eq!(report.outcome, ServiceOutcome::Gone);
    assert!(report.elapsed_ms <= 5_000, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_finish_while_the_container_runs_ends_with_sigkill() {
    let runtime = Arc::new(SimulatedRuntime::new());
    runtime.add("svc", ServiceModel::stubborn());
    let quitter = Arc::new(Scripted(|_| Ok(Step::finish())));
    let report = run_service(
        runtime.clone(),
        job("svc", quitter, "{}", Duration::from_secs(60)),
        far_deadline(),
        None,
    )
    .await
    .report;
    assert_eq!(report.outcome, ServiceOutcome::Killed);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.code == "finished-while-running"
                && w.message.contains("finished but the container still runs"))
    );
}

#[tokio::test(start_paused = true)]
async fn dependants_finish_before_dependencies_start_and_parallelism_is_capped() {
    let runtime = Arc::new(SimulatedRuntime::new());
    let mut jobs = Vec::new();
    for id in ["db", "web", "a", "b", "c"] {
        runtime.add(
            id,
            ServiceModel::drains_on(Signal::TERM, Duration::from_secs(10)),
        );
        jobs.push(job(
            id,
            default_policy(),
            r#"{"grace_period": "1m"}"#,
            Duration::from_secs(120),
        ));
    }
    // web (1) depends on db (0); a, b, c are independent.
    let ordering = Ordering {
        waits_for: vec![vec![1], vec![], vec![], vec![], vec![]],
    };
    let (_, never) = tokio::sync::watch::channel(quiesce::run::orchestrate::Interrupt::None);
    let started = Instant::now();
    let outcome = run_all(
        runtime.clone(),
        jobs,
        &ordering,
        2,
        far_deadline(),
        None,
        never,
    )
    .await;
    assert_eq!(outcome.reports.len(), 5);
    // 5 services of 10 s, 2 at a time, db after web: 30 s in all.
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let first_signal = |id: &str| runtime.signals(id)[0].0;
    assert!(first_signal("db") >= first_signal("web") + Duration::from_secs(10));
}

/// A policy that plays a fixed list of steps, cycling.
struct Cycle(Vec<Step>);

impl Decider for Cycle {
    fn identity(&self) -> PolicyIdentity {
        PolicyIdentity {
            name: "cycle".into(),
            version: "0".into(),
            digest: "native".into(),
            source: "native".into(),
        }
    }

    fn decide(&self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        Ok(Decided {
            step: self.0[ctx.steps_taken() % self.0.len()].clone(),
            log: String::new(),
        })
    }
}

fn any_step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    use quiesce::sdk::WaitCondition;
    let timeout = prop_oneof![0u64..5_000, 0u64..3_600_000, Just(u64::MAX / 4)]
        .prop_map(Duration::from_millis);
    let signal = (1u8..=31).prop_filter_map("a valid signal", Signal::from_number);
    let argv = proptest::collection::vec("[a-z/]{1,8}", 1..4);
    prop_oneof![
        signal.prop_map(Step::signal),
        (argv.clone(), timeout.clone()).prop_map(|(argv, timeout)| Step::exec(argv, timeout)),
        timeout
            .clone()
            .prop_map(|timeout| Step::http_post("http://127.0.0.1:9/drain", timeout)),
        (
            prop_oneof![
                Just(WaitCondition::Exited),
                Just(WaitCondition::Elapsed),
                argv.prop_map(WaitCondition::Probe),
                Just(WaitCondition::LogLine("never printed".into())),
            ],
            timeout,
        )
            .prop_map(|(until, timeout)| Step::wait(until, timeout)),
        Just(Step::Kill),
        Just(Step::Finish),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever a policy answers, no service exceeds its budget and the deadline holds.
    #[test]
    fn whatever_the_policy_answers_the_budget_and_the_deadline_hold(
        steps in proptest::collection::vec(any_step(), 1..12),
        budget_ms in 1_000u64..3_600_000,
        deadline_ms in 1_000u64..3_600_000,
        drain_ms in proptest::option::of(0u64..7_200_000),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let (report, elapsed, limit) = runtime.block_on(async {
            let simulation = Arc::new(SimulatedRuntime::new());
            let model = match drain_ms {
                Some(drain) => ServiceModel::drains_on(Signal::TERM, Duration::from_millis(drain)),
                None => ServiceModel::stubborn(),
            };
            simulation.add("svc", model);
            let started = Instant::now();
            let budget = Duration::from_millis(budget_ms);
            let deadline = Duration::from_millis(deadline_ms);
            let report = run_service(simulation, job("svc", Arc::new(Cycle(steps)), "{}", budget), started + deadline, None).await.report;
            (report, started.elapsed(), budget.min(deadline))
        });
        proptest::prop_assert!(elapsed <= limit, "took {:?} with a limit of {:?}: {:?}", elapsed, limit, report.steps);
        proptest::prop_assert!(report.outcome != ServiceOutcome::Failed, "{:?}", report);
    }
}
