//! The local store of pulled policies: content-addressed, written atomically, re-verified
//! offline every time a policy is taken from it.
//!
//! ```text
//! STORE/blobs/sha256/<hex>         manifests, configs, components, signature payloads
//! STORE/refs/<sha256 of the reference>.json
//!     what the reference resolved to (the manifest digest), when, the signatures that
//!     admitted it and who signed
//! ```
//!
//! A blob is written under a temporary name, synced and renamed to its digest, so a blob file
//! is whole or absent; a reference's record is replaced (rename) only after everything it
//! names is stored and verified, so a pull that fails leaves the last verified version in
//! place. Taking a policy reads the record, re-hashes every blob it names (a damaged or
//! altered one is refused) and applies the current trust rules to the stored signatures: a
//! key removed from the configuration since the pull is no longer trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{MAX_MANIFEST_BYTES, Manifest, check_digest};
use super::registry::{MAX_SIGNATURES, repository_of_text};
use super::signature::{MAX_PAYLOAD_BYTES, SignedPayload};
use super::trust::{Refused, Trust};
use crate::model::digest::content_digest;
use crate::policy::MAX_POLICY_BYTES;

/// The largest record read or written: a pull keeps at most [`MAX_SIGNATURES`] payloads of at
/// most [`MAX_PAYLOAD_BYTES`] (base64 in the record) and their signatures, which come from one
/// manifest of at most [`MAX_MANIFEST_BYTES`].
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

const _: () = assert!(
    MAX_RECORD_BYTES
        >= MAX_SIGNATURES as u64 * (MAX_PAYLOAD_BYTES * 4 / 3 + 4)
            + MAX_MANIFEST_BYTES as u64
            + 64 * 1024
);

/// The store of root on a host (created by the first pull).
pub const SYSTEM_STORE_DIR: &str = "/var/lib/quiesce/store";

/// A store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// What a reference resolved to, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The reference as asked (`registry/repository:tag` or `...@sha256:...`).
    pub reference: String,
    /// `registry/repository`, what signatures and trust rules name.
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// When it was pulled (RFC 3339).
    pub pulled_at: String,
    /// The signatures found for the digest (the payloads' bytes are kept here too).
    pub signatures: Vec<SignedPayload>,
    /// The keys that admitted it, at pull time.
    pub signers: Vec<String>,
}

/// A policy taken from the store, verified.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Its record.
    pub record: Record,
    /// The component.
    pub wasm: Vec<u8>,
    /// The keys whose signatures admit it now.
    pub signers: Vec<String>,
}

/// Why the store could not give a verified policy.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Never pulled.
    #[error("{0} was never pulled into the store {1}; run `quiesce policy pull {0}`")]
    NeverPulled(String, String),
    /// The record pins another digest than the configuration.
    #[error(
        "the store holds {stored} for {reference}, not the configured digest; run `quiesce policy pull {reference}`"
    )]
    OtherDigest {
        /// The configured reference.
        reference: String,
        /// What the store has.
        stored: String,
    },
    /// The record names another repository than its reference (an altered record).
    #[error(
        "the store's record of {reference} names the repository {stored}, not the reference's: it is not used; run `quiesce policy pull {reference}`"
    )]
    OtherRepository {
        /// The configured reference.
        reference: String,
        /// What the record says.
        stored: String,
    },
    /// A blob is missing or its bytes do not hash to its name.
    #[error("the stored blob {digest} ({what}) is {problem}: it is not run; pull the policy again")]
    Damaged {
        /// The blob's digest.
        digest: String,
        /// What it is (manifest, component, signature).
        what: &'static str,
        /// Missing, or altered.
        problem: String,
    },
    /// The stored manifest is not a policy's.
    #[error("the stored manifest of {0} is not a policy: {1}")]
    Layout(String, super::layout::LayoutError),
    /// The current trust rules refuse it.
    #[error("{pinned} (stored for {reference}) is refused by the trust rules: {refused}")]
    Refused {
        /// The reference.
        reference: String,
        /// `registry/repository@sha256:...`.
        pinned: String,
        /// Why.
        refused: Refused,
    },
    /// The store could not be read or written.
    #[error("the policy store {}: {source}; check its permissions, or choose another with [registry] store", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Store {
    /// The store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// Where the store is unless `--store`, `QUIESCE_STORE` or the configuration says: for
    /// root [`SYSTEM_STORE_DIR`], else `$XDG_DATA_HOME/quiesce/store`, else
    /// `$HOME/.local/share/quiesce/store`, else [`SYSTEM_STORE_DIR`].
    pub fn default_dir(vars: &crate::model::vars::Vars) -> PathBuf {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        root.then(|| PathBuf::from(SYSTEM_STORE_DIR))
            .or_else(|| {
                vars.get("XDG_DATA_HOME")
                    .map(|dir| Path::new(dir).join("quiesce/store"))
            })
            .or_else(|| {
                vars.get("HOME")
                    .map(|home| Path::new(home).join(".local/share/quiesce/store"))
            })
            .unwrap_or_else(|| PathBuf::from(SYSTEM_STORE_DIR))
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = check_digest(digest).ok()?;
        Some(self.root.join("blobs").join("sha256").join(hex))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        let key = content_digest(reference.as_bytes());
        let hex = key.trim_start_matches("sha256:");
        self.root.join("refs").join(format!("{hex}.json"))
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            path: path.clone(),
            source,
        }
    }

    /// Stores `bytes` under their digest (atomically; nothing if already there).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = content_digest(bytes);
        let path = self.blob_path(&digest).unwrap_or_default();
        if std::fs::read(&path).is_ok_and(|stored| content_digest(&stored) == digest) {
            return Ok(digest);
        }
        write_atomically(&path, bytes).map_err(self.io(&path))?;
        Ok(digest)
    }

    /// The blob `digest`, re-hashed; `what` names it in errors.
    pub fn blob(&self, digest: &str, what: &'static str, cap: u64) -> Result<Vec<u8>, StoreError> {
        let damaged = |problem: String| StoreError::Damaged {
            digest: digest.to_string(),
            what,
            problem,
        };
        let path = self
            .blob_path(digest)
            .ok_or_else(|| damaged("not a sha256 digest".into()))?;
        let bytes = crate::policy::read_capped(&path, cap).map_err(|error| {
            damaged(match error {
                crate::policy::LoadError::Read(io) if io.kind() == std::io::ErrorKind::NotFound => {
                    "missing".into()
                }
                other => other.to_string(),
            })
        })?;
        let actual = content_digest(&bytes);
        if actual != digest {
            return Err(damaged(format!("altered (its bytes hash to {actual})")));
        }
        Ok(bytes)
    }

    /// Replaces the record of `record.reference` (atomically).
    pub fn put_record(&self, record: &Record) -> Result<(), StoreError> {
        let path = self.record_path(&record.reference);
        let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err(StoreError::Io {
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the record would be larger than {MAX_RECORD_BYTES} bytes"),
                ),
                path,
            });
        }
        write_atomically(&path, &bytes).map_err(self.io(&path))
    }

    /// The record of `reference`, if it was pulled (read only up to [`MAX_RECORD_BYTES`]: a
    /// record is read on every stop that configures the reference).
    pub fn record(&self, reference: &str) -> Result<Option<Record>, StoreError> {
        let path = self.record_path(reference);
        let invalid = |error: String| StoreError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        };
        match crate::policy::read_capped(&path, MAX_RECORD_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| invalid(error.to_string())),
            Err(crate::policy::LoadError::Read(error))
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(crate::policy::LoadError::Read(error)) => Err(self.io(&path)(error)),
            Err(crate::policy::LoadError::TooLarge { limit }) => Err(invalid(format!(
                "larger than {limit} bytes: not a record quiesce wrote"
            ))),
            Err(crate::policy::LoadError::NotAFile { kind }) => {
                Err(invalid(format!("is {kind}, not a regular file")))
            }
            Err(other) => Err(invalid(other.to_string())),
        }
    }

    /// The policy `reference` resolved to when it was last pulled, its blobs re-hashed and its
    /// signatures verified again with `trust` for the reference's own repository (not the
    /// record's word for it); `pinned` is the digest the configuration requires, if any.
    /// Touches no network.
    pub fn verified(
        &self,
        reference: &str,
        pinned: Option<&str>,
        trust: &Trust,
    ) -> Result<Verified, StoreError> {
        let record = self.record(reference)?.ok_or_else(|| {
            StoreError::NeverPulled(reference.to_string(), self.root.display().to_string())
        })?;
        let repository = repository_of_text(reference);
        if record.repository != repository || record.reference != reference {
            return Err(StoreError::OtherRepository {
                reference: reference.to_string(),
                stored: record.repository.clone(),
            });
        }
        if let Some(pinned) = pinned
            && pinned != record.digest
        {
            return Err(StoreError::OtherDigest {
                reference: reference.to_string(),
                stored: record.digest.clone(),
            });
        }
        let manifest_bytes = self.blob(&record.digest, "manifest", MAX_MANIFEST_BYTES as u64)?;
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|error| StoreError::Layout(reference.to_string(), error))?;
        let layer = manifest
            .policy_layer(MAX_POLICY_BYTES)
            .map_err(|error| StoreError::Layout(reference.to_string(), error))?;
        let wasm = self.blob(&layer.digest, "component", MAX_POLICY_BYTES)?;
        let admitted = trust
            .verify(&record.repository, &record.digest, &record.signatures)
            .map_err(|refused| StoreError::Refused {
                reference: reference.to_string(),
                pinned: format!("{}@{}", record.repository, record.digest),
                refused,
            })?;
        Ok(Verified {
            record,
            wasm,
            signers: admitted.signers,
        })
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, synced, renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::layout::policy_manifest;
    use crate::distribution::signature::{Payload, PrivateKey, PublicKey};

    const REPO: &str = "127.0.0.1:5000/platform/p";

    fn stored(store: &Store, key: &PrivateKey) -> (Record, String) {
        let wasm = b"\0asm\x0d\0\x01\0component bytes".to_vec();
        let (manifest, config) = policy_manifest(&wasm, Default::default());
        store.put_blob(&wasm).unwrap();
        store.put_blob(&config).unwrap();
        let digest = store.put_blob(&manifest.to_bytes()).unwrap();
        let record = Record {
            reference: format!("{REPO}:1"),
            repository: REPO.into(),
            digest: digest.clone(),
            pulled_at: "2026-12-06T00:00:00Z".into(),
            signatures: vec![key.sign(&Payload::new(REPO, &digest, Default::default()))],
            signers: vec!["k".into()],
        };
        store.put_record(&record).unwrap();
        (record, manifest.layers[0].digest.clone())
    }

    fn trust_in(key: &PrivateKey) -> Trust {
        Trust::all_of(vec![PublicKey::from_pem("k", &key.public_pem()).unwrap()])
    }

    #[test]
    fn a_stored_policy_is_verified_again_and_a_tampered_blob_is_never_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let key = PrivateKey::generate();
        let (record, layer) = stored(&store, &key);
        let verified = store
            .verified(&record.reference, None, &trust_in(&key))
            .unwrap();
        assert_eq!(verified.signers, ["k"]);
        assert!(verified.wasm.starts_with(b"\0asm"));
        // A record altered to claim another repository (one a laxer rule covers).
        let mut moved = record.clone();
        moved.repository = "127.0.0.1:5000/lax/p".into();
        store.put_record(&moved).unwrap();
        assert!(matches!(
            store.verified(&record.reference, None, &trust_in(&key)),
            Err(StoreError::OtherRepository { .. })
        ));
        store.put_record(&record).unwrap();
        // Pinned to another digest: the configuration changed since the pull.
        assert!(matches!(
            store.verified(&record.reference, Some("sha256:00"), &trust_in(&key)),
            Err(StoreError::OtherDigest { .. })
        ));
        // Another key only: the stored signature no longer admits it.
        assert!(matches!(
            store.verified(&record.reference, None, &trust_in(&PrivateKey::generate())),
            Err(StoreError::Refused { .. })
        ));
        // One byte of the component changed on disk.
        let path = store.blob_path(&layer).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[9] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let error = store
            .verified(&record.reference, None, &trust_in(&key))
            .unwrap_err()
            .to_string();
        assert!(error.contains("(component) is altered"), "{error}");
        // Removed.
        std::fs::remove_file(&path).unwrap();
        let error = store
            .verified(&record.reference, None, &trust_in(&key))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is missing"), "{error}");
    }

    #[test]
    fn an_oversized_or_foreign_record_is_refused_without_being_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let path = store.record_path("r/p:1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_RECORD_BYTES + 1).unwrap();
        let error = store.record("r/p:1").unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("not a record quiesce wrote"), "{error}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let error = store.record("r/p:1").unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_reference_never_pulled_is_named_with_the_command_that_pulls_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = Store::new(dir.path())
            .verified("r/p:1", None, &trust_in(&PrivateKey::generate()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("quiesce policy pull r/p:1"), "{error}");
    }
}
