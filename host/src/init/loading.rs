//! Loading the chosen policy under `quiesce run`: compiled (or read from the cache) off the
//! command's start path, its settings checked in the sandbox; a policy that cannot be loaded
//! in time is a [`Decider`] that says so, and the fallback sequence runs.

use quiesce_policy_sdk::Context;
use quiesce_policy_sdk::sequence::{Decided, PolicyFailure};

use super::choice::{PolicyChoice, PolicyOrigin};
use crate::distribution::pulled::load_pulled;
use crate::distribution::store::Store;
use crate::model::report::PolicyIdentity;
use crate::policy::{Decider, LoadError, LoadProblem, LoadedPolicy, PolicyEngine, PolicySource};

/// A policy that could not be made ready: every decision fails, so the sequence's conservative
/// fallback stops the service, and the report says why.
pub(super) struct Unavailable {
    pub(super) identity: PolicyIdentity,
    pub(super) reason: String,
}

impl Decider for Unavailable {
    fn identity(&self) -> PolicyIdentity {
        self.identity.clone()
    }

    fn decide(&self, _ctx: &Context) -> Result<Decided, PolicyFailure> {
        Err(PolicyFailure::new("not-loaded", self.reason.clone()))
    }
}

/// Why the chosen policy cannot be used under `quiesce run`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyNotUsable {
    /// The policy engine did not start.
    #[error("{0}")]
    Engine(String),
    /// A built-in did not load (a bug of this build).
    #[error("built-in policy `{name}`: {error}")]
    Builtin {
        /// The built-in.
        name: String,
        /// Why.
        error: LoadError,
    },
    /// The policies directory's file did not load.
    #[error(transparent)]
    File(LoadProblem),
    /// The file holds another policy than its name says.
    #[error("{file} holds the policy `{found}`, not `{asked}`: name the file after the policy")]
    WrongName {
        /// The file.
        file: String,
        /// The policy it holds.
        found: String,
        /// The policy asked for.
        asked: String,
    },
    /// A registry policy that is not in the store, or that the trust rules refuse there.
    #[error("registry policy `{name}` is withheld: {why}")]
    Withheld {
        /// The policy.
        name: String,
        /// Why.
        why: String,
    },
    /// The policy refused the settings (its words).
    #[error("{0}")]
    InvalidSettings(String),
}

/// Compiles the chosen policy with `engine` and checks the settings in the sandbox.
pub(super) fn load(
    choice: &PolicyChoice,
    settings: &str,
    engine: &PolicyEngine,
) -> Result<LoadedPolicy, PolicyNotUsable> {
    let loaded = match &choice.origin {
        PolicyOrigin::Builtin(wasm) => {
            engine
                .load_bytes(wasm, PolicySource::Builtin)
                .map_err(|error| PolicyNotUsable::Builtin {
                    name: choice.name.clone(),
                    error,
                })?
        }
        PolicyOrigin::File(path) => engine.load_file(path).map_err(PolicyNotUsable::File)?,
        PolicyOrigin::Pulled(pulled) => {
            let (policy, sources) = pulled.as_ref();
            load_pulled(engine, &Store::new(&sources.store), &sources.trust, policy).map_err(
                |why| PolicyNotUsable::Withheld {
                    name: choice.name.clone(),
                    why,
                },
            )?
        }
    };
    if loaded.name() != choice.name {
        return Err(PolicyNotUsable::WrongName {
            file: loaded.source().to_string(),
            found: loaded.name().to_string(),
            asked: choice.name.clone(),
        });
    }
    loaded.validate_settings(settings).map_err(|error| {
        PolicyNotUsable::InvalidSettings(crate::policy::invalid_settings(
            &choice.name,
            settings,
            &error.failure.refusal(),
        ))
    })?;
    Ok(loaded)
}

/// `quiesce run --check`, and the check of a file policy before its child starts: the policy,
/// compiled, with its settings checked in the sandbox.
pub fn check(
    choice: &PolicyChoice,
    settings: &str,
    engine: &PolicyEngine,
) -> Result<LoadedPolicy, PolicyNotUsable> {
    load(choice, settings, engine)
}
