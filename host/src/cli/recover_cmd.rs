//! `quiesce recover`: parse, give back what earlier stops left changed ([`crate::run::recover`]),
//! print one line per change.

use super::{Failure, RecoverArgs, exit};
use crate::model::text::safe;
use crate::platform::claim::Claims;
use crate::platform::systemd::Systemd;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::endpoint::{EndpointInputs, resolve};

/// `quiesce recover`: exit 0 when everything was given back (or nothing was left), 1 when
/// something could not be, 3 when the engine or the records cannot be reached.
pub fn recover(args: &RecoverArgs) -> Result<u8, Failure> {
    let claims = Claims::open_default(&super::vars(), crate::output::logs::error)
        .map_err(|error| Failure::environment(error.to_string()))?;
    if claims.left_behind().is_empty() {
        crate::output::stdout::print_line!(
            "nothing to recover: no stop recorded in {} left a change behind",
            claims.dir().display()
        );
        return Ok(exit::SUCCESS);
    }
    let endpoint = resolve(&EndpointInputs::new(
        args.host.clone(),
        args.context.clone(),
        &super::vars(),
    ))
    .map_err(|error| Failure::invalid(error.to_string()))?;
    let runtime = super::connect::tokio_runtime()?;
    let recovered = runtime.block_on(async {
        let docker = DockerRuntime::connect(&endpoint).await.map_err(|error| {
            Failure::environment(format!(
                "{error}. Is the engine running? Choose it with -H, --context, DOCKER_HOST or DOCKER_CONTEXT."
            ))
        })?;
        Ok::<_, Failure>(crate::run::recover::recover(&docker, &claims, &Systemd::from_vars(&super::vars())).await)
    })?;
    claims.sweep();
    let mut status = exit::SUCCESS;
    for entry in &recovered {
        for change in &entry.changes {
            crate::output::stdout::print_line!(
                "{}: {}: {}",
                safe(&entry.container),
                safe(&change.what),
                safe(&change.result)
            );
        }
        if !entry.complete() {
            status = exit::PROBLEMS;
        }
    }
    Ok(status)
}
