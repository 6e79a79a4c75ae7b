//! Policies for a fleet (issue 26): OCI registries, cosign-compatible signatures, trust rules
//! and the local store, so a platform team pushes a policy once, signs it, and every host pulls
//! it pinned by digest and runs it only when the keys it trusts have signed it.
//!
//! - `layout`: what a policy and its signatures look like in a registry (the CNCF Wasm
//!   artifact layout; cosign's `sha256-<hex>.sig` manifests);
//! - `signature`: the simple-signing payload and ECDSA P-256 keys and signatures;
//! - `trust`: the configured keys and rules applied to a digest's signatures, offline;
//! - `registry`: the OCI client (TLS unless a host is listed insecure; the docker CLI's
//!   credentials);
//! - `store`: pulled policies on disk, content-addressed, re-verified at every load;
//! - `operations`: push, sign, fetch (verify) and store;
//! - `pulled`: the configured registry policies in a catalog, or withheld with their reason.
//!
//! The stop path never touches the network: a stop (and `quiesce run`) loads pulled policies
//! from the store only.

pub mod layout;
pub mod operations;
pub mod pulled;
pub mod registry;
pub mod signature;
pub mod store;
pub mod trust;
