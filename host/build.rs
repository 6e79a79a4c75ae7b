//! Compiles the built-in policies (`policies/*`) to wasm components and embeds them: the
//! generated `builtin_policies.rs` lists each policy's name and bytes, so the `quiesce`
//! binary always carries its policy library, the `default` policy above all.

#[path = "build/guests.rs"]
mod guests;

use std::fmt::Write;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir).parent().expect("workspace root");
    let policies = guests::build(workspace, &guests::crate_dirs(&workspace.join("policies")));

    let mut code = String::from(
        "/// The policies compiled into this binary: (crate directory name, component bytes).\n\
         pub const BUILTIN_POLICIES: &[(&str, &[u8])] = &[\n",
    );
    for policy in &policies {
        let name = policy.package.trim_start_matches("quiesce-policy-");
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            policy.wasm.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_policies.rs");
    std::fs::write(out, code).expect("write builtin_policies.rs");
}
