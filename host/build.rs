//! Compiles the built-in policies (`policies/*`) to wasm components and embeds them: the
//! generated `builtin_policies.rs` lists each policy's name, its bytes and its code
//! precompiled for this target with the engine's compile settings (`src/policy/codegen.rs`),
//! so the `quiesce` binary always carries its policy library, the `default` policy above all,
//! ready to run without compiling anything (issue 24). It also lists
//! the SDK's sources (`vendored_sdk.rs`) that `quiesce policy new` vendors into new crates, and
//! generates the shell completions and man pages from the command line's definition
//! (`cli_docs.rs`).

#[path = "build/cli_docs.rs"]
mod cli_docs;
#[path = "src/policy/codegen.rs"]
mod codegen;
#[path = "build/guests.rs"]
mod guests;

use std::fmt::Write;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir).parent().expect("workspace root");
    let policies = guests::build(workspace, &guests::crate_dirs(&workspace.join("policies")));

    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let precompiled = precompile(&policies, Path::new(&out_dir));
    let mut code = String::from(
        "/// The policies compiled into this binary, with their precompiled code. A static, not a\n\
         /// constant: its bytes have one address, by which a built-in is told from a copy.\n\
         pub static BUILTIN_POLICIES: &[BuiltinPolicy] = &[\n",
    );
    for (policy, artifact) in policies.iter().zip(&precompiled) {
        let name = policy.package.trim_start_matches("quiesce-policy-");
        writeln!(
            code,
            "    BuiltinPolicy {{ name: {name:?}, wasm: include_bytes!({:?}), precompiled: include_bytes!({:?}) }},",
            policy.wasm.display().to_string(),
            artifact.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(Path::new(&out_dir).join("builtin_policies.rs"), code)
        .expect("write builtin_policies.rs");
    std::fs::write(
        Path::new(&out_dir).join("builtin_native.rs"),
        builtin_native(&manifest_dir, &policies),
    )
    .expect("write builtin_native.rs");
    std::fs::write(
        Path::new(&out_dir).join("vendored_sdk.rs"),
        vendored_sdk(workspace),
    )
    .expect("write vendored_sdk.rs");
    cli_docs::generate(Path::new(&out_dir));
}

/// Precompiles each built-in for the target with the engine's compile settings, two at a time,
/// into `out_dir`; returns each artifact's path. When the target is not this machine's (a
/// cross build), or the default stack size is not what the engine will use, an artifact is
/// empty and the engine compiles that policy itself on first use.
fn precompile(policies: &[guests::Guest], out_dir: &Path) -> Vec<std::path::PathBuf> {
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    let engine = wasmtime::Engine::new(&codegen::code_config(codegen::DEFAULT_STACK_BYTES))
        .expect("a wasmtime engine for precompiling the built-ins");
    let work: Vec<_> = policies
        .iter()
        .map(|policy| {
            let name = policy.package.trim_start_matches("quiesce-policy-");
            (policy.wasm.clone(), out_dir.join(format!("{name}.cwasm")))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((wasm, artifact)) = work.get(index) else {
                        break;
                    };
                    let bytes = if native {
                        let wasm = std::fs::read(wasm).expect("read a built-in policy");
                        engine.precompile_component(&wasm).unwrap_or_else(|error| {
                            panic!("precompiling {}: {error:#}", wasm_name(artifact))
                        })
                    } else {
                        Vec::new()
                    };
                    std::fs::write(artifact, bytes).expect("write a precompiled built-in");
                }
            });
        }
    });
    work.into_iter().map(|(_, artifact)| artifact).collect()
}

fn wasm_name(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The built-in policies linked natively, for what must be known before any component is
/// compiled (names, image patterns, settings checks): `quiesce run` decides before its child
/// starts. Each built-in must be a dependency of the host crate.
fn builtin_native(manifest_dir: &str, policies: &[guests::Guest]) -> String {
    let manifest = std::fs::read_to_string(Path::new(manifest_dir).join("Cargo.toml"))
        .expect("read host/Cargo.toml");
    let mut code = String::from(
        "/// The built-in policies, linked natively: (crate directory name, metadata, settings check).\n\
         pub static BUILTIN_NATIVE: &[NativeBuiltin] = &[\n",
    );
    for policy in policies {
        assert!(
            manifest.contains(&format!("{} = {{", policy.package)),
            "host/Cargo.toml must depend on the built-in policy {0}: add `{0} = {{ path = \"../policies/{1}\" }}`",
            policy.package,
            policy.package.trim_start_matches("quiesce-policy-"),
        );
        let name = policy.package.trim_start_matches("quiesce-policy-");
        let krate = policy.package.replace('-', "_");
        writeln!(
            code,
            "    NativeBuiltin {{ name: {name:?}, info: <{krate}::QuiesceExportedPolicy as quiesce_policy_sdk::Policy>::info, validate: quiesce_policy_sdk::validate_settings::<{krate}::QuiesceExportedPolicy>, decider: crate::policy::native_decider::<{krate}::QuiesceExportedPolicy> }},"
        )
        .unwrap();
    }
    code.push_str("];\n");
    code
}

/// `quiesce policy new` vendors the SDK's sources and the contract into new policy crates:
/// every file of guest-sdk/src and wit/, listed here so none can be forgotten.
fn vendored_sdk(workspace: &Path) -> String {
    let mut files = Vec::new();
    collect(&workspace.join("guest-sdk/src"), &mut files);
    collect(&workspace.join("wit"), &mut files);
    files.sort();
    let mut code = String::from(
        "/// The SDK's sources and the contract: (path under vendor/, contents).\n\
         const VENDORED: &[(&str, &str)] = &[\n",
    );
    for file in files {
        let relative = file.strip_prefix(workspace).expect("inside the workspace");
        let vendored = relative
            .to_string_lossy()
            .replacen("guest-sdk/", "quiesce-policy-sdk/", 1);
        writeln!(
            code,
            "    ({vendored:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    code
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
