//! Pulled policies in a catalog: each policy the configuration names by reference is taken
//! from the store, verified again offline with the current trust rules, and loaded like any
//! untrusted component. One that cannot be (never pulled, refused, damaged, not a policy, or
//! calling itself by another name) is withheld with its reason: services that choose it get
//! the conservative `default` sequence and a warning, and nothing else is held up.

use std::time::Instant;

use super::store::Store;
use super::trust::Trust;
use crate::model::distribution::{PulledPolicy, RegistryConfig, TrustConfig};
use crate::policy::{LoadedPolicy, PolicyCatalog, PolicyEngine, PolicySource};

/// Adds the configured registry policies to `catalog`, from `store`, compiling (a cold
/// cache) only until `until` when given (a run's share of its deadline for loading); the
/// network is never touched.
pub fn add_pulled(
    engine: &PolicyEngine,
    catalog: &mut PolicyCatalog,
    registry: &RegistryConfig,
    trust: &TrustConfig,
    store: &Store,
    until: Option<Instant>,
) {
    if registry.policies.is_empty() {
        return;
    }
    let trust = match Trust::from_config(trust) {
        Ok(trust) => trust,
        Err(error) => {
            for policy in &registry.policies {
                catalog.withhold(&policy.name, error.to_string());
            }
            return;
        }
    };
    for policy in &registry.policies {
        match load(engine, store, &trust, policy, until) {
            Ok(loaded) => catalog.insert_pulled(loaded),
            Err(why) => catalog.withhold(&policy.name, why),
        }
    }
}

/// The configured registry policy `policy`, from `store`, verified with the configured
/// `trust` and loaded; the reason in words when it cannot be (`quiesce run`'s one policy).
pub fn load_pulled(
    engine: &PolicyEngine,
    store: &Store,
    trust: &TrustConfig,
    policy: &PulledPolicy,
) -> Result<LoadedPolicy, String> {
    let trust = Trust::from_config(trust).map_err(|error| error.to_string())?;
    load(engine, store, &trust, policy, None)
}

fn load(
    engine: &PolicyEngine,
    store: &Store,
    trust: &Trust,
    policy: &PulledPolicy,
    until: Option<Instant>,
) -> Result<LoadedPolicy, String> {
    // The reference as written is the store's key (`quiesce policy pull` stores it so); no
    // reference parser on this path (oci-spec's compiles a large regex: 40 ms).
    let pinned = policy.reference.split_once('@').map(|(_, digest)| digest);
    let verified = store
        .verified(&policy.reference, pinned, trust)
        .map_err(|error| error.to_string())?;
    let source = PolicySource::Registry {
        reference: format!("{}@{}", verified.record.repository, verified.record.digest),
        signers: verified.signers.clone(),
    };
    let time = until.map(|until| until.saturating_duration_since(Instant::now()));
    let loaded = engine
        .load_bytes_within(&verified.wasm, source, time)
        .map_err(|error| format!("{}: {error}", policy.reference))?;
    if loaded.name() != policy.name {
        return Err(format!(
            "{} is the policy `{}`, not `{}`: name it `{}` in [[registry.policies]]",
            policy.reference,
            loaded.name(),
            policy.name,
            loaded.name()
        ));
    }
    Ok(loaded)
}
