//! A policy ready to decide: its compiled component pre-instantiated against the sandbox's
//! linker, its metadata read once, and one fresh instance per call.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quiesce_policy_sdk::rules::{check_step, truncate};
use quiesce_policy_sdk::{CONTRACT_VERSION, Context, PolicyInfo, Step};
use wasmtime::component::Component;

use super::bindings::{ShutdownPolicyPre, export_name, wit_convert};
use super::engine::{CallResult, INSTANCES_PER_POLICY, RunError, Sandbox, SandboxState, Slots};
use super::error::{CallError, CallFailure, LoadError};

/// Where a policy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// Compiled into the `quiesce` binary.
    Builtin,
    /// A `.wasm` file.
    File(PathBuf),
    /// Pulled from an OCI registry and verified (`quiesce policy pull`).
    Registry {
        /// `registry/repository@sha256:...`.
        reference: String,
        /// The ids of the keys whose signatures admitted it.
        signers: Vec<String>,
    },
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Builtin => f.write_str("(built-in)"),
            PolicySource::File(path) => write!(f, "{}", path.display()),
            PolicySource::Registry { reference, signers } => {
                write!(f, "{reference} (signed by {})", signers.join(", "))
            }
        }
    }
}

/// One decision and what it cost.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The step the policy chose.
    pub step: Step,
    /// What the policy wrote to stdout/stderr.
    pub log: String,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory: usize,
    /// Time for instantiation plus the call.
    pub elapsed: Duration,
}

/// A loaded, ready policy.
pub struct LoadedPolicy {
    info: PolicyInfo,
    source: PolicySource,
    digest: String,
    pre: ShutdownPolicyPre<SandboxState>,
    sandbox: Arc<Sandbox>,
    /// This policy's calls in flight: a share of the sandbox's, so it cannot take them all.
    slots: Slots,
    /// Settings the policy accepted: its answer depends on them alone (a fresh instance per
    /// call), so a fleet with the same settings asks once (issue 24: a call instantiates).
    accepted_settings: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("source", &self.source)
            .field("digest", &self.digest)
            .finish()
    }
}

impl LoadedPolicy {
    /// Calls the policy's exports once each on sample input (`quiesce policy check`): a
    /// policy may refuse the sample, but must not trap or exceed a limit.
    pub fn exercise(&self) -> Result<(), LoadError> {
        let acceptable = |result: Result<(), CallError>| match result {
            Err(error) if !matches!(error.failure, CallFailure::Refused { .. }) => {
                Err(LoadError::Call(error))
            }
            _ => Ok(()),
        };
        acceptable(self.validate_settings(""))?;
        acceptable(self.decide(&exercise_context()).map(|_| ()))
    }

    /// Links `component`, checks that it is a policy for this contract, and reads its metadata.
    pub fn new(
        sandbox: Arc<Sandbox>,
        component: &Component,
        source: PolicySource,
        digest: String,
    ) -> Result<LoadedPolicy, LoadError> {
        let instance_pre = sandbox
            .linker()
            .instantiate_pre(component)
            .map_err(|error| LoadError::Link(format!("{error:#}")))?;
        let pre = ShutdownPolicyPre::new(instance_pre)
            .map_err(|_| missing_export_error(&sandbox, component))?;
        let mut policy = LoadedPolicy {
            info: PolicyInfo::default(),
            source,
            digest,
            pre,
            sandbox,
            slots: Slots::new(INSTANCES_PER_POLICY),
            accepted_settings: Mutex::default(),
        };
        let label = policy.source.to_string();
        let info = policy
            .call("metadata", &label, |instance, store| {
                instance.quiesce_policy_policy().call_metadata(store)
            })
            .map_err(LoadError::Call)?;
        policy.info = check_metadata(wit_convert::from_wit_info(info))?;
        Ok(policy)
    }

    /// The policy's metadata.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Where it came from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The SHA-256 of its component bytes, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Asks the policy whether `settings` (JSON) are valid. `Refused` carries its reason.
    pub fn validate_settings(&self, settings: &str) -> Result<(), CallError> {
        let accepted = || {
            self.accepted_settings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if accepted().contains(settings) {
            return Ok(());
        }
        self.call("validate-settings", &self.info.name, |instance, store| {
            instance
                .quiesce_policy_policy()
                .call_validate_settings(store, settings)
        })?
        .map_err(|message| self.error("validate-settings", CallFailure::Refused { message }, ""))?;
        accepted().insert(settings.to_string());
        Ok(())
    }

    /// Asks the policy for the next step.
    pub fn decide(&self, ctx: &Context) -> Result<Decision, CallError> {
        let wit_ctx = wit_convert::to_wit_context(ctx);
        let CallResult {
            result,
            log,
            peak_memory,
            elapsed,
        } = self.run("next", |instance, store| {
            instance.quiesce_policy_policy().call_next(store, &wit_ctx)
        });
        let answer = result
            .and_then(|answer| answer.map_err(|message| CallFailure::Refused { message }))
            .and_then(|step| {
                wit_convert::from_wit_step(step)
                    .and_then(|step| check_step(&step).map(|()| step))
                    .map_err(|reason| CallFailure::InvalidAnswer { reason })
            });
        match answer {
            Ok(step) => Ok(Decision {
                step,
                log,
                peak_memory,
                elapsed,
            }),
            Err(failure) => Err(self.error("next", failure, &log)),
        }
    }

    fn error(&self, function: &'static str, failure: CallFailure, log: &str) -> CallError {
        CallError {
            policy: self.info.name.clone(),
            function,
            failure,
            log: log.to_string(),
        }
    }

    /// Instantiates afresh and calls `function` under the sandbox's limits.
    fn run<R: Send>(
        &self,
        _function: &'static str,
        call: impl FnOnce(
            &super::bindings::ShutdownPolicy,
            &mut wasmtime::Store<SandboxState>,
        ) -> wasmtime::Result<R>
        + Send,
    ) -> CallResult<R> {
        self.sandbox.run(&self.slots, |store| {
            let instance = self
                .pre
                .instantiate(&mut *store)
                .map_err(RunError::Instantiate)?;
            call(&instance, store).map_err(RunError::Call)
        })
    }

    /// [`LoadedPolicy::run`] for calls whose only interest is the value.
    fn call<R: Send>(
        &self,
        function: &'static str,
        policy: &str,
        call: impl FnOnce(
            &super::bindings::ShutdownPolicy,
            &mut wasmtime::Store<SandboxState>,
        ) -> wasmtime::Result<R>
        + Send,
    ) -> Result<R, CallError> {
        let outcome = self.run(function, call);
        outcome.result.map_err(|failure| CallError {
            policy: policy.to_string(),
            function,
            failure,
            log: outcome.log,
        })
    }
}

/// Explains why a component lacks the contract's export: another contract version, or
/// something that is not a policy at all.
fn missing_export_error(sandbox: &Sandbox, component: &Component) -> LoadError {
    let component_type = component.component_type();
    let exports: Vec<String> = component_type
        .exports(sandbox.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    if let Some(found) = exports
        .iter()
        .find_map(|name| name.strip_prefix("quiesce:policy/policy@"))
    {
        return LoadError::IncompatibleContract {
            expected: CONTRACT_VERSION.to_string(),
            found: found.to_string(),
        };
    }
    LoadError::WrongWorld {
        expected: export_name(),
        found: if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        },
    }
}

/// True when a policy built for `version` runs on this host: the same major version, and
/// while the major version is 0, the same minor version.
pub fn contract_compatible(version: &str) -> bool {
    let parts = |text: &str| -> Option<(u64, u64)> {
        let mut numbers = text.trim().split('.').map(|part| part.parse::<u64>().ok());
        Some((numbers.next()??, numbers.next()??))
    };
    match (parts(version), parts(CONTRACT_VERSION)) {
        (Some((0, minor)), Some((0, ours))) => minor == ours,
        (Some((major, _)), Some((ours, _))) => major == ours,
        _ => false,
    }
}

fn check_metadata(info: PolicyInfo) -> Result<PolicyInfo, LoadError> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(LoadError::InvalidMetadata(format!(
            "name {:?} must be 1-64 characters of a-z, 0-9, `-` and `_`",
            truncate(&info.name)
        )));
    }
    if !contract_compatible(&info.contract_version) {
        return Err(LoadError::IncompatibleContract {
            expected: CONTRACT_VERSION.to_string(),
            found: truncate(&info.contract_version),
        });
    }
    if info.version.trim().is_empty() || info.version.len() > 64 {
        return Err(LoadError::InvalidMetadata(format!(
            "version {:?} must be a short semver string",
            truncate(&info.version)
        )));
    }
    Ok(info)
}

/// The sample input of [`LoadedPolicy::exercise`].
fn exercise_context() -> Context {
    Context {
        service: quiesce_policy_sdk::ServiceFacts {
            id: "0".repeat(64),
            name: "quiesce-check".into(),
            image: "example/service:latest".into(),
            ..quiesce_policy_sdk::ServiceFacts::default()
        },
        remaining: Duration::from_secs(60),
        ..Context::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions_are_compatible_within_a_zero_minor() {
        assert!(contract_compatible(CONTRACT_VERSION));
        assert!(contract_compatible("0.1.7"));
        assert!(!contract_compatible("0.2.0"));
        assert!(!contract_compatible("1.1.0"));
        assert!(!contract_compatible("banana"));
        assert!(!contract_compatible(""));
    }
}
