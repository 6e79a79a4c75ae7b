//! The configuration of policies from OCI registries (issue 26): which references a host uses,
//! which registries may be spoken to over plain HTTP, where pulled policies are kept, and the
//! trust rules a pulled policy must satisfy before it runs.
//!
//! ```toml
//! [registry]
//! insecure = ["127.0.0.1:5000"]     # plain HTTP for these hosts only; TLS for every other
//! ca_certificates = ["/etc/quiesce/registry-ca.pem"]   # besides the system's CAs
//! store = "/var/lib/quiesce/store"  # the default for root
//!
//! [[registry.policies]]
//! name = "redis-acme"               # the name rules and labels use; the component must say it too
//! reference = "registry.example.com/platform/redis-acme@sha256:4c1d..."
//! # allow_tag = true                # only then may `reference` be a tag (the digest it resolved
//! #                                 # to is what is kept and run)
//!
//! [[trust.keys]]
//! id = "platform"
//! public_key = "/etc/quiesce/keys/platform.pub"   # a PEM file (cosign's `cosign.pub` format)
//!
//! [[trust.rules]]
//! references = ["registry.example.com/platform/*"]
//! all_of = ["platform"]             # or any_of = ["a", "b"] with minimum = 1
//! annotations = { env = "prod" }    # required in each counted signature (`sign -a env=prod`)
//! ```
//!
//! Enforcement is decided by the existence of a matching rule and by nothing else: a policy
//! whose repository no rule covers is refused, every rule that covers it must be satisfied, and
//! no field, present or absent, turns verification off (OPA's GHSA-g2pf-6v5v-qcc8 is the
//! lesson: an optional field that decided whether to verify).

use std::path::PathBuf;

use serde::Deserialize;

/// `[registry]`: where pulled policies come from and where they are kept.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registry hosts (`host[:port]`) spoken to over plain HTTP; every other one over TLS.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// The local store of pulled policies.
    pub store: Option<PathBuf>,
    /// PEM files of certificate authorities trusted besides the system's (a private
    /// registry's own CA).
    #[serde(default)]
    pub ca_certificates: Vec<PathBuf>,
    /// The policies this host uses from registries.
    #[serde(default)]
    pub policies: Vec<PulledPolicy>,
}

/// `[[registry.policies]]`: one policy by reference.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulledPolicy {
    /// The name rules and labels choose it by (the component's own name must be the same).
    pub name: String,
    /// `registry/repository@sha256:...`, or a tag when `allow_tag` says so.
    pub reference: String,
    /// Whether `reference` may be a tag rather than a digest.
    #[serde(default)]
    pub allow_tag: bool,
}

/// `[trust]`: keys and the rules pulled policies must satisfy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Public keys by id.
    #[serde(default)]
    pub keys: Vec<TrustKey>,
    /// Which signatures which references need.
    #[serde(default)]
    pub rules: Vec<TrustRule>,
}

/// `[[trust.keys]]`: one public key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    /// Its id, as rules and reports name it.
    pub id: String,
    /// A PEM file holding an ECDSA P-256 public key (`-----BEGIN PUBLIC KEY-----`), or the PEM
    /// text itself.
    pub public_key: String,
}

/// `[[trust.rules]]`: the signatures the references it covers need.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRule {
    /// Repository globs (`registry/path/*`), matched against a reference without its tag or
    /// digest.
    pub references: Vec<String>,
    /// Every one of these keys must have signed.
    #[serde(default)]
    pub all_of: Vec<String>,
    /// At least `minimum` of these keys must have signed.
    #[serde(default)]
    pub any_of: Vec<String>,
    /// How many of `any_of` (1 unless given).
    pub minimum: Option<usize>,
    /// Annotations every counted signature must carry (`quiesce policy sign -a KEY=VALUE`,
    /// `cosign sign -a KEY=VALUE`).
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl RegistryConfig {
    /// Whether `host` (`host[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure.iter().any(|insecure| insecure == host)
    }

    /// The configured policy of this name.
    pub fn policy(&self, name: &str) -> Option<&PulledPolicy> {
        self.policies.iter().find(|policy| policy.name == name)
    }
}

/// Checks the sections' consistency; the message names the key and the fix.
pub fn check(registry: &RegistryConfig, trust: &TrustConfig) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for (index, policy) in registry.policies.iter().enumerate() {
        if !names.insert(policy.name.as_str()) {
            return Err(format!(
                "registry.policies[{index}]: the name `{}` is given twice; each pulled policy needs its own name",
                policy.name
            ));
        }
        if !policy.reference.contains("@sha256:") && !policy.allow_tag {
            return Err(format!(
                "registry.policies[{index}] (`{}`): the reference `{}` is not pinned by digest; write it as REF@sha256:... (`quiesce policy push` prints it), or set allow_tag = true to follow the tag",
                policy.name, policy.reference
            ));
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for (index, key) in trust.keys.iter().enumerate() {
        if !ids.insert(key.id.as_str()) {
            return Err(format!(
                "trust.keys[{index}]: the id `{}` is given twice",
                key.id
            ));
        }
    }
    for (index, rule) in trust.rules.iter().enumerate() {
        let name = format!("trust.rules[{index}]");
        if rule.references.is_empty() {
            return Err(format!(
                "{name}: `references` is empty; name the repositories it covers, e.g. [\"registry.example.com/platform/*\"]"
            ));
        }
        if rule.all_of.is_empty() && rule.any_of.is_empty() {
            return Err(format!(
                "{name}: give `all_of` or `any_of` (key ids); a rule that needs no signature would trust anything"
            ));
        }
        let minimum = rule.minimum.unwrap_or(1);
        if rule.any_of.is_empty() && rule.minimum.is_some() {
            return Err(format!("{name}: `minimum` counts `any_of`, which is empty"));
        }
        if !rule.any_of.is_empty() && (minimum == 0 || minimum > rule.any_of.len()) {
            return Err(format!(
                "{name}: `minimum` must be between 1 and the {} key(s) of `any_of`; it is {minimum}",
                rule.any_of.len()
            ));
        }
        for (list, ids) in [("all_of", &rule.all_of), ("any_of", &rule.any_of)] {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(twice) = ids.iter().find(|id| !seen.insert(id.as_str())) {
                return Err(format!(
                    "{name}: `{list}` names the key `{twice}` twice; a key counts once"
                ));
            }
        }
        for id in rule.all_of.iter().chain(&rule.any_of) {
            if !ids.contains(id.as_str()) {
                return Err(format!(
                    "{name}: the key `{id}` is not among [[trust.keys]]; add it there with its public_key"
                ));
            }
        }
    }
    Ok(())
}
