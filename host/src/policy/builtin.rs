//! The built-in policies, linked natively beside their compiled components, for what must be
//! known before any component is compiled: their names, image patterns and settings checks.
//! `quiesce run` uses them to choose and check a built-in policy before its child starts; the
//! decisions themselves always run in the sandbox. The native and compiled metadata are the
//! same code (a test compares them).

use quiesce_policy_sdk::PolicyInfo;

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
    pub decider: fn() -> std::sync::Arc<dyn crate::executor::Decider>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_native.rs"));

/// The built-in policy named `name`, natively.
pub fn native_builtin(name: &str) -> Option<&'static NativeBuiltin> {
    BUILTIN_NATIVE.iter().find(|builtin| builtin.name == name)
}
