//! Deciding whether a policy's signatures admit it: the configured keys and rules applied to
//! the signatures found for one manifest digest, offline (no transparency log, no network root
//! of trust: keys are what is trusted).
//!
//! A rule covers a repository by glob. Enforcement is decided by the existence of a covering
//! rule: none covers it, it is refused; every covering rule must be satisfied (one rule never
//! relaxes another). A signature counts for a key when it verifies with the key, its payload is
//! a cosign simple-signing payload of this very digest (a signature copied from another digest
//! is refused, named), and it carries the rule's required annotations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::signature::{KeyError, Payload, PublicKey, SIGNATURE_TYPE, SignedPayload};
use crate::model::config::glob_match;
use crate::model::distribution::{TrustConfig, TrustRule};

/// The keys and rules, ready to verify.
#[derive(Clone, Debug)]
pub struct Trust {
    keys: Vec<PublicKey>,
    rules: Vec<TrustRule>,
}

/// What admitted a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The ids of the keys whose signatures the rules counted.
    pub signers: Vec<String>,
}

/// Why a policy was refused, in words that name what failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// No rule covers the repository.
    #[error(
        "no [[trust.rules]] entry covers {0}: a policy runs only when a rule names the keys that must have signed it"
    )]
    NoRule(String),
    /// No signature at all.
    #[error(
        "it has no signature (nothing under the sha256-<hex>.sig tag of its repository); sign it with `quiesce policy sign` (or `cosign sign --key` with --new-bundle-format=false: cosign 3's default bundle format is not read)"
    )]
    Unsigned,
    /// A covering rule is not satisfied.
    #[error("trust rule {rule} ({references}) is not satisfied: {why}")]
    RuleNotMet {
        /// The rule's index, from 1.
        rule: usize,
        /// Its reference globs.
        references: String,
        /// What is missing, and what was found.
        why: String,
    },
}

/// A key file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("trust key `{id}` ({path}): {problem}")]
pub struct KeyFileError {
    /// The key's id.
    pub id: String,
    /// Its file, or "inline".
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl Trust {
    /// The configured keys (read from their files) and rules.
    pub fn from_config(config: &TrustConfig) -> Result<Trust, KeyFileError> {
        let mut keys = Vec::new();
        for key in &config.keys {
            let inline = key.public_key.contains("-----BEGIN");
            let path = if inline {
                "inline".to_string()
            } else {
                key.public_key.clone()
            };
            let error = |problem: String| KeyFileError {
                id: key.id.clone(),
                path: path.clone(),
                problem,
            };
            let pem = if inline {
                key.public_key.clone()
            } else {
                crate::model::named_file::read_named(Path::new(&key.public_key))
                    .map_err(|io| error(format!("cannot read it: {io}")))?
            };
            let public = PublicKey::from_pem(&key.id, &pem).map_err(|e| error(e.to_string()))?;
            // One key under two ids would count twice towards `minimum`.
            if let Some(same) = keys
                .iter()
                .find(|other: &&PublicKey| other.same_key(&public))
            {
                return Err(error(format!(
                    "the same key as `{}`; each id needs its own key",
                    same.id
                )));
            }
            keys.push(public);
        }
        Ok(Trust {
            keys,
            rules: config.rules.clone(),
        })
    }

    /// Trust in exactly these keys, all of them required, for every repository (`quiesce policy
    /// verify --key`, like `cosign verify --key`).
    pub fn all_of(keys: Vec<PublicKey>) -> Trust {
        let ids = keys.iter().map(|key| key.id.clone()).collect();
        Trust {
            keys,
            rules: vec![TrustRule {
                references: vec!["*".to_string()],
                all_of: ids,
                any_of: Vec::new(),
                minimum: None,
                annotations: BTreeMap::new(),
            }],
        }
    }

    /// Whether `signatures` admit `digest` of `repository` (`registry/path`, no tag).
    pub fn verify(
        &self,
        repository: &str,
        digest: &str,
        signatures: &[SignedPayload],
    ) -> Result<Admitted, Refused> {
        let covering: Vec<(usize, &TrustRule)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| {
                rule.references
                    .iter()
                    .any(|pattern| glob_match(pattern, repository))
            })
            .collect();
        if covering.is_empty() {
            return Err(Refused::NoRule(repository.to_string()));
        }
        if signatures.is_empty() {
            return Err(Refused::Unsigned);
        }
        let found = self.valid_signatures(digest, signatures);
        let mut signers = BTreeSet::new();
        for (index, rule) in covering {
            let counted: BTreeSet<&str> = found
                .iter()
                .filter(|signature| signature.for_digest)
                .filter(|signature| {
                    rule.annotations
                        .iter()
                        .all(|(key, value)| signature.annotations.get(key) == Some(value))
                })
                .map(|signature| signature.key.as_str())
                .collect();
            let refused = |why: String| Refused::RuleNotMet {
                rule: index + 1,
                references: rule.references.join(", "),
                why,
            };
            let missing: Vec<&str> = rule
                .all_of
                .iter()
                .map(String::as_str)
                .filter(|id| !counted.contains(id))
                .collect();
            if !missing.is_empty() {
                return Err(refused(format!(
                    "it needs signatures by all of [{}]; missing: {}; {}",
                    rule.all_of.join(", "),
                    missing.join(", "),
                    describe(&found, signatures.len(), &rule.annotations)
                )));
            }
            let minimum = rule.minimum.unwrap_or(1);
            let any: Vec<&str> = rule
                .any_of
                .iter()
                .map(String::as_str)
                .filter(|id| counted.contains(id))
                .collect();
            if !rule.any_of.is_empty() && any.len() < minimum {
                return Err(refused(format!(
                    "it needs {minimum} of [{}], found {}; {}",
                    rule.any_of.join(", "),
                    any.len(),
                    describe(&found, signatures.len(), &rule.annotations)
                )));
            }
            signers.extend(rule.all_of.iter().cloned());
            signers.extend(any.iter().map(|id| id.to_string()));
        }
        Ok(Admitted {
            signers: signers.into_iter().collect(),
        })
    }

    /// The signatures that verify with a configured key, whatever their digest, each with the
    /// digest it names (one of another digest proves nothing: it is kept to be named).
    fn valid_signatures(&self, digest: &str, signatures: &[SignedPayload]) -> Vec<Found> {
        let mut found = Vec::new();
        for signed in signatures {
            let Some(payload) = Payload::parse(&signed.payload) else {
                continue;
            };
            if payload.critical.kind != SIGNATURE_TYPE {
                continue;
            }
            for key in self.keys.iter().filter(|key| key.verifies(signed)) {
                found.push(Found {
                    key: key.id.clone(),
                    for_digest: payload.critical.image.docker_manifest_digest == digest,
                    names: payload.critical.image.docker_manifest_digest.clone(),
                    annotations: payload.annotations(),
                });
            }
        }
        found
    }
}

/// A valid signature by a configured key.
#[derive(Clone, Debug)]
struct Found {
    key: String,
    for_digest: bool,
    names: String,
    annotations: BTreeMap<String, String>,
}

/// What was found, for a refusal's message.
fn describe(found: &[Found], total: usize, required: &BTreeMap<String, String>) -> String {
    let (this, other): (Vec<&Found>, Vec<&Found>) =
        found.iter().partition(|found| found.for_digest);
    let mut text = if this.is_empty() {
        format!("none of the {total} signature(s) verifies with a configured key for this digest")
    } else {
        let keys: BTreeSet<&str> = this.iter().map(|found| found.key.as_str()).collect();
        format!(
            "signed by [{}]",
            keys.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    for other in other {
        text.push_str(&format!(
            "; a signature by `{}` names another digest ({}): copied from another policy, refused",
            other.key, other.names
        ));
    }
    if !required.is_empty() {
        let wanted: Vec<String> = required.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!(
            "; a signature counts only with the annotations {}",
            wanted.join(", ")
        ));
    }
    text
}

/// A key error, for callers that read keys themselves.
pub fn key_error(id: &str, path: &str, error: KeyError) -> KeyFileError {
    KeyFileError {
        id: id.to_string(),
        path: path.to_string(),
        problem: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::signature::PrivateKey;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const REPO: &str = "127.0.0.1:5000/platform/redis";

    fn rule(all_of: &[&str], any_of: &[&str], minimum: Option<usize>) -> TrustRule {
        TrustRule {
            references: vec!["127.0.0.1:5000/platform/*".into()],
            all_of: all_of.iter().map(|id| id.to_string()).collect(),
            any_of: any_of.iter().map(|id| id.to_string()).collect(),
            minimum,
            annotations: BTreeMap::new(),
        }
    }

    fn keys(names: &[&str]) -> (Vec<PrivateKey>, Vec<PublicKey>) {
        let private: Vec<PrivateKey> = names.iter().map(|_| PrivateKey::generate()).collect();
        let public = names
            .iter()
            .zip(&private)
            .map(|(name, key)| PublicKey::from_pem(name, &key.public_pem()).unwrap())
            .collect();
        (private, public)
    }

    fn signed(key: &PrivateKey, digest: &str, annotations: &[(&str, &str)]) -> SignedPayload {
        let annotations = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sign(&Payload::new(REPO, digest, annotations))
    }

    #[test]
    fn enforcement_follows_the_covering_rule_and_nothing_else() {
        let (private, public) = keys(&["a"]);
        let trust = Trust {
            keys: public,
            rules: vec![rule(&["a"], &[], None)],
        };
        let good = signed(&private[0], DIGEST, &[]);
        assert_eq!(
            trust.verify(REPO, DIGEST, std::slice::from_ref(&good)),
            Ok(Admitted {
                signers: vec!["a".into()]
            })
        );
        // A repository no rule covers is refused, signed or not.
        assert!(matches!(
            trust.verify("127.0.0.1:5000/other/redis", DIGEST, &[good]),
            Err(Refused::NoRule(_))
        ));
        assert!(matches!(
            trust.verify(REPO, DIGEST, &[]),
            Err(Refused::Unsigned)
        ));
    }

    #[test]
    fn a_wrong_key_a_copied_signature_and_a_missing_second_key_are_each_named() {
        let (private, public) = keys(&["a", "b"]);
        let (stranger, _) = keys(&["x"]);
        let trust = Trust {
            keys: public,
            rules: vec![rule(&["a", "b"], &[], None)],
        };
        let wrong = trust
            .verify(REPO, DIGEST, &[signed(&stranger[0], DIGEST, &[])])
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("none of the 1 signature(s) verifies"),
            "{wrong}"
        );
        let copied = trust
            .verify(
                REPO,
                DIGEST,
                &[
                    signed(&private[0], OTHER, &[]),
                    signed(&private[1], DIGEST, &[]),
                ],
            )
            .unwrap_err()
            .to_string();
        assert!(copied.contains("missing: a"), "{copied}");
        assert!(
            copied.contains("names another digest (sha256:2222"),
            "{copied}"
        );
        let one_of_two = trust
            .verify(REPO, DIGEST, &[signed(&private[0], DIGEST, &[])])
            .unwrap_err()
            .to_string();
        assert!(one_of_two.contains("missing: b"), "{one_of_two}");
        assert!(one_of_two.contains("signed by [a]"), "{one_of_two}");
        let both = [
            signed(&private[0], DIGEST, &[]),
            signed(&private[1], DIGEST, &[]),
        ];
        assert_eq!(
            trust.verify(REPO, DIGEST, &both).unwrap().signers,
            ["a", "b"]
        );
    }

    #[test]
    fn any_of_counts_and_annotations_are_required_of_each_counted_signature() {
        let (private, public) = keys(&["a", "b", "c"]);
        let mut needs_prod = rule(&[], &["a", "b", "c"], Some(2));
        needs_prod.annotations.insert("env".into(), "prod".into());
        let trust = Trust {
            keys: public,
            rules: vec![needs_prod],
        };
        let one_prod_one_dev = [
            signed(&private[0], DIGEST, &[("env", "prod")]),
            signed(&private[1], DIGEST, &[("env", "dev")]),
        ];
        let refused = trust
            .verify(REPO, DIGEST, &one_prod_one_dev)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("needs 2 of [a, b, c], found 1"),
            "{refused}"
        );
        assert!(refused.contains("env=prod"), "{refused}");
        let two_prod = [
            signed(&private[0], DIGEST, &[("env", "prod")]),
            signed(&private[2], DIGEST, &[("env", "prod"), ("team", "db")]),
        ];
        assert_eq!(
            trust.verify(REPO, DIGEST, &two_prod).unwrap().signers,
            ["a", "c"]
        );
    }

    #[test]
    fn one_key_under_two_ids_is_refused_since_it_would_count_twice() {
        let key = PrivateKey::generate();
        let config = TrustConfig {
            keys: ["a", "b"]
                .map(|id| crate::model::distribution::TrustKey {
                    id: id.into(),
                    public_key: key.public_pem(),
                })
                .to_vec(),
            rules: Vec::new(),
        };
        let error = Trust::from_config(&config).unwrap_err().to_string();
        assert!(error.contains("the same key as `a`"), "{error}");
    }

    #[test]
    fn every_covering_rule_must_hold() {
        let (private, public) = keys(&["a", "b"]);
        let mut narrow = rule(&["b"], &[], None);
        narrow.references = vec![REPO.into()];
        let trust = Trust {
            keys: public,
            rules: vec![rule(&["a"], &[], None), narrow],
        };
        let refused = trust
            .verify(REPO, DIGEST, &[signed(&private[0], DIGEST, &[])])
            .unwrap_err();
        assert!(
            matches!(refused, Refused::RuleNotMet { rule: 2, .. }),
            "{refused}"
        );
    }
}
