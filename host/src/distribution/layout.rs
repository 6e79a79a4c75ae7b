//! What a policy and its signatures look like in a registry.
//!
//! A policy is an OCI image manifest in the layout of the WebAssembly component ecosystem (CNCF
//! TAG Runtime's "Wasm OCI artifact"; `wkg oci push`): config `application/vnd.wasm.config.v0+json`,
//! exactly one layer `application/wasm`, the policy's metadata as the manifest's annotations.
//! Written deterministically (no timestamp, fixed field order), so the same file pushed twice has
//! the same digest.
//!
//! Its signatures are cosign's: under the tag `sha256-<hex>.sig` of the same repository, an OCI
//! image manifest whose layers (`application/vnd.dev.cosign.simplesigning.v1+json`) are the
//! payloads, each with its signature in the `dev.cosignproject.cosign/signature` annotation; a
//! new signature is a layer appended.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::digest::content_digest;

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (a multi-platform image: not a policy).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker v2 manifest (the same shape; some registries convert to it).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config of a Wasm OCI artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The one layer of a Wasm OCI artifact: the component.
pub const WASM_LAYER: &str = "application/wasm";
/// The config of a cosign signature manifest.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A cosign signature layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The largest manifest read (a policy's is under a kilobyte; cosign appends at most 1000
/// signature layers of ~300 bytes).
pub const MAX_MANIFEST_BYTES: usize = 512 << 10;

/// An OCI image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST`] (absent in some registries' answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A blob as a manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What it is.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest that is not a quiesce policy, in words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Not JSON, or not a manifest.
    #[error("the manifest is not an OCI image manifest: {0}")]
    NotAManifest(String),
    /// An image index (several platforms).
    #[error(
        "the reference is an image index (several manifests), not a policy; push the policy with `quiesce policy push`"
    )]
    Index,
    /// A config of another kind of artifact.
    #[error(
        "its config is `{0}`, not a Wasm component's ({WASM_CONFIG}): this is not a policy (a container image?)"
    )]
    ForeignConfig(String),
    /// Not exactly one layer.
    #[error("it has {0} layers; a policy has exactly one ({WASM_LAYER})")]
    LayerCount(usize),
    /// A layer of another media type.
    #[error("its layer is `{0}`, not {WASM_LAYER}")]
    ForeignLayer(String),
    /// A layer larger than a policy may be.
    #[error("its layer is {size} bytes; a policy may be at most {limit} bytes")]
    TooLarge {
        /// The layer's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A digest that is not `sha256:<64 hex>`.
    #[error("the digest `{0}` is not sha256:<64 hexadecimal digits>")]
    Digest(String),
}

impl Manifest {
    /// Parses a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, LayoutError> {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
            && value.get("manifests").is_some()
        {
            return Err(LayoutError::Index);
        }
        serde_json::from_slice(bytes).map_err(|error| LayoutError::NotAManifest(error.to_string()))
    }

    /// The manifest's bytes as pushed (deterministic).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The policy layer of a manifest that is a policy of at most `limit` bytes.
    pub fn policy_layer(&self, limit: u64) -> Result<&Descriptor, LayoutError> {
        if let Some(media_type) = &self.media_type
            && media_type != OCI_MANIFEST
            && media_type != DOCKER_MANIFEST
        {
            return Err(if media_type == OCI_INDEX {
                LayoutError::Index
            } else {
                LayoutError::NotAManifest(format!("media type `{media_type}`"))
            });
        }
        if self.config.media_type != WASM_CONFIG {
            return Err(LayoutError::ForeignConfig(self.config.media_type.clone()));
        }
        let [layer] = self.layers.as_slice() else {
            return Err(LayoutError::LayerCount(self.layers.len()));
        };
        if layer.media_type != WASM_LAYER {
            return Err(LayoutError::ForeignLayer(layer.media_type.clone()));
        }
        check_digest(&layer.digest)?;
        if layer.size > limit {
            return Err(LayoutError::TooLarge {
                size: layer.size,
                limit,
            });
        }
        Ok(layer)
    }

    /// The signature layers (payload descriptors with their signatures).
    pub fn signature_layers(&self) -> impl Iterator<Item = (&Descriptor, &str)> {
        self.layers.iter().filter_map(|layer| {
            let signature = layer.annotations.get(SIGNATURE_ANNOTATION)?;
            (layer.media_type == SIMPLE_SIGNING && check_digest(&layer.digest).is_ok())
                .then_some((layer, signature.as_str()))
        })
    }
}

impl Descriptor {
    /// The descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
            digest: content_digest(bytes),
            annotations: BTreeMap::new(),
        }
    }
}

/// A policy's manifest and config blob, for its component `wasm` and its `annotations`.
pub fn policy_manifest(wasm: &[u8], annotations: BTreeMap<String, String>) -> (Manifest, Vec<u8>) {
    let layer = Descriptor::of(WASM_LAYER, wasm);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer.digest],
    }))
    .unwrap_or_default();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::of(WASM_CONFIG, &config),
        layers: vec![layer],
        annotations,
    };
    (manifest, config)
}

/// The signature manifest with `payload` and its `signature` appended to `existing` (or alone),
/// and its config blob. A payload already there with the same signature is not added twice.
pub fn signature_manifest(
    existing: Option<&Manifest>,
    payload: &[u8],
    signature: &str,
) -> (Manifest, Vec<u8>) {
    let mut layer = Descriptor::of(SIMPLE_SIGNING, payload);
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_string(), signature.to_string());
    let mut layers: Vec<Descriptor> = existing
        .map(|manifest| manifest.layers.clone())
        .unwrap_or_default();
    if !layers.contains(&layer) {
        layers.push(layer);
    }
    // cosign's config: an empty image config whose rootfs lists the payloads.
    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.digest.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .unwrap_or_default();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::of(OCI_IMAGE_CONFIG, &config),
        layers,
        annotations: BTreeMap::new(),
    };
    (manifest, config)
}

/// The tag of `digest`'s signatures: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Checks that `digest` is `sha256:<64 lower-case hex>` (a store path is made of it).
pub fn check_digest(digest: &str) -> Result<&str, LayoutError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)) =>
        {
            Ok(hex)
        }
        _ => Err(LayoutError::Digest(digest.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_manifest_is_deterministic_and_reads_back_as_a_policy() {
        let annotations = BTreeMap::from([("org.opencontainers.image.title".into(), "p".into())]);
        let (first, config) = policy_manifest(b"\0asm component", annotations.clone());
        let (second, _) = policy_manifest(b"\0asm component", annotations);
        assert_eq!(first.to_bytes(), second.to_bytes());
        assert_eq!(first.config.digest, content_digest(&config));
        let parsed = Manifest::parse(&first.to_bytes()).unwrap();
        assert_eq!(parsed.policy_layer(1 << 20).unwrap().size, 14);
        assert!(matches!(
            parsed.policy_layer(10),
            Err(LayoutError::TooLarge { size: 14, .. })
        ));
    }

    #[test]
    fn what_is_not_a_policy_is_named() {
        let (manifest, _) = policy_manifest(b"wasm", BTreeMap::new());
        let mut two = manifest.clone();
        two.layers.push(two.layers[0].clone());
        assert_eq!(two.policy_layer(1 << 20), Err(LayoutError::LayerCount(2)));
        let mut image = manifest.clone();
        image.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        assert!(matches!(
            image.policy_layer(1 << 20),
            Err(LayoutError::ForeignConfig(_))
        ));
        let mut tar = manifest;
        tar.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        assert!(matches!(
            tar.policy_layer(1 << 20),
            Err(LayoutError::ForeignLayer(_))
        ));
        assert_eq!(
            Manifest::parse(br#"{"schemaVersion":2,"manifests":[]}"#),
            Err(LayoutError::Index)
        );
    }

    #[test]
    fn cosigns_own_signature_manifest_reads_and_a_signature_appends_to_it() {
        let real = include_bytes!("../../tests/fixtures/cosign/cosign-1.13.1-sig-manifest.json");
        let manifest = Manifest::parse(real).unwrap();
        // Written back byte for byte: the same field order as cosign's.
        assert_eq!(manifest.to_bytes(), real.to_vec());
        assert_eq!(manifest.signature_layers().count(), 1);
        let (appended, _) = signature_manifest(Some(&manifest), b"{}", "c2ln");
        assert_eq!(appended.signature_layers().count(), 2);
        let (again, _) = signature_manifest(Some(&appended), b"{}", "c2ln");
        assert_eq!(
            again.layers.len(),
            2,
            "the same signature is not added twice"
        );
    }

    #[test]
    fn signature_tags_and_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            signature_tag(&digest),
            format!("sha256-{}.sig", "a".repeat(64))
        );
        assert!(check_digest(&digest).is_ok());
        assert!(check_digest("sha256:../../etc/passwd").is_err());
        assert!(check_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
    }
}
