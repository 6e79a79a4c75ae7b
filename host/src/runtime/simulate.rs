//! A simulated container engine: services scripted with the SDK's
//! [`ServiceModel`](quiesce_policy_sdk::simulation::ServiceModel), in tokio time (run it under
//! `tokio::time::pause()` and minutes pass in microseconds).
//!
//! `quiesce plan` runs the real executor against it twice per service: with an obedient
//! service (what the policy does when the service cooperates) and with a stubborn one (the
//! worst case). `quiesce policy test` runs scenario files through it, so a compiled policy
//! meets the same scripted service as in its native tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::simulation::{Answer, Happened, ServiceModel};
use quiesce_policy_sdk::{ContainerState, Signal};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    ExecEnd, ExecOutput, HttpResponse, Inspected, Runtime, RuntimeError, SelectedTarget, Selector,
    TargetError,
};
use crate::model::config::label_matches;

struct SimContainer {
    model: ServiceModel,
    exit_at: Option<(Instant, i32)>,
    /// Signals delivered and commands run, with the time since the engine was created.
    happened: Happened,
    restart_policy: String,
    removed: bool,
}

/// Runs `work` to its end on a thread of its own, in a current-thread runtime whose time is
/// paused (minutes of a simulated sequence pass in microseconds), and returns its result; a
/// panic in it is `None`. It can be called from within another runtime. What the simulated
/// sequences log is dropped: beside a real stop, `-v` must show only what was really done
/// (a simulated "signal requested ... SIGKILL" is not).
pub fn in_virtual_time<T, F>(work: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        let _silent =
            tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        runtime.block_on(work())
    })
    .join()
    .ok()
}

/// The simulated engine.
pub struct SimulatedRuntime {
    containers: Mutex<HashMap<String, SimContainer>>,
    /// Set by [`SimulatedRuntime::wedge`]: requests never get an answer.
    wedged: std::sync::atomic::AtomicBool,
    /// Set by [`SimulatedRuntime::miss_exits`]: waits for an exit never answer.
    missing_exits: std::sync::atomic::AtomicBool,
    changed: Notify,
    epoch: Instant,
    wall_epoch: SystemTime,
}

impl Default for SimulatedRuntime {
    fn default() -> Self {
        SimulatedRuntime::new()
    }
}

impl SimulatedRuntime {
    /// An engine with no containers; its time starts now.
    pub fn new() -> SimulatedRuntime {
        SimulatedRuntime {
            containers: Mutex::new(HashMap::new()),
            wedged: std::sync::atomic::AtomicBool::new(false),
            missing_exits: std::sync::atomic::AtomicBool::new(false),
            changed: Notify::new(),
            epoch: Instant::now(),
            wall_epoch: SystemTime::now(),
        }
    }

    /// Adds a container `id` that behaves as `model`.
    pub fn add(&self, id: &str, model: ServiceModel) {
        let exit_at = (!model.running).then(|| (Instant::now(), 0));
        let restart_policy = model.restart_policy.clone();
        self.containers.lock().unwrap().insert(
            id.to_string(),
            SimContainer {
                model,
                exit_at,
                happened: Happened::default(),
                restart_policy,
                removed: false,
            },
        );
    }

    /// From now on no request gets an answer, as with a deadlocked daemon (Docker 20.10's
    /// libnetwork controller deadlock leaves `kill`, `inspect` and `update` hanging).
    pub fn wedge(&self) {
        self.wedged.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on a wait for an exit never answers, as Podman 5's `next-exit` wait once
    /// failed to: only a look at the container (or a refused request) shows the exit.
    pub fn miss_exits(&self) {
        self.missing_exits
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Never returns while the engine is wedged.
    async fn answering(&self) {
        if self.wedged.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }

    /// Removes a container, as `docker rm -f` would.
    pub fn remove(&self, id: &str) {
        if let Some(container) = self.containers.lock().unwrap().get_mut(id) {
            container.removed = true;
        }
        self.changed.notify_waiters();
    }

    /// The signals a container received, with the time since the engine was created.
    pub fn signals(&self, id: &str) -> Vec<(Duration, Signal)> {
        self.with(id, |container| container.happened.signals.clone())
            .unwrap_or_default()
    }

    /// A container's current restart policy.
    pub fn restart_policy(&self, id: &str) -> Option<String> {
        self.with(id, |container| container.restart_policy.clone())
            .ok()
    }

    fn since_epoch(&self) -> Duration {
        Instant::now() - self.epoch
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut SimContainer) -> T) -> Result<T, RuntimeError> {
        let mut containers = self.containers.lock().unwrap();
        match containers.get_mut(id) {
            Some(container) if !container.removed => Ok(f(container)),
            _ => Err(RuntimeError::Gone),
        }
    }

    fn state(&self, container: &SimContainer) -> ContainerState {
        let running = Self::running(container);
        ContainerState {
            running,
            exit_code: if running {
                None
            } else {
                container.exit_at.map(|(_, code)| code)
            },
            health: container.model.health_at(self.since_epoch()),
        }
    }

    fn running(container: &SimContainer) -> bool {
        container.exit_at.is_none_or(|(at, _)| at > Instant::now())
    }

    fn schedule_exit(container: &mut SimContainer, after: Duration, code: i32) {
        let at = Instant::now() + after;
        if container.exit_at.is_none_or(|(current, _)| at < current) {
            container.exit_at = Some((at, code));
        }
    }

    /// Resolves an answer: a complete one now (scheduling the exit it causes), a hang never.
    async fn answer(
        &self,
        id: &str,
        answer: (Answer, Option<Duration>),
    ) -> Result<(i32, String), RuntimeError> {
        match answer {
            (Answer::Complete(status, text), exits) => {
                if let Some(after) = exits {
                    self.with(id, |container| Self::schedule_exit(container, after, 0))?;
                    self.changed.notify_waiters();
                }
                Ok((status, text))
            }
            (Answer::Refused, _) => Err(RuntimeError::Failed("connection refused".into())),
            (Answer::Hang, _) => std::future::pending().await,
        }
    }

    /// The scripted answer to a command.
    async fn exec_answer(&self, id: &str, argv: &[String]) -> Result<ExecOutput, RuntimeError> {
        self.answering().await;
        let at = self.since_epoch();
        let answer = self.with(id, |container| {
            Self::running(container).then(|| {
                container.happened.execs.push((at, argv.to_vec()));
                container.model.exec_answer(argv, at, &container.happened)
            })
        })?;
        let answer = answer.ok_or(RuntimeError::NotRunning)?;
        let (exit_code, output_tail) = self.answer(id, answer).await?;
        Ok(ExecOutput {
            exit_code,
            output_tail,
        })
    }
}

impl Runtime for SimulatedRuntime {
    fn engine(&self) -> crate::model::report::EngineInfo {
        crate::model::report::EngineInfo::local("simulated")
    }

    /// Named containers (by id or name) in the order given, then those a label, project or
    /// `all` selects, by name.
    async fn select(
        &self,
        selector: &Selector,
        _concurrency: usize,
    ) -> Result<Vec<SelectedTarget>, TargetError> {
        self.answering().await;
        let containers = self.containers.lock().unwrap();
        let live = |(id, container): (&String, &SimContainer)| {
            (!container.removed).then(|| (id.clone(), container.model.facts()))
        };
        let mut all: Vec<(String, quiesce_policy_sdk::ServiceFacts)> =
            containers.iter().filter_map(live).collect();
        all.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let mut targets = Vec::new();
        for name in &selector.containers {
            let (id, _) = all
                .iter()
                .find(|(id, facts)| id == name || &facts.name == name)
                .ok_or_else(|| TargetError::Unknown(name.clone()))?;
            targets.push(id.clone());
        }
        let listing = selector.all || !selector.labels.is_empty() || selector.project.is_some();
        for (id, facts) in all.iter().filter(|_| listing) {
            let project_ok = selector.project.as_ref().is_none_or(|project| {
                facts
                    .compose
                    .as_ref()
                    .is_some_and(|c| &c.project == project)
            });
            let labels_ok = selector
                .labels
                .iter()
                .all(|label| label_matches(label, facts));
            if project_ok && labels_ok && !targets.contains(id) {
                targets.push(id.clone());
            }
        }
        Ok(targets
            .into_iter()
            .map(|id| SelectedTarget {
                id,
                inspected: None,
            })
            .collect())
    }

    async fn inspect(&self, id: &str) -> Result<Option<Inspected>, RuntimeError> {
        self.answering().await;
        let inspected = self.with(id, |container| Inspected {
            facts: quiesce_policy_sdk::ServiceFacts {
                id: id.to_string(),
                restart_policy: container.restart_policy.clone(),
                ..container.model.facts()
            },
            state: self.state(container),
            restart_policy_spec: None,
            pid1: None,
        });
        match inspected {
            Ok(inspected) => Ok(Some(inspected)),
            Err(RuntimeError::Gone) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        self.answering().await;
        let since = self.since_epoch();
        self.with(id, |container| {
            if !Self::running(container) {
                return Err(RuntimeError::NotRunning);
            }
            container.happened.signals.push((since, signal));
            if let Some((delay, code)) = container.model.reaction(signal) {
                Self::schedule_exit(container, delay, code);
            }
            Ok(())
        })??;
        self.changed.notify_waiters();
        Ok(())
    }

    async fn exec(
        &self,
        id: &str,
        argv: &[String],
        limit: Duration,
    ) -> Result<ExecEnd, RuntimeError> {
        match tokio::time::timeout(limit, self.exec_answer(id, argv)).await {
            Ok(output) => output.map(ExecEnd::Exited),
            Err(_) => Ok(ExecEnd::TimedOut(Ok(()))),
        }
    }

    async fn http(
        &self,
        id: &str,
        _method: &str,
        url: &str,
        _body: Option<&str>,
    ) -> Result<HttpResponse, RuntimeError> {
        let at = self.since_epoch();
        let answer = self.with(id, |container| {
            container.model.http_answer(url, at, &container.happened)
        })?;
        let (status, body_tail) = self.answer(id, answer).await?;
        Ok(HttpResponse {
            status: u16::try_from(status).unwrap_or(500),
            body_tail,
        })
    }

    async fn observe(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.answering().await;
        self.with(id, |container| self.state(container))
    }

    async fn wait_exit(&self, id: &str) -> Result<i32, RuntimeError> {
        if self.missing_exits.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        loop {
            let changed = self.changed.notified();
            match self.with(id, |container| container.exit_at)? {
                Some((at, code)) => tokio::select! {
                    () = tokio::time::sleep_until(at) => return Ok(code),
                    () = changed => {}
                },
                None => changed.await,
            }
        }
    }

    async fn wait_log_line(
        &self,
        id: &str,
        text: &str,
        since: SystemTime,
    ) -> Result<(), RuntimeError> {
        let since = since.duration_since(self.wall_epoch).unwrap_or_default();
        loop {
            let changed = self.changed.notified();
            let when = self.with(id, |container| {
                container
                    .model
                    .log_line_at(text, since, &container.happened)
            })?;
            match when {
                Some(when) => tokio::select! {
                    () = tokio::time::sleep_until(self.epoch + when) => return Ok(()),
                    () = changed => {}
                },
                None => changed.await,
            }
        }
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), RuntimeError> {
        self.answering().await;
        self.with(id, |container| {
            container.restart_policy = policy.to_string()
        })
    }

    fn wall_clock(&self) -> SystemTime {
        self.wall_epoch + (Instant::now() - self.epoch)
    }
}
