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
    ContainerInspectResponse, ContainerSummary, ContainerUpdateBody, ExecConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    TopOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use quiesce_policy_sdk::{ContainerState, Signal};

mod exec;
mod facts;
mod logs;

use exec::{RunningExec, far_future};
use facts::{
    COMPOSE_PROJECT, inspected_from, listed_with_docker_states, state_from, with_docker_states,
};
pub use facts::{facts_from_inspect, parse_depends_on};
use logs::LogScanner;

use crate::model::process::Process;
use crate::model::report::EngineInfo;
use crate::runtime::endpoint::Endpoint;
use crate::runtime::ping::{Pinged, ping};
use crate::runtime::{
    ExecEnd, Inspected, Runtime, RuntimeError, SelectedTarget, Selector, TargetError,
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

/// The most the script of [`SIGNAL_CHILDREN_SCRIPT`] may run.
const SIGNAL_CHILDREN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client timeout: long, because waits can last as long as a budget; the executor bounds
/// every call itself.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long connecting and the first ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the state of a container is looked at while Podman's wait for its exit runs
/// (that wait can miss an exit).
const PODMAN_EXIT_LOOK: Duration = Duration::from_secs(1);

/// `inspect` without options.
const NO_OPTIONS: Option<bollard::query_parameters::InspectContainerOptions> = None;

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
        // Docker: 409 "Container ... is not running"; Podman: 500 "can only kill running
        // containers. ... is in state exited: container state improper" (the driver looks at
        // the container before it believes it).
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("not running") => RuntimeError::NotRunning,
        DockerError::DockerResponseServerError { message, .. }
            if message.contains("container state improper") =>
        {
            RuntimeError::NotRunning
        }
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

    /// One inspection of `name`, as bollard reads it; or, when bollard cannot read a state its
    /// types do not know (Podman's `stopping`, while `podman stop` waits for the container),
    /// the same inspection asked again and read with Docker's words for Podman's states.
    async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, RuntimeError> {
        match self.docker.inspect_container(name, NO_OPTIONS).await {
            Ok(inspect) => Ok(inspect),
            Err(
                error @ (DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. }),
            ) => match self.inspect_with_docker_states(name).await {
                Some(inspect) => Ok(inspect),
                None => Err(runtime_error(error)),
            },
            Err(error) => Err(runtime_error(error)),
        }
    }

    /// `GET /containers/NAME/json` read through [`with_docker_states`]; `None` if anything
    /// about it fails (the caller has bollard's error to give).
    async fn inspect_with_docker_states(&self, name: &str) -> Option<ContainerInspectResponse> {
        // Names and ids need no escaping in a path; anything else is not asked again.
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !plain {
            return None;
        }
        let mut inspect = self
            .engine_json(&format!("/containers/{name}/json"))
            .await?;
        with_docker_states(&mut inspect);
        serde_json::from_value(inspect).ok()
    }

    /// The containers `GET /containers/json` lists with `all` and `filters`, read through
    /// [`listed_with_docker_states`]; `None` if anything about it fails.
    async fn list_with_docker_states(
        &self,
        all: bool,
        filters: &HashMap<&str, Vec<String>>,
    ) -> Option<Vec<ContainerSummary>> {
        let filters = serde_json::to_string(filters).ok()?;
        let path = format!(
            "/containers/json?all={all}&filters={}",
            crate::runtime::raw::query_value(&filters)
        );
        let mut listing = self.engine_json(&path).await?;
        listed_with_docker_states(&mut listing);
        serde_json::from_value(listing).ok()
    }

    /// The JSON the engine answers to `GET /vAPI/PATH`, if it answers with success.
    async fn engine_json(&self, path: &str) -> Option<serde_json::Value> {
        let path = format!("/v{}{path}", self.engine.api_version);
        let (head, body) = crate::runtime::raw::get(&self.engine.endpoint, &path)
            .await
            .ok()??;
        if !head.status.is_success() {
            return None;
        }
        serde_json::from_slice(&body).ok()
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
                    match self.inspect_container(&name).await {
                        Ok(inspect) => Ok(SelectedTarget {
                            id: inspect.id.clone().unwrap_or_else(|| name.clone()),
                            inspected: Some(inspected_from(inspect)),
                        }),
                        Err(RuntimeError::Gone) => Err(TargetError::Unknown(name)),
                        Err(other) => Err(TargetError::Engine(other)),
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
            let all = !selector.all;
            let options = ListContainersOptionsBuilder::new()
                .all(all)
                .filters(&filters)
                .build();
            let mut listed = match self.docker.list_containers(Some(options)).await {
                Ok(listed) => listed,
                // A state bollard's types do not know (Podman's `stopping`).
                Err(
                    error
                    @ (DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. }),
                ) => self
                    .list_with_docker_states(all, &filters)
                    .await
                    .ok_or_else(|| TargetError::Engine(runtime_error(error)))?,
                Err(error) => return Err(TargetError::Engine(runtime_error(error))),
            };
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
        match self.inspect_container(id).await {
            Ok(inspect) => Ok(Some(inspected_from(inspect))),
            Err(RuntimeError::Gone) => Ok(None),
            Err(other) => Err(other),
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

    async fn observe(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let inspect = self.inspect_container(id).await?;
        Ok(state_from(inspect.state.unwrap_or_default()))
    }

    async fn wait_exit(&self, id: &str) -> Result<i32, RuntimeError> {
        // Podman 4.x spins a core on `not-running` (and never answers for a container it
        // restarts); `next-exit` costs nothing but misses an exit that came before the wait
        // began, and Podman 5 was seen to miss one that came after (a container with an
        // `on-failure` restart policy, once in many runs): the state is also looked at, soon
        // after the wait began and then every second.
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
            loop {
                match self.observe(id).await {
                    Ok(state) if !state.running => break Ok(state.exit_code.unwrap_or(-1)),
                    Err(RuntimeError::Gone) => break Err(RuntimeError::Gone),
                    _ => tokio::time::sleep(PODMAN_EXIT_LOOK).await,
                }
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
        assert_eq!(
            answer(
                500,
                "can only kill running containers. 1f2e is in state exited: container state improper"
            ),
            RuntimeError::NotRunning
        );
    }
}
