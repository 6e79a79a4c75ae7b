//! A policy's worst case (issue 30): the longest path over the service's adversarial
//! behaviours, not one model of it. Every signal is ignored, probes and health never pass, log
//! lines never come; each command the policy execs (and each endpoint it calls) hangs until its
//! timeout, fails (exit 1, HTTP 503) or succeeds with nothing to say (exit 0, HTTP 200), the
//! same way every time it is asked. Which answer is worst depends on the policy: one that gives
//! up draining when a command hangs is longest when its checks answer "not busy yet" for the
//! whole drain, as the author's own service would.
//!
//! Policies are deterministic in their history, so the paths are explored in virtual time: a
//! run with every command hanging, then, for each command the run called that has no answer
//! chosen yet, one run per other answer, depth first, at most [`MAX_RUNS`] runs per policy
//! (three answers for each of four distinct commands). Each run's budget is lifted, so the
//! longest path is the policy's own; the worst is the one that needs longest
//! ([`needed`]). `plan`'s worst case, the budget warnings (`stop`, `plan`, `run --check`) and
//! the `TimeoutStopSec` that `generate` writes all come from it.

use std::collections::HashSet;
use std::time::Duration;

use quiesce_policy_sdk::Step;
use quiesce_policy_sdk::rules::kill_reserve;
use quiesce_policy_sdk::sequence::StepOrigin;
use quiesce_policy_sdk::simulation::{ExecRule, HttpRule, ServiceModel};

use crate::model::report::ServiceReport;
use crate::model::units::millis;
use crate::run::executor::ServiceJob;
use crate::run::orchestrate::Ordering;
use crate::run::simulated::simulate_in;
use crate::runtime::simulate::in_virtual_time;

/// The most runs one policy's exploration takes (3⁴: four distinct commands, every answer).
pub const MAX_RUNS: usize = 81;

/// The budget the paths are explored with: a week, far beyond any policy's own sequence (one
/// that waits as long as its budget lets it is told apart, [`needed`]).
pub const LIFTED: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a command or endpoint answers on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It never answers: its step's timeout ends it.
    Hangs,
    /// It fails: exit 1, HTTP 503.
    Fails,
    /// It succeeds with nothing to say: exit 0 and no output, HTTP 200 and no body.
    Succeeds,
}

impl Answer {
    fn as_str(self) -> &'static str {
        match self {
            Answer::Hangs => "hangs",
            Answer::Fails => "fails",
            Answer::Succeeds => "succeeds",
        }
    }
}

/// What a command or endpoint is, on a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Called {
    /// A command, by its argv.
    Exec(Vec<String>),
    /// An endpoint, by its URL.
    Http(String),
}

impl Called {
    fn describe(&self) -> String {
        match self {
            Called::Exec(argv) => format!("`{}`", argv.join(" ")),
            Called::Http(url) => format!("`{url}`"),
        }
    }
}

/// One path: the answer of each command and endpoint the policy called (the others hang).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    answers: Vec<(Called, Answer)>,
}

impl Path {
    /// The service this path describes: it never cooperates, and answers as the path says.
    pub fn model(&self) -> ServiceModel {
        let mut model = ServiceModel::stubborn();
        for (called, answer) in &self.answers {
            match called {
                Called::Exec(argv) => model.exec.push(ExecRule {
                    command: argv.clone(),
                    exit_code: i32::from(*answer == Answer::Fails),
                    output: String::new(),
                    timeline: Vec::new(),
                    hang: *answer == Answer::Hangs,
                    exits_service_after: None,
                }),
                Called::Http(url) => model.http.push(HttpRule {
                    url: url.clone(),
                    status: if *answer == Answer::Fails { 503 } else { 200 },
                    body: String::new(),
                    timeline: Vec::new(),
                    hang: *answer == Answer::Hangs,
                    exits_service_after: None,
                }),
            }
        }
        model
    }

    /// What each command the policy called answers on this path (`` `test -f /tmp/idle`
    /// fails ``), `every command hangs`, or nothing when it called none.
    pub fn describe(&self) -> String {
        let told: Vec<String> = self
            .answers
            .iter()
            .filter(|(_, answer)| *answer != Answer::Hangs)
            .map(|(called, answer)| format!("{} {}", called.describe(), answer.as_str()))
            .collect();
        if self.answers.is_empty() {
            String::new()
        } else if told.is_empty() {
            "every command hangs".to_string()
        } else if told.len() == self.answers.len() {
            told.join(", ")
        } else {
            format!("{}, every other command hangs", told.join(", "))
        }
    }

    fn with(&self, called: Called, answer: Answer) -> Path {
        let mut path = self.clone();
        path.answers.push((called, answer));
        path
    }
}

/// A policy's worst case.
#[derive(Clone, Debug)]
pub struct Worst {
    /// The path that needs longest.
    pub path: Path,
    /// Its run, with the budget lifted.
    pub report: ServiceReport,
    /// How many runs the exploration took.
    pub runs: usize,
    /// False when [`MAX_RUNS`] left some paths unrun.
    pub complete: bool,
}

impl Worst {
    /// How long the policy's own sequence takes on this path ([`needed`]).
    pub fn needed(&self) -> Duration {
        needed(&self.report)
    }
}

/// Each job's worst case, explored on a thread of its own in virtual time (`None` for a job
/// whose runs gave no report).
pub fn explore(jobs: &[ServiceJob]) -> Vec<Option<Worst>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let jobs: Vec<ServiceJob> = jobs.iter().map(as_explored).collect();
    in_virtual_time(move || async move {
        let mut worst = Vec::new();
        for job in jobs {
            worst.push(explore_one(job).await);
        }
        worst
    })
    .unwrap_or_default()
}

async fn explore_one(job: ServiceJob) -> Option<Worst> {
    let mut pending = vec![Path::default()];
    let mut worst: Option<Worst> = None;
    let mut runs = 0;
    let mut complete = true;
    while let Some(mut path) = pending.pop() {
        let report = run(&job, &path).await?;
        runs += 1;
        // The commands this run called that the path says nothing of hung: it is also the run
        // of the path where they hang. Their other answers are runs of their own, queued only
        // while they fit in what is left of MAX_RUNS (a policy whose command changes with
        // every call must not queue thousands of paths).
        let known: HashSet<Called> = path
            .answers
            .iter()
            .map(|(called, _)| called.clone())
            .collect();
        for called in called_in(&report) {
            if known.contains(&called) {
                continue;
            }
            if runs + pending.len() + 2 <= MAX_RUNS {
                pending.push(path.with(called.clone(), Answer::Succeeds));
                pending.push(path.with(called.clone(), Answer::Fails));
            } else {
                complete = false;
            }
            path.answers.push((called, Answer::Hangs));
        }
        if worst
            .as_ref()
            .is_none_or(|worst| needed(&report) > worst.needed())
        {
            worst = Some(Worst {
                path,
                report,
                runs: 0,
                complete: true,
            });
        }
    }
    worst.map(|worst| Worst {
        runs,
        complete,
        ..worst
    })
}

/// Which of `durations` (a job's duration settings and their values) lengthen `worst`: each
/// one whose halving shortens the path (a setting the policy refuses halved is not counted).
pub fn lengthening_settings(
    job: &ServiceJob,
    worst: &Worst,
    durations: &[(String, Option<Duration>)],
) -> Vec<(String, Duration)> {
    let given: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&job.settings).unwrap_or_default();
    let candidates: Vec<(String, Duration, ServiceJob)> = durations
        .iter()
        .filter_map(|(key, value)| {
            let value = (*value).filter(|value| *value >= Duration::from_millis(2))?;
            let mut halved = given.clone();
            halved.insert(
                key.clone(),
                serde_json::Value::String(format!("{}ms", (value / 2).as_millis())),
            );
            let job = ServiceJob {
                settings: serde_json::Value::Object(halved).to_string(),
                ..as_explored(job)
            };
            Some((key.clone(), value, job))
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let (path, baseline) = (worst.path.clone(), worst.needed());
    in_virtual_time(move || async move {
        let mut lengthening = Vec::new();
        for (key, value, job) in candidates {
            if let Some(report) = run(&job, &path).await
                && report.fallback_reason.is_none()
                && needed(&report) < baseline
            {
                lengthening.push((key, value));
            }
        }
        lengthening
    })
    .unwrap_or_default()
}

/// `job` as the exploration runs it: its budget lifted, nothing real attached (no unit held,
/// no claim), and a built-in policy asked natively: the same decisions (the two builds' parity
/// is tested) without a sandbox and a thread per call, hundreds of times per run.
fn as_explored(job: &ServiceJob) -> ServiceJob {
    ServiceJob {
        budget: LIFTED,
        warnings: Vec::new(),
        supervision: None,
        claims: None,
        policy: job.policy.native().unwrap_or_else(|| job.policy.clone()),
        ..job.clone()
    }
}

/// `job` against a service that answers as `path` says, its budget lifted.
async fn run(job: &ServiceJob, path: &Path) -> Option<ServiceReport> {
    let model = path.model();
    let (mut reports, _) = simulate_in(
        vec![job.clone()],
        Ordering::independent(1),
        1,
        LIFTED + Duration::from_secs(3600),
        &|_| model.clone(),
    )
    .await;
    reports.pop()
}

/// The commands and endpoints `report`'s steps called, in order, each once.
fn called_in(report: &ServiceReport) -> Vec<Called> {
    let mut seen = HashSet::new();
    let mut called = Vec::new();
    for step in &report.steps {
        let this = match &step.step {
            Step::Exec { argv, .. } => Called::Exec(argv.clone()),
            Step::Http { url, .. } => Called::Http(url.clone()),
            _ => continue,
        };
        if seen.insert(this.clone()) {
            called.push(this);
        }
    }
    called
}

/// How long the policy's own sequence takes in `report` (a run with the budget lifted): to its
/// end, or, for a policy that waits as long as its budget lets it, to the start of that wait.
pub fn needed(report: &ServiceReport) -> Duration {
    let waited_out_the_budget = report.elapsed_ms >= millis(LIFTED - kill_reserve(LIFTED));
    let end = if waited_out_the_budget {
        report
            .steps
            .iter()
            .rev()
            .find(|step| step.by == StepOrigin::Policy)
            .map_or(0, |step| step.start_ms)
    } else {
        report.elapsed_ms
    };
    Duration::from_millis(end)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use quiesce_policy_sdk::{Context, Outcome, Policy, PolicyInfo, ServiceFacts, Signal};

    use super::*;
    use crate::policy::native_decider;

    fn job(policy: Arc<dyn crate::policy::Decider>) -> ServiceJob {
        ServiceJob::new(
            ServiceFacts {
                id: "one".into(),
                name: "one".into(),
                ..ServiceFacts::default()
            },
            policy,
            "{}".into(),
            Duration::from_secs(300),
        )
    }

    /// Polls `check` every second for 30 s after `touch`; a hung command ends the drain.
    struct Drain;

    impl Policy for Drain {
        type Settings = ();
        fn info() -> PolicyInfo {
            PolicyInfo::new("drain", "0.1.0", "test")
        }
        fn next(ctx: &Context, _: &()) -> Result<Step, String> {
            let second = Duration::from_secs(1);
            Ok(match ctx.last() {
                _ if ctx.has_stopped() => Step::finish(),
                None => Step::exec(["touch"], second),
                Some(last) if ctx.has_sent(Signal::TERM) => match last.step {
                    Step::Signal(_) => Step::wait_for_exit(Duration::from_secs(10)),
                    _ => Step::kill(),
                },
                Some(last) => match (&last.step, &last.outcome) {
                    (Step::Exec { .. }, Outcome::TimedOut) => Step::signal(Signal::TERM),
                    (Step::Exec { argv, .. }, Outcome::ExecCompleted { exit_code: 0, .. })
                        if argv[0] == "check" =>
                    {
                        Step::signal(Signal::TERM)
                    }
                    _ if ctx.elapsed >= Duration::from_secs(30) => Step::signal(Signal::TERM),
                    (Step::Exec { argv, .. }, _) if argv[0] == "check" => Step::sleep(second),
                    _ => Step::exec(["check"], second),
                },
            })
        }
    }

    /// Execs a command that differs every time (`check <elapsed ms>`), once a second.
    struct Changing;

    impl Policy for Changing {
        type Settings = ();
        fn info() -> PolicyInfo {
            PolicyInfo::new("changing", "0.1.0", "test")
        }
        fn next(ctx: &Context, _: &()) -> Result<Step, String> {
            let second = Duration::from_secs(1);
            Ok(match ctx.last().map(|last| &last.step) {
                _ if ctx.has_stopped() => Step::finish(),
                _ if ctx.elapsed >= Duration::from_secs(600) => Step::kill(),
                Some(Step::Exec { .. }) => Step::sleep(second),
                _ => Step::exec(
                    ["check".to_string(), ctx.elapsed.as_millis().to_string()],
                    second,
                ),
            })
        }
    }

    #[test]
    fn the_worst_path_is_the_drain_whose_checks_say_not_yet() {
        let worst = explore(&[job(native_decider::<Drain>())])
            .pop()
            .flatten()
            .unwrap();
        // Every command hanging: 1 s, TERM, 10 s. Checks that fail for 30 s: 40 s.
        assert_eq!(worst.needed(), Duration::from_secs(40));
        assert!(
            worst.path.describe().contains("`check` fails"),
            "{:?}",
            worst.path
        );
        assert!(worst.complete);
        assert!(worst.runs <= 9, "{}", worst.runs);
    }

    #[test]
    fn a_command_that_changes_with_every_call_stays_within_the_run_bound() {
        let worst = explore(&[job(native_decider::<Changing>())])
            .pop()
            .flatten()
            .unwrap();
        assert!(worst.runs <= MAX_RUNS, "{}", worst.runs);
        assert!(!worst.complete);
    }
}
