//! Which engine endpoint to talk to, chosen exactly as the docker CLI chooses it, so that
//! `quiesce stop --all` acts on the engine `docker ps` shows.
//!
//! The precedence (docker/cli's `resolveContextName`): the `--context` flag; the `-H/--host`
//! flag (the `default` context); a non-empty `DOCKER_HOST` (the `default` context);
//! `DOCKER_CONTEXT`; `currentContext` in the CLI's `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker`); else `default`. `--context` with `-H` is an error, as for the docker CLI.
//! The `default` context's endpoint is `-H`, else `DOCKER_HOST`, else the local socket. A named
//! context is read from `contexts/meta/<sha256 of its name>/meta.json`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::vars::Vars;

/// The local engine's socket, when nothing names another.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The endpoint chosen, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The engine's address: `unix:///path`, `tcp://host:port`...
    pub host: String,
    /// The docker CLI context it belongs to (`default` for -H, DOCKER_HOST and the socket).
    pub context: String,
    /// What chose it: `--context`, `-H`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `config.json
    /// currentContext` or `default`.
    pub source: &'static str,
    /// The context's TLS material, when it has some (`contexts/tls/...`).
    pub tls: Option<PathBuf>,
}

/// Why no endpoint could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// Both flags.
    #[error("conflicting options: cannot specify both --host and --context")]
    Conflict,
    /// A context that does not exist.
    #[error(
        "context {name:?} (from {origin}) does not exist: no {path}; list them with `docker context ls`"
    )]
    UnknownContext {
        /// Its name.
        name: String,
        /// What named it.
        origin: &'static str,
        /// Where it was looked for.
        path: String,
    },
    /// A context whose metadata cannot be read.
    #[error("context {name:?}: cannot read {path}: {reason}")]
    BadContext {
        /// Its name.
        name: String,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What the endpoint is chosen from: the flags, the environment and the CLI's config
/// directory.
#[derive(Clone, Debug, Default)]
pub struct EndpointInputs {
    /// `-H/--host`.
    pub host_flag: Option<String>,
    /// `--context`.
    pub context_flag: Option<String>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// The docker CLI's configuration directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub config_dir: Option<PathBuf>,
}

impl EndpointInputs {
    /// The flags given, with the environment `vars`.
    pub fn new(
        host_flag: Option<String>,
        context_flag: Option<String>,
        vars: &Vars,
    ) -> EndpointInputs {
        let var = |name: &str| vars.text(name).map(str::to_string);
        EndpointInputs {
            host_flag,
            context_flag,
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: vars.text("DOCKER_CONFIG").map(PathBuf::from).or_else(|| {
                vars.text("HOME")
                    .map(|home| Path::new(home).join(".docker"))
            }),
        }
    }
}

/// The `currentContext` of the CLI's `config.json`, if any.
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config["currentContext"]
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// The directory name of a context: the SHA-256 of its name, in hex.
fn context_digest(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Chooses the endpoint from `inputs`.
pub fn resolve(inputs: &EndpointInputs) -> Result<Endpoint, EndpointError> {
    if inputs.host_flag.is_some() && inputs.context_flag.is_some() {
        return Err(EndpointError::Conflict);
    }
    let named = if let Some(name) = &inputs.context_flag {
        Some((name.clone(), "--context"))
    } else if inputs.host_flag.is_some() || inputs.docker_host.is_some() {
        None
    } else if let Some(name) = &inputs.docker_context {
        Some((name.clone(), "DOCKER_CONTEXT"))
    } else {
        inputs
            .config_dir
            .as_deref()
            .and_then(current_context)
            .map(|name| (name, "config.json currentContext"))
    };
    match named {
        Some((name, source)) if name != "default" => named_context(inputs, &name, source),
        named => {
            let (host, source) = match (&inputs.host_flag, &inputs.docker_host) {
                (Some(host), _) => (host.clone(), "-H"),
                (None, Some(host)) => (host.clone(), "DOCKER_HOST"),
                (None, None) => (
                    DEFAULT_HOST.to_string(),
                    named.map_or("default", |(_, source)| source),
                ),
            };
            Ok(Endpoint {
                host,
                context: "default".into(),
                source,
                tls: None,
            })
        }
    }
}

fn named_context(
    inputs: &EndpointInputs,
    name: &str,
    source: &'static str,
) -> Result<Endpoint, EndpointError> {
    let digest = context_digest(name);
    let store = inputs
        .config_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".docker"))
        .join("contexts");
    let meta = store.join("meta").join(&digest).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|_| EndpointError::UnknownContext {
        name: name.to_string(),
        origin: source,
        path: meta.display().to_string(),
    })?;
    let bad = |reason: String| EndpointError::BadContext {
        name: name.to_string(),
        path: meta.display().to_string(),
        reason,
    };
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| bad(error.to_string()))?;
    let host = document["Endpoints"]["docker"]["Host"]
        .as_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| bad("it has no Endpoints.docker.Host".into()))?;
    let tls = store.join("tls").join(&digest).join("docker");
    Ok(Endpoint {
        host: host.to_string(),
        context: name.to_string(),
        source,
        tls: tls.is_dir().then_some(tls),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(contexts: &[(&str, &str)], current: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, host) in contexts {
            let meta = dir.path().join("contexts/meta").join(context_digest(name));
            std::fs::create_dir_all(&meta).unwrap();
            std::fs::write(
                meta.join("meta.json"),
                format!(
                    r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
                ),
            )
            .unwrap();
        }
        if let Some(current) = current {
            std::fs::write(
                dir.path().join("config.json"),
                format!(r#"{{"auths":{{}},"currentContext":"{current}"}}"#),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn the_precedence_is_the_docker_clis() {
        let store = store_with(
            &[
                ("pod", "unix:///run/podman/podman.sock"),
                ("dock", "unix:///d.sock"),
            ],
            Some("pod"),
        );
        let inputs = |host_flag: Option<&str>,
                      context_flag: Option<&str>,
                      docker_host: Option<&str>,
                      docker_context: Option<&str>| EndpointInputs {
            host_flag: host_flag.map(str::to_string),
            context_flag: context_flag.map(str::to_string),
            docker_host: docker_host.map(str::to_string),
            docker_context: docker_context.map(str::to_string),
            config_dir: Some(store.path().to_path_buf()),
        };
        let host = |inputs: EndpointInputs| resolve(&inputs).unwrap().host;
        // The cases measured with the docker CLI 28.2.2 (research notes, section 2).
        assert_eq!(
            host(inputs(None, None, None, None)),
            "unix:///run/podman/podman.sock"
        );
        assert_eq!(
            host(inputs(None, None, None, Some("dock"))),
            "unix:///d.sock"
        );
        assert_eq!(
            host(inputs(None, Some("pod"), None, Some("dock"))),
            "unix:///run/podman/podman.sock"
        );
        assert_eq!(
            host(inputs(None, None, Some("unix:///x.sock"), Some("pod"))),
            "unix:///x.sock"
        );
        assert_eq!(
            host(inputs(None, Some("pod"), Some("unix:///x.sock"), None)),
            "unix:///run/podman/podman.sock"
        );
        assert_eq!(
            host(inputs(
                Some("unix:///h.sock"),
                None,
                Some("unix:///x.sock"),
                Some("pod")
            )),
            "unix:///h.sock"
        );
        assert_eq!(
            host(inputs(None, Some("default"), Some("unix:///x.sock"), None)),
            "unix:///x.sock"
        );
        assert_eq!(
            host(inputs(None, None, None, Some("default"))),
            DEFAULT_HOST
        );
        assert_eq!(
            resolve(&inputs(Some("unix:///h.sock"), Some("pod"), None, None)),
            Err(EndpointError::Conflict)
        );
        let error = resolve(&inputs(None, None, None, Some("nope"))).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("context \"nope\" (from DOCKER_CONTEXT) does not exist"),
            "{error}"
        );
        let chosen = resolve(&inputs(None, None, None, None)).unwrap();
        assert_eq!(
            (chosen.context.as_str(), chosen.source),
            ("pod", "config.json currentContext")
        );
    }

    #[test]
    fn without_a_config_the_local_socket_is_the_default() {
        let chosen = resolve(&EndpointInputs::default()).unwrap();
        assert_eq!(chosen.host, DEFAULT_HOST);
        assert_eq!(chosen.context, "default");
    }
}
