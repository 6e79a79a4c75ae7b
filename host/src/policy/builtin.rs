//! The built-in policies: their components embedded in the binary with their code precompiled
//! by the build script ([`BUILTIN_POLICIES`]), and the same crates linked natively
//! ([`BUILTIN_NATIVE`]) for what must be known before any component is loaded: their names,
//! image patterns and settings checks. Choosing a policy needs only the native side; the
//! decisions themselves always run in the sandbox. The native and compiled metadata are the
//! same code (a test compares them).

use quiesce_policy_sdk::PolicyInfo;

/// A built-in policy's component.
#[derive(Debug)]
pub struct BuiltinPolicy {
    /// The crate directory name (the policy's name).
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// Its code, compiled by the build script with the engine's default compile settings for
    /// this target; empty when it could not be (a cross build). Trusted as the binary is.
    pub precompiled: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

/// The built-in policy named `name`.
pub fn builtin_policy(name: &str) -> Option<&'static BuiltinPolicy> {
    BUILTIN_POLICIES.iter().find(|builtin| builtin.name == name)
}

/// A built-in policy, natively.
pub struct NativeBuiltin {
    /// The crate directory name (the policy's name).
    pub name: &'static str,
    /// Its metadata.
    pub info: fn() -> PolicyInfo,
    /// Its settings check (`Ok` when the JSON settings are valid).
    pub validate: fn(&str) -> Result<(), String>,
    /// The policy as a native decider: for simulations before anything starts (what it needs
    /// against the grace period); a real stop's decisions run in the sandbox.
    pub decider: fn() -> std::sync::Arc<dyn super::Decider>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_native.rs"));

/// The built-in policy named `name`, natively.
pub fn native_builtin(name: &str) -> Option<&'static NativeBuiltin> {
    BUILTIN_NATIVE.iter().find(|builtin| builtin.name == name)
}
