//! The Docker Engine, through bollard: the [`Runtime`] that finds target containers, reads
//! their facts and performs the steps of their shutdown.
//!
//! Facts that matter here: a stopped container answers 409 to `kill`; bollard
//! reports a non-zero exit from `wait` as `DockerContainerWaitError { code }`, which is an exit
//! status, not a failure; the client's default 120 s timeout would cut long waits, so the
//! client gets a long one and every call is bounded by the executor instead.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, ContainerUpdateBody, ExecConfig, HealthStatusEnum, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    TopOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use quiesce_policy_sdk::{ComposeInfo, ContainerState, Health, ServiceFacts, Signal};

use super::endpoint::Endpoint;
use super::ping::{Pinged, ping};
use super::{
    EXEC_STOP_TIMEOUT, ExecEnd, ExecOutput, HttpResponse, Inspected, Runtime, RuntimeError,
    SelectedTarget, Selector, TargetError, tail,
};
use crate::model::process::Process;
use crate::model::report::EngineInfo;

/// Delivers signal number `$1` to every child of PID 1, from inside the container with its own
/// `sh` (a container whose PID 1 is a shell has one): the children are the processes whose
/// `/proc/PID/stat` names parent 1 (read past the command name, which may hold spaces). Exit 3
/// when PID 1 has no child.
const SIGNAL_CHILDREN_SCRIPT: &str = r#"sig=$1; found=0
for stat in /proc/[0-9]*/stat; do
  read -r line < "$stat" 2>/dev/null || continue
  set -- ${line##*)}
  if [ "$2" = 1 ]; then
    pid=${stat#/proc/}; pid=${pid%/stat}
    kill -"$sig" "$pid" 2>/dev/null && found=1
  fi
done
[ "$found" = 1 ] || { echo "PID 1 has no child process" >&2; exit 3; }"#;

/// The most the script of [`SIGNAL_CHILDREN_SCRIPT`] may run.
const SIGNAL_CHILDREN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client timeout: long, because waits can last as long as a budget; the executor bounds
/// every call itself.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long connecting and the first ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// `inspect` without options.
const NO_OPTIONS: Option<bollard::query_parameters::InspectContainerOptions> = None;

/// The compose labels.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// A connected Docker Engine (or Podman, through its Docker-compatible API).
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    docker: Docker,
    engine: EngineInfo,
}

fn runtime_error(error: DockerError) -> RuntimeError {
    match error {
        // A missing container, in Docker's words or Podman's; any other 404 is an endpoint
        // the engine does not have (Podman before 5.1 has no restart-policy update).
        DockerError::DockerResponseServerError {
            status_code: 404,
            message,
        } if message.to_lowercase().contains("no such container") => RuntimeError::Gone,
        DockerError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::Unsupported(message),
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("not running") => RuntimeError::NotRunning,
        DockerError::DockerResponseServerError { message, .. } => RuntimeError::Failed(message),
        DockerError::IOError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::SocketNotFoundError(_) => RuntimeError::Unreachable(error.to_string()),
        other => RuntimeError::Failed(other.to_string()),
    }
}

/// An engine's API version, "1.41", as bollard's client version.
fn parse_api_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// What `/version` says of the engine, for an endpoint whose ping does not say it.
async fn pinged_from_version(docker: &Docker) -> Result<Pinged, RuntimeError> {
    let version = docker
        .version()
        .await
        .map_err(|error| RuntimeError::Unreachable(error.to_string()))?;
    let podman = version
        .components
        .iter()
        .flatten()
        .find(|component| component.name == "Podman Engine");
    Ok(Pinged {
        api_version: version.api_version.clone().unwrap_or_default(),
        kind: if podman.is_some() { "podman" } else { "docker" },
        version: podman
            .map(|component| component.version.clone())
            .or(version.version)
            .unwrap_or_default(),
    })
}

impl DockerRuntime {
    /// Connects to `endpoint` (chosen as the docker CLI chooses it) and, in one request, learns
    /// that it answers, which engine it is, and the API version to speak.
    pub async fn connect(endpoint: &Endpoint) -> Result<DockerRuntime, RuntimeError> {
        let unreachable = |error: String| {
            RuntimeError::Unreachable(format!(
                "{} (context {}, from {}): {error}",
                endpoint.host, endpoint.context, endpoint.source
            ))
        };
        if endpoint.tls.is_some() {
            return Err(unreachable(
                "TLS endpoints are not supported by this build of quiesce; reach the engine through a unix socket or an SSH tunnel".into(),
            ));
        }
        let timeout = CLIENT_TIMEOUT.as_secs();
        let client = |version: &ClientVersion| {
            if let Some(path) = endpoint.host.strip_prefix("unix://") {
                Docker::connect_with_unix(path, timeout, version)
            } else if endpoint.host.starts_with("tcp://") || endpoint.host.starts_with("http://") {
                Docker::connect_with_http(&endpoint.host, timeout, version)
            } else {
                return Err(unreachable(
                    "only unix:// and tcp:// endpoints are supported".into(),
                ));
            }
            .map_err(|error| unreachable(error.to_string()))
        };
        let docker = client(bollard::API_DEFAULT_VERSION)?;
        // One request learns all: that the engine answers, which engine it is, and its API
        // version (negotiated here, as bollard's `negotiate_version` would with a second one).
        let learned = tokio::time::timeout(PING_TIMEOUT, async {
            match ping(&endpoint.host).await? {
                Some(pinged) => Ok(pinged),
                None => pinged_from_version(&docker).await,
            }
        })
        .await;
        let pinged = match learned {
            Ok(Ok(pinged)) => pinged,
            Ok(Err(RuntimeError::Unreachable(error))) => return Err(unreachable(error)),
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    PING_TIMEOUT.as_secs()
                )));
            }
        };
        let docker = match parse_api_version(&pinged.api_version) {
            Some(server) if server < *bollard::API_DEFAULT_VERSION => client(&server)?,
            Some(_) => docker,
            None => {
                return Err(unreachable(format!(
                    "the engine reported no usable API version ({:?})",
                    pinged.api_version
                )));
            }
        };
        let engine = EngineInfo {
            kind: pinged.kind.to_string(),
            version: pinged.version,
            api_version: format!("{}", docker.client_version()),
            endpoint: endpoint.host.clone(),
            context: endpoint.context.clone(),
        };
        Ok(DockerRuntime { docker, engine })
    }

    /// The bollard client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Starts a created exec, reads its output to the end (keeping the tail), and reads its
    /// exit status.
    async fn run_exec(&self, exec_id: &str) -> Result<ExecOutput, RuntimeError> {
        let mut output = String::new();
        match self
            .docker
            .start_exec(exec_id, None)
            .await
            .map_err(runtime_error)?
        {
            bollard::exec::StartExecResults::Attached {
                output: mut stream, ..
            } => {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(runtime_error)?;
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    if output.len() > 4 * super::OUTPUT_TAIL_BYTES {
                        output = tail(&output);
                    }
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(runtime_error)?;
        Ok(ExecOutput {
            exit_code: inspect
                .exit_code
                .and_then(|code| i32::try_from(code).ok())
                .unwrap_or(-1),
            output_tail: tail(&output),
        })
    }

    /// Stops an exec whose time is up: SIGKILL, from this host, to its process and every
    /// process it started ([`procfs`](super::procfs): the engine API has no way to stop an
    /// exec). `Err` says why it could not be, within [`EXEC_STOP_TIMEOUT`].
    async fn stop_exec(&self, exec_id: &str) -> Result<(), String> {
        let stop = async {
            let inspect =
                self.docker.inspect_exec(exec_id).await.map_err(|error| {
                    format!("the engine did not say which process it is: {error}")
                })?;
            let pid = inspect
                .pid
                .and_then(|pid| i32::try_from(pid).ok())
                .filter(|pid| *pid > 0);
            let (Some(pid), Some(container)) = (pid, inspect.container_id) else {
                return match inspect.running {
                    Some(true) => Err("the engine did not say which process it is".to_string()),
                    _ => Ok(()),
                };
            };
            // Also when the command itself has exited: what it started may hold its output.
            let killed = tokio::task::spawn_blocking(move || {
                crate::platform::procfs::kill_exec(pid, &container)
            })
            .await
            .map_err(|error| error.to_string())?;
            match killed {
                Ok(_) => Ok(()),
                Err(why) => match self.docker.inspect_exec(exec_id).await {
                    // It ended meanwhile, by itself.
                    Ok(again) if again.running == Some(false) => Ok(()),
                    _ => Err(why),
                },
            }
        };
        tokio::time::timeout(EXEC_STOP_TIMEOUT, stop)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the engine did not answer within {}",
                    humantime::format_duration(EXEC_STOP_TIMEOUT)
                ))
            })
    }
}

/// An exec that may still run: stopped when dropped before its step could stop it (the
/// service exited, the run was abandoned), as far as a runtime still runs to do it.
struct RunningExec {
    /// The engine, while the exec may run.
    runtime: Option<DockerRuntime>,
    exec_id: String,
}

impl Drop for RunningExec {
    fn drop(&mut self) {
        if let (Some(runtime), Ok(handle)) =
            (self.runtime.take(), tokio::runtime::Handle::try_current())
        {
            let exec_id = std::mem::take(&mut self.exec_id);
            handle.spawn(async move {
                let _ = runtime.stop_exec(&exec_id).await;
            });
        }
    }
}

/// An instant no wait reaches (an `Instant + Duration` that would overflow).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// The policy's view of a container, its state and its full restart policy, from one
/// inspection.
fn inspected_from(inspect: ContainerInspectResponse) -> Inspected {
    let state = state_from(inspect.state.clone().unwrap_or_default());
    let restart = inspect
        .host_config
        .as_ref()
        .and_then(|host| host.restart_policy.clone())
        .unwrap_or_default();
    let restart_policy_spec = match (restart.name, restart.maximum_retry_count) {
        (Some(RestartPolicyNameEnum::ON_FAILURE), Some(limit)) if limit > 0 => {
            Some(format!("on-failure:{limit}"))
        }
        _ => None,
    };
    let pid1 = inspect
        .state
        .as_ref()
        .and_then(|state| state.pid)
        .and_then(|pid| i32::try_from(pid).ok())
        .filter(|pid| *pid > 0);
    Inspected {
        facts: facts_from_inspect(inspect),
        state,
        restart_policy_spec,
        pid1,
    }
}

/// Builds the policy's view of a container. The environment is deliberately left out.
pub fn facts_from_inspect(inspect: ContainerInspectResponse) -> ServiceFacts {
    let config = inspect.config.unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let labels: std::collections::BTreeMap<String, String> =
        config.labels.unwrap_or_default().into_iter().collect();
    let compose = labels.get(COMPOSE_PROJECT).map(|project| ComposeInfo {
        project: project.clone(),
        service: labels.get(COMPOSE_SERVICE).cloned().unwrap_or_default(),
        depends_on: labels
            .get(COMPOSE_DEPENDS_ON)
            .map(|value| parse_depends_on(value))
            .unwrap_or_default(),
    });
    let mut command: Vec<String> = inspect.path.into_iter().filter(|p| !p.is_empty()).collect();
    command.extend(inspect.args.unwrap_or_default());
    ServiceFacts {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        labels: labels.into_iter().collect(),
        stop_signal: config.stop_signal.and_then(|signal| signal.parse().ok()),
        stop_timeout: config
            .stop_timeout
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map(Duration::from_secs),
        command,
        init: host.init.unwrap_or(false),
        restart_policy: match host.restart_policy.and_then(|policy| policy.name) {
            Some(RestartPolicyNameEnum::ALWAYS) => "always",
            Some(RestartPolicyNameEnum::UNLESS_STOPPED) => "unless-stopped",
            Some(RestartPolicyNameEnum::ON_FAILURE) => "on-failure",
            _ => "no",
        }
        .to_string(),
        health: state
            .health
            .and_then(|health| health.status)
            .and_then(health_from),
        compose,
        started_at: state
            .started_at
            .filter(|started| !started.starts_with("0001-")),
    }
}

/// The running state, exit status and health of an inspected container.
fn state_from(state: bollard::models::ContainerState) -> ContainerState {
    let running = state.running.unwrap_or(false) || state.restarting.unwrap_or(false);
    ContainerState {
        running,
        exit_code: (!running)
            .then(|| state.exit_code.and_then(|code| i32::try_from(code).ok()))
            .flatten(),
        health: state
            .health
            .and_then(|health| health.status)
            .and_then(health_from),
    }
}

/// Compose v2's `depends_on` label: `db:service_started:false,cache:service_healthy:true`.
pub fn parse_depends_on(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|entry| entry.split(':').next())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

fn health_from(status: HealthStatusEnum) -> Option<Health> {
    match status {
        HealthStatusEnum::STARTING => Some(Health::Starting),
        HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        _ => None,
    }
}

impl Runtime for DockerRuntime {
    fn engine(&self) -> EngineInfo {
        self.engine.clone()
    }

    /// Named containers are resolved concurrently and keep the inspection that resolved them.
    async fn select(
        &self,
        selector: &Selector,
        concurrency: usize,
    ) -> Result<Vec<SelectedTarget>, TargetError> {
        let named: Vec<Result<SelectedTarget, TargetError>> =
            futures_util::stream::iter(selector.containers.clone())
                .map(|name| async move {
                    match self.docker.inspect_container(&name, NO_OPTIONS).await {
                        Ok(inspect) => Ok(SelectedTarget {
                            id: inspect.id.clone().unwrap_or_else(|| name.clone()),
                            inspected: Some(inspected_from(inspect)),
                        }),
                        Err(error) => Err(match runtime_error(error) {
                            RuntimeError::Gone => TargetError::Unknown(name),
                            other => TargetError::Engine(other),
                        }),
                    }
                })
                .buffered(concurrency.max(1))
                .collect()
                .await;
        let mut targets = named.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut label_filters: Vec<String> = selector.labels.clone();
        if let Some(project) = &selector.project {
            label_filters.push(format!("{COMPOSE_PROJECT}={project}"));
        }
        if selector.all || !label_filters.is_empty() {
            let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
            if !label_filters.is_empty() {
                filters.insert("label", label_filters);
            }
            let options = ListContainersOptionsBuilder::new()
                .all(!selector.all)
                .filters(&filters)
                .build();
            let mut listed = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(|error| TargetError::Engine(runtime_error(error)))?;
            // The engine lists the newest first; people read a run by name.
            listed.sort_by(|a, b| a.names.cmp(&b.names));
            targets.extend(listed.into_iter().filter_map(|summary| {
                Some(SelectedTarget {
                    id: summary.id?,
                    inspected: None,
                })
            }));
        }
        let mut seen = std::collections::HashSet::new();
        targets.retain(|target| seen.insert(target.id.clone()));
        Ok(targets)
    }

    async fn inspect(&self, id: &str) -> Result<Option<Inspected>, RuntimeError> {
        match self.docker.inspect_container(id, NO_OPTIONS).await {
            Ok(inspect) => Ok(Some(inspected_from(inspect))),
            Err(error) => match runtime_error(error) {
                RuntimeError::Gone => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let options = KillContainerOptionsBuilder::new()
            .signal(&signal.name())
            .build();
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(runtime_error)
    }

    async fn signal_children(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let argv: Vec<String> = [
            "sh",
            "-c",
            SIGNAL_CHILDREN_SCRIPT,
            "sh",
            &signal.number().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let needs_sh = |detail: &str| {
            RuntimeError::Failed(format!(
                "delivering {signal} to PID 1's children (signal target `child`) runs `sh` in the container: {detail}"
            ))
        };
        match self.exec(id, &argv, SIGNAL_CHILDREN_TIMEOUT).await {
            Ok(ExecEnd::Exited(output)) if output.exit_code == 0 => Ok(()),
            Ok(ExecEnd::Exited(output)) if output.exit_code == 3 => {
                Err(RuntimeError::Failed(format!(
                    "{signal} was not delivered: PID 1 has no child process (signal target `child`)"
                )))
            }
            Ok(ExecEnd::Exited(output)) => Err(needs_sh(&format!(
                "exit {}: {}",
                output.exit_code, output.output_tail
            ))),
            Ok(ExecEnd::TimedOut(_)) => Err(needs_sh(&format!(
                "no answer within {}",
                humantime::format_duration(SIGNAL_CHILDREN_TIMEOUT)
            ))),
            Err(RuntimeError::Failed(message)) => Err(needs_sh(&message)),
            Err(error) => Err(error),
        }
    }

    async fn processes(&self, id: &str, pid1: Option<i32>) -> Result<Vec<Process>, RuntimeError> {
        // Where the engine runs on this host, /proc says the same at once.
        if let Some(tree) = pid1.and_then(|pid1| crate::platform::procfs::container_tree(pid1, id))
        {
            return Ok(tree);
        }
        // Docker runs the host's `ps` with these arguments; Podman takes ps-style descriptors.
        let ps_args = if self.engine.kind == "podman" {
            "pid,ppid,args"
        } else {
            "-o pid,ppid,args"
        };
        let top = self
            .docker
            .top_processes(id, Some(TopOptionsBuilder::new().ps_args(ps_args).build()))
            .await
            .map_err(runtime_error)?;
        let titles = top.titles.unwrap_or_default();
        let column = |name: &str| titles.iter().position(|title| title == name);
        let (Some(pid), Some(ppid), Some(args)) =
            (column("PID"), column("PPID"), column("COMMAND"))
        else {
            return Ok(Vec::new());
        };
        Ok(top
            .processes
            .unwrap_or_default()
            .iter()
            .filter_map(|row| {
                Some(Process {
                    pid: row.get(pid)?.trim().parse().ok()?,
                    ppid: row.get(ppid)?.trim().parse().ok()?,
                    args: row.get(args)?.clone(),
                    signals: None,
                })
            })
            .collect())
    }

    async fn exec(
        &self,
        id: &str,
        argv: &[String],
        limit: Duration,
    ) -> Result<ExecEnd, RuntimeError> {
        let deadline = tokio::time::Instant::now()
            .checked_add(limit)
            .unwrap_or_else(far_future);
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..ExecConfig::default()
        };
        let created =
            match tokio::time::timeout_at(deadline, self.docker.create_exec(id, config)).await {
                Ok(created) => created.map_err(runtime_error)?,
                // Not created in time: nothing runs.
                Err(_) => return Ok(ExecEnd::TimedOut(Ok(()))),
            };
        let mut guard = RunningExec {
            runtime: Some(self.clone()),
            exec_id: created.id.clone(),
        };
        let ran = tokio::time::timeout_at(deadline, self.run_exec(&created.id)).await;
        match ran {
            Ok(output) => {
                guard.runtime = None;
                output.map(ExecEnd::Exited)
            }
            Err(_) => {
                let stopped = self.stop_exec(&created.id).await;
                if stopped.is_ok() {
                    guard.runtime = None;
                }
                // Not stopped in time (a slow engine): the guard tries again, in the
                // background, as it is dropped.
                Ok(ExecEnd::TimedOut(stopped))
            }
        }
    }

    async fn http(
        &self,
        _id: &str,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<HttpResponse, RuntimeError> {
        crate::runtime::http::request(method, url, body).await
    }

    async fn observe(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(id, NO_OPTIONS)
            .await
            .map_err(runtime_error)?;
        Ok(state_from(inspect.state.unwrap_or_default()))
    }

    async fn wait_exit(&self, id: &str) -> Result<i32, RuntimeError> {
        // Podman 4.x spins a core on `not-running` (and never answers for a container it
        // restarts); `next-exit` costs nothing but misses an exit that came before the wait
        // began, so the state is looked at once after it began.
        let podman = self.engine.kind == "podman";
        let condition = if podman { "next-exit" } else { "not-running" };
        let options = WaitContainerOptionsBuilder::new()
            .condition(condition)
            .build();
        let mut stream = self.docker.wait_container(id, Some(options));
        let waited = async {
            match stream.next().await {
                Some(Ok(response)) => Ok(i32::try_from(response.status_code).unwrap_or(-1)),
                Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                    Ok(i32::try_from(code).unwrap_or(-1))
                }
                Some(Err(error)) => Err(runtime_error(error)),
                None => Err(RuntimeError::Failed(
                    "the wait stream ended without a status".into(),
                )),
            }
        };
        if !podman {
            return waited.await;
        }
        let looked = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.observe(id).await {
                Ok(state) if !state.running => Ok(state.exit_code.unwrap_or(-1)),
                Err(RuntimeError::Gone) => Err(RuntimeError::Gone),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            result = waited => result,
            result = looked => result,
        }
    }

    async fn wait_log_line(
        &self,
        id: &str,
        text: &str,
        since: SystemTime,
    ) -> Result<(), RuntimeError> {
        let since_secs = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(since_secs).unwrap_or(i32::MAX))
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut scanner = LogScanner::new(text, since);
        while let Some(chunk) = stream.next().await {
            let found = match chunk.map_err(runtime_error)? {
                // A terminal's output (`docker run -t`): one stream, cut anywhere.
                bollard::container::LogOutput::Console { message } => scanner.raw(&message),
                // One frame per log message, each with its stamp.
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::StdErr { message }
                | bollard::container::LogOutput::StdIn { message } => scanner.message(&message),
            };
            if found {
                return Ok(());
            }
        }
        Err(RuntimeError::NotRunning)
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), RuntimeError> {
        let (name, retry_limit) = match policy.split_once(':') {
            Some((name, limit)) => (name, limit.parse::<i64>().ok()),
            None => (policy, None),
        };
        let name = match name {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        };
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: retry_limit,
            }),
            ..ContainerUpdateBody::default()
        };
        self.docker
            .update_container(id, body)
            .await
            .map_err(runtime_error)
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The longest stamp a log line may start with (`2024-05-01T12:00:00.123456789Z`, with room);
/// longer, the line has none.
const MAX_STAMP_BYTES: usize = 64;

/// Looks for a text in a container's log stream (`docker logs --timestamps`), holding at most
/// the text's length (less a byte) of the current line between chunks, so a text split across
/// chunks is found while a line that never ends costs nothing more (issue 17, class 8: a
/// container writing without newlines once made quiesce grow by 100 MB in 150 s).
///
/// Each line starts with the engine's RFC 3339 stamp; lines from before `since` are skipped
/// (the API's `since` has second resolution). Podman's stamps have whole seconds: a line of
/// the wait's own second counts. Docker cuts a long line into messages of 16 KiB, each with
/// its own stamp: a message that does not end its line is continued by the next one.
struct LogScanner<'a> {
    text: &'a str,
    since: SystemTime,
    since_second: SystemTime,
    /// The end of the current line, as far as a match may still need it.
    carry: Vec<u8>,
    /// Whether the current line counts (stamped at or after `since`).
    recent: bool,
    /// In a raw stream, at a line's start: the stamp read so far.
    stamp: Option<Vec<u8>>,
    /// The last message did not end its line.
    partial: bool,
}

impl<'a> LogScanner<'a> {
    fn new(text: &'a str, since: SystemTime) -> LogScanner<'a> {
        let seconds = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        LogScanner {
            text,
            since,
            since_second: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            carry: Vec::new(),
            recent: false,
            stamp: Some(Vec::new()),
            partial: false,
        }
    }

    fn is_recent(&self, stamp: &[u8]) -> bool {
        let Ok(stamp) = std::str::from_utf8(stamp) else {
            return false;
        };
        let floor = if stamp.contains('.') {
            self.since
        } else {
            self.since_second
        };
        humantime::parse_rfc3339_weak(stamp).is_ok_and(|at| at >= floor)
    }

    /// One log message: `STAMP TEXT`, its text one line or the piece of one. True when the
    /// awaited text appeared.
    fn message(&mut self, message: &[u8]) -> bool {
        let (stamp, content) = match message.iter().position(|byte| *byte == b' ') {
            Some(space) => (&message[..space], &message[space + 1..]),
            None => (message, &[][..]),
        };
        let recent = self.is_recent(stamp);
        if self.partial {
            self.recent |= recent;
        } else {
            self.recent = recent;
            self.carry.clear();
        }
        self.partial = !content.is_empty() && !content.ends_with(b"\n");
        content
            .split_inclusive(|byte| *byte == b'\n')
            .any(|piece| self.content(piece))
    }

    /// A piece of a raw stream of stamped lines, cut anywhere. True when the awaited text
    /// appeared.
    fn raw(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if let Some(stamp) = &mut self.stamp {
                let space = bytes.iter().position(|byte| *byte == b' ');
                let end = space.unwrap_or(bytes.len());
                stamp.extend_from_slice(&bytes[..end]);
                if space.is_none() && stamp.len() <= MAX_STAMP_BYTES {
                    return false;
                }
                let stamp = self.stamp.take().unwrap_or_default();
                if space.is_some() {
                    self.recent = self.is_recent(&stamp);
                    bytes = &bytes[end + 1..];
                } else {
                    // Not a stamp: the line has none, and does not count.
                    self.recent = false;
                    bytes = &bytes[end..];
                }
                continue;
            }
            let end = bytes
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(bytes.len(), |newline| newline + 1);
            if self.content(&bytes[..end]) {
                return true;
            }
            if bytes[end - 1] == b'\n' {
                self.stamp = Some(Vec::new());
            }
            bytes = &bytes[end..];
        }
        false
    }

    /// More of the current line (ending it when `piece` ends with a newline).
    fn content(&mut self, piece: &[u8]) -> bool {
        let ends_line = piece.ends_with(b"\n");
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(piece.strip_suffix(b"\n").unwrap_or(piece));
        // A valid UTF-8 text is found in lossily decoded bytes wherever it is in them.
        let found = self.recent && String::from_utf8_lossy(&window).contains(self.text);
        if !ends_line {
            let keep = self.text.len().saturating_sub(1).min(window.len());
            window.drain(..window.len() - keep);
            self.carry = window;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engines_api_version_is_read_as_major_and_minor_and_nothing_else() {
        let version = parse_api_version("1.41").unwrap();
        assert_eq!((version.major_version, version.minor_version), (1, 41));
        assert!(parse_api_version("1.41").unwrap() < *bollard::API_DEFAULT_VERSION);
        for bad in ["", "1", "1.x", "v1.41", "1.41.0"] {
            assert!(parse_api_version(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_404_is_gone_only_when_the_engine_says_the_container_is_missing() {
        let answer = |status_code: u16, message: &str| {
            runtime_error(DockerError::DockerResponseServerError {
                status_code,
                message: message.into(),
            })
        };
        assert_eq!(answer(404, "No such container: web-1"), RuntimeError::Gone);
        assert_eq!(
            answer(
                404,
                "no container with name or ID \"web-1\" found: no such container"
            ),
            RuntimeError::Gone
        );
        // Podman 4.3's answer to a restart-policy update it does not have.
        assert_eq!(
            answer(404, "Not Found"),
            RuntimeError::Unsupported("Not Found".into())
        );
        assert_eq!(
            answer(409, "Container web-1 is not running"),
            RuntimeError::NotRunning
        );
    }

    fn stamp(at: SystemTime) -> String {
        humantime::format_rfc3339_nanos(at).to_string()
    }

    #[test]
    fn a_log_line_split_across_messages_is_found_and_old_lines_are_not() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (before, after) = (
            stamp(since - Duration::from_millis(300)),
            stamp(since + Duration::from_millis(1)),
        );
        let mut scanner = LogScanner::new("drained", since);
        assert!(!scanner.message(format!("{before} drained\n").as_bytes()));
        assert!(!scanner.message(format!("{after} all dra").as_bytes()));
        assert!(scanner.message(format!("{after} ined\n").as_bytes()));
        // Podman: whole seconds, the wait's own second counts.
        let mut scanner = LogScanner::new("drained", since + Duration::from_millis(500));
        assert!(scanner.message(b"2023-11-14T22:13:20Z drained\n"));
    }

    #[test]
    fn a_raw_stream_is_read_line_by_line_wherever_it_is_cut() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let old = stamp(since - Duration::from_secs(1));
        let new = stamp(since + Duration::from_secs(1));
        let stream = format!("{old} drained\r\n{new} not yet\r\n{new} all drained\r\n");
        for cut in 1..stream.len() {
            let mut scanner = LogScanner::new("drained", since);
            let (first, second) = stream.as_bytes().split_at(cut);
            let found = scanner.raw(first) || scanner.raw(second);
            assert!(found, "cut at {cut}");
        }
        let mut scanner = LogScanner::new("drained", since);
        assert!(!scanner.raw(stream.split("all").next().unwrap().as_bytes()));
    }

    /// Issue 17, class 8: output without newlines does not make the wait grow.
    #[test]
    fn a_line_that_never_ends_holds_only_the_texts_length() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now = stamp(since + Duration::from_secs(1));
        let needle = "x".repeat(100) + "!";
        let piece = format!("{now} {}", "x".repeat(16 << 10));
        let mut framed = LogScanner::new(&needle, since);
        let mut raw = LogScanner::new(&needle, since);
        assert!(!raw.raw(piece.as_bytes()));
        for _ in 0..1000 {
            assert!(!framed.message(piece.as_bytes()));
            assert!(!raw.raw(&piece.as_bytes()[now.len() + 1..]));
            assert!(framed.carry.len() < needle.len() && raw.carry.len() < needle.len());
        }
        assert!(framed.message(format!("{now} !").as_bytes()));
        assert!(raw.raw(b"!"));
    }

    #[test]
    fn compose_depends_on_labels_are_parsed_to_service_names() {
        assert_eq!(
            parse_depends_on("db:service_started:false,cache:service_healthy:true"),
            ["db", "cache"]
        );
        assert_eq!(parse_depends_on("db"), ["db"]);
        assert!(parse_depends_on("").is_empty());
    }
}
