//! `quiesce policy push`, `sign`, `pull`, `verify` and `keygen`: policies through OCI
//! registries, signed and verified (`crate::distribution`).
//!
//! Exit statuses: 0 done; 1 refused (a signature missing or wrong, a trust rule not met, a
//! pull that failed: the last verified version is kept); 2 invalid input (a reference, a key,
//! the configuration); 3 the registry or the store could not be used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::connect::tokio_runtime;
use super::{
    Failure, KeygenArgs, PullArgs, PushArgs, RegistryArgs, SignArgs, VerifyArgs, exit, store_of,
};
use crate::distribution::operations::{self, DistributionError};
use crate::distribution::registry::{Registry, RegistryError, parse_reference, repository_of};
use crate::distribution::signature::{PrivateKey, PublicKey};
use crate::distribution::store::StoreError;
use crate::distribution::trust::Trust;
use crate::model::config::Config;
use crate::model::text::safe;
use crate::output::stdout::print_out;
use crate::policy::{LoadedPolicy, MAX_POLICY_BYTES, PolicyEngine, PolicySource, read_capped};

fn config_of(args: &RegistryArgs) -> Result<Config, Failure> {
    Config::load(args.config.as_deref()).map_err(|error| Failure::invalid(error.to_string()))
}

fn reference(text: &str) -> Result<oci_client::Reference, Failure> {
    parse_reference(text).map_err(|error| Failure::invalid(error.to_string()))
}

fn registry_failure(error: RegistryError) -> Failure {
    Failure::invalid(error.to_string())
}

/// The exit status of a distribution error: refusals are 1, the rest the environment's.
fn failure(error: DistributionError) -> Failure {
    let status = match &error {
        DistributionError::Refused { .. } | DistributionError::Layout(..) => exit::PROBLEMS,
        DistributionError::Registry(RegistryError::Reference(..)) => exit::INVALID_INPUT,
        DistributionError::Registry(RegistryError::NotAPolicy(..))
        | DistributionError::Registry(RegistryError::DigestMismatch { .. })
        | DistributionError::Registry(RegistryError::TooLarge { .. })
        | DistributionError::Registry(RegistryError::NotFound(_)) => exit::PROBLEMS,
        DistributionError::Registry(_) | DistributionError::Store(_) => exit::ENVIRONMENT,
    };
    Failure {
        status,
        message: error.to_string(),
    }
}

/// The most one command spends on one reference: a registry that trickles its answers (each
/// read within the client's silence limit) ends here.
const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `operation` on `runtime` within [`OPERATION_TIMEOUT`].
fn within<T>(
    runtime: &tokio::runtime::Runtime,
    reference: &str,
    operation: impl std::future::Future<Output = Result<T, DistributionError>>,
) -> Result<T, Failure> {
    runtime
        // The timer is made inside the runtime (it needs the runtime's clock).
        .block_on(async { tokio::time::timeout(OPERATION_TIMEOUT, operation).await })
        .map_err(|_| Failure {
            status: exit::ENVIRONMENT,
            message: format!(
                "{reference}: the registry did not finish answering within {} s; nothing was stored",
                OPERATION_TIMEOUT.as_secs()
            ),
        })?
        .map_err(failure)
}

/// Loads a component as the runner would, so that nothing that is not a policy is pushed or
/// stored.
fn load(engine: &PolicyEngine, wasm: &[u8], what: &str) -> Result<LoadedPolicy, Failure> {
    engine
        .load_bytes(wasm, PolicySource::File(PathBuf::from(what)))
        .map_err(|error| Failure {
            status: exit::PROBLEMS,
            message: format!("{what} is not a policy quiesce can run: {error}"),
        })
}

/// `quiesce policy push FILE REF`.
pub fn push(args: &PushArgs) -> Result<u8, Failure> {
    let config = config_of(&args.registry)?;
    let target = reference(&args.reference)?;
    if target.digest().is_some() {
        return Err(Failure::invalid(format!(
            "{}: push to a tag (REGISTRY/REPOSITORY:TAG); the digest is printed after the push",
            args.reference
        )));
    }
    let wasm = read_capped(&args.file, MAX_POLICY_BYTES).map_err(|error| {
        Failure::invalid(format!("cannot read {}: {error}", args.file.display()))
    })?;
    let engine = args.engine.engine_with(&config)?;
    let policy = load(&engine, &wasm, &args.file.display().to_string())?;
    let registry = Registry::new(&config.registry).map_err(registry_failure)?;
    let digest = within(
        &tokio_runtime()?,
        &args.reference,
        operations::push(&registry, &target, &wasm, policy.info()),
    )?;
    crate::output::logs::info(
        None,
        &format!(
            "pushed policy {} {} ({} bytes)",
            safe(policy.name()),
            safe(&policy.info().version),
            wasm.len()
        ),
    );
    print_out(&format!("{}@{digest}\n", repository_of(&target)));
    Ok(exit::SUCCESS)
}

/// `quiesce policy sign REF --key FILE`.
pub fn sign(args: &SignArgs) -> Result<u8, Failure> {
    let config = config_of(&args.registry)?;
    let target = reference(&args.reference)?;
    let pem = read_text(&args.key)?;
    // cosign's convention for an encrypted key's password; set and empty is a password.
    let password = super::vars()
        .raw("COSIGN_PASSWORD")
        .and_then(|value| value.to_str())
        .map(str::to_string);
    let key = PrivateKey::from_pem(&pem, password.as_deref())
        .map_err(|error| Failure::invalid(format!("{}: {error}", args.key.display())))?;
    let mut annotations = BTreeMap::new();
    for annotation in &args.annotations {
        let Some((name, value)) = annotation.split_once('=') else {
            return Err(Failure::invalid(format!(
                "--annotation {annotation:?}: write it as KEY=VALUE"
            )));
        };
        annotations.insert(name.to_string(), value.to_string());
    }
    let registry = Registry::new(&config.registry).map_err(registry_failure)?;
    let digest = within(
        &tokio_runtime()?,
        &args.reference,
        operations::sign(&registry, &target, &key, annotations),
    )?;
    let public = PublicKey::from_pem("", &key.public_pem())
        .map_err(|error| Failure::invalid(error.to_string()))?;
    print_out(&format!(
        "signed {}@{digest} with key {}\n",
        repository_of(&target),
        public.fingerprint()
    ));
    Ok(exit::SUCCESS)
}

/// `quiesce policy verify REF [--key FILE]...`.
pub fn verify(args: &VerifyArgs) -> Result<u8, Failure> {
    let config = config_of(&args.registry)?;
    let target = reference(&args.reference)?;
    let trust = trust_of(&args.key, &config)?;
    let registry = Registry::new(&config.registry).map_err(registry_failure)?;
    let fetched = within(
        &tokio_runtime()?,
        &args.reference,
        operations::fetch(&registry, &target, &trust),
    )?;
    print_out(&format!(
        "verified {}@{}: signed by {}\n",
        fetched.repository,
        fetched.digest,
        fetched.admitted.signers.join(", ")
    ));
    Ok(exit::SUCCESS)
}

/// The keys named on the command line (all required), or the configuration's trust.
fn trust_of(keys: &[PathBuf], config: &Config) -> Result<Trust, Failure> {
    if keys.is_empty() {
        return Trust::from_config(&config.trust)
            .map_err(|error| Failure::invalid(error.to_string()));
    }
    let mut public = Vec::new();
    for path in keys {
        let id = path.display().to_string();
        let key = PublicKey::from_pem(&id, &read_text(path)?)
            .map_err(|error| Failure::invalid(format!("{id}: {error}")))?;
        public.push(key);
    }
    Ok(Trust::all_of(public))
}

/// `quiesce policy pull [REF]`.
pub fn pull(args: &PullArgs) -> Result<u8, Failure> {
    let config = config_of(&args.registry)?;
    let references: Vec<String> = match &args.reference {
        Some(reference) => vec![reference.clone()],
        None => config
            .registry
            .policies
            .iter()
            .map(|policy| policy.reference.clone())
            .collect(),
    };
    if references.is_empty() {
        return Err(Failure::invalid(
            "nothing to pull: give a reference, or list policies under [[registry.policies]] in the configuration",
        ));
    }
    for text in &references {
        reference(text)?;
    }
    let trust =
        Trust::from_config(&config.trust).map_err(|error| Failure::invalid(error.to_string()))?;
    let engine = args.engine.engine_with(&config)?;
    let store = store_of(args.registry.store.as_deref(), &config);
    let registry = Registry::new(&config.registry).map_err(registry_failure)?;
    let runtime = tokio_runtime()?;
    let mut failed = Vec::new();
    for text in &references {
        let target = reference(text)?;
        // The reference as written: what the configuration's entry finds it by.
        let key = text.clone();
        let result = within(
            &runtime,
            text,
            operations::fetch(&registry, &target, &trust),
        )
        .and_then(|fetched| {
            let policy = load(
                &engine,
                &fetched.wasm,
                &format!("{}@{}", fetched.repository, fetched.digest),
            )?;
            let record = operations::store(&store, &key, &fetched).map_err(|error| Failure {
                status: exit::ENVIRONMENT,
                message: error.to_string(),
            })?;
            Ok((policy, record))
        });
        match result {
            Ok((policy, record)) => print_out(&format!(
                "pulled {key}: {}@{} (policy {} {}, signed by {})\n",
                record.repository,
                record.digest,
                safe(policy.name()),
                safe(&policy.info().version),
                record.signers.join(", ")
            )),
            Err(error) => {
                let kept = match store.record(&key) {
                    Ok(Some(record)) => format!(
                        "; the store keeps {}@{}, verified {}",
                        record.repository, record.digest, record.pulled_at
                    ),
                    Ok(None) => "; nothing of it is in the store".to_string(),
                    Err(StoreError::Io { .. }) | Err(_) => String::new(),
                };
                crate::output::logs::error(&format!("{}{kept}", error.message));
                failed.push(error.status);
            }
        }
    }
    Ok(failed.into_iter().max().unwrap_or(exit::SUCCESS))
}

/// `quiesce policy keygen --out PREFIX`.
pub fn keygen(args: &KeygenArgs) -> Result<u8, Failure> {
    let private_path = with_suffix(&args.out, "key");
    let public_path = with_suffix(&args.out, "pub");
    let key = PrivateKey::generate();
    write_new(&private_path, key.to_pem().as_bytes(), 0o600)?;
    write_new(&public_path, key.public_pem().as_bytes(), 0o644)?;
    print_out(&format!(
        "wrote {} (private: keep it secret) and {} (public: [[trust.keys]] public_key)\n",
        private_path.display(),
        public_path.display()
    ));
    Ok(exit::SUCCESS)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` with `mode`; an existing file is never overwritten.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|error| {
            Failure::invalid(format!(
                "cannot create {}: {error} (an existing key is never overwritten)",
                path.display()
            ))
        })?;
    file.write_all(bytes)
        .map_err(|error| Failure::environment(format!("{}: {error}", path.display())))
}

fn read_text(path: &Path) -> Result<String, Failure> {
    crate::model::named_file::read_named(path)
        .map_err(|error| Failure::invalid(format!("cannot read {}: {error}", path.display())))
}
