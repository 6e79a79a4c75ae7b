//! Talking to an OCI registry (oci-client): pushing a policy and its signatures, resolving a
//! reference to a digest, fetching a policy's component and the signatures of a digest.
//!
//! TLS always, except for the hosts the configuration names under `[registry] insecure` (never
//! a silent fall back from HTTPS to HTTP). Credentials are found where the docker CLI finds
//! them (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `auths`, `credsStore`,
//! `credHelpers`); none found means anonymous. Every size is checked against its cap before a
//! blob is read, and every blob's bytes against their digest after.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::layout::{
    DOCKER_MANIFEST, Descriptor, MAX_MANIFEST_BYTES, Manifest, OCI_INDEX, OCI_MANIFEST,
    signature_tag,
};
use super::signature::{MAX_PAYLOAD_BYTES, SignedPayload};
use crate::model::digest::content_digest;
use crate::model::distribution::RegistryConfig;

/// The most signatures read for one digest (cosign appends up to 1000; a policy has a few).
pub const MAX_SIGNATURES: usize = 100;
/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may stay silent while answering.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A registry client.
pub struct Registry {
    client: Client,
}

/// What went wrong talking to a registry, naming the reference.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client could not be set up (a CA certificate file).
    #[error("{0}")]
    Setup(String),
    /// Not a reference.
    #[error("`{0}` is not an OCI reference (REGISTRY/REPOSITORY:TAG or ...@sha256:...): {1}")]
    Reference(String, String),
    /// What the reference names is not a manifest quiesce reads.
    #[error("{0}: {1}")]
    NotAPolicy(String, super::layout::LayoutError),
    /// Nothing under the reference.
    #[error("{0}: not found in the registry")]
    NotFound(String),
    /// The registry refused or failed.
    #[error("{reference}: {message}")]
    Failed {
        /// The reference.
        reference: String,
        /// The registry's or the connection's error.
        message: String,
    },
    /// A blob or manifest larger than its cap.
    #[error("{reference}: {what} is larger than {limit} bytes; refused before reading it")]
    TooLarge {
        /// The reference.
        reference: String,
        /// What.
        what: String,
        /// The cap.
        limit: u64,
    },
    /// Bytes that do not hash to their digest.
    #[error("{reference}: the registry sent {what} whose bytes hash to {actual}, not {expected}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// What.
        what: String,
        /// What it should be.
        expected: String,
        /// What it is.
        actual: String,
    },
}

/// Parses a reference.
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    text.parse::<Reference>()
        .map_err(|error| RegistryError::Reference(text.to_string(), error.to_string()))
}

/// `registry/repository` of a reference (what signatures and trust rules name).
pub fn repository_of(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// `registry/repository` of a reference as written, without a parser (the stop path's):
/// the tag and digest dropped, Docker Hub's defaults added as the docker CLI adds them
/// (`redis` is `docker.io/library/redis`); the same as [`repository_of`] of the parsed
/// reference.
pub fn repository_of_text(reference: &str) -> String {
    let name = reference
        .split_once('@')
        .map_or(reference, |(name, _)| name);
    let name = match name.rsplit_once(':') {
        Some((before, tag)) if !tag.contains('/') => before,
        _ => name,
    };
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match (first.is_empty(), is_registry) {
        (true, _) => format!("docker.io/library/{rest}"),
        (false, true) => name.to_string(),
        (false, false) => format!("docker.io/{name}"),
    }
}

impl Registry {
    /// A client speaking TLS to every registry but `config`'s insecure ones, trusting the
    /// system's certificate authorities and `config`'s.
    pub fn new(config: &RegistryConfig) -> Result<Registry, RegistryError> {
        let mut extra_root_certificates = Vec::new();
        for path in &config.ca_certificates {
            let data = std::fs::read(path).map_err(|error| {
                RegistryError::Setup(format!(
                    "cannot read the CA certificate {} ([registry] ca_certificates): {error}",
                    path.display()
                ))
            })?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        // `try_from`, not `new`: `new` would fall back to a default client on an error.
        let client = Client::try_from(ClientConfig {
            protocol: if config.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(config.insecure.clone())
            },
            extra_root_certificates,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        })
        .map_err(|error| {
            RegistryError::Setup(format!(
                "cannot set up the registry client ({error}); check [registry] ca_certificates"
            ))
        })?;
        Ok(Registry { client })
    }

    /// The credentials the docker CLI would use for `reference`'s registry.
    fn credentials(reference: &Reference) -> RegistryAuth {
        let server = match reference.resolve_registry() {
            "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
            other => other,
        };
        match docker_credential::get_credential(server) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                RegistryAuth::Basic(user, password)
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                RegistryAuth::Bearer(token)
            }
            Err(_) => RegistryAuth::Anonymous,
        }
    }

    async fn authenticate(
        &self,
        reference: &Reference,
        operation: RegistryOperation,
    ) -> Result<RegistryAuth, RegistryError> {
        let auth = Registry::credentials(reference);
        self.client
            .auth(reference, &auth, operation)
            .await
            .map_err(|error| failed(reference, error))?;
        Ok(auth)
    }

    /// Pushes `bytes` as a blob of `reference`'s repository.
    async fn push_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<(), RegistryError> {
        let digest = content_digest(bytes);
        if self
            .client
            .blob_exists(reference, &digest)
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        self.client
            .push_blob(reference, bytes.to_vec(), &digest)
            .await
            .map(drop)
            .map_err(|error| failed(reference, error))
    }

    /// Pushes a manifest with its blobs (`blobs`: each referenced blob's bytes) under
    /// `reference` (a tag); returns the manifest's digest.
    pub async fn push(
        &self,
        reference: &Reference,
        manifest: &Manifest,
        blobs: &[&[u8]],
    ) -> Result<String, RegistryError> {
        self.authenticate(reference, RegistryOperation::Push)
            .await?;
        for blob in blobs {
            self.push_blob(reference, blob).await?;
        }
        let bytes = manifest.to_bytes();
        let content_type = manifest
            .media_type
            .as_deref()
            .unwrap_or(OCI_MANIFEST)
            .parse()
            .map_err(|_| failed_text(reference, "invalid media type"))?;
        self.client
            .push_manifest_raw(reference, bytes.clone(), content_type)
            .await
            .map_err(|error| failed(reference, error))?;
        Ok(content_digest(&bytes))
    }

    /// The manifest `reference` names and its digest, checked against the reference's digest
    /// when it has one; `None` when the registry has nothing under it.
    pub async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<(Manifest, Vec<u8>, String)>, RegistryError> {
        let auth = self
            .authenticate(reference, RegistryOperation::Pull)
            .await?;
        let answer = self
            .client
            .pull_manifest_raw(
                reference,
                &auth,
                &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX],
            )
            .await;
        let (bytes, _) = match answer {
            Ok(answer) => answer,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(failed(reference, error)),
        };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                reference: reference.whole(),
                what: "its manifest".into(),
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        // The digest is the bytes' own (not a header's word for it).
        let digest = content_digest(&bytes);
        if let Some(expected) = reference.digest()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                reference: reference.whole(),
                what: "a manifest".into(),
                expected: expected.to_string(),
                actual: digest,
            });
        }
        let manifest = Manifest::parse(&bytes)
            .map_err(|error| RegistryError::NotAPolicy(reference.whole(), error))?;
        Ok(Some((manifest, bytes.to_vec(), digest)))
    }

    /// The blob `descriptor` names, refused before reading when its size exceeds `limit`, and
    /// after when its bytes do not match its digest or size.
    pub async fn blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if descriptor.size > limit {
            return Err(RegistryError::TooLarge {
                reference: reference.whole(),
                what: format!("the blob {}", descriptor.digest),
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        let writer = CappedWriter {
            bytes: &mut bytes,
            limit: descriptor.size,
        };
        self.client
            .pull_blob(reference, descriptor.digest.as_str(), writer)
            .await
            .map_err(|error| failed(reference, error))?;
        let actual = content_digest(&bytes);
        if actual != descriptor.digest {
            return Err(RegistryError::DigestMismatch {
                reference: reference.whole(),
                what: format!("the blob {}", descriptor.digest),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The signatures stored for `digest` in `reference`'s repository (cosign's
    /// `sha256-<hex>.sig` tag), and that manifest; none when there is no such tag.
    pub async fn signatures(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<(Vec<SignedPayload>, Option<Manifest>), RegistryError> {
        let tag = signature_reference(reference, digest);
        let Some((manifest, _, _)) = self.manifest(&tag).await? else {
            return Ok((Vec::new(), None));
        };
        let mut signatures = Vec::new();
        for (layer, signature) in manifest.signature_layers().take(MAX_SIGNATURES) {
            let payload = self.blob(&tag, layer, MAX_PAYLOAD_BYTES).await?;
            signatures.push(SignedPayload {
                payload,
                signature: signature.to_string(),
            });
        }
        Ok((signatures, Some(manifest)))
    }
}

/// The reference of `digest`'s signature manifest in `reference`'s repository.
pub fn signature_reference(reference: &Reference, digest: &str) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        signature_tag(digest),
    )
}

/// Whether the registry said "nothing here".
fn is_not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|error| {
                matches!(
                    error.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::NameUnknown
                )
            })
        }
        _ => false,
    }
}

fn failed(reference: &Reference, error: OciDistributionError) -> RegistryError {
    let message = match &error {
        OciDistributionError::RequestError(request) => {
            let mut text = request.to_string();
            let mut source = std::error::Error::source(request);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            format!(
                "cannot reach the registry ({text}); check the address, or list a plain-HTTP registry under [registry] insecure"
            )
        }
        other => other.to_string(),
    };
    failed_text(reference, &message)
}

fn failed_text(reference: &Reference, message: &str) -> RegistryError {
    RegistryError::Failed {
        reference: reference.whole(),
        message: message.to_string(),
    }
}

/// Collects a blob, failing as soon as it grows past the size its descriptor declared.
struct CappedWriter<'a> {
    bytes: &'a mut Vec<u8>,
    limit: u64,
}

impl tokio::io::AsyncWrite for CappedWriter<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if (this.bytes.len() + buf.len()) as u64 > this.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the blob is larger than its declared {} bytes",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_as_written_names_the_repository_the_parser_names() {
        for text in [
            "127.0.0.1:5000/platform/redis:1",
            "127.0.0.1:5000/platform/redis@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "registry.example.com/a/b/c:1.4@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "localhost/p",
            "redis:7",
            "acme/redis",
            "localhost:5000/p:latest",
        ] {
            let parsed = parse_reference(text).unwrap();
            assert_eq!(repository_of_text(text), repository_of(&parsed), "{text}");
        }
    }
}
