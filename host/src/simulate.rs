//! A simulated container engine: services whose reactions are scripted, in tokio time (run it
//! under `tokio::time::pause()` and minutes pass in microseconds).
//!
//! `quiesce plan` runs the real executor against it twice per service: once with an obedient
//! service (what the policy does when the service cooperates) and once with a stubborn one (the
//! worst case: every wait runs out, only SIGKILL works). Tests use scripted services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quiesce_policy_sdk::{Health, Signal};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::runtime::{ExecOutput, HttpResponse, Observed, Runtime, RuntimeError};

/// How a simulated service reacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceModel {
    /// Signals it honours: on any of them it exits with status 0 after the delay.
    pub graceful: Vec<(Signal, Duration)>,
    /// Every other signal (except SIGKILL): `Some(delay)` exits with 128+signal after the
    /// delay; `None` ignores it.
    pub other_signals: Option<Duration>,
    /// Whether exec'd commands, probes, HTTP calls, health and log waits cooperate (succeed at
    /// once) or hang until their timeout.
    pub cooperative: bool,
    /// Running when the run starts.
    pub running: bool,
}

impl ServiceModel {
    /// Exits at once on any signal; every command, probe and call succeeds.
    pub fn obedient() -> ServiceModel {
        ServiceModel {
            graceful: Vec::new(),
            other_signals: Some(Duration::ZERO),
            cooperative: true,
            running: true,
        }
    }

    /// Ignores every signal but SIGKILL; every command, probe and call hangs.
    pub fn stubborn() -> ServiceModel {
        ServiceModel {
            graceful: Vec::new(),
            other_signals: None,
            cooperative: false,
            running: true,
        }
    }

    /// Drains for `drain` after `signal`, then exits 0; ignores other signals.
    pub fn drains_on(signal: Signal, drain: Duration) -> ServiceModel {
        ServiceModel {
            graceful: vec![(signal, drain)],
            other_signals: None,
            cooperative: true,
            running: true,
        }
    }
}

struct SimContainer {
    model: ServiceModel,
    exit_at: Option<(Instant, i32)>,
    signals: Vec<(Duration, Signal)>,
    restart_policy: String,
    removed: bool,
}

/// The simulated engine.
pub struct SimulatedRuntime {
    containers: Mutex<HashMap<String, SimContainer>>,
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
    /// An engine with no containers.
    pub fn new() -> SimulatedRuntime {
        SimulatedRuntime {
            containers: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            epoch: Instant::now(),
            wall_epoch: SystemTime::now(),
        }
    }

    /// Adds a container with this behaviour and restart policy.
    pub fn add(&self, id: &str, model: ServiceModel, restart_policy: &str) {
        let exit_at = (!model.running).then(|| (Instant::now(), 0));
        self.containers.lock().unwrap().insert(
            id.to_string(),
            SimContainer {
                model,
                exit_at,
                signals: Vec::new(),
                restart_policy: restart_policy.to_string(),
                removed: false,
            },
        );
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
        self.with(id, |container| container.signals.clone())
            .unwrap_or_default()
    }

    /// A container's current restart policy.
    pub fn restart_policy(&self, id: &str) -> Option<String> {
        self.with(id, |container| container.restart_policy.clone())
            .ok()
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut SimContainer) -> T) -> Result<T, RuntimeError> {
        let mut containers = self.containers.lock().unwrap();
        match containers.get_mut(id) {
            Some(container) if !container.removed => Ok(f(container)),
            _ => Err(RuntimeError::Gone),
        }
    }

    fn running(container: &SimContainer) -> bool {
        container.exit_at.is_none_or(|(at, _)| at > Instant::now())
    }

    async fn hang_unless_cooperative<T>(&self, id: &str, value: T) -> Result<T, RuntimeError> {
        let cooperative = self.with(id, |container| container.model.cooperative)?;
        if cooperative {
            Ok(value)
        } else {
            std::future::pending().await
        }
    }
}

impl Runtime for SimulatedRuntime {
    async fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let now = Instant::now();
        let since = now - self.epoch;
        self.with(id, |container| {
            if !Self::running(container) {
                return Err(RuntimeError::NotRunning);
            }
            container.signals.push((since, signal));
            let reaction = if signal == Signal::KILL {
                Some((Duration::ZERO, 137))
            } else if let Some((_, drain)) = container
                .model
                .graceful
                .iter()
                .find(|(graceful, _)| *graceful == signal)
            {
                Some((*drain, 0))
            } else {
                container
                    .model
                    .other_signals
                    .map(|delay| (delay, 128 + i32::from(signal.number())))
            };
            if let Some((delay, code)) = reaction {
                let at = now + delay;
                if container.exit_at.is_none_or(|(current, _)| at < current) {
                    container.exit_at = Some((at, code));
                }
            }
            Ok(())
        })??;
        self.changed.notify_waiters();
        Ok(())
    }

    async fn exec(&self, id: &str, _argv: &[String]) -> Result<ExecOutput, RuntimeError> {
        if !self.with(id, |container| Self::running(container))? {
            return Err(RuntimeError::NotRunning);
        }
        let output = ExecOutput {
            exit_code: 0,
            output_tail: String::new(),
        };
        self.hang_unless_cooperative(id, output).await
    }

    async fn http(
        &self,
        _method: &str,
        _url: &str,
        _body: Option<&str>,
    ) -> Result<HttpResponse, RuntimeError> {
        Ok(HttpResponse {
            status: 200,
            body_tail: String::new(),
        })
    }

    async fn observe(&self, id: &str) -> Result<Observed, RuntimeError> {
        self.with(id, |container| {
            let running = Self::running(container);
            Observed {
                running,
                exit_code: if running {
                    None
                } else {
                    container.exit_at.map(|(_, code)| code)
                },
                health: container.model.cooperative.then_some(Health::Healthy),
            }
        })
    }

    async fn wait_exit(&self, id: &str) -> Result<i32, RuntimeError> {
        loop {
            let changed = self.changed.notified();
            let exit_at = self.with(id, |container| container.exit_at)?;
            match exit_at {
                Some((at, code)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => return Ok(code),
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    async fn wait_log_line(
        &self,
        id: &str,
        _text: &str,
        _since: SystemTime,
    ) -> Result<(), RuntimeError> {
        self.hang_unless_cooperative(id, ()).await
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), RuntimeError> {
        self.with(id, |container| {
            container.restart_policy = policy.to_string()
        })
    }

    fn wall_clock(&self) -> SystemTime {
        self.wall_epoch + (Instant::now() - self.epoch)
    }
}

/// Shares one simulated engine between the orchestrator and a test.
pub type SharedSimulation = Arc<SimulatedRuntime>;
