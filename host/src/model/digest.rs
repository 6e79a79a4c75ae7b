//! Content digests as OCI and the compile cache write them: `sha256:<hex>`.

use sha2::{Digest, Sha256};

/// The SHA-256 digest of `bytes`, as `sha256:<hex>`.
pub fn content_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
