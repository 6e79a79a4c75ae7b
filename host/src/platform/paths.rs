//! Where quiesce keeps files on a host that are not the operator's to choose each time.

/// The cache of root's system units (no `HOME`); the Debian package creates it, mode 0700.
pub const SYSTEM_CACHE_DIR: &str = "/var/cache/quiesce";
