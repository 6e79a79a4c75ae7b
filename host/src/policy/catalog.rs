//! Finding and loading policies: the built-ins compiled into the binary, and every `.wasm` file
//! in the policies directory. A file that is not a valid policy is reported with its reason and
//! never stops the others from loading. A file policy with a built-in's name replaces it.
//!
//! A catalog knows each built-in by its native metadata (name, image patterns: all that
//! choosing a policy needs) and loads it from its precompiled code only when it is used, so a
//! stop loads the policies it chose and no other (issue 24).
//!
//! Loading an untrusted component, in order, touching nothing before it is validated: read the
//! file (capped, never blocking: `file`), check its header and its shape (`shape`), then take
//! its compiled form from the cache (authenticated: `cache`) or compile it in a worker under a
//! time and memory limit (`compile`), then link it and read its metadata in the sandbox. The
//! built-ins (the bytes embedded in this binary, and only those) are trusted: no shape check,
//! their code precompiled by the build and embedded beside them; only if wasmtime refuses that
//! code are they compiled in-process, through the cache, whose entries are authenticated all the
//! same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quiesce_policy_sdk::PolicyInfo;
use wasmtime::component::Component;

use super::builtin::{BUILTIN_POLICIES, BuiltinPolicy, native_builtin};
use super::cache::{CacheRefused, CacheUse, CompileCache};
use super::compile::{Compiler, compile_in_worker};
use super::engine::{PolicyLimits, Sandbox};
use super::error::{LoadError, LoadProblem};
use super::file::read_capped;
use super::loaded::{LoadedPolicy, PolicySource};
use super::shape::check_shape;
use crate::model::digest::content_digest;

/// The largest policy file quiesce reads (built-in policies are about 200 KB).
pub const MAX_POLICY_BYTES: u64 = 16 << 20;

/// The documented default policies directory.
pub const DEFAULT_POLICIES_DIR: &str = "/etc/quiesce/policies";

/// The sandbox plus the compile cache: everything needed to load policies.
#[derive(Clone)]
pub struct PolicyEngine {
    sandbox: Arc<Sandbox>,
    cache: Option<CompileCache>,
    compiler: Compiler,
}

/// The policies, by name, and the files that failed to load.
#[derive(Debug, Default)]
pub struct PolicyCatalog {
    entries: BTreeMap<String, CatalogEntry>,
    problems: Vec<LoadProblem>,
    /// The policies directory looked in, if one was named or the default exists; false when
    /// it did not exist.
    searched: Option<(PathBuf, bool)>,
    /// Policies configured from a registry that are not run, by name, with the reason (never
    /// pulled, refused by the trust rules, damaged in the store): a service that chooses one
    /// gets the conservative `default` sequence instead.
    withheld: BTreeMap<String, String>,
}

/// One policy of a catalog: loaded, or a built-in known by its native metadata and loaded on
/// first use.
pub struct CatalogEntry {
    info: PolicyInfo,
    builtin: bool,
    loaded: OnceLock<Result<Arc<LoadedPolicy>, NotLoaded>>,
    on_demand: Option<(&'static BuiltinPolicy, Arc<PolicyEngine>)>,
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
    /// Untrusted components compile in this process until [`PolicyEngine::with_compiler`]
    /// says otherwise.
    pub fn new(limits: PolicyLimits, cache: Option<CompileCache>) -> anyhow::Result<PolicyEngine> {
        Ok(PolicyEngine {
            sandbox: Arc::new(Sandbox::new(limits)?),
            cache,
            compiler: Compiler::InProcess,
        })
    }

    /// Compiles untrusted components with `compiler` (the `quiesce` binary: a worker process
    /// running itself, under the compile time and memory limits).
    pub fn with_compiler(mut self, compiler: Compiler) -> PolicyEngine {
        self.compiler = compiler;
        self
    }

    /// Why the compile cache is not used, when it is configured but refused.
    pub fn cache_refused(&self) -> Option<CacheRefused> {
        self.cache.as_ref()?.check().err()
    }

    /// The sandbox (engine, linker, limits).
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Loads a policy from its component bytes. Only the bytes embedded in this binary as a
    /// built-in are trusted, whatever `source` says.
    pub fn load_bytes(&self, wasm: &[u8], source: PolicySource) -> Result<LoadedPolicy, LoadError> {
        self.load_bytes_within(wasm, source, None)
    }

    /// [`PolicyEngine::load_bytes`], compiling for at most `time` when given (less than the
    /// compile time limit: the rest of a run's share for loading).
    pub fn load_bytes_within(
        &self,
        wasm: &[u8],
        source: PolicySource,
        time: Option<Duration>,
    ) -> Result<LoadedPolicy, LoadError> {
        let (component, _) = self.compile(wasm, time)?;
        LoadedPolicy::new(
            self.sandbox.clone(),
            &component,
            source,
            content_digest(wasm),
        )
    }

    /// The compiled component of `wasm`: a built-in's precompiled code, or from the cache, or
    /// compiled now (and stored).
    pub fn compile(
        &self,
        wasm: &[u8],
        time: Option<Duration>,
    ) -> Result<(Component, CacheUse), LoadError> {
        check_header(wasm)?;
        match builtin_of(wasm) {
            Some(builtin) => self.compile_builtin(builtin),
            None => {
                let limits = self.sandbox.limits();
                check_shape(wasm, &limits.shape, limits.memory_bytes)?;
                self.compile_cached(wasm, time, &self.compiler)
            }
        }
    }

    /// A built-in's code: precompiled into the binary, unless wasmtime refuses it (the engine's
    /// compile settings differ from the build script's, or the build could not precompile):
    /// then compiled here, in-process (it is trusted), through the cache.
    fn compile_builtin(&self, builtin: &BuiltinPolicy) -> Result<(Component, CacheUse), LoadError> {
        if !builtin.precompiled.is_empty()
            && let Ok(component) = deserialize(self.sandbox.engine(), builtin.precompiled)
        {
            return Ok((component, CacheUse::Embedded));
        }
        self.compile_cached(builtin.wasm, None, &Compiler::InProcess)
    }

    /// The compiled component of `wasm` from the cache, or compiled now with `compiler` (within
    /// `time`, when given) and stored.
    fn compile_cached(
        &self,
        wasm: &[u8],
        time: Option<Duration>,
        compiler: &Compiler,
    ) -> Result<(Component, CacheUse), LoadError> {
        let limits = self.sandbox.limits();
        let engine = self.sandbox.engine();
        let digest = content_digest(wasm);
        let cache = self.cache.as_ref();
        if let Some(artifact) = cache.and_then(|cache| cache.lookup(engine, &digest))
            && let Ok(component) = deserialize(engine, &artifact)
        {
            return Ok((component, CacheUse::Hit));
        }
        let artifact = match compiler {
            Compiler::Worker(program) => {
                let limit = time.map_or(limits.compile_timeout, |time| {
                    time.min(limits.compile_timeout)
                });
                compile_in_worker(program, wasm, limits, limit).map_err(|error| match error {
                    LoadError::CompileTimeLimit { .. } if limit < limits.compile_timeout => {
                        LoadError::OutOfTime { limit }
                    }
                    other => other,
                })?
            }
            Compiler::InProcess => engine
                .precompile_component(wasm)
                .map_err(|error| LoadError::Invalid(format!("{error:#}")))?,
        };
        let component = deserialize(engine, &artifact)
            .map_err(|error| LoadError::Invalid(format!("{error:#}")))?;
        let stored = cache.is_some_and(|cache| cache.store(engine, &digest, &artifact));
        Ok((
            component,
            if stored {
                CacheUse::Compiled
            } else {
                CacheUse::Uncached
            },
        ))
    }

    /// Loads the policy in the file at `path`.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPolicy, LoadProblem> {
        self.load_file_within(path, None)
    }

    fn load_file_within(
        &self,
        path: &Path,
        time: Option<Duration>,
    ) -> Result<LoadedPolicy, LoadProblem> {
        let problem = |error| LoadProblem {
            path: path.to_path_buf(),
            error,
        };
        let wasm = read_capped(path, MAX_POLICY_BYTES).map_err(problem)?;
        self.load_bytes_within(&wasm, PolicySource::File(path.to_path_buf()), time)
            .map_err(problem)
    }

    /// Adds the built-ins, each known by its native metadata and loaded when first used
    /// ([`CatalogEntry::load`]). A built-in that then fails to load is a bug of this build.
    pub fn add_builtins(&self, catalog: &mut PolicyCatalog) {
        let engine = Arc::new(self.clone());
        for builtin in BUILTIN_POLICIES {
            let info = match native_builtin(builtin.name) {
                Some(native) => (native.info)(),
                None => continue,
            };
            catalog.entries.insert(
                info.name.clone(),
                CatalogEntry {
                    info,
                    builtin: true,
                    loaded: OnceLock::new(),
                    on_demand: Some((builtin, engine.clone())),
                },
            );
        }
    }

    /// Loads every `*.wasm` entry directly in `dir`, in name order; one that is not a policy
    /// (not a regular file, too large, invalid...) is named with its reason. With `until`,
    /// the files whose turn comes later are not compiled (named too), and none compiles past it.
    pub fn load_dir(
        &self,
        dir: &Path,
        until: Option<Instant>,
        catalog: &mut PolicyCatalog,
    ) -> Result<(), DirectoryError> {
        let started = Instant::now();
        for path in wasm_files(dir)? {
            let time = until.map(|until| until.saturating_duration_since(Instant::now()));
            let loaded = match time {
                Some(Duration::ZERO) => Err(LoadProblem {
                    path: path.clone(),
                    error: LoadError::OutOfTime {
                        limit: until.map_or(Duration::ZERO, |until| {
                            until.saturating_duration_since(started)
                        }),
                    },
                }),
                _ => self.load_file_within(&path, time),
            };
            match loaded {
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
        self.catalog_until(dir, dir_required, None)
    }

    /// [`PolicyEngine::catalog`], compiling the directory's files only until `until` (a run's
    /// share of its deadline for loading policies): later files are named, not loaded.
    pub fn catalog_until(
        &self,
        dir: Option<&Path>,
        dir_required: bool,
        until: Option<Instant>,
    ) -> Result<PolicyCatalog, DirectoryError> {
        let mut catalog = PolicyCatalog::default();
        self.add_builtins(&mut catalog);
        catalog.searched = dir.map(|dir| (dir.to_path_buf(), dir.exists()));
        if let Some(dir) = dir
            && (dir_required || dir.exists())
        {
            self.load_dir(dir, until, &mut catalog)?;
        }
        Ok(catalog)
    }
}

impl std::fmt::Debug for CatalogEntry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CatalogEntry")
            .field("name", &self.info.name)
            .field("builtin", &self.builtin)
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl CatalogEntry {
    /// The policy's metadata: a built-in's from its native code (the same code as its
    /// component's: a test compares them), a file's from its component.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Whether it is a built-in (not a file of the policies directory).
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// Whether the policy is loaded (a built-in not chosen yet is not).
    pub fn is_loaded(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// The loaded policy: a built-in is loaded on the first call, from its precompiled code.
    pub fn load(&self) -> Result<Arc<LoadedPolicy>, NotLoaded> {
        self.loaded
            .get_or_init(|| {
                let Some((builtin, engine)) = &self.on_demand else {
                    return Err(NotLoaded::Skipped);
                };
                engine
                    .load_bytes(builtin.wasm, PolicySource::Builtin)
                    .map(Arc::new)
                    .map_err(|error| NotLoaded::Failed(Arc::new(error)))
            })
            .clone()
    }
}

/// Why a catalog entry has no loaded policy.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NotLoaded {
    /// A policies directory's file that was skipped when the catalog was read (its problem
    /// was said then).
    #[error("not loaded")]
    Skipped,
    /// Loading it failed.
    #[error(transparent)]
    Failed(Arc<LoadError>),
}

/// The `*.wasm` entries directly in `dir`, sorted: files, and anything else so named (a FIFO,
/// a directory, a dangling link), which loading then names and skips.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, DirectoryError> {
    let error = |source| DirectoryError {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The built-in whose embedded bytes `wasm` are (the same bytes in the same place: a copy of
/// them, from a file, is not trusted).
fn builtin_of(wasm: &[u8]) -> Option<&'static BuiltinPolicy> {
    BUILTIN_POLICIES
        .iter()
        .find(|builtin| std::ptr::eq(builtin.wasm, wasm))
}

/// Loads a compiled artifact that this process produced (compiled here, by its own worker, or
/// read back from the cache after its authentication tag was checked), or that the build
/// script embedded in this binary.
fn deserialize(engine: &wasmtime::Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: the artifact is wasmtime's own serialization of a component: by this binary or
    // its worker, either just produced or authenticated with the cache's key (see `cache`), or
    // by the build script that made this binary (embedded: trusted as the binary is); wasmtime
    // also checks its header and compatibility hash before using it.
    unsafe { Component::deserialize(engine, artifact) }
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
    /// Adds a policy pulled from a registry and verified: the configuration named it, so it
    /// replaces a built-in or a file of the same name (the file is named as a problem).
    pub fn insert_pulled(&mut self, policy: LoadedPolicy) {
        if let Some(existing) = self.entries.get(policy.name())
            && !existing.builtin
            && let Ok(file) = existing.load()
            && let PolicySource::File(path) = file.source()
        {
            self.problems.push(LoadProblem {
                path: path.clone(),
                error: LoadError::DuplicateName {
                    name: policy.name().to_string(),
                    other: policy.source().to_string(),
                },
            });
        }
        self.insert(policy);
    }

    /// Adds a loaded policy: it replaces a built-in of the same name; one with the name of
    /// another file or pulled policy is a problem (named with both sources) and left out.
    pub fn insert_unique(&mut self, policy: LoadedPolicy) {
        match self.entries.get(policy.name()) {
            Some(existing) if !existing.builtin => {
                let path = match policy.source() {
                    PolicySource::File(path) => path.clone(),
                    other => PathBuf::from(other.to_string()),
                };
                let other = existing
                    .load()
                    .map_or_else(|_| "a file".to_string(), |other| other.source().to_string());
                self.problems.push(LoadProblem {
                    path,
                    error: LoadError::DuplicateName {
                        name: policy.name().to_string(),
                        other,
                    },
                });
            }
            _ => self.insert(policy),
        }
    }

    fn insert(&mut self, policy: LoadedPolicy) {
        let policy = Arc::new(policy);
        self.entries.insert(
            policy.name().to_string(),
            CatalogEntry {
                info: policy.info().clone(),
                builtin: matches!(policy.source(), PolicySource::Builtin),
                loaded: OnceLock::from(Ok(policy)),
                on_demand: None,
            },
        );
    }

    /// The policy named `name`, loaded (a built-in is loaded now if it was not yet); `None`
    /// when there is none or it failed to load ([`PolicyCatalog::entry`] says why).
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPolicy>> {
        self.entry(name)?.load().ok()
    }

    /// The entry named `name`, loaded or not.
    pub fn entry(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// Withholds the registry policy `name`: services that choose it fall back to `default`.
    pub fn withhold(&mut self, name: &str, why: String) {
        self.withheld.insert(name.to_string(), why);
    }

    /// Why the registry policy `name` is withheld, if it is.
    pub fn withheld(&self, name: &str) -> Option<&str> {
        self.withheld.get(name).map(String::as_str)
    }

    /// Every withheld registry policy, with the reason.
    pub fn withheld_all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.withheld
            .iter()
            .map(|(name, why)| (name.as_str(), why.as_str()))
    }

    /// What to tell someone who asked for `name`, which this catalog has not: the nearest
    /// name it has (a misspelling), and where policies were looked for (a forgotten
    /// `--policies` looks the same as a misspelt name otherwise).
    pub fn not_found(&self, name: &str) -> String {
        let guess = nearest_name(name, self.entries.keys().map(String::as_str))
            .map(|near| format!("did you mean `{near}`? "))
            .unwrap_or_default();
        let place = match &self.searched {
            Some((dir, true)) => format!("the built-ins and the .wasm files of {}", dir.display()),
            Some((dir, false)) => format!("the built-ins only ({} does not exist)", dir.display()),
            None => "the built-ins only".to_string(),
        };
        format!(
            "{guess}policies here are {place}; another directory is named with --policies or QUIESCE_POLICIES, and `quiesce policy list` shows them all"
        )
    }

    /// Every entry, by name, without loading any.
    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// Every policy, by name, each loaded now if it was not yet; those that fail to load (a
    /// bug of this build, for a built-in) are left out: [`PolicyCatalog::load_all`] names them.
    pub fn policies(&self) -> impl Iterator<Item = Arc<LoadedPolicy>> + '_ {
        self.entries.values().filter_map(|entry| entry.load().ok())
    }

    /// Loads every entry not loaded yet; one that fails becomes a problem. Before listing
    /// every policy with its problems (`quiesce policy list`).
    pub fn load_all(&mut self) {
        let failed: Vec<(String, String)> = self
            .entries
            .iter()
            .filter_map(|(name, entry)| Some((name.clone(), entry.load().err()?.to_string())))
            .collect();
        for (name, reason) in failed {
            self.entries.remove(&name);
            self.problems.push(LoadProblem {
                path: PathBuf::from(format!("(built-in {name})")),
                error: LoadError::Invalid(reason),
            });
        }
    }

    /// The files that failed to load.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> PolicyEngine {
        PolicyEngine::new(PolicyLimits::default(), None).unwrap()
    }

    #[test]
    fn every_builtin_comes_precompiled_for_the_engines_compile_settings() {
        let engine = engine();
        for builtin in BUILTIN_POLICIES {
            let (_, used) = engine.compile(builtin.wasm, None).unwrap();
            assert_eq!(used, CacheUse::Embedded, "{}", builtin.name);
        }
    }

    #[test]
    fn a_builtins_native_metadata_is_its_components_and_it_loads_only_when_used() {
        let catalog = engine().catalog(None, false).unwrap();
        assert_eq!(catalog.entries().count(), BUILTIN_POLICIES.len());
        assert!(catalog.entries().all(|entry| !entry.is_loaded()));
        for entry in catalog.entries() {
            let loaded = entry.load().unwrap();
            assert_eq!(entry.info(), loaded.info(), "{}", entry.name());
            assert!(entry.is_loaded());
        }
    }

    #[test]
    fn a_precompiled_builtin_the_engine_refuses_is_compiled_instead() {
        let engine = engine();
        let real = &BUILTIN_POLICIES[0];
        let stale = BuiltinPolicy {
            name: real.name,
            wasm: real.wasm,
            precompiled: b"\x7fELF not what wasmtime made for this engine",
        };
        let (component, used) = engine.compile_builtin(&stale).unwrap();
        assert_eq!(used, CacheUse::Uncached);
        let policy = LoadedPolicy::new(
            engine.sandbox.clone(),
            &component,
            PolicySource::Builtin,
            content_digest(real.wasm),
        )
        .unwrap();
        assert_eq!(policy.name(), real.name);
    }
}

/// The one of `candidates` nearest to `name` by edit distance, when it is near enough to be a
/// misspelling of it (at most a third of its letters changed, or two: `ngnix`).
pub fn nearest_name<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn a_misspelt_name_finds_its_policy_and_a_different_one_finds_none() {
        let names = ["celery", "drain-file", "nginx", "postgres"];
        assert_eq!(
            nearest_name("drain-fil", names.into_iter()),
            Some("drain-file")
        );
        assert_eq!(nearest_name("ngnix", names.into_iter()), Some("nginx"));
        assert_eq!(
            nearest_name("postgress", names.into_iter()),
            Some("postgres")
        );
        assert_eq!(nearest_name("redis", names.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
