//! The configuration file (TOML): where policies live, which policy each service gets, ordering
//! rules, default budgets, parallelism, policy limits and the HTTP addresses policies may call.
//!
//! Durations are written as people write them (`90s`, `15m`, `1m30s`). Unknown keys are errors,
//! so a typo never silently falls back to a default. Errors name the file, the line and the key.
//!
//! ```toml
//! policies = "/etc/quiesce/policies"
//! parallel = 4
//! deadline = "15m"          # the whole run
//! budget = "5m"             # each service, unless a rule says otherwise
//! on_budget_exhausted = "kill"   # or "leave-running"
//! allow_http = ["10.0.0.5:9901"] # loopback is allowed unless a loopback address is listed
//!
//! [limits]
//! memory_mib = 64
//! call_timeout = "100ms"
//!
//! [[rules]]
//! name = "web-*"            # container name glob; also `image` (glob) and `label` (KEY or KEY=VALUE)
//! policy = "nginx"
//! settings = { grace_period = "30s" }
//! budget = "2m"
//!
//! [[order]]
//! stop = "db*"              # these containers stop...
//! after = ["web*", "worker*"]   # ...after these have stopped (`before` also exists)
//! ```
//!
//! Policies from OCI registries and the trust rules they must satisfy (`[registry]`,
//! `[[registry.policies]]`, `[[trust.keys]]`, `[[trust.rules]]`): `model::distribution`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quiesce_policy_sdk::sequence::OnBudgetExhausted;
use quiesce_policy_sdk::{ServiceFacts, human_duration};
use serde::Deserialize;

/// The whole run's deadline when neither the command line nor the configuration sets one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The documented default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/quiesce/quiesce.toml";

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The policies directory.
    pub policies: Option<PathBuf>,
    /// How many services stop at once.
    pub parallel: Option<usize>,
    /// The deadline for the whole run.
    #[serde(default, with = "human_duration::option")]
    pub deadline: Option<Duration>,
    /// The default budget of each service.
    #[serde(default, with = "human_duration::option")]
    pub budget: Option<Duration>,
    /// What happens when a budget runs out.
    pub on_budget_exhausted: Option<OnBudgetExhausted>,
    /// `host:port` addresses, besides loopback, that policies may call over HTTP.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Limits for policy calls.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Policy selection rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Ordering rules.
    #[serde(default)]
    pub order: Vec<OrderRule>,
    /// Policies from OCI registries (`model::distribution` documents the section).
    #[serde(default)]
    pub registry: crate::model::distribution::RegistryConfig,
    /// The keys and rules pulled policies must satisfy.
    #[serde(default)]
    pub trust: crate::model::distribution::TrustConfig,
}

/// `[limits]`: policy sandbox limits.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Memory per policy instance, in MiB.
    pub memory_mib: Option<usize>,
    /// Time per policy call.
    #[serde(default, with = "human_duration::option")]
    pub call_timeout: Option<Duration>,
}

/// `[[rules]]`: which policy (and settings, budget) matching containers get.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Container name glob.
    pub name: Option<String>,
    /// Image reference glob.
    pub image: Option<String>,
    /// Label selector: `KEY` or `KEY=VALUE`.
    pub label: Option<String>,
    /// The policy to use.
    pub policy: String,
    /// The policy's settings (any TOML table; passed to the policy as JSON).
    #[serde(default)]
    pub settings: Option<toml::Table>,
    /// This service's budget.
    #[serde(default, with = "human_duration::option")]
    pub budget: Option<Duration>,
    /// Where its policy's signals go: `pid1` (the default) or `child` (PID 1's children: the
    /// service behind a shell or script that passes no signal on).
    #[serde(default)]
    pub signal_target: Option<crate::model::process::SignalTarget>,
}

/// `[[order]]`: containers matching `stop` stop after those matching `after`, and before those
/// matching `before`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRule {
    /// Container name glob (or compose service name) this rule is about.
    pub stop: String,
    /// They stop after these have stopped.
    #[serde(default)]
    pub after: Vec<String>,
    /// They stop before these get their first signal.
    #[serde(default)]
    pub before: Vec<String>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or invalid keys.
    #[error("invalid config file {}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with the line, column and key.
        message: String,
    },
}

impl Config {
    /// Reads the configuration: `path` when given (it must exist), else the default location
    /// when a file is there, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match crate::model::named_file::read_named(&path) {
            Ok(text) => Config::parse(&text, &path),
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// The whole run's deadline: `asked` (the command line's), else the configuration's, else
    /// [`DEFAULT_DEADLINE`].
    pub fn run_deadline(&self, asked: Option<Duration>) -> Duration {
        asked.or(self.deadline).unwrap_or(DEFAULT_DEADLINE)
    }

    /// Parses TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = toml::from_str(text).map_err(|error| {
            let location = error
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            parse_error(format!("{location}{}", error.message().trim_end()))
        })?;
        config.check().map_err(parse_error)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.parallel == Some(0) {
            return Err("key `parallel`: must be at least 1".into());
        }
        for (key, value) in [
            ("deadline", self.deadline),
            ("budget", self.budget),
            ("limits.call_timeout", self.limits.call_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(format!("key `{key}`: must be more than 0s"));
            }
        }
        if self.limits.memory_mib == Some(0) {
            return Err("key `limits.memory_mib`: must be at least 1 (the default is 64)".into());
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.name.is_none() && rule.image.is_none() && rule.label.is_none() {
                return Err(format!(
                    "rules[{index}] (policy `{}`): give at least one of `name`, `image`, `label` to select containers",
                    rule.policy
                ));
            }
            if rule.budget == Some(Duration::ZERO) {
                return Err(format!("rules[{index}].budget: must be more than 0s"));
            }
        }
        // The parser the allow check uses: an entry it would not read is an error here, not
        // an address silently left out.
        for address in &self.allow_http {
            quiesce_policy_sdk::rules::HttpAddress::parse(address)
                .map_err(|error| format!("allow_http entry {error}"))?;
        }
        crate::model::distribution::check(&self.registry, &self.trust)
    }
}

/// Matches `text` against a glob with `*` (any run of characters) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/quiesce/test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_config_parses_with_human_durations() {
        let config = parse(
            r#"
            policies = "/srv/policies"
            parallel = 3
            deadline = "15m"
            budget = "90s"
            on_budget_exhausted = "leave-running"
            allow_http = ["10.0.0.5:9901"]
            [limits]
            memory_mib = 32
            call_timeout = "250ms"
            [[rules]]
            name = "web-*"
            policy = "nginx"
            settings = { grace_period = "30s" }
            budget = "2m"
            [[order]]
            stop = "db*"
            after = ["web*"]
            "#,
        )
        .unwrap();
        assert_eq!(config.deadline, Some(Duration::from_secs(900)));
        assert_eq!(config.budget, Some(Duration::from_secs(90)));
        assert_eq!(
            config.on_budget_exhausted,
            Some(OnBudgetExhausted::LeaveRunning)
        );
        assert_eq!(config.limits.call_timeout, Some(Duration::from_millis(250)));
        assert_eq!(config.rules[0].budget, Some(Duration::from_secs(120)));
        assert_eq!(config.order[0].after, ["web*"]);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let error =
            parse("parallel = 2\n\n[[rules]]\nname = \"x\"\npolicy = \"nginx\"\nbugdet = \"5m\"\n")
                .unwrap_err();
        assert!(error.contains("/etc/quiesce/test.toml"), "{error}");
        assert!(error.contains("line 6"), "{error}");
        assert!(error.contains("bugdet"), "{error}");

        let error = parse("deadline = \"soon\"\n").unwrap_err();
        assert!(
            error.contains("line 1") && error.contains("invalid duration"),
            "{error}"
        );

        let error = parse("parallel = \n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");

        let error = parse("[[rules]]\npolicy = \"nginx\"\n").unwrap_err();
        assert!(error.contains("rules[0]"), "{error}");
    }

    #[test]
    fn limits_no_policy_could_run_under_are_refused_when_read() {
        let error = parse("[limits]\nmemory_mib = 0\n").unwrap_err();
        assert!(error.contains("limits.memory_mib"), "{error}");
        let error = parse("[limits]\ncall_timeout = \"0s\"\n").unwrap_err();
        assert!(error.contains("limits.call_timeout"), "{error}");
        assert!(parse("[limits]\nmemory_mib = 1\ncall_timeout = \"1ms\"\n").is_ok());
    }

    #[test]
    fn a_missing_default_file_means_defaults_but_a_named_one_must_exist() {
        let error = Config::load(Some(Path::new("/nonexistent/quiesce.toml"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/quiesce.toml"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Fuzzing: any text is parsed or refused with the file named, never a panic.
        #[test]
        fn the_parser_never_panics_and_errors_name_the_file(text in "\\PC{0,300}") {
            if let Err(error) = parse(&text) {
                proptest::prop_assert!(error.contains("/etc/quiesce/test.toml"), "{}", error);
            }
        }

        /// Fuzzing with config-shaped input: known keys with arbitrary values and stray keys.
        #[test]
        fn config_shaped_input_is_parsed_or_refused_cleanly(
            parallel in proptest::prelude::any::<i64>(),
            duration in "[0-9]{0,5}(ms|s|m|h|d|x|)",
            key in "[a-z_]{1,10}",
            glob in "[*?a-z]{0,8}",
        ) {
            let text = format!(
                "parallel = {parallel}\ndeadline = \"{duration}\"\n[[rules]]\nname = \"{glob}\"\npolicy = \"x\"\n{key} = 1\n"
            );
            if let Err(error) = parse(&text) {
                proptest::prop_assert!(error.contains("line "), "{}", error);
            }
            proptest::prop_assert!(!glob_match(&glob, "") || glob.chars().all(|c| c == '*'));
        }
    }

    #[test]
    fn globs_match_like_shell_globs() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("*nginx*", "docker.io/library/nginx:1.25"));
        assert!(glob_match("db?", "db1"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("db?", "db12"));
        assert!(!glob_match("web-*", "api-1"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
