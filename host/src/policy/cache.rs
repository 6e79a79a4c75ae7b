//! The on-disk cache of compiled policies, and why quiesce may trust what it reads there.
//!
//! Compiling a component takes tens of milliseconds (release) to a second (debug); loading a
//! precompiled one is a copy and a check. Entries are keyed by the SHA-256 of the component's
//! bytes and by the engine's compatibility hash (wasmtime version and compilation settings),
//! so a changed policy or a new quiesce never loads a stale artifact.
//!
//! Trust (issue 17, class 1). An entry is native code that quiesce maps and runs, so the
//! cache is used only when nobody but the user running quiesce can have written it:
//! - the directory: created by quiesce with mode 0700 when missing; when it exists, it must be
//!   a directory owned by this user and writable by nobody else (no group or other write
//!   bit), or the cache is refused as a whole (quiesce compiles without it and says why);
//! - a key: `cache.key` in the directory, 32 random bytes created with mode 0600 on first use;
//!   it must be a regular file owned by this user that nobody else can read or write;
//! - every entry carries an HMAC-SHA256, under that key, of its file name (which names the
//!   component's digest and the engine) and its contents. An entry is opened without following
//!   symlinks, must be a regular file owned by this user, and is read into memory and checked
//!   before wasmtime sees it: a planted, copied, renamed or altered entry fails the check and
//!   is recompiled (and replaced), the built-ins' entries included.
//!
//! The HMAC is the guarantee; the ownership and mode checks make a refusal loud and early. An
//! entry written before this scheme (a bare `.cwasm`) is simply not authenticated.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::model::vars::Vars;
use crate::platform::paths::SYSTEM_CACHE_DIR;

/// The key file's name inside the cache directory.
pub const KEY_FILE: &str = "cache.key";
const KEY_BYTES: usize = 32;
/// An entry starts with this tag, then the 32-byte HMAC, then the compiled artifact.
const ENTRY_MAGIC: &[u8; 8] = b"QCACHE1\n";
const TAG_BYTES: usize = 32;
/// The largest entry read back (a compiled policy is a few MiB at most).
const MAX_ENTRY_BYTES: u64 = 512 << 20;

/// A directory of precompiled components, checked before first use.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    opened: OnceLock<Result<[u8; KEY_BYTES], CacheRefused>>,
}

impl Clone for CompileCache {
    fn clone(&self) -> CompileCache {
        CompileCache::new(self.dir.clone())
    }
}

/// Why the cache directory is not used; quiesce then compiles every policy afresh.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "compile cache {} not used: {reason}; compiling without it (use a directory only you can \
     write, which quiesce creates with mode 0700 when missing, or --no-cache)",
    .dir.display()
)]
pub struct CacheRefused {
    /// The directory.
    pub dir: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// How a component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded from the cache.
    Hit,
    /// Compiled now, and stored.
    Compiled,
    /// Compiled now; the cache is off, refused or could not be written.
    Uncached,
    /// A built-in's code, precompiled into the binary by its build script.
    Embedded,
}

impl CompileCache {
    /// A cache in `dir`, created (mode 0700) and checked on first use.
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache {
            dir: dir.into(),
            opened: OnceLock::new(),
        }
    }

    /// The default location: `$QUIESCE_CACHE_DIR`, else `$XDG_CACHE_HOME/quiesce`, else
    /// `$HOME/.cache/quiesce`, else, for root, [`SYSTEM_CACHE_DIR`] (system units have no
    /// `HOME`: a stop run by systemd must find the cache `quiesce.service` or `quiesce
    /// generate kolla-dropins` filled); `None` when none of them applies.
    pub fn default_dir(vars: &Vars) -> Option<PathBuf> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        vars.get("QUIESCE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                vars.get("XDG_CACHE_HOME")
                    .map(|dir| Path::new(dir).join("quiesce"))
            })
            .or_else(|| {
                vars.get("HOME")
                    .map(|home| Path::new(home).join(".cache/quiesce"))
            })
            .or_else(|| root.then(|| PathBuf::from(SYSTEM_CACHE_DIR)))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the cache (creating it when missing) and checks it; `Err` says why it is refused.
    pub fn check(&self) -> Result<(), CacheRefused> {
        self.key().map(|_| ())
    }

    fn key(&self) -> Result<&[u8; KEY_BYTES], CacheRefused> {
        self.opened
            .get_or_init(|| {
                open_key(&self.dir).map_err(|reason| CacheRefused {
                    dir: self.dir.clone(),
                    reason,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The entry's file name for a component of digest `digest` under `engine`.
    pub fn entry_name(engine: &Engine, digest: &str) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let hex = digest.trim_start_matches("sha256:");
        format!("{hex}-{:016x}.cwasm", hasher.finish())
    }

    /// The compiled artifact stored for `digest` under `engine`, if there is one, written by
    /// this user, and authenticated by the cache's key. Anything else is `None` (recompile).
    pub fn lookup(&self, engine: &Engine, digest: &str) -> Option<Vec<u8>> {
        let key = self.key().ok()?;
        let name = CompileCache::entry_name(engine, digest);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.dir.join(&name))
            .ok()?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() || metadata.uid() != effective_uid() {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        let body = bytes.strip_prefix(ENTRY_MAGIC.as_slice())?;
        let (tag, artifact) = body.split_at_checked(TAG_BYTES)?;
        if !constant_time_eq(tag, &entry_tag(key, &name, artifact)) {
            return None;
        }
        Some(artifact.to_vec())
    }

    /// Stores `artifact` (the compiled form of the component of digest `digest`); `false` when
    /// the cache is refused or cannot be written (that costs speed, never correctness).
    pub fn store(&self, engine: &Engine, digest: &str, artifact: &[u8]) -> bool {
        let Ok(key) = self.key() else {
            return false;
        };
        let name = CompileCache::entry_name(engine, digest);
        let tag = entry_tag(key, &name, artifact);
        let write = || -> std::io::Result<()> {
            let mut temporary = tempfile::NamedTempFile::new_in(&self.dir)?;
            temporary.write_all(ENTRY_MAGIC)?;
            temporary.write_all(&tag)?;
            temporary.write_all(artifact)?;
            temporary.persist(self.dir.join(&name))?;
            Ok(())
        };
        write().is_ok()
    }
}

/// Creates or checks the directory, then reads (or creates) its key.
fn open_key(dir: &Path) -> Result<[u8; KEY_BYTES], String> {
    match std::fs::metadata(dir) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(dir).map_err(|error| format!("cannot create it: {error}"))?;
        }
        Err(error) => return Err(format!("cannot inspect it: {error}")),
    }
    let metadata = std::fs::metadata(dir).map_err(|error| format!("cannot inspect it: {error}"))?;
    if !metadata.is_dir() {
        return Err("it is not a directory".into());
    }
    check_owner(&metadata, "it")?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "it is writable by other users (mode {mode:04o}), who could plant compiled code"
        ));
    }
    let path = dir.join(KEY_FILE);
    match read_key(&path) {
        Err(KeyError::Missing) => create_key(dir, &path),
        Err(KeyError::Refused(reason)) => Err(reason),
        Ok(key) => Ok(key),
    }
}

enum KeyError {
    Missing,
    Refused(String),
}

fn read_key(path: &Path) -> Result<[u8; KEY_BYTES], KeyError> {
    let refused = |reason: String| KeyError::Refused(format!("its key {}: {reason}", KEY_FILE));
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::Missing);
        }
        Err(error) => return Err(refused(format!("cannot be opened: {error}"))),
    };
    let metadata = file
        .metadata()
        .map_err(|error| refused(error.to_string()))?;
    if !metadata.is_file() {
        return Err(refused("is not a regular file".into()));
    }
    check_owner(&metadata, "it").map_err(refused)?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refused(format!(
            "other users can read or write it (mode {mode:04o}); it must be 0600"
        )));
    }
    let mut key = [0u8; KEY_BYTES];
    let mut extra = [0u8; 1];
    file.read_exact(&mut key)
        .map_err(|_| refused(format!("is not {KEY_BYTES} bytes long")))?;
    if !matches!(file.read(&mut extra), Ok(0)) {
        return Err(refused(format!("is not {KEY_BYTES} bytes long")));
    }
    Ok(key)
}

/// Creates the key atomically (a concurrent quiesce may create it first: then its key is used).
fn create_key(dir: &Path, path: &Path) -> Result<[u8; KEY_BYTES], String> {
    let mut key = [0u8; KEY_BYTES];
    random_bytes(&mut key).map_err(|error| format!("cannot make its key: {error}"))?;
    let mut temporary = tempfile::NamedTempFile::new_in(dir)
        .map_err(|error| format!("cannot write its key: {error}"))?;
    temporary
        .write_all(&key)
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|error| format!("cannot write its key: {error}"))?;
    match temporary.persist_noclobber(path) {
        Ok(_) => Ok(key),
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => read_key(path)
            .map_err(|error| match error {
                KeyError::Missing => format!("its key {KEY_FILE} vanished"),
                KeyError::Refused(reason) => reason,
            }),
        Err(error) => Err(format!("cannot write its key: {}", error.error)),
    }
}

fn check_owner(metadata: &std::fs::Metadata, what: &str) -> Result<(), String> {
    let uid = effective_uid();
    if metadata.uid() != uid {
        return Err(format!(
            "{what} belongs to user {}, not to the user running quiesce ({uid})",
            metadata.uid()
        ));
    }
    Ok(())
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn random_bytes(buffer: &mut [u8]) -> std::io::Result<()> {
    File::open("/dev/urandom")?.read_exact(buffer)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The entry's authentication tag: HMAC-SHA256 under `key` of its name and its artifact.
fn entry_tag(key: &[u8], name: &str, artifact: &[u8]) -> [u8; TAG_BYTES] {
    hmac_sha256(
        key,
        &[
            b"quiesce compile cache v1\0",
            name.as_bytes(),
            b"\0",
            artifact,
        ],
    )
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`, for keys of at most 64 bytes.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    padded[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(padded.map(|byte| byte ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded.map(|byte| byte ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::digest::hex;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_created_cache_is_private_and_its_key_is_kept() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a/b/quiesce");
        CompileCache::new(&dir).check().unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let key = std::fs::read(dir.join(KEY_FILE)).unwrap();
        CompileCache::new(&dir).check().unwrap();
        assert_eq!(std::fs::read(dir.join(KEY_FILE)).unwrap(), key);
    }

    #[test]
    fn a_directory_others_can_write_or_a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = CompileCache::new(dir.path()).check().unwrap_err();
        assert!(refused.reason.contains("mode 0777"), "{refused}");
        assert!(!dir.path().join(KEY_FILE).exists());

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        CompileCache::new(dir.path()).check().unwrap();
        let key = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = CompileCache::new(dir.path()).check().unwrap_err();
        assert!(refused.reason.contains("mode 0644"), "{refused}");
    }
}
