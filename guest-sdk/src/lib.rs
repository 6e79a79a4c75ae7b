//! The quiesce policy SDK: write a shutdown policy as a plain Rust type.
//!
//! A policy decides, step by step, how one service is stopped: which signal it gets, which
//! drain commands or checks run, how long each wait may take and when to escalate. The quiesce
//! runner calls the policy, performs the step it asked for, and calls it again with the outcome.
//! The policy is compiled to a `wasm32-wasip2` component and runs sandboxed: it sees only what
//! it is given (the [`Context`]), never the filesystem, network, environment or clock.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};
//!
//! /// nginx: QUIT lets workers finish their requests; the master exits after them.
//! struct Nginx;
//!
//! impl Policy for Nginx {
//!     type Settings = ();
//!
//!     fn info() -> PolicyInfo {
//!         PolicyInfo::new("nginx", "1.0.0", "graceful QUIT, then SIGKILL").images(["nginx*"])
//!     }
//!
//!     fn next(ctx: &Context, _settings: &()) -> Result<Step, String> {
//!         Ok(match ctx.steps_taken() {
//!             _ if ctx.has_stopped() => Step::finish(),
//!             0 => Step::signal(Signal::QUIT),
//!             1 => Step::wait_for_exit(Duration::from_secs(30)),
//!             _ => Step::kill(),
//!         })
//!     }
//! }
//!
//! quiesce_policy_sdk::export!(Nginx);
//! ```
//!
//! The same type runs natively: [`decide`] and [`validate_settings`] call it without Wasm, so
//! `cargo test` in a policy crate exercises the real decision code.
//!
//! Layout:
//! - [`Signal`]: signals by number with the names Docker accepts.
//! - `types`: the contract's data ([`Context`], [`Step`], [`Outcome`]...), mirroring the WIT.
//! - [`Policy`], [`export!`]: what a policy implements and how it is exported.
//! - [`ladder`]: escalation ladders (drain steps, signals, progress-aware waits, SIGKILL).
//! - [`settings`]: settings declared once ([`settings!`]): struct, defaults, checks, docs.
//! - [`rules`]: the runner's rules (step cap, kill reserve, poll interval, refused answers).
//! - [`sequence`]: one service's shutdown as a deterministic state machine: every rule applied
//!   once, for the runner and the native test harness alike. [`conservative`]: the conservative
//!   sequence (the `default` policy, and the fallback when a policy fails).
//! - `simulation` (feature `simulation`): scripted services in virtual time, a policy type run
//!   natively, and scenario files. The production runner needs it (`quiesce plan`, its
//!   worst-case exploration, `quiesce policy test`); policy tests build on it.
//! - `testing` (feature `testing`, which enables `simulation`): policy tests, for a policy
//!   crate's `cargo test`: assertions over scenario files, metadata and the first step, and
//!   the simulation's items re-exported.
//! - `wit_conversions`: the one place that maps between these types and generated bindings.

// The `settings!` macro names this crate by its path, inside the SDK as in policies.
extern crate self as quiesce_policy_sdk;

#[macro_use]
mod wit_conversions;
pub mod conservative;
pub mod ladder;
pub mod rules;
pub mod sequence;
pub mod settings;
mod signal;
#[cfg(feature = "simulation")]
pub mod simulation;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use signal::{Signal, UnknownSignal};
pub use types::{
    ComposeInfo, ContainerState, Context, Health, Outcome, PolicyInfo, ServiceFacts, Step,
    StepRecord, WaitCondition, human_duration, millis,
};

use serde::de::DeserializeOwned;

/// The contract version this SDK implements: the version of the `quiesce:policy` WIT package.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A shutdown policy.
///
/// Implement it on a unit struct and export it with [`export!`]. Every method is a pure
/// function of its arguments.
pub trait Policy {
    /// The operator's settings, deserialized from JSON. Absent settings give `Default`; use
    /// `#[serde(default, deny_unknown_fields)]` so a typo is an error, not a silent default.
    type Settings: DeserializeOwned + Default;

    /// Describes the policy: name, version, description, image patterns, settings docs.
    fn info() -> PolicyInfo;

    /// Checks settings beyond what deserializing them checks (ranges, combinations).
    fn validate(settings: &Self::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Decides the next step of the shutdown sequence.
    fn next(ctx: &Context, settings: &Self::Settings) -> Result<Step, String>;
}

impl PolicyInfo {
    /// A description for this contract version, with no image patterns and no settings docs.
    pub fn new(name: &str, version: &str, description: &str) -> PolicyInfo {
        PolicyInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            contract_version: CONTRACT_VERSION.to_string(),
            images: Vec::new(),
            settings_doc: String::new(),
        }
    }

    /// Sets the image patterns used for auto-selection.
    pub fn images<I, S>(mut self, patterns: I) -> PolicyInfo
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.images = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the documentation of the settings (Markdown).
    pub fn settings_doc(mut self, doc: &str) -> PolicyInfo {
        self.settings_doc = doc.to_string();
        self
    }
}

/// Writes a line to the policy's log: what `quiesce policy test` and `policy eval` show and a
/// scenario's `expect.log` checks, and the report's `policy_log`. In the component it is the
/// policy's stderr, as `eprintln!` is; natively (`cargo test`) the line is kept as well, so
/// `expect.log` is checked both ways (what `eprintln!` writes is seen through the runner only).
///
/// ```
/// quiesce_policy_sdk::policy_log!("draining: {} in flight", 3);
/// ```
#[macro_export]
macro_rules! policy_log {
    ($($arg:tt)*) => {
        $crate::write_policy_log(&format!($($arg)*))
    };
}

/// What [`policy_log!`] calls.
#[doc(hidden)]
pub fn write_policy_log(line: &str) {
    eprintln!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    NATIVE_LOG.with(|log| {
        let mut log = log.borrow_mut();
        log.push_str(line);
        log.push('\n');
    });
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    /// What [`policy_log!`] wrote natively since the native harness last took it.
    pub(crate) static NATIVE_LOG: std::cell::RefCell<String> = const {
        std::cell::RefCell::new(String::new())
    };
}

/// Parses settings JSON into `S`; no settings (empty text, `{}` or `null`) means
/// `S::default()`, so policies without settings can use `()`.
pub fn parse_settings<S: DeserializeOwned + Default>(json: &str) -> Result<S, String> {
    if matches!(json.trim(), "" | "{}" | "null") {
        return Ok(S::default());
    }
    serde_json::from_str(json).map_err(|error| format!("invalid settings: {error}"))
}

/// Parses and checks settings as the runner does before anything is stopped.
pub fn validate_settings<P: Policy>(json: &str) -> Result<(), String> {
    P::validate(&parse_settings::<P::Settings>(json)?)
}

/// Runs one decision natively: parses `ctx.settings` and calls [`Policy::next`].
pub fn decide<P: Policy>(ctx: &Context) -> Result<Step, String> {
    P::next(ctx, &parse_settings::<P::Settings>(&ctx.settings)?)
}

/// The wit-bindgen bindings of the `shutdown-policy` world. Not for direct use.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "shutdown-policy",
        pub_export_macro: true,
        export_macro_name: "__export_wit_bindings",
        default_bindings_module: "quiesce_policy_sdk::bindings",
    });
}

wit_conversions!(crate::bindings::exports::quiesce::policy::policy);

/// What [`export!`] expands to. Not for direct use.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::exports::quiesce::policy::policy as wit;
    use crate::{Policy, decide, validate_settings, wit_convert};

    pub use crate::bindings::exports::quiesce::policy::policy::Guest;
    pub use serde;

    /// `metadata` for policy `P`, in the generated types.
    pub fn metadata<P: Policy>() -> wit::PolicyInfo {
        wit_convert::to_wit_info(&P::info())
    }

    /// `validate-settings` for policy `P`.
    pub fn validate<P: Policy>(settings: String) -> Result<(), String> {
        validate_settings::<P>(&settings)
    }

    /// `next` for policy `P`, in the generated types.
    pub fn next<P: Policy>(ctx: wit::Context) -> Result<wit::Step, String> {
        let ctx = wit_convert::from_wit_context(ctx)
            .map_err(|error| format!("the host sent an invalid context: {error}"))?;
        decide::<P>(&ctx).map(|step| wit_convert::to_wit_step(&step))
    }
}

/// Exports a [`Policy`] type as the component's `quiesce:policy/policy` interface.
///
/// On targets other than `wasm32` it only checks that the type is a [`Policy`], so policy crates
/// build and test natively.
#[macro_export]
macro_rules! export {
    ($policy:ty) => {
        /// The policy this crate exports, by a name the quiesce host can refer to when it links
        /// the built-in policies natively (for their metadata and settings checks).
        #[doc(hidden)]
        pub type QuiesceExportedPolicy = $policy;

        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::PolicyInfo = <$policy as $crate::Policy>::info;

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct QuiescePolicyExport;

            impl $crate::__private::Guest for QuiescePolicyExport {
                fn metadata() -> $crate::bindings::exports::quiesce::policy::policy::PolicyInfo {
                    $crate::__private::metadata::<$policy>()
                }

                fn validate_settings(settings: String) -> Result<(), String> {
                    $crate::__private::validate::<$policy>(settings)
                }

                fn next(
                    ctx: $crate::bindings::exports::quiesce::policy::policy::Context,
                ) -> Result<$crate::bindings::exports::quiesce::policy::policy::Step, String>
                {
                    $crate::__private::next::<$policy>(ctx)
                }
            }

            $crate::bindings::__export_wit_bindings!(
                QuiescePolicyExport with_types_in $crate::bindings
            );
        };
    };
}

/// The tests every policy crate has: its metadata and settings documentation
/// (`testing::check_metadata`), its first step with the default settings
/// (`testing::check_first_step`), and its scenario file (`testing::assert_scenarios`). They
/// exist only under `cfg(test)`, with the SDK's `testing` feature (a dev-dependency).
///
/// ```ignore
/// quiesce_policy_sdk::policy_tests!(NginxPolicy, "signal SIGQUIT", include_str!("../scenarios/nginx.toml"));
/// ```
#[macro_export]
macro_rules! policy_tests {
    ($policy:ty, $first_step:expr, $scenarios:expr $(,)?) => {
        #[cfg(test)]
        mod policy_tests {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn metadata_and_settings_documentation() {
                $crate::testing::check_metadata::<$policy>();
            }

            #[test]
            fn the_first_step_is_the_graceful_path() {
                $crate::testing::check_first_step::<$policy>($first_step);
            }

            #[test]
            fn the_scenarios_pass() {
                $crate::testing::assert_scenarios::<$policy>($scenarios);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../../wit/policy.wit");
        let package = format!("package quiesce:policy@{CONTRACT_VERSION};");
        assert!(
            wit.lines().any(|line| line.trim() == package),
            "wit/policy.wit does not declare `{package}`"
        );
    }

    #[test]
    fn settings_parse_with_defaults_and_reject_nonsense() {
        #[derive(serde::Deserialize, Default, Debug, PartialEq)]
        #[serde(default, deny_unknown_fields)]
        struct Settings {
            grace_seconds: u32,
        }
        assert_eq!(parse_settings::<Settings>(""), Ok(Settings::default()));
        assert_eq!(parse_settings::<()>("{}"), Ok(()));
        assert!(parse_settings::<()>(r#"{"x": 1}"#).is_err());
        assert_eq!(
            parse_settings::<Settings>(r#"{"grace_seconds": 5}"#),
            Ok(Settings { grace_seconds: 5 })
        );
        let typo = parse_settings::<Settings>(r#"{"grace_secs": 5}"#).unwrap_err();
        assert!(typo.contains("grace_secs"), "{typo}");
    }

    #[test]
    fn conversions_round_trip_a_full_context() {
        let ctx = Context {
            service: ServiceFacts {
                id: "abc".into(),
                name: "web".into(),
                image: "nginx:1.25".into(),
                labels: vec![("quiesce.policy".into(), "nginx".into())],
                stop_signal: Some(Signal::QUIT),
                stop_timeout: Some(std::time::Duration::from_secs(3)),
                command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                init: true,
                restart_policy: "always".into(),
                health: Some(Health::Healthy),
                compose: Some(ComposeInfo {
                    project: "shop".into(),
                    service: "web".into(),
                    depends_on: vec!["db".into()],
                }),
                started_at: Some("2026-11-21T00:00:00Z".into()),
            },
            settings: "{}".into(),
            history: vec![StepRecord {
                step: Step::exec(["drain"], std::time::Duration::from_millis(1500)),
                outcome: Outcome::ExecCompleted {
                    exit_code: 0,
                    output_tail: "in-flight: 2".into(),
                },
                started: std::time::Duration::from_millis(10),
                ended: std::time::Duration::from_millis(30),
            }],
            state: ContainerState::default(),
            elapsed: std::time::Duration::from_millis(30),
            remaining: std::time::Duration::from_millis(9970),
        };
        let back = wit_convert::from_wit_context(wit_convert::to_wit_context(&ctx)).unwrap();
        assert_eq!(back, ctx);
    }
}
