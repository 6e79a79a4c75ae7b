//! The on-disk state shared between the serving process and commands run through
//! `docker exec` (`test-service inflight`, `test-service idle`).
//!
//! Two files live in the state directory (default `/run/test-service`):
//! - `inflight`: the current number of in-flight jobs as decimal text. It is rewritten
//!   through a temporary file and `rename`, so a reader never sees a partial value.
//! - `draining`: an empty file that exists once a graceful drain has started.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Default state directory inside the container (the scratch root filesystem is writable).
pub const DEFAULT_DIR: &str = "/run/test-service";

/// Name of the file holding the in-flight job count.
const INFLIGHT: &str = "inflight";
/// Temporary file renamed over [`INFLIGHT`] on every update.
const INFLIGHT_TMP: &str = ".inflight.tmp";
/// Name of the marker file that exists once draining started.
const DRAINING: &str = "draining";

/// Reads and writes the state files in one directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// A store rooted at `dir`; nothing is touched until a method is called.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateStore { dir: dir.into() }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Prepares a fresh run: creates the directory, removes a `draining` marker left by a
    /// previous run of the same container (its filesystem survives `docker restart`),
    /// and records zero in-flight jobs.
    pub fn init(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        match fs::remove_file(self.dir.join(DRAINING)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        self.write_inflight(0)
    }

    /// Atomically replaces the in-flight count.
    pub fn write_inflight(&self, count: u64) -> io::Result<()> {
        let tmp = self.dir.join(INFLIGHT_TMP);
        fs::write(&tmp, count.to_string())?;
        fs::rename(&tmp, self.dir.join(INFLIGHT))
    }

    /// Creates the `draining` marker.
    pub fn mark_draining(&self) -> io::Result<()> {
        fs::write(self.dir.join(DRAINING), b"")
    }

    /// Reads the in-flight count written by the serving process.
    pub fn read_inflight(&self) -> io::Result<u64> {
        let path = self.dir.join(INFLIGHT);
        let text = fs::read_to_string(&path)?;
        text.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} holds {text:?}, not a count", path.display()),
            )
        })
    }

    /// Whether the `draining` marker exists.
    pub fn is_draining(&self) -> bool {
        self.dir.join(DRAINING).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, unique directory under the system temp dir.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "quiesce-test-service-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn init_resets_a_previous_run() {
        let dir = scratch_dir("init");
        let store = StateStore::new(&dir);
        store.init().unwrap();
        store.write_inflight(3).unwrap();
        store.mark_draining().unwrap();
        assert_eq!(store.read_inflight().unwrap(), 3);
        assert!(store.is_draining());

        store.init().unwrap();
        assert_eq!(store.read_inflight().unwrap(), 0);
        assert!(!store.is_draining());
        assert_eq!(fs::read_to_string(dir.join(INFLIGHT)).unwrap(), "0");
        assert!(!dir.join(INFLIGHT_TMP).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reading_a_missing_store_fails() {
        let store = StateStore::new(scratch_dir("missing"));
        assert!(store.read_inflight().is_err());
        assert!(!store.is_draining());
    }
}
