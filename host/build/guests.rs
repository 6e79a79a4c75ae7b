//! Compiles guest crates (policies, test fixtures) to `wasm32-wasip2` components for a build
//! script, the way wasmtime's test-programs artifacts are built: one nested `cargo build`
//! into a target directory of its own, so it never waits on the outer build's lock.
//!
//! Shared by `host/build.rs` (the built-in policies) and `tests/build.rs` (hostile fixtures,
//! and the static test-service binary for the test image).

// Each build script uses part of this module.
#![allow(dead_code)]

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

/// A directory of the workspace's target directory for a nested build.
fn nested_target_dir(workspace: &Path, name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join(name)
}

/// Runs `cargo build --quiet ARGS` for the workspace into `target_dir`, with a clean
/// environment plus `env`. Panics with the compiler's output when the build fails.
///
/// The outer build's `--locked`, `--offline` and `--frozen` are flags of its command line,
/// which cargo does not pass to build scripts (none of the variables it sets for them says so),
/// so the nested build follows them this way:
/// - `--locked` always, when the workspace has a `Cargo.lock`. Before any build script runs,
///   the outer cargo has resolved the workspace (and, unless it was itself `--locked`, updated
///   `Cargo.lock`); the guests are members of that workspace, so their build needs no
///   resolution of its own. `--locked` asserts exactly that, and keeps the nested build from
///   ever rewriting the lock file behind the outer one.
/// - offline: `--offline` is the command-line form of cargo's `net.offline` setting, whose
///   environment form, `CARGO_NET_OFFLINE=true`, is passed through below; a `net.offline` in
///   a config file is read by the nested cargo itself (same directory, same `CARGO_HOME`).
///   When the cache already holds every crate the guests need (the outer build has just
///   fetched the policies' dependencies), the nested build does not use the network at all.
fn nested_cargo(workspace: &Path, target_dir: &Path, args: &[String], env: &[(&str, &str)]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet"])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    if workspace.join("Cargo.lock").is_file() {
        command.arg("--locked");
    }
    // The outer build's settings are not the nested build's: a clippy wrapper, host RUSTFLAGS
    // or a build target would leak into it through these variables.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = matches!(
            key.as_ref(),
            "CARGO_HOME"
                | "CARGO_NET_OFFLINE"
                | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL"
                | "RUSTUP_HOME"
                | "RUSTUP_TOOLCHAIN"
        );
        if !keep && (key.starts_with("CARGO_") || key.starts_with("RUST")) {
            command.env_remove(key.as_ref());
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run a nested cargo build");
    if !output.status.success() {
        panic!(
            "the nested build `cargo build {}` failed.\n\
             If the wasm target is missing, run scripts/ensure-toolchain (or `rustup target add {TARGET}`).\n\
             Building without a network? Set CARGO_NET_OFFLINE=true: a build script cannot see\n\
             cargo's --offline or --frozen, and the nested build reads that variable.\n\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Builds binary `bin` of the crate in `dir` as a static executable for the machine's own
/// target (`-C target-feature=+crt-static`), for `FROM scratch` images.
pub fn build_static_binary(workspace: &Path, dir: &Path, bin: &str) -> PathBuf {
    println!("cargo:rerun-if-changed={}", dir.display());
    let target = std::env::var("TARGET").expect("TARGET");
    let target_dir = nested_target_dir(workspace, "static-bins");
    let args: Vec<String> = vec![
        "--release".into(),
        "--target".into(),
        target.clone(),
        "--package".into(),
        package_name(dir),
        "--bin".into(),
        bin.into(),
    ];
    nested_cargo(
        workspace,
        &target_dir,
        &args,
        &[("RUSTFLAGS", "-C target-feature=+crt-static")],
    );
    let binary = target_dir.join(&target).join("release").join(bin);
    assert!(
        binary.is_file(),
        "cargo did not produce {}",
        binary.display()
    );
    binary
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
    let target_dir = nested_target_dir(workspace, "wasm-guests");
    let packages: Vec<String> = dirs.iter().map(|dir| package_name(dir)).collect();
    let mut args: Vec<String> = vec![
        "--target".into(),
        TARGET.into(),
        "--profile".into(),
        PROFILE.into(),
    ];
    for package in &packages {
        args.extend(["--package".to_string(), package.clone()]);
    }
    nested_cargo(workspace, &target_dir, &args, &[]);
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
