//! cosign-compatible signatures: the simple-signing payload that names a manifest digest, and
//! ECDSA P-256 over SHA-256 on its exact bytes (ASN.1 DER, base64 in the layer's
//! `dev.cosignproject.cosign/signature` annotation), with keys as PEM (`cosign.pub`'s format).
//!
//! The payload is what cosign writes (sigstore/sigstore `pkg/signature/payload`: Go's
//! `json.Marshal` of a struct, so this field order and no trailing newline):
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"REGISTRY/REPOSITORY"},
//!  "image":{"docker-manifest-digest":"sha256:..."},"type":"cosign container image signature"},
//!  "optional":null}
//! ```
//!
//! `optional` holds the signer's annotations (`sign -a KEY=VALUE`), or null. As in cosign, what
//! binds a signature to a policy is `docker-manifest-digest`; `docker-reference` is written but
//! not checked (a policy copied to another registry keeps its signatures).

use std::collections::BTreeMap;

use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};

use crate::model::digest::content_digest;

/// The `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The largest signature payload read (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 10;

/// The simple-signing payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// What is signed.
    pub critical: Critical,
    /// The signer's annotations (cosign allows any JSON value; quiesce writes strings).
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The payload's `critical` part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository signed.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: Image,
    /// [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `REGISTRY/REPOSITORY`.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// One signature as it travels: the payload's bytes and the base64 of the DER signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPayload {
    /// The payload, exactly as signed.
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// Standard base64 of the ASN.1 DER ECDSA signature.
    pub signature: String,
}

/// Why a key or a signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM public key of a P-256 curve.
    #[error(
        "not an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----, the format of cosign.pub): {0}"
    )]
    Public(String),
    /// cosign's password-encrypted private key, without its password.
    #[error(
        "this is cosign's password-encrypted private key: set COSIGN_PASSWORD to its password (empty for a key made with an empty one), as for `cosign sign`"
    )]
    PasswordNeeded,
    /// cosign's encrypted key that could not be opened.
    #[error("cannot open cosign's encrypted private key: {0}")]
    Encrypted(String),
    /// Not a PEM private key of a P-256 curve.
    #[error("not an ECDSA P-256 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----): {0}")]
    Private(String),
}

impl Payload {
    /// The payload that signs `digest` of `repository`, with the signer's `annotations`.
    pub fn new(repository: &str, digest: &str, annotations: BTreeMap<String, String>) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: (!annotations.is_empty()).then(|| {
                annotations
                    .into_iter()
                    .map(|(key, value)| (key, serde_json::Value::String(value)))
                    .collect()
            }),
        }
    }

    /// The bytes cosign would sign for the same payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a payload; `None` if it is not a simple-signing payload.
    pub fn parse(bytes: &[u8]) -> Option<Payload> {
        serde_json::from_slice(bytes).ok()
    }

    /// The signer's annotations, each value as text (a string as it is, any other value as
    /// its JSON).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.optional
            .iter()
            .flatten()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect()
    }
}

/// A public key and the id it is known by.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// The id (a `[[trust.keys]]` id, or the file named on the command line).
    pub id: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a PEM public key.
    pub fn from_pem(id: &str, pem: &str) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|error| KeyError::Public(error.to_string()))?;
        Ok(PublicKey {
            id: id.to_string(),
            key,
        })
    }

    /// Whether `signed` is this key's signature of its payload.
    pub fn verifies(&self, signed: &SignedPayload) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signed.signature.trim())
        else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        self.key.verify(&signed.payload, &signature).is_ok()
    }

    /// Whether `other` is the same key (under whatever id).
    pub fn same_key(&self, other: &PublicKey) -> bool {
        self.key == other.key
    }

    /// The key's fingerprint: the digest of its DER encoding, shortened.
    pub fn fingerprint(&self) -> String {
        let der = self
            .key
            .to_public_key_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default();
        content_digest(&der)
            .chars()
            .take("sha256:".len() + 16)
            .collect()
    }
}

/// A private key that signs.
pub struct PrivateKey {
    key: SigningKey,
}

impl PrivateKey {
    /// Reads a private key: PKCS#8 PEM, or cosign's password-encrypted key (`cosign
    /// generate-key-pair`'s `cosign.key`) with `password`.
    pub fn from_pem(pem: &str, password: Option<&str>) -> Result<PrivateKey, KeyError> {
        if pem.contains("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
            || pem.contains("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
        {
            let password = password.ok_or(KeyError::PasswordNeeded)?;
            let der = cosign_decrypt(pem, password).map_err(KeyError::Encrypted)?;
            let key = SigningKey::from_pkcs8_der(&der)
                .map_err(|error| KeyError::Private(error.to_string()))?;
            return Ok(PrivateKey { key });
        }
        let key = SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|error| KeyError::Private(error.to_string()))?;
        Ok(PrivateKey { key })
    }

    /// A new random key.
    pub fn generate() -> PrivateKey {
        PrivateKey {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    /// Its public key as PEM (`-----BEGIN PUBLIC KEY-----`, as `cosign.pub`).
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Signs `payload`.
    pub fn sign(&self, payload: &Payload) -> SignedPayload {
        let bytes = payload.to_bytes();
        let signature: Signature = self.key.sign(&bytes);
        SignedPayload {
            payload: bytes,
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_der()),
        }
    }
}

/// The most memory scrypt may be asked for by a key file (cosign's keys ask 64 MiB: N = 2^16,
/// r = 8); a hostile file asking more is refused before any is allocated.
const MAX_SCRYPT_BYTES: u64 = 256 << 20;

/// The PKCS#8 DER inside cosign's encrypted key: the PEM body is a JSON envelope
/// (`{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox",
/// "nonce"},"ciphertext"}`, go-securesystemslib's `encrypted` package), the key derived with
/// scrypt into 32 bytes, the ciphertext opened with XSalsa20-Poly1305.
fn cosign_decrypt(pem: &str, password: &str) -> Result<Vec<u8>, String> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let base64 = base64::engine::general_purpose::STANDARD;
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    let envelope: serde_json::Value = base64
        .decode(body)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or("its body is not the base64 of a JSON envelope")?;
    let text = |path: &[&str]| {
        path.iter()
            .try_fold(&envelope, |value, key| value.get(key))
            .and_then(serde_json::Value::as_str)
    };
    let number = |key: &str| envelope["kdf"]["params"][key].as_u64();
    if text(&["kdf", "name"]) != Some("scrypt")
        || text(&["cipher", "name"]) != Some("nacl/secretbox")
    {
        return Err("it is not scrypt with nacl/secretbox".into());
    }
    let (Some(n), Some(r), Some(p)) = (number("N"), number("r"), number("p")) else {
        return Err("its scrypt parameters are missing".into());
    };
    if !n.is_power_of_two()
        || n < 2
        || 128 * r.saturating_mul(n).saturating_mul(p.max(1)) > MAX_SCRYPT_BYTES
    {
        return Err(format!(
            "its scrypt parameters (N = {n}, r = {r}, p = {p}) are refused"
        ));
    }
    let decode = |path: &[&str]| {
        text(path)
            .and_then(|value| base64.decode(value).ok())
            .ok_or_else(|| format!("its {} is not base64", path.join(".")))
    };
    let (salt, nonce, ciphertext) = (
        decode(&["kdf", "salt"])?,
        decode(&["cipher", "nonce"])?,
        decode(&["ciphertext"])?,
    );
    if nonce.len() != 24 {
        return Err("its nonce is not 24 bytes".into());
    }
    let params = scrypt::Params::new(
        n.trailing_zeros() as u8,
        u32::try_from(r).map_err(|_| "r is too large")?,
        u32::try_from(p).map_err(|_| "p is too large")?,
        32,
    )
    .map_err(|error| error.to_string())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).map_err(|e| e.to_string())?;
    crypto_secretbox::XSalsa20Poly1305::new(&key.into())
        .decrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            ciphertext.as_slice(),
        )
        .map_err(|_| "wrong password (or a damaged key)".to_string())
}

/// Base64 for bytes in the store's records.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature from sigstore-rs's tests (`src/cosign/signature_layers.rs`, commit
    /// 038e36ae; a cosign simple-signing layer of `registry-testing.svc.lan/busybox`) and its
    /// key (`src/crypto/mod.rs`): bytes quiesce did not make, in cosign's format.
    const FOREIGN_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu
OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==
-----END PUBLIC KEY-----";

    fn foreign_signature() -> SignedPayload {
        SignedPayload {
            payload: include_bytes!("../../tests/fixtures/cosign/payload.json").to_vec(),
            signature: include_str!("../../tests/fixtures/cosign/signature.b64")
                .trim()
                .to_string(),
        }
    }

    #[test]
    fn a_signature_in_cosigns_format_made_elsewhere_verifies_and_names_its_digest() {
        let key = PublicKey::from_pem("sigstore-rs", FOREIGN_KEY).unwrap();
        let signed = foreign_signature();
        assert!(key.verifies(&signed));
        let payload = Payload::parse(&signed.payload).unwrap();
        assert_eq!(payload.critical.kind, SIGNATURE_TYPE);
        assert!(
            payload
                .critical
                .image
                .docker_manifest_digest
                .starts_with("sha256:f3cfc9d0")
        );
        // One byte changed: refused.
        let mut tampered = signed.clone();
        tampered.payload[10] ^= 1;
        assert!(!key.verifies(&tampered));
    }

    #[test]
    fn the_payload_cosign_signed_is_the_payload_quiesce_writes_for_the_same_digest() {
        let foreign = foreign_signature().payload;
        let parsed = Payload::parse(&foreign).unwrap();
        let ours = Payload::new(
            &parsed.critical.identity.docker_reference,
            &parsed.critical.image.docker_manifest_digest,
            BTreeMap::new(),
        );
        assert_eq!(ours.to_bytes(), foreign);
    }

    #[test]
    fn the_payload_is_written_byte_for_byte_as_cosign_writes_it() {
        let payload = Payload::new("127.0.0.1:5000/p/redis", "sha256:ab", BTreeMap::new());
        assert_eq!(
            String::from_utf8(payload.to_bytes()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/p/redis"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#
        );
        let annotated = Payload::new(
            "r/p",
            "sha256:ab",
            BTreeMap::from([("env".to_string(), "prod".to_string())]),
        );
        assert!(
            String::from_utf8(annotated.to_bytes())
                .unwrap()
                .ends_with(r#""optional":{"env":"prod"}}"#)
        );
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let signer = PrivateKey::generate();
        let other = PrivateKey::generate();
        let signed = signer.sign(&Payload::new("r/p", "sha256:ab", BTreeMap::new()));
        let key = PublicKey::from_pem("mine", &signer.public_pem()).unwrap();
        let stranger = PublicKey::from_pem("other", &other.public_pem()).unwrap();
        assert!(key.verifies(&signed));
        assert!(!stranger.verifies(&signed));
        // The PEM round trip keeps the key.
        let again = PrivateKey::from_pem(&signer.to_pem(), None).unwrap();
        assert_eq!(again.public_pem(), signer.public_pem());
    }

    #[test]
    fn a_key_cosign_generated_and_encrypted_signs_once_opened_with_its_password() {
        // `cosign generate-key-pair` with an empty password (sigstore-rs's test data).
        let pem = include_str!(
            "../../tests/fixtures/cosign/cosign-generated-encrypted-empty-password.key"
        );
        assert!(matches!(
            PrivateKey::from_pem(pem, None),
            Err(KeyError::PasswordNeeded)
        ));
        let wrong = PrivateKey::from_pem(pem, Some("not it"))
            .err()
            .unwrap()
            .to_string();
        assert!(wrong.contains("wrong password"), "{wrong}");
        let key = PrivateKey::from_pem(pem, Some("")).unwrap();
        let signed = key.sign(&Payload::new("r/p", "sha256:ab", BTreeMap::new()));
        let public = PublicKey::from_pem("cosign", &key.public_pem()).unwrap();
        assert!(public.verifies(&signed));
    }

    #[test]
    fn keys_in_other_formats_are_named() {
        assert!(matches!(
            PrivateKey::from_pem(
                "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----",
                Some("")
            ),
            Err(KeyError::Encrypted(_))
        ));
        assert!(matches!(
            PublicKey::from_pem("k", "not a key"),
            Err(KeyError::Public(_))
        ));
    }
}
