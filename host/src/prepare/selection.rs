//! Which policy, settings and budget each service gets, and what the operator should be warned
//! about before anything is stopped.
//!
//! Policy selection, first match wins: a `[[rules]]` entry of the config; the container label
//! `quiesce.policy`; a policy's own image patterns (auto-selection hints); the `default`
//! policy. Settings come from the rule, and the label `quiesce.settings` (a JSON object)
//! overrides them key by key. The budget: the label `quiesce.budget`, else the rule's `budget`,
//! else `--budget`, else the config's `budget`, else 5 minutes (the run's deadline bounds them
//! all). Every problem is collected, so one run reports all of them.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;
use serde_json::Value;

use crate::model::config::{Config, Rule, glob_match, image_matches, label_matches};
use crate::model::process::{Process, SignalTarget, pid1_and_children, program};
use crate::model::warning::{Warning, WarningCode};
use crate::policy::{CatalogEntry, LoadedPolicy, PolicyCatalog};

/// The label naming a container's policy.
pub const POLICY_LABEL: &str = "quiesce.policy";
/// The label holding a container's settings (JSON object).
pub const SETTINGS_LABEL: &str = "quiesce.settings";
/// The label holding a container's budget (`90s`, `15m`, `1h 30m`).
pub const BUDGET_LABEL: &str = "quiesce.budget";
/// The label saying where a container's signals go: `pid1` or `child`.
pub const SIGNAL_TARGET_LABEL: &str = "quiesce.signal-target";
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
    /// Where the policy's signals go.
    pub signal_target: SignalTarget,
    /// What the operator should know about the choice (overlapping image patterns).
    pub warnings: Vec<Warning>,
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

/// How specific an image pattern is: its characters other than wildcards. A pattern of
/// wildcards only (`*`) matches every image.
fn specificity(pattern: &str) -> usize {
    pattern.chars().filter(|c| !matches!(c, '*' | '?')).count()
}

/// One policy whose image patterns match an image, by its most specific matching pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageMatch<T> {
    /// What the caller keeps for the policy (its catalog entry, its name...).
    pub policy: T,
    /// The policy's name.
    pub name: String,
    /// True for a built-in.
    pub builtin: bool,
    /// The matching pattern.
    pub pattern: String,
}

/// The policies among `policies` (each: what the caller keeps, its name, whether it is a
/// built-in, its image patterns) whose patterns match `image`, best first: the most specific
/// matching pattern wins; at equal specificity a built-in wins over a file policy (a file cannot
/// take a built-in's images over by its name's order), then the name decides. Patterns that
/// match everything are ignored ([`catch_all_warnings`]). `quiesce stop` (by the catalog) and
/// `quiesce run` (by the built-ins) choose with it, so the same image gets the same policy.
pub fn ranked_image_matches<T>(
    policies: impl IntoIterator<Item = (T, String, bool, Vec<String>)>,
    image: &str,
) -> Vec<ImageMatch<T>> {
    let mut candidates: Vec<(usize, ImageMatch<T>)> = policies
        .into_iter()
        .filter_map(|(policy, name, builtin, patterns)| {
            let pattern = patterns
                .into_iter()
                .filter(|pattern| specificity(pattern) > 0 && image_matches(pattern, image))
                .max_by_key(|pattern| specificity(pattern))?;
            Some((
                specificity(&pattern),
                ImageMatch {
                    policy,
                    name,
                    builtin,
                    pattern,
                },
            ))
        })
        .collect();
    candidates.sort_by(|(a_specificity, a), (b_specificity, b)| {
        (b_specificity, b.builtin)
            .cmp(&(a_specificity, a.builtin))
            .then_with(|| a.name.cmp(&b.name))
    });
    candidates.into_iter().map(|(_, found)| found).collect()
}

/// When several policies match `image` (`matches` best first), the `pattern-overlap` warning
/// saying which one was chosen and why.
pub fn overlap_warning<T>(image: &str, matches: &[ImageMatch<T>]) -> Option<Warning> {
    let chosen = matches.first()?;
    if matches.len() < 2 {
        return None;
    }
    let all: Vec<String> = matches
        .iter()
        .map(|found| format!("`{}` (policy {})", found.pattern, found.name))
        .collect();
    Some(Warning::new(
        WarningCode::PatternOverlap,
        format!(
            "image {image} matches {}: {} chosen (the most specific pattern wins; at equal specificity a built-in, then the first name); choose with the label {POLICY_LABEL} or a config rule",
            all.join(", "),
            chosen.name
        ),
    ))
}

/// The policy of the catalog whose image patterns match `image` best
/// ([`ranked_image_matches`]), and the pattern; a warning when several match. Only metadata is
/// read: no policy is loaded to be chosen.
fn by_image<'a>(
    catalog: &'a PolicyCatalog,
    image: &str,
    warnings: &mut Vec<Warning>,
) -> Option<(&'a CatalogEntry, String)> {
    let matches = ranked_image_matches(
        catalog.entries().map(|policy| {
            (
                policy,
                policy.name().to_string(),
                policy.is_builtin(),
                policy.info().images.clone(),
            )
        }),
        image,
    );
    warnings.extend(overlap_warning(image, &matches));
    let chosen = matches.into_iter().next()?;
    Some((chosen.policy, chosen.pattern))
}

/// Warnings about policies whose image patterns match every image: such a pattern is ignored
/// for automatic selection (unlabelled containers keep the `default` policy).
pub fn catch_all_warnings(catalog: &PolicyCatalog) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for policy in catalog.entries() {
        for pattern in policy.info().images.iter().filter(|p| specificity(p) == 0) {
            warnings.push(Warning::new(
                WarningCode::PatternMatchesEverything,
                format!(
                    "policy {}'s image pattern `{pattern}` matches every image: it is ignored for automatic selection (unlabelled containers keep `default`; to change that, name the file policy default.wasm, or use a config rule)",
                    policy.name()
                ),
            ));
        }
    }
    warnings
}

/// The catalog's policy `name` (chosen by `source`); a withheld registry policy is replaced by
/// the conservative `default`, with a warning: a policy that cannot be verified never stops a
/// service from being stopped.
fn find<'c>(
    catalog: &'c PolicyCatalog,
    name: &str,
    source: &str,
    warnings: &mut Vec<Warning>,
) -> Result<&'c CatalogEntry, SelectionProblem> {
    // A withheld registry policy first: a built-in or file of the same name is not what the
    // configuration asked for.
    if let Some(why) = catalog.withheld(name)
        && let Some(default) = catalog.entry("default")
    {
        warnings.push(Warning::new(
            WarningCode::PolicyWithheld,
            format!(
                "policy `{name}` (from {source}) is withheld, so the service gets the conservative `default` sequence: {why}"
            ),
        ));
        return Ok(default);
    }
    if let Some(entry) = catalog.entry(name) {
        return Ok(entry);
    }
    Err(SelectionProblem::NotLoaded {
        policy: name.to_string(),
        chosen_by: source.to_string(),
        why: catalog.not_found(name),
    })
}

/// Chooses the policy, settings and budget for `facts`. `default_budget` comes from the command
/// line or the config.
pub fn select(
    facts: &ServiceFacts,
    config: &Config,
    catalog: &PolicyCatalog,
    default_budget: Duration,
) -> Result<Selection, SelectionError> {
    let service = &facts.name;
    let refused = |problem: SelectionProblem| SelectionError {
        service: service.clone(),
        problem,
    };
    let mut warnings = Vec::new();
    let rule = config
        .rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule_matches(rule, facts));
    let (policy, reason) = if let Some((index, rule)) = rule {
        let source = format!("config rule {}", index + 1);
        (
            find(catalog, &rule.policy, &source, &mut warnings).map_err(refused)?,
            source,
        )
    } else if let Some(name) = facts.label(POLICY_LABEL) {
        let source = format!("label {POLICY_LABEL}");
        (
            find(catalog, name, &source, &mut warnings).map_err(refused)?,
            source,
        )
    } else if let Some((policy, pattern)) = by_image(catalog, &facts.image, &mut warnings) {
        (policy, format!("image pattern {pattern}"))
    } else {
        (
            find(catalog, "default", "the default", &mut warnings).map_err(refused)?,
            "default".to_string(),
        )
    };
    // Only the chosen policy is loaded (a built-in from its precompiled code).
    let policy = policy.load().map_err(|error| {
        refused(SelectionProblem::LoadFailed {
            policy: policy.name().to_string(),
            chosen_by: reason.clone(),
            error,
        })
    })?;

    let rule_settings = rule
        .and_then(|(_, rule)| rule.settings.as_ref())
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| refused(SelectionProblem::RuleSettings(error.to_string())))?;
    let label = format!("label {SETTINGS_LABEL}");
    // The settings were written for the policy withheld, not for its stand-in.
    let withheld = warnings
        .iter()
        .any(|warning| warning.code == WarningCode::PolicyWithheld.as_str());
    let settings = if withheld {
        "{}".to_string()
    } else {
        merge_settings(
            rule_settings
                .as_deref()
                .map(|text| ("the config rule", text)),
            facts
                .label(SETTINGS_LABEL)
                .map(|text| (label.as_str(), text)),
        )
        .map_err(|error| refused(SelectionProblem::NotAnObject(error)))?
    };
    policy.validate_settings(&settings).map_err(|error| {
        // The policy's words, on one line (they reach a terminal).
        refused(SelectionProblem::InvalidSettings(
            crate::model::text::safe(&crate::policy::invalid_settings(
                policy.name(),
                &settings,
                &error.failure.refusal(),
            ))
            .into_owned(),
        ))
    })?;
    let budget = match facts.label(BUDGET_LABEL) {
        Some(text) => label_budget(text).map_err(refused)?,
        None => rule
            .and_then(|(_, rule)| rule.budget)
            .unwrap_or(default_budget),
    };
    let signal_target = match facts.label(SIGNAL_TARGET_LABEL) {
        Some(text) => SignalTarget::parse(text)
            .ok_or_else(|| refused(SelectionProblem::SignalTargetLabel(text.to_string())))?,
        None => rule
            .and_then(|(_, rule)| rule.signal_target)
            .unwrap_or_default(),
    };
    Ok(Selection {
        policy,
        reason,
        settings,
        budget,
        signal_target,
        warnings,
    })
}

/// Settings that are not a JSON object.
#[derive(Debug, thiserror::Error)]
#[error(
    "the settings from {from} must be a JSON object, e.g. {{\"grace_period\": \"30s\"}}; got {text:?}"
)]
pub struct SettingsNotAnObject {
    /// Where they came from (`label quiesce.settings`, `--settings`...).
    pub from: String,
    /// What they were.
    pub text: String,
}

/// A service's settings, the one way `stop` and `run` merge them: `base` (a config rule's
/// settings, `quiesce run --settings`) overridden key by key by `label` (a container's or a
/// pod's `quiesce.settings`), each as (where it comes from, its JSON text). Both must be JSON
/// objects; none at all is `{}`.
pub fn merge_settings(
    base: Option<(&str, &str)>,
    label: Option<(&str, &str)>,
) -> Result<String, SettingsNotAnObject> {
    let object = |(from, text): (&str, &str)| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SettingsNotAnObject {
            from: from.to_string(),
            text: text.to_string(),
        }),
    };
    let mut settings = base.map(object).transpose()?.unwrap_or_default();
    if let Some(overrides) = label.map(object).transpose()? {
        settings.extend(overrides);
    }
    Ok(Value::Object(settings).to_string())
}

/// The budget a `quiesce.budget` label gives.
fn label_budget(text: &str) -> Result<Duration, SelectionProblem> {
    match quiesce_policy_sdk::human_duration::parse(text) {
        Ok(budget) if !budget.is_zero() => Ok(budget),
        Ok(_) => Err(SelectionProblem::ZeroBudgetLabel(text.to_string())),
        Err(error) => Err(SelectionProblem::BudgetLabel(error)),
    }
}

/// Why a service gets no policy: nothing is stopped (the service is named first).
#[derive(Debug, thiserror::Error)]
#[error("{service}: {problem}")]
pub struct SelectionError {
    /// The service.
    pub service: String,
    /// What is wrong.
    pub problem: SelectionProblem,
}

/// What is wrong with a service's policy, settings or labels.
#[derive(Debug, thiserror::Error)]
pub enum SelectionProblem {
    /// The policy named is neither a built-in nor in the policies directory.
    #[error("policy `{policy}` (from {chosen_by}) is not loaded: {why}")]
    NotLoaded {
        /// The policy named.
        policy: String,
        /// What named it (`config rule 2`, `label quiesce.policy`...).
        chosen_by: String,
        /// What was searched, and the nearest name.
        why: String,
    },
    /// The policy could not be loaded.
    #[error("policy `{policy}` (from {chosen_by}) failed to load: {error}")]
    LoadFailed {
        /// The policy.
        policy: String,
        /// What chose it.
        chosen_by: String,
        /// Why it failed.
        error: crate::policy::NotLoaded,
    },
    /// A config rule's settings cannot be written as JSON.
    #[error("settings of the config rule: {0}")]
    RuleSettings(String),
    /// Settings that are not a JSON object.
    #[error(transparent)]
    NotAnObject(SettingsNotAnObject),
    /// The policy refused the settings (its words, made safe).
    #[error("{0}")]
    InvalidSettings(String),
    /// A `quiesce.budget` label of zero.
    #[error("label {BUDGET_LABEL} must be more than 0s, e.g. 15m; it holds {0:?}")]
    ZeroBudgetLabel(String),
    /// A `quiesce.budget` label that is no duration.
    #[error("label {BUDGET_LABEL}: {0}")]
    BudgetLabel(String),
    /// A `quiesce.signal-target` label that is neither `pid1` nor `child`.
    #[error("label {SIGNAL_TARGET_LABEL} must be `pid1` or `child`; it holds {0:?}")]
    SignalTargetLabel(String),
}

/// Shells: as PID 1 they run the service as a child and pass no signal on to it.
const SHELLS: [&str; 6] = ["sh", "bash", "dash", "ash", "zsh", "busybox"];

/// Warnings about a service's PID 1: signals reach PID 1 only, so a shell, a script or a
/// dumb-init in group mode may keep the graceful signal from the service (the cinder
/// `--single-child` lesson). `processes` is the running container's process list when the
/// engine gives one: PID 1 as it really runs (`CMD apache2ctl -D FOREGROUND` is a shell
/// script); without it, the configured command is all there is.
pub fn pid1_warnings(
    facts: &ServiceFacts,
    processes: &[Process],
    target: SignalTarget,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if facts.init {
        return warnings;
    }
    let configured = facts.command.join(" ");
    let (pid1, children, masks) = match pid1_and_children(processes) {
        Some((pid1, children)) => (pid1.args.clone(), Some(children), pid1.signals),
        None => (configured, None, None),
    };
    let base = program(&pid1);
    // A shell that handles the stop signal itself (`trap 'drain; exit 0' TERM`) passes
    // nothing on but needs nothing passed on.
    let stop_signal = facts
        .stop_signal
        .unwrap_or(quiesce_policy_sdk::Signal::TERM);
    let handles_it = masks
        .is_some_and(|masks| masks.of(stop_signal) == crate::model::process::Disposition::Caught);
    let shell = SHELLS.contains(&base) && !handles_it;
    match (&children, target) {
        (Some(children), SignalTarget::Pid1) if shell && !children.is_empty() => {
            warnings.push(Warning::new(
                WarningCode::Pid1Shell,
                format!(
                    "PID 1 is a shell (`{pid1}`) and the service runs as its child (`{}`): a shell passes no signal on, so the policy's signals would not reach the service; set the label {SIGNAL_TARGET_LABEL}=child (or a config rule's `signal_target = \"child\"`) to deliver them to PID 1's children, or make the script `exec` the service",
                    children[0].args
                ),
            ));
        }
        (Some(children), SignalTarget::Child) if children.is_empty() => {
            warnings.push(Warning::new(
                WarningCode::SignalTargetWithoutChild,
                format!(
                    "signals go to PID 1's children ({SIGNAL_TARGET_LABEL}=child), but PID 1 (`{pid1}`) has none: the policy's signals will not be delivered; remove the setting"
                ),
            ));
        }
        (None, SignalTarget::Pid1) if shell && facts.command.iter().any(|a| a == "-c") => {
            warnings.push(Warning::new(
                WarningCode::Pid1Shell,
                format!(
                    "PID 1 is a shell (`{base} -c ...`): it may not pass signals on to the service; start the service with `exec`, run the container with --init, or set the label {SIGNAL_TARGET_LABEL}=child"
                ),
            ));
        }
        _ => {}
    }
    let dumb_init_args: Vec<&str> = pid1.split_whitespace().skip(1).collect();
    if base == "dumb-init"
        && !dumb_init_args
            .iter()
            .any(|a| *a == "--single-child" || *a == "-c")
    {
        warnings.push(Warning::new(
            WarningCode::Pid1DumbInitGroup,
            "PID 1 is dumb-init in group mode: it sends the signal to every process of the group, so worker processes may die before the parent drains them; use `dumb-init --single-child`",
        ));
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

    fn process(pid: u64, ppid: u64, args: &str) -> Process {
        Process {
            pid,
            ppid,
            args: args.into(),
            signals: None,
        }
    }

    fn pid1_warnings(facts: &ServiceFacts) -> Vec<Warning> {
        super::pid1_warnings(facts, &[], SignalTarget::Pid1)
    }

    #[test]
    fn choosing_a_policy_loads_that_policy_and_no_other() {
        let engine = crate::policy::PolicyEngine::new(Default::default(), None).unwrap();
        let catalog = engine.catalog(None, false).unwrap();
        let nginx = ServiceFacts {
            name: "web".into(),
            image: "docker.io/library/nginx:1.25".into(),
            ..ServiceFacts::default()
        };
        let selection = select(&nginx, &Config::default(), &catalog, DEFAULT_BUDGET).unwrap();
        assert_eq!(selection.policy.name(), "nginx");
        let loaded: Vec<&str> = catalog
            .entries()
            .filter(|entry| entry.is_loaded())
            .map(CatalogEntry::name)
            .collect();
        assert_eq!(loaded, ["nginx"]);
    }

    #[test]
    fn a_withheld_registry_policy_gives_default_without_its_settings_even_over_a_built_in() {
        let engine = crate::policy::PolicyEngine::new(Default::default(), None).unwrap();
        let mut catalog = engine.catalog(None, false).unwrap();
        // Configured from a registry under a built-in's name, and not verified.
        catalog.withhold("nginx", "never pulled".into());
        let config = Config::parse(
            "[[rules]]\nname = \"web\"\npolicy = \"nginx\"\nsettings = { quit_timeout = \"5s\", not_defaults = 1 }\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let web = ServiceFacts {
            name: "web".into(),
            image: "docker.io/library/nginx:1.25".into(),
            ..ServiceFacts::default()
        };
        let selection = select(&web, &config, &catalog, DEFAULT_BUDGET).unwrap();
        assert_eq!(selection.policy.name(), "default");
        assert_eq!(selection.settings, "{}");
        assert!(
            selection
                .warnings
                .iter()
                .any(|warning| warning.code == "policy-withheld"
                    && warning.message.contains("never pulled")),
            "{:?}",
            selection.warnings
        );
    }

    #[test]
    fn the_running_pid1_is_what_counts_a_script_behind_a_plain_command_included() {
        let configured = facts(&["apache2ctl", "-D", "FOREGROUND"]);
        // Docker lists host pids; `docker exec` processes have outside parents too.
        let running = [
            process(4100, 4080, "/bin/sh /usr/sbin/apache2ctl -D FOREGROUND"),
            process(4120, 4100, "/usr/sbin/apache2 -D FOREGROUND"),
            process(4130, 4120, "/usr/sbin/apache2 -D FOREGROUND"),
            process(4200, 4081, "sh -c cat /tmp/inflight"),
        ];
        let warnings = super::pid1_warnings(&configured, &running, SignalTarget::Pid1);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].code, "pid1-shell");
        assert!(
            warnings[0]
                .message
                .contains("`/usr/sbin/apache2 -D FOREGROUND`")
        );
        // With the signals going to the children, nothing to say.
        assert!(super::pid1_warnings(&configured, &running, SignalTarget::Child).is_empty());
        // A shell that traps the stop signal (SIGTERM: bit 14 of SigCgt) handles it itself.
        let mut trapping = running.clone();
        trapping[0].signals = Some(crate::model::process::Dispositions {
            caught: 1 << 14,
            ..Default::default()
        });
        assert!(super::pid1_warnings(&configured, &trapping, SignalTarget::Pid1).is_empty());
        // A shell that exec'd the service is no shell any more.
        let execd = [process(1, 0, "nginx: master process nginx -g daemon off;")];
        let shell_c = facts(&["/bin/sh", "-c", "exec nginx -g 'daemon off;'"]);
        assert!(super::pid1_warnings(&shell_c, &execd, SignalTarget::Pid1).is_empty());
        // Signals meant for children that do not exist.
        let alone = [process(1, 0, "/usr/sbin/haproxy -W -db")];
        let warnings = super::pid1_warnings(&configured, &alone, SignalTarget::Child);
        assert_eq!(warnings[0].code, "signal-target-without-child");
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
