//! Reaching the engine and preparing a run against it, for the commands that touch
//! containers (`stop`, `plan`, `generate kolla-dropins`): the engine's endpoint as the docker
//! CLI chooses it, the policies loaded beside connecting, and the command's tokio runtime.

use super::{EngineArgs, Failure, exit};
use crate::model::config::Config;
use crate::prepare::{PrepareError, RunRequest, prepare};
use crate::run::orchestrate::PreparedRun;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::endpoint::{EndpointInputs, resolve};

impl From<PrepareError> for Failure {
    fn from(error: PrepareError) -> Failure {
        match error {
            PrepareError::Invalid(message) => Failure::invalid(message),
            PrepareError::Environment(message) => Failure::environment(message),
        }
    }
}

/// Loading policies may use at most this fraction of the run's deadline (1/2: the other half
/// stays for the stop); files not compiled by then are named and not loaded.
pub const LOADING_SHARE: u32 = 2;

/// Where the targets are: the engine's endpoint and the policies.
pub struct Target<'a> {
    /// `-H`.
    pub host: Option<String>,
    /// `--context`.
    pub context: Option<String>,
    /// The policies and their limits.
    pub engine: &'a EngineArgs,
    /// The configuration.
    pub config: &'a Config,
}

/// Connects to the engine (as the docker CLI chooses it) and prepares the run. Loading the
/// policies (CPU: a few ms warm, compiling when cold) overlaps with connecting to the engine
/// and inspecting the targets (waiting on the daemon). The budgets are not checked against
/// the policies' needs yet ([`crate::prepare::needs`]): `plan` checks them before it simulates, `stop`
/// beside the run.
pub async fn connect_and_prepare(
    target: &Target<'_>,
    request: &RunRequest,
) -> Result<(DockerRuntime, PreparedRun), Failure> {
    connect_and_prepare_until(target, request, None).await
}

/// [`connect_and_prepare`], compiling policies only until `load_until`.
pub async fn connect_and_prepare_until(
    target: &Target<'_>,
    request: &RunRequest,
    load_until: Option<std::time::Instant>,
) -> Result<(DockerRuntime, PreparedRun), Failure> {
    let engine = target.engine.clone();
    let catalog_config = target.config.clone();
    let catalog =
        tokio::task::spawn_blocking(move || engine.catalog_until(&catalog_config, load_until));
    let endpoint = resolve(&EndpointInputs::new(
        target.host.clone(),
        target.context.clone(),
        &super::vars(),
    ))
    .map_err(|error| Failure::invalid(format!("{error}; nothing was touched")))?;
    let docker = DockerRuntime::connect(&endpoint).await.map_err(|error| {
        Failure::environment(format!(
            "{error}. Is the engine running? Start it (e.g. `systemctl start docker`, or \
             as root `dockerd &`), or choose another with -H, --context, DOCKER_HOST or \
             DOCKER_CONTEXT. Nothing was touched."
        ))
    })?;
    tracing::debug!("engine connected");
    let catalog = async {
        match catalog.await {
            Ok(Ok(catalog)) => Ok(catalog),
            Ok(Err(failure)) if failure.status == exit::INVALID_INPUT => {
                Err(PrepareError::Invalid(failure.message))
            }
            Ok(Err(failure)) => Err(PrepareError::Environment(failure.message)),
            Err(error) => Err(PrepareError::Environment(format!(
                "loading the policies failed: {error}"
            ))),
        }
    };
    let prepared = prepare(&docker, request, target.config, catalog).await?;
    tracing::debug!(services = prepared.jobs.len(), "run prepared");
    Ok((docker, prepared))
}

/// Builds a tokio runtime for a command.
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| Failure::environment(format!("cannot start the async runtime: {error}")))
}
