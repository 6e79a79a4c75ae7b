//! What `quiesce policy push`, `sign`, `pull` and `verify` do, over a registry, the trust
//! rules and the store.
//!
//! A pull stores nothing until the whole policy is fetched, every byte checked against its
//! digest and the signatures admitted by the trust rules; then the blobs are written and only
//! last the reference's record is replaced. So a pull that fails at any point (the registry
//! down, a tag moved to something unsigned, a layer too large) leaves the last verified
//! version as it was.

use std::collections::BTreeMap;

use oci_client::Reference;
use quiesce_policy_sdk::PolicyInfo;

use super::layout::{Manifest, policy_manifest, signature_manifest};
use super::registry::{Registry, RegistryError, repository_of, signature_reference};
use super::signature::{Payload, PrivateKey, SignedPayload};
use super::store::{Record, Store, StoreError};
use super::trust::{Admitted, Refused, Trust};
use crate::model::units::timestamp;
use crate::policy::MAX_POLICY_BYTES;

/// The annotation naming the contract version a pushed policy was built against.
pub const CONTRACT_ANNOTATION: &str = "dev.quiesce.policy.contract";
/// The annotation listing a pushed policy's image patterns.
pub const IMAGES_ANNOTATION: &str = "dev.quiesce.policy.images";

/// Why a distribution command failed.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not a policy.
    #[error("{0}: {1}")]
    Layout(String, super::layout::LayoutError),
    /// The trust rules refused it.
    #[error("{pinned} is refused: {refused}")]
    Refused {
        /// `registry/repository@sha256:...`: what the reference resolved to.
        pinned: String,
        /// Why.
        refused: Refused,
    },
}

/// A policy fetched and admitted, not stored yet.
pub struct Fetched {
    /// `registry/repository`.
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The config blob.
    pub config: Vec<u8>,
    /// The component.
    pub wasm: Vec<u8>,
    /// The signatures of the digest.
    pub signatures: Vec<SignedPayload>,
    /// What admitted it.
    pub admitted: Admitted,
}

/// The manifest annotations of a policy: its metadata, in the OCI annotation keys.
pub fn policy_annotations(info: &PolicyInfo) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("org.opencontainers.image.title".into(), info.name.clone()),
        (
            "org.opencontainers.image.version".into(),
            info.version.clone(),
        ),
        (
            "org.opencontainers.image.description".into(),
            info.description.clone(),
        ),
        (CONTRACT_ANNOTATION.into(), info.contract_version.clone()),
        (IMAGES_ANNOTATION.into(), info.images.join(",")),
    ])
}

/// Pushes the component `wasm` of the policy `info` under `reference` (a tag); returns the
/// digest, the same for the same file and metadata.
pub async fn push(
    registry: &Registry,
    reference: &Reference,
    wasm: &[u8],
    info: &PolicyInfo,
) -> Result<String, DistributionError> {
    let (manifest, config) = policy_manifest(wasm, policy_annotations(info));
    Ok(registry
        .push(reference, &manifest, &[&config, wasm])
        .await?)
}

/// Signs the manifest `reference` resolves to with `key`, appending the signature to those of
/// its digest (cosign's tag scheme); returns the digest signed.
pub async fn sign(
    registry: &Registry,
    reference: &Reference,
    key: &PrivateKey,
    annotations: BTreeMap<String, String>,
) -> Result<String, DistributionError> {
    let (manifest, _, digest) = registry
        .manifest(reference)
        .await?
        .ok_or_else(|| RegistryError::NotFound(reference.whole()))?;
    manifest
        .policy_layer(MAX_POLICY_BYTES)
        .map_err(|error| DistributionError::Layout(reference.whole(), error))?;
    let signed = key.sign(&Payload::new(
        &repository_of(reference),
        &digest,
        annotations,
    ));
    let (_, existing) = registry.signatures(reference, &digest).await?;
    let (signatures, config) =
        signature_manifest(existing.as_ref(), &signed.payload, &signed.signature);
    registry
        .push(
            &signature_reference(reference, &digest),
            &signatures,
            &[&config, &signed.payload],
        )
        .await?;
    Ok(digest)
}

/// Fetches the policy `reference` names with its signatures, and admits it by `trust`.
pub async fn fetch(
    registry: &Registry,
    reference: &Reference,
    trust: &Trust,
) -> Result<Fetched, DistributionError> {
    let (manifest, manifest_bytes, digest) = registry
        .manifest(reference)
        .await?
        .ok_or_else(|| RegistryError::NotFound(reference.whole()))?;
    let layer = manifest
        .policy_layer(MAX_POLICY_BYTES)
        .map_err(|error| DistributionError::Layout(reference.whole(), error))?
        .clone();
    let repository = repository_of(reference);
    let (signatures, _) = registry.signatures(reference, &digest).await?;
    // Verified before the component is even downloaded.
    let admitted = trust
        .verify(&repository, &digest, &signatures)
        .map_err(|refused| DistributionError::Refused {
            pinned: format!("{repository}@{digest}"),
            refused,
        })?;
    let config = registry.blob(reference, &manifest.config, 64 << 10).await?;
    let wasm = registry.blob(reference, &layer, MAX_POLICY_BYTES).await?;
    Ok(Fetched {
        repository,
        digest,
        manifest: manifest_bytes,
        config,
        wasm,
        signatures,
        admitted,
    })
}

/// Stores a fetched policy as what `reference` (as the user wrote it) resolves to: the blobs
/// first, the record last.
pub fn store(store: &Store, reference: &str, fetched: &Fetched) -> Result<Record, StoreError> {
    for blob in [&fetched.wasm, &fetched.config, &fetched.manifest] {
        store.put_blob(blob)?;
    }
    let record = Record {
        reference: reference.to_string(),
        repository: fetched.repository.clone(),
        digest: fetched.digest.clone(),
        pulled_at: timestamp(std::time::SystemTime::now()),
        signatures: fetched.signatures.clone(),
        signers: fetched.admitted.signers.clone(),
    };
    store.put_record(&record)?;
    Ok(record)
}

/// The manifest of a stored or fetched policy, parsed (for its annotations).
pub fn manifest_annotations(manifest: &[u8]) -> BTreeMap<String, String> {
    Manifest::parse(manifest)
        .map(|manifest| manifest.annotations)
        .unwrap_or_default()
}
