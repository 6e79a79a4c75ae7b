//! Which policy, settings and budget each service gets, and what the operator should be warned
//! about before anything is stopped.
//!
//! Policy selection, first match wins: a `[[rules]]` entry of the config; the container label
//! `quiesce.policy`; a policy's own image patterns (auto-selection hints); the `default`
//! policy. Settings come from the rule, and the label `quiesce.settings` (a JSON object)
//! overrides them key by key. Every problem is collected, so one run reports all of them.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;
use serde_json::{Map, Value};

use crate::config::{Config, Rule, glob_match};
use crate::policy::{LoadedPolicy, PolicyCatalog};

/// The label naming a container's policy.
pub const POLICY_LABEL: &str = "quiesce.policy";
/// The label holding a container's settings (JSON object).
pub const SETTINGS_LABEL: &str = "quiesce.settings";
/// The budget of a service when neither a rule, the config nor the command line sets one.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(300);

/// The choice for one service.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The policy.
    pub policy: Arc<LoadedPolicy>,
    /// Why this policy: `config rule 2`, `label quiesce.policy`, `image pattern nginx*`, `default`.
    pub reason: String,
    /// The settings, as JSON.
    pub settings: String,
    /// The budget.
    pub budget: Duration,
}

fn rule_matches(rule: &Rule, facts: &ServiceFacts) -> bool {
    let name_ok = rule
        .name
        .as_ref()
        .is_none_or(|pattern| glob_match(pattern, &facts.name));
    let image_ok = rule
        .image
        .as_ref()
        .is_none_or(|pattern| image_matches(pattern, &facts.image));
    let label_ok = rule
        .label
        .as_ref()
        .is_none_or(|selector| label_matches(selector, facts));
    name_ok && image_ok && label_ok
}

/// Matches an image pattern against the full reference and against its last path component
/// (so `nginx*` matches `docker.io/library/nginx:1.25`).
pub fn image_matches(pattern: &str, image: &str) -> bool {
    let short = image.rsplit('/').next().unwrap_or(image);
    glob_match(pattern, image) || glob_match(pattern, short)
}

/// `KEY` (present) or `KEY=VALUE` (equal).
pub fn label_matches(selector: &str, facts: &ServiceFacts) -> bool {
    match selector.split_once('=') {
        Some((key, value)) => facts.label(key) == Some(value),
        None => facts.label(selector).is_some(),
    }
}

/// Chooses the policy, settings and budget for `facts`. `default_budget` comes from the command
/// line or the config.
pub fn select(
    facts: &ServiceFacts,
    config: &Config,
    catalog: &PolicyCatalog,
    default_budget: Duration,
) -> Result<Selection, String> {
    let service = &facts.name;
    let find = |name: &str, source: &str| {
        catalog.get(name).cloned().ok_or_else(|| {
            format!(
                "{service}: policy `{name}` (from {source}) is not loaded; `quiesce policy list` shows the available ones"
            )
        })
    };
    let rule = config
        .rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule_matches(rule, facts));
    let (policy, reason) = if let Some((index, rule)) = rule {
        let source = format!("config rule {}", index + 1);
        (find(&rule.policy, &source)?, source)
    } else if let Some(name) = facts.label(POLICY_LABEL) {
        let source = format!("label {POLICY_LABEL}");
        (find(name, &source)?, source)
    } else if let Some((policy, pattern)) = catalog.policies().find_map(|policy| {
        policy
            .info()
            .images
            .iter()
            .find(|pattern| image_matches(pattern, &facts.image))
            .map(|pattern| (policy.clone(), pattern.clone()))
    }) {
        (policy, format!("image pattern {pattern}"))
    } else {
        (find("default", "the default")?, "default".to_string())
    };

    let mut settings = match rule.and_then(|(_, rule)| rule.settings.as_ref()) {
        Some(table) => serde_json::to_value(table)
            .map_err(|error| format!("{service}: settings of the config rule: {error}"))?,
        None => Value::Object(Map::new()),
    };
    if let Some(text) = facts.label(SETTINGS_LABEL) {
        let Ok(Value::Object(overrides)) = serde_json::from_str::<Value>(text) else {
            return Err(format!(
                "{service}: label {SETTINGS_LABEL} must hold a JSON object, e.g. {{\"grace_period\": \"30s\"}}; it holds {text:?}"
            ));
        };
        if let Value::Object(base) = &mut settings {
            base.extend(overrides);
        }
    }
    let settings = settings.to_string();
    policy.validate_settings(&settings).map_err(|error| {
        format!(
            "{service}: invalid settings {settings} for policy `{}`: {}",
            policy.name(),
            match &error.failure {
                crate::policy::CallFailure::Refused { message } => message.clone(),
                other => other.to_string(),
            }
        )
    })?;
    let budget = rule
        .and_then(|(_, rule)| rule.budget)
        .unwrap_or(default_budget);
    Ok(Selection {
        policy,
        reason,
        settings,
        budget,
    })
}

/// Warnings about a service's PID 1: signals reach PID 1 only, so a shell or a dumb-init in
/// group mode may keep the graceful signal from the service (the cinder `--single-child`
/// lesson).
pub fn pid1_warnings(facts: &ServiceFacts) -> Vec<String> {
    let Some(program) = facts.command.first() else {
        return Vec::new();
    };
    let base = program.rsplit('/').next().unwrap_or(program);
    let args = &facts.command[1..];
    let mut warnings = Vec::new();
    if facts.init {
        return warnings;
    }
    if matches!(base, "sh" | "bash" | "dash" | "ash" | "zsh") && args.iter().any(|a| a == "-c") {
        warnings.push(format!(
            "PID 1 is a shell (`{base} -c ...`): it may not pass signals on to the service; start the service with `exec` or run the container with --init"
        ));
    }
    if base == "dumb-init" && !args.iter().any(|a| a == "--single-child" || a == "-c") {
        warnings.push(
            "PID 1 is dumb-init in group mode: it sends the signal to every process of the group, so worker processes may die before the parent drains them; use `dumb-init --single-child`".to_string(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(command: &[&str]) -> ServiceFacts {
        ServiceFacts {
            name: "svc".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..ServiceFacts::default()
        }
    }

    #[test]
    fn warns_when_pid1_will_not_forward_signals() {
        assert_eq!(
            pid1_warnings(&facts(&["/bin/sh", "-c", "exec nginx"])).len(),
            1
        );
        assert_eq!(
            pid1_warnings(&facts(&["dumb-init", "cinder-volume"])).len(),
            1
        );
        assert!(
            pid1_warnings(&facts(&["dumb-init", "--single-child", "cinder-volume"])).is_empty()
        );
        assert!(pid1_warnings(&facts(&["nginx", "-g", "daemon off;"])).is_empty());
        let mut with_init = facts(&["/bin/sh", "-c", "x"]);
        with_init.init = true;
        assert!(pid1_warnings(&with_init).is_empty());
    }

    #[test]
    fn image_patterns_match_the_short_name_too() {
        assert!(image_matches("nginx*", "docker.io/library/nginx:1.25"));
        assert!(image_matches("*/nginx:*", "docker.io/library/nginx:1.25"));
        assert!(!image_matches("nginx*", "docker.io/library/postgres:16"));
    }

    #[test]
    fn label_selectors_match_presence_or_value() {
        let mut facts = facts(&[]);
        facts.labels = vec![("tier".into(), "web".into())];
        assert!(label_matches("tier", &facts));
        assert!(label_matches("tier=web", &facts));
        assert!(!label_matches("tier=db", &facts));
        assert!(!label_matches("team", &facts));
    }
}
