//! The host side of the contract: wasmtime's bindings of `wit/policy.wit`, and the
//! conversions to and from the SDK's types (written once, by the SDK's macro, for both sides).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "shutdown-policy",
});

quiesce_policy_sdk::wit_conversions!(crate::policy::bindings::exports::quiesce::policy::policy);

/// The name under which a component exports the contract's interface, e.g.
/// `quiesce:policy/policy@0.1.0`.
pub fn export_name() -> String {
    format!(
        "quiesce:policy/policy@{}",
        quiesce_policy_sdk::CONTRACT_VERSION
    )
}
