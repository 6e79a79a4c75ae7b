//! The Docker Engine, through bollard: the [`Runtime`] that finds target containers, reads
//! their facts and performs the steps of their shutdown.
//!
//! Facts that matter here (see DESIGN §5): a stopped container answers 409 to `kill`; bollard
//! reports a non-zero exit from `wait` as `DockerContainerWaitError { code }`, which is an exit
//! status, not a failure; the client's default 120 s timeout would cut long waits, so the
//! client gets a long one and every call is bounded by the executor instead.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, ContainerUpdateBody, ExecConfig, HealthStatusEnum, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    TopOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use quiesce_policy_sdk::{ComposeInfo, ContainerState, Health, ServiceFacts, Signal};

use super::endpoint::Endpoint;
use super::{
    EngineInfo, ExecOutput, HttpResponse, Inspected, Process, Runtime, RuntimeError,
    SelectedTarget, Selector, TargetError, tail,
};

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

impl DockerRuntime {
    /// Connects to `endpoint` (chosen as the docker CLI chooses it), pings it, learns which
    /// engine answers and negotiates the API version.
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
        let docker = if let Some(path) = endpoint.host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, timeout, bollard::API_DEFAULT_VERSION)
        } else if endpoint.host.starts_with("tcp://") || endpoint.host.starts_with("http://") {
            Docker::connect_with_http(&endpoint.host, timeout, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(unreachable(
                "only unix:// and tcp:// endpoints are supported".into(),
            ));
        }
        .map_err(|error| unreachable(error.to_string()))?;
        let answered = tokio::time::timeout(PING_TIMEOUT, async {
            docker.ping().await?;
            let version = docker.version().await?;
            let docker = docker.negotiate_version().await?;
            Ok::<_, DockerError>((docker, version))
        })
        .await;
        let (docker, version) = match answered {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    PING_TIMEOUT.as_secs()
                )));
            }
        };
        let podman = version
            .components
            .iter()
            .flatten()
            .find(|component| component.name == "Podman Engine");
        let engine = EngineInfo {
            kind: if podman.is_some() { "podman" } else { "docker" }.to_string(),
            version: podman
                .map(|component| component.version.clone())
                .or(version.version)
                .unwrap_or_default(),
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
    Inspected {
        facts: facts_from_inspect(inspect),
        state,
        restart_policy_spec,
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
        match self.exec(id, &argv).await {
            Ok(output) if output.exit_code == 0 => Ok(()),
            Ok(output) if output.exit_code == 3 => Err(RuntimeError::Failed(format!(
                "{signal} was not delivered: PID 1 has no child process (signal target `child`)"
            ))),
            Ok(output) => Err(needs_sh(&format!(
                "exit {}: {}",
                output.exit_code, output.output_tail
            ))),
            Err(RuntimeError::Failed(message)) => Err(needs_sh(&message)),
            Err(error) => Err(error),
        }
    }

    async fn processes(&self, id: &str) -> Result<Vec<Process>, RuntimeError> {
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
                })
            })
            .collect())
    }

    async fn exec(&self, id: &str, argv: &[String]) -> Result<ExecOutput, RuntimeError> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..ExecConfig::default()
        };
        let created = self
            .docker
            .create_exec(id, config)
            .await
            .map_err(runtime_error)?;
        let mut output = String::new();
        match self
            .docker
            .start_exec(&created.id, None)
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
            .inspect_exec(&created.id)
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

    async fn http(
        &self,
        _id: &str,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<HttpResponse, RuntimeError> {
        crate::http::request(method, url, body).await
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
        let mut pending = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(runtime_error)?;
            pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(newline) = pending.find('\n') {
                let line: String = pending.drain(..=newline).collect();
                // Each line starts with an RFC 3339 timestamp; skip lines from before `since`
                // (the `since` parameter only has second resolution). Podman's stamps have
                // whole seconds only: then a line of the wait's own second counts.
                let (stamp, content) = line.split_once(' ').unwrap_or(("", &line));
                let floor = if stamp.contains('.') {
                    since
                } else {
                    SystemTime::UNIX_EPOCH + Duration::from_secs(since_secs)
                };
                let recent = humantime::parse_rfc3339_weak(stamp).is_ok_and(|at| at >= floor);
                if recent && content.contains(text) {
                    return Ok(());
                }
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

#[cfg(test)]
mod tests {
    use super::*;

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
