//! Compiles guest crates (policies, test fixtures) to `wasm32-wasip2` components for a build
//! script, the way wasmtime's test-programs artifacts are built: one nested `cargo build`
//! into a target directory of its own, so it never waits on the outer build's lock.
//!
//! Shared by `host/build.rs` (the built-in policies) and `tests/build.rs` (hostile fixtures).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target every guest is built for; with it the output already is a component.
pub const TARGET: &str = "wasm32-wasip2";
/// The cargo profile for guests (declared in the workspace `Cargo.toml`).
pub const PROFILE: &str = "policy";

/// A compiled guest.
pub struct Guest {
    /// The crate's package name, e.g. `quiesce-policy-default`.
    pub package: String,
    /// The component file.
    pub wasm: PathBuf,
}

/// Every directory directly below `parent` that holds a `Cargo.toml`, sorted.
pub fn crate_dirs(parent: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(parent)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", parent.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `name = "..."` of the `[package]` section of the crate in `dir`.
fn package_name(dir: &Path) -> String {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("read Cargo.toml");
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[package]")
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no package name in {}/Cargo.toml", dir.display()))
}

/// Builds the crates in `dirs` (members of the workspace at `workspace`) and returns their
/// components. Panics with the compiler's output and a hint when the build fails.
pub fn build(workspace: &Path, dirs: &[PathBuf]) -> Vec<Guest> {
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("guest-sdk").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-guests");
    let packages: Vec<String> = dirs.iter().map(|dir| package_name(dir)).collect();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in &packages {
        command.args(["--package", package]);
    }
    // The outer build's settings are not the guests': a clippy wrapper, host RUSTFLAGS or a
    // build target would leak into the nested cargo through these variables.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_")
            && !matches!(
                key.as_ref(),
                "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL"
            )
            || key.starts_with("RUST") && key != "RUSTUP_HOME" && key != "RUSTUP_TOOLCHAIN"
        {
            command.env_remove(key.as_ref());
        }
    }
    let output = command.output().expect("run cargo for the wasm guests");
    if !output.status.success() {
        panic!(
            "building the wasm guests {packages:?} for {TARGET} failed.\n\
             If the target is missing, install it with `rustup target add {TARGET}`.\n\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let out_dir = target_dir.join(TARGET).join(PROFILE);
    packages
        .into_iter()
        .map(|package| {
            let wasm = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
            assert!(wasm.is_file(), "cargo did not produce {}", wasm.display());
            Guest { package, wasm }
        })
        .collect()
}
