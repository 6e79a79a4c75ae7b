//! What an inspection says, as the runner and the policy see it: the service's facts, its
//! state, its health, its restart policy and its compose project.

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum, RestartPolicyNameEnum};
use quiesce_policy_sdk::{ComposeInfo, ContainerState, Health, ServiceFacts};

use crate::runtime::Inspected;

/// The compose labels.
pub(super) const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// The policy's view of a container, its state and its full restart policy, from one
/// inspection.
pub(super) fn inspected_from(inspect: ContainerInspectResponse) -> Inspected {
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
pub(super) fn state_from(state: bollard::models::ContainerState) -> ContainerState {
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

/// Podman's container states in Docker's words, in an inspection's JSON, for bollard's types
/// (which refuse a state they do not know, and the whole inspection with it).
pub(super) fn with_docker_states(inspect: &mut serde_json::Value) {
    let Some(state) = inspect
        .get_mut("State")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let status = state.get("Status").and_then(serde_json::Value::as_str);
    if let Some((docker, running)) = status.and_then(docker_state) {
        state.insert("Status".into(), docker.into());
        if let Some(running) = running {
            state.insert("Running".into(), running.into());
        }
    }
}

/// The same for each container of a listing (`State` is the state's name there).
pub(super) fn listed_with_docker_states(listing: &mut serde_json::Value) {
    for summary in listing.as_array_mut().into_iter().flatten() {
        let state = summary.get("State").and_then(serde_json::Value::as_str);
        if let Some((docker, _)) = state.and_then(docker_state) {
            summary["State"] = docker.into();
        }
    }
}

/// Docker's name for a state Docker does not have, and whether the container runs in it:
/// `stopping` is running (its process runs until `podman stop` is done with it, though Podman
/// says `Running: false`), `stopped` is `exited`, `configured` and `initialized` are `created`,
/// any other is unknown (empty). `None` for Docker's own states.
fn docker_state(status: &str) -> Option<(&'static str, Option<bool>)> {
    match status {
        "" | "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead" => {
            None
        }
        "stopping" => Some(("running", Some(true))),
        "stopped" => Some(("exited", None)),
        "configured" | "initialized" => Some(("created", None)),
        _ => Some(("", None)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_states_are_read_in_dockers_words_and_stopping_is_still_running() {
        let state = |status: &str, running: bool| {
            let mut inspect = serde_json::json!({
                "Id": "1f2e",
                "State": {"Status": status, "Running": running, "Pid": 4242, "ExitCode": 0}
            });
            with_docker_states(&mut inspect);
            let inspect: ContainerInspectResponse = serde_json::from_value(inspect).unwrap();
            state_from(inspect.state.unwrap())
        };
        let stopping = state("stopping", false);
        assert!(stopping.running, "podman stop has not ended it yet");
        assert_eq!(stopping.exit_code, None);
        assert!(!state("stopped", false).running);
        assert_eq!(state("stopped", false).exit_code, Some(0));
        assert!(!state("configured", false).running);
        assert!(!state("a-state-of-podman-6", false).running);
        assert!(state("running", true).running);
    }

    #[test]
    fn a_listing_with_podmans_states_is_read_in_dockers_words() {
        let mut listing = serde_json::json!([
            {"Id": "1f2e", "Names": ["/a"], "State": "stopping"},
            {"Id": "3a4b", "Names": ["/b"], "State": "running"},
            {"Id": "5c6d", "Names": ["/c"], "State": "stopped"}
        ]);
        listed_with_docker_states(&mut listing);
        let listed: Vec<bollard::models::ContainerSummary> =
            serde_json::from_value(listing).unwrap();
        let states: Vec<String> = listed
            .iter()
            .map(|summary| summary.state.unwrap().to_string())
            .collect();
        assert_eq!(states, ["running", "running", "exited"]);
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
