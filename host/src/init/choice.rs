//! Which policy `quiesce run` stops its command with, and the settings it gets: the pod's
//! `quiesce.policy`, else `--policy`, else the built-in whose image patterns match best (ranked
//! as `quiesce stop` ranks them), else `default`; nothing is compiled to choose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::distribution::{PulledPolicy, RegistryConfig, TrustConfig};
use crate::policy::{BUILTIN_NATIVE, BUILTIN_POLICIES, builtin_policy};
use crate::prepare::selection::{
    self, POLICY_LABEL, SETTINGS_LABEL, SettingsNotAnObject, overlap_warning, ranked_image_matches,
};

/// Where the chosen policy comes from.
#[derive(Clone, Debug)]
pub enum PolicyOrigin {
    /// A built-in: its component.
    Builtin(&'static [u8]),
    /// `<name>.wasm` in the policies directory.
    File(PathBuf),
    /// A policy of the configuration's `[[registry.policies]]`, taken from the store (an image
    /// build step or an init container pulled it) and verified there; never from the network.
    Pulled(Box<(PulledPolicy, Pulled)>),
}

/// The registry policies `quiesce run` may use: the configuration's, its trust rules, and
/// the store they were pulled into.
#[derive(Clone, Debug, Default)]
pub struct Pulled {
    /// `[registry]`.
    pub registry: RegistryConfig,
    /// `[trust]`.
    pub trust: TrustConfig,
    /// The store.
    pub store: PathBuf,
}

/// The chosen policy.
#[derive(Clone, Debug)]
pub struct PolicyChoice {
    /// Its name.
    pub name: String,
    /// Why it was chosen, in words.
    pub reason: String,
    /// Its component.
    pub origin: PolicyOrigin,
    /// `pattern-overlap` when several built-ins' image patterns matched.
    pub overlap: Option<crate::model::warning::Warning>,
}

/// Chooses the policy: the pod's `quiesce.policy`, else `explicit` (`--policy`,
/// `QUIESCE_POLICY`), else a built-in whose image patterns match `image` or the command's name,
/// else `default`. A registry policy of that name (`pulled`) comes first, then a policy of
/// `policies_dir` (`<name>.wasm`), then a built-in. Nothing is compiled.
pub fn choose_policy(
    explicit: Option<&str>,
    pod: &BTreeMap<String, String>,
    image: &str,
    command_name: &str,
    policies_dir: Option<&Path>,
    pulled: Option<&Pulled>,
) -> Result<PolicyChoice, UnknownPolicy> {
    let mut overlap = None;
    let (name, reason) = if let Some(name) = pod.get(POLICY_LABEL) {
        (name.clone(), format!("the pod's {POLICY_LABEL}"))
    } else if let Some(name) = explicit {
        (name.to_string(), "--policy".to_string())
    } else {
        // The built-ins' image patterns, ranked as `quiesce stop` ranks them: the image
        // first, else the command's name.
        let matched = [image, command_name]
            .into_iter()
            .filter(|candidate| !candidate.is_empty())
            .find_map(|candidate| {
                let matches = ranked_image_matches(
                    BUILTIN_NATIVE.iter().map(|builtin| {
                        ((), builtin.name.to_string(), true, (builtin.info)().images)
                    }),
                    candidate,
                );
                overlap = overlap_warning(candidate, &matches);
                matches.into_iter().next()
            });
        match matched {
            Some(found) => (found.name, format!("image pattern {}", found.pattern)),
            None => ("default".to_string(), "default".to_string()),
        }
    };
    let file = policies_dir
        .map(|dir| dir.join(format!("{name}.wasm")))
        .filter(|file| file.is_file());
    let registry = pulled.and_then(|pulled| Some((pulled.registry.policy(&name)?, pulled)));
    let origin = match (registry, file) {
        (Some((policy, pulled)), _) => {
            PolicyOrigin::Pulled(Box::new((policy.clone(), pulled.clone())))
        }
        (None, Some(file)) => PolicyOrigin::File(file),
        (None, None) => match builtin_policy(&name) {
            Some(builtin) => PolicyOrigin::Builtin(builtin.wasm),
            None => {
                let builtins: Vec<&str> = BUILTIN_POLICIES
                    .iter()
                    .map(|builtin| builtin.name)
                    .collect();
                let files: Vec<String> = policies_dir
                    .and_then(|dir| crate::policy::wasm_files(dir).ok())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|file| Some(file.file_stem()?.to_string_lossy().into_owned()))
                    .collect();
                let guess = crate::policy::nearest_name(
                    &name,
                    builtins
                        .iter()
                        .copied()
                        .chain(files.iter().map(String::as_str)),
                )
                .map(str::to_string);
                return Err(UnknownPolicy {
                    name,
                    chosen_by: reason,
                    nearest: guess,
                    builtins: builtins.join(", "),
                    policies_dir: policies_dir.map(Path::to_path_buf),
                });
            }
        },
    };
    Ok(PolicyChoice {
        name,
        reason,
        origin,
        overlap,
    })
}

/// A policy `quiesce run` was asked for that is neither a built-in nor a file of the policies
/// directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown policy `{name}` (from {chosen_by}): {}the built-ins are {builtins}; a policy of the policies directory{} must be in `{name}.wasm` there",
    nearest.as_ref().map(|near| format!("did you mean `{near}`? ")).unwrap_or_default(),
    policies_dir.as_ref().map(|dir| format!(" ({})", dir.display())).unwrap_or_default()
)]
pub struct UnknownPolicy {
    /// The name asked for.
    pub name: String,
    /// What asked for it (`--policy`, the pod's `quiesce.policy`).
    pub chosen_by: String,
    /// The nearest known name, if one is near.
    pub nearest: Option<String>,
    /// The built-ins, comma-separated.
    pub builtins: String,
    /// The policies directory searched.
    pub policies_dir: Option<PathBuf>,
}

/// The settings: `base` (`--settings`, `QUIESCE_SETTINGS`), overridden key by key by the pod's
/// `quiesce.settings`. Both must be JSON objects.
pub fn merge_settings(
    base: Option<&str>,
    pod: &BTreeMap<String, String>,
) -> Result<String, SettingsNotAnObject> {
    let label = format!("the pod's {SETTINGS_LABEL}");
    selection::merge_settings(
        base.map(|text| ("--settings", text)),
        pod.get(SETTINGS_LABEL)
            .map(|text| (label.as_str(), text.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_names_the_policy_before_the_flag_and_patterns_pick_by_command() {
        let mut pod = BTreeMap::new();
        let chosen = choose_policy(None, &pod, "", "nginx", None, None).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.reason.as_str()),
            ("nginx", "image pattern nginx*")
        );
        let chosen = choose_policy(Some("postgres"), &pod, "", "nginx", None, None).unwrap();
        assert_eq!(chosen.name, "postgres");
        pod.insert(POLICY_LABEL.to_string(), "redis".to_string());
        assert_eq!(
            choose_policy(Some("postgres"), &pod, "", "x", None, None)
                .unwrap()
                .name,
            "redis"
        );
        let chosen = choose_policy(None, &BTreeMap::new(), "", "my-app", None, None).unwrap();
        assert_eq!(chosen.name, "default");
        let error = choose_policy(Some("nope"), &BTreeMap::new(), "", "x", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown policy `nope`") && error.contains("nginx"),
            "{error}"
        );
        let error = choose_policy(Some("ngnix"), &BTreeMap::new(), "", "x", None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean `nginx`?"), "{error}");
    }

    /// Issue 25's example: `run` chose `redis` (the first built-in whose pattern matched) where
    /// `stop` chose `sidekiq` (the most specific pattern). Both rank alike now, and say so.
    #[test]
    fn run_chooses_the_same_built_in_as_stop_for_an_image_two_patterns_match() {
        let image = "acme/redis-sidekiq:1";
        let chosen = choose_policy(None, &BTreeMap::new(), image, "x", None, None).unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.reason.as_str()),
            ("sidekiq", "image pattern *sidekiq*")
        );
        let overlap = chosen.overlap.expect("a pattern-overlap warning");
        assert_eq!(overlap.code, "pattern-overlap");
        assert!(overlap.message.contains("redis*"), "{}", overlap.message);
    }

    #[test]
    fn the_pods_settings_override_the_flags_key_by_key() {
        let mut pod = BTreeMap::new();
        pod.insert(SETTINGS_LABEL.to_string(), r#"{"b": 3}"#.to_string());
        let merged = merge_settings(Some(r#"{"a": 1, "b": 2}"#), &pod).unwrap();
        assert_eq!(merged, r#"{"a":1,"b":3}"#);
        assert!(merge_settings(Some("[1]"), &BTreeMap::new()).is_err());
    }
}
