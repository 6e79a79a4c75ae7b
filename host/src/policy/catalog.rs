//! Finding and loading policies: the built-ins compiled into the binary, and every `.wasm` file
//! in the policies directory. A file that is not a valid policy is reported with its reason and
//! never stops the others from loading. A file policy with a built-in's name replaces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::{CacheUse, CompileCache, content_digest};
use super::engine::{PolicyLimits, Sandbox};
use super::error::{LoadError, LoadProblem};
use super::loaded::{LoadedPolicy, PolicySource};

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

/// The largest policy file quiesce reads (built-in policies are about 200 KB).
pub const MAX_POLICY_BYTES: u64 = 64 << 20;

/// The documented default policies directory.
pub const DEFAULT_POLICIES_DIR: &str = "/etc/quiesce/policies";

/// The sandbox plus the compile cache: everything needed to load policies.
pub struct PolicyEngine {
    sandbox: Arc<Sandbox>,
    cache: Option<CompileCache>,
}

/// The loaded policies, by name, and the files that failed to load.
#[derive(Debug, Default)]
pub struct PolicyCatalog {
    policies: BTreeMap<String, Arc<LoadedPolicy>>,
    problems: Vec<LoadProblem>,
}

/// Why a policies directory could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the policies directory {}: {source}; create it, or point --policies \
     (or QUIESCE_POLICIES) at the directory holding your .wasm policies",
    .dir.display()
)]
pub struct DirectoryError {
    /// The directory.
    pub dir: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

impl PolicyEngine {
    /// An engine with these limits, caching compiled policies in `cache` (or not at all).
    pub fn new(limits: PolicyLimits, cache: Option<CompileCache>) -> anyhow::Result<PolicyEngine> {
        Ok(PolicyEngine {
            sandbox: Arc::new(Sandbox::new(limits)?),
            cache,
        })
    }

    /// The sandbox (engine, linker, limits).
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Loads a policy from its component bytes.
    pub fn load_bytes(&self, wasm: &[u8], source: PolicySource) -> Result<LoadedPolicy, LoadError> {
        check_header(wasm)?;
        let digest = content_digest(wasm);
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(self.sandbox.engine(), wasm, &digest),
            None => self
                .sandbox
                .compile(wasm)
                .map(|component| (component, CacheUse::Uncached)),
        };
        let (component, _) = compiled.map_err(|error| LoadError::Invalid(format!("{error:#}")))?;
        LoadedPolicy::new(self.sandbox.clone(), &component, source, digest)
    }

    /// Loads the policy in the file at `path`.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPolicy, LoadProblem> {
        let problem = |error| LoadProblem {
            path: path.to_path_buf(),
            error,
        };
        let size = std::fs::metadata(path)
            .map_err(|error| problem(LoadError::Read(error)))?
            .len();
        if size > MAX_POLICY_BYTES {
            return Err(problem(LoadError::TooLarge {
                size,
                limit: MAX_POLICY_BYTES,
            }));
        }
        let wasm = std::fs::read(path).map_err(|error| problem(LoadError::Read(error)))?;
        self.load_bytes(&wasm, PolicySource::File(path.to_path_buf()))
            .map_err(problem)
    }

    /// Loads the built-in policies. A built-in that fails to load is a bug of this build; it
    /// is reported like any other problem.
    pub fn load_builtins(&self, catalog: &mut PolicyCatalog) {
        for (name, wasm) in BUILTIN_POLICIES {
            match self.load_bytes(wasm, PolicySource::Builtin) {
                Ok(policy) => catalog.insert(policy),
                Err(error) => catalog.problems.push(LoadProblem {
                    path: PathBuf::from(format!("(built-in {name})")),
                    error,
                }),
            }
        }
    }

    /// Loads every `*.wasm` file directly in `dir`, in name order.
    pub fn load_dir(&self, dir: &Path, catalog: &mut PolicyCatalog) -> Result<(), DirectoryError> {
        for path in wasm_files(dir)? {
            match self.load_file(&path) {
                Ok(policy) => catalog.insert_unique(policy),
                Err(problem) => catalog.problems.push(problem),
            }
        }
        Ok(())
    }

    /// The built-ins, then the policies directory (when given). A directory that does not exist
    /// is an error only when `dir_required` (it was named explicitly).
    pub fn catalog(
        &self,
        dir: Option<&Path>,
        dir_required: bool,
    ) -> Result<PolicyCatalog, DirectoryError> {
        let mut catalog = PolicyCatalog::default();
        self.load_builtins(&mut catalog);
        if let Some(dir) = dir
            && (dir_required || dir.exists())
        {
            self.load_dir(dir, &mut catalog)?;
        }
        Ok(catalog)
    }
}

/// The `*.wasm` files directly in `dir`, sorted.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, DirectoryError> {
    let error = |source| DirectoryError {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Tells a core module and random bytes from a component before compiling anything.
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Bytes 4..8: version and layer. Core modules are version 1, layer 0.
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

impl PolicyCatalog {
    /// Adds a policy, replacing any earlier one of the same name (files replace built-ins).
    fn insert(&mut self, policy: LoadedPolicy) {
        self.policies
            .insert(policy.name().to_string(), Arc::new(policy));
    }

    /// Adds a policy from the directory: it may replace a built-in, but not another file.
    fn insert_unique(&mut self, policy: LoadedPolicy) {
        match self.policies.get(policy.name()) {
            Some(existing) if matches!(existing.source(), PolicySource::File(_)) => {
                let path = match policy.source() {
                    PolicySource::File(path) => path.clone(),
                    PolicySource::Builtin => PathBuf::from("(built-in)"),
                };
                self.problems.push(LoadProblem {
                    path,
                    error: LoadError::DuplicateName {
                        name: policy.name().to_string(),
                        other: existing.source().to_string(),
                    },
                });
            }
            _ => self.insert(policy),
        }
    }

    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPolicy>> {
        self.policies.get(name)
    }

    /// All loaded policies, by name.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<LoadedPolicy>> {
        self.policies.values()
    }

    /// The files that failed to load.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }
}
