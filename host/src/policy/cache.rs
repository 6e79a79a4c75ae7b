//! The on-disk cache of compiled policies.
//!
//! Compiling a component takes tens of milliseconds (release) to a second (debug); loading a
//! precompiled one is a memory map. Entries are keyed by the SHA-256 of the component's bytes
//! and by the engine's compatibility hash (wasmtime version and compilation settings), so a
//! changed policy or a new quiesce never loads a stale artifact.
//!
//! Trust: a precompiled artifact is native code. The cache directory is created private to
//! its owner (mode 0700) and entries are written atomically (temporary file, then rename).
//! Anyone who can write to it can run code as quiesce; keep it on a path only quiesce's user
//! can write, or turn the cache off.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The SHA-256 digest of `bytes`, as `sha256:<hex>`.
pub fn content_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// A directory of precompiled components.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded from the cache.
    Hit,
    /// Compiled now, and stored.
    Compiled,
    /// Compiled now; the cache is off or could not be written.
    Uncached,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into() }
    }

    /// The default location: `$QUIESCE_CACHE_DIR`, else `$XDG_CACHE_HOME/quiesce`, else
    /// `$HOME/.cache/quiesce`; `None` when none of them is set.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        var("QUIESCE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|dir| Path::new(&dir).join("quiesce")))
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache/quiesce")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join(format!("{hex}-{:016x}.cwasm", hasher.finish()))
    }

    /// Loads the compiled form of `wasm` (whose digest is `digest`), compiling and storing it
    /// on a miss. A corrupt or unreadable entry is recompiled; a cache that cannot be written
    /// costs speed, never correctness.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
    ) -> anyhow::Result<(Component, CacheUse)> {
        let entry = self.entry(engine, digest);
        if entry.is_file() {
            // SAFETY: the entry was written by `store` below from `Component::serialize` of
            // this engine's configuration, into a directory private to this user; wasmtime
            // checks the header and compatibility hash before using it.
            if let Ok(component) = unsafe { Component::deserialize_file(engine, &entry) } {
                return Ok((component, CacheUse::Hit));
            }
        }
        let component = Component::new(engine, wasm)?;
        let stored = self.store(&component, &entry).is_ok();
        Ok((
            component,
            if stored {
                CacheUse::Compiled
            } else {
                CacheUse::Uncached
            },
        ))
    }

    fn store(&self, component: &Component, entry: &Path) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        let bytes = component.serialize()?;
        let mut temporary = tempfile::NamedTempFile::new_in(&self.dir)
            .with_context(|| format!("create a file in {}", self.dir.display()))?;
        std::io::Write::write_all(&mut temporary, &bytes)?;
        temporary.persist(entry)?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
