//! A policy as the runner asks it: something that decides steps, whether a wasm component
//! ([`LoadedPolicy`]) or a policy type compiled natively ([`NativePolicy`]: the built-ins'
//! metadata before any compile, policies under test without wasm).

use std::sync::Arc;

use quiesce_policy_sdk::Context;
use quiesce_policy_sdk::sequence::{Decide, Decided, PolicyFailure};
use quiesce_policy_sdk::simulation::Native;

use super::builtin::native_builtin;
use super::loaded::{LoadedPolicy, PolicySource};
use crate::model::report::PolicyIdentity;

/// Something that decides steps: a wasm policy, or a native one.
pub trait Decider: Send + Sync {
    /// Name, version and digest, for the report.
    fn identity(&self) -> PolicyIdentity;
    /// The next step.
    fn decide(&self, ctx: &Context) -> Result<Decided, PolicyFailure>;
    /// Its settings' documentation (Markdown, as the SDK's `settings!` writes it), if any.
    fn settings_doc(&self) -> String {
        String::new()
    }
    /// The same policy compiled natively into this binary, where there is one (a built-in):
    /// the same decisions without a sandbox, for simulations that ask it hundreds of times
    /// (the worst case's exploration). The parity of the two builds is tested.
    fn native(&self) -> Option<Arc<dyn Decider>> {
        None
    }
}

impl Decider for LoadedPolicy {
    fn identity(&self) -> PolicyIdentity {
        PolicyIdentity {
            name: self.name().to_string(),
            version: self.info().version.clone(),
            digest: self.digest().to_string(),
            source: self.source().to_string(),
        }
    }

    fn settings_doc(&self) -> String {
        self.info().settings_doc.clone()
    }

    fn native(&self) -> Option<Arc<dyn Decider>> {
        match self.source() {
            PolicySource::Builtin => native_builtin(self.name()).map(|builtin| (builtin.decider)()),
            PolicySource::File(_) | PolicySource::Registry { .. } => None,
        }
    }

    fn decide(&self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        LoadedPolicy::decide(self, ctx)
            .map(|decision| Decided {
                step: decision.step,
                log: decision.log,
            })
            .map_err(|error| PolicyFailure {
                kind: error.failure.kind().to_string(),
                message: error.failure.to_string(),
                log: error.log,
            })
    }
}

/// A policy compiled natively (a type implementing the SDK's `Policy`), as a [`Decider`]:
/// policies under test without wasm. Its panics count as traps.
pub struct NativePolicy<P> {
    identity: PolicyIdentity,
    policy: std::marker::PhantomData<fn() -> P>,
}

impl<P: quiesce_policy_sdk::Policy> NativePolicy<P> {
    /// Wraps policy `P`; the report names it with digest `native`.
    pub fn new() -> NativePolicy<P> {
        let info = P::info();
        NativePolicy {
            identity: PolicyIdentity {
                name: info.name,
                version: info.version,
                digest: "native".to_string(),
                source: "native".to_string(),
            },
            policy: std::marker::PhantomData,
        }
    }
}

impl<P: quiesce_policy_sdk::Policy> Default for NativePolicy<P> {
    fn default() -> Self {
        NativePolicy::new()
    }
}

impl<P: quiesce_policy_sdk::Policy> Decider for NativePolicy<P> {
    fn identity(&self) -> PolicyIdentity {
        self.identity.clone()
    }

    fn decide(&self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        Native::<P>::new().decide(ctx)
    }

    fn settings_doc(&self) -> String {
        P::info().settings_doc
    }
}

/// Policy `P`, natively, as a shared [`Decider`].
pub fn native_decider<P: quiesce_policy_sdk::Policy + 'static>() -> Arc<dyn Decider> {
    Arc::new(NativePolicy::<P>::new())
}
