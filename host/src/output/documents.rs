//! The JSON documents of the policy commands (`policy list`, `check`, `test` and `eval` with
//! `--json`), as types: each carries its version, and its JSON Schema is generated from these
//! types ([`crate::output::schema`]). The run report (`stop`, `plan`) is [`crate::model::report::Report`].
//!
//! A version changes when a field is removed, renamed or changes meaning; fields may be added
//! without a change (consumers ignore what they do not know).

use quiesce_policy_sdk::sequence::Transcript;
use serde::Serialize;

use crate::model::report::{ServiceOutcome, StepReport};
use crate::model::units::millis;
use crate::policy::{LoadProblem, LoadedPolicy, PolicySource};

/// The version of every document in this module.
pub const DOCUMENT_VERSION: u32 = 1;

/// `quiesce policy list --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PolicyList {
    /// The document's version: 1.
    pub list_version: u32,
    /// The policies loaded, built-ins first.
    pub policies: Vec<PolicyEntry>,
    /// Files in the policies directory that were not loaded, and why.
    pub problems: Vec<SkippedFile>,
    /// Policies the configuration names by registry reference that are not run (never
    /// pulled, refused by the trust rules, damaged in the store), and why: services choosing
    /// them get `default`.
    pub withheld: Vec<WithheldPolicy>,
}

/// A registry policy that is not run.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WithheldPolicy {
    /// The name the configuration gives it.
    pub name: String,
    /// Why it is withheld.
    pub reason: String,
}

impl PolicyList {
    /// The list of `policies`, with the `problems` of the files not loaded and the registry
    /// policies `withheld`.
    pub fn new<'a>(
        policies: impl Iterator<Item = &'a LoadedPolicy>,
        problems: &[LoadProblem],
        withheld: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> PolicyList {
        PolicyList {
            list_version: DOCUMENT_VERSION,
            policies: policies.map(PolicyEntry::from).collect(),
            problems: problems
                .iter()
                .map(|problem| SkippedFile {
                    file: problem.path.display().to_string(),
                    reason: problem.error.to_string(),
                })
                .collect(),
            withheld: withheld
                .map(|(name, reason)| WithheldPolicy {
                    name: name.to_string(),
                    reason: reason.to_string(),
                })
                .collect(),
        }
    }
}

/// Where a policy comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Built into quiesce.
    Builtin,
    /// A `.wasm` file.
    File,
    /// Pulled from an OCI registry, verified.
    Registry,
}

/// One loaded policy.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Its name (what `quiesce.policy` labels name).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it is for.
    pub description: String,
    /// The contract version it was built against.
    pub contract_version: String,
    /// The image patterns it claims.
    pub images: Vec<String>,
    /// Its settings, documented by the policy.
    pub settings_doc: String,
    /// Built in, or a file.
    pub source: SourceKind,
    /// The file, for a file policy.
    pub file: Option<String>,
    /// `registry/repository@sha256:...`, for a policy pulled from a registry.
    pub reference: Option<String>,
    /// The ids of the keys whose signatures admitted a pulled policy.
    pub signers: Vec<String>,
    /// The SHA-256 of its component: `sha256:<hex>`.
    pub digest: String,
}

impl From<&LoadedPolicy> for PolicyEntry {
    fn from(policy: &LoadedPolicy) -> PolicyEntry {
        let info = policy.info();
        let (source, file, reference, signers) = match policy.source() {
            PolicySource::Builtin => (SourceKind::Builtin, None, None, Vec::new()),
            PolicySource::File(path) => (
                SourceKind::File,
                Some(path.display().to_string()),
                None,
                Vec::new(),
            ),
            PolicySource::Registry { reference, signers } => (
                SourceKind::Registry,
                None,
                Some(reference.clone()),
                signers.clone(),
            ),
        };
        PolicyEntry {
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            contract_version: info.contract_version.clone(),
            images: info.images.clone(),
            settings_doc: info.settings_doc.clone(),
            source,
            file,
            reference,
            signers,
            digest: policy.digest().to_string(),
        }
    }
}

/// A policy file that was not loaded.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SkippedFile {
    /// The file.
    pub file: String,
    /// Why it was not loaded.
    pub reason: String,
}

/// `quiesce policy check --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckResults {
    /// The document's version: 1.
    pub check_version: u32,
    /// Every file checked (built-ins as `(built-in NAME)`), in order.
    pub files: Vec<CheckedFile>,
    /// How many are invalid (the command exits 1 when any is).
    pub invalid: usize,
}

/// One checked policy file.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckedFile {
    /// The file.
    pub file: String,
    /// Whether it loaded and answered sample calls within its limits.
    pub valid: bool,
    /// The policy, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyEntry>,
    /// Why not, when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `quiesce policy test --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TestResults {
    /// The document's version: 1.
    pub test_version: u32,
    /// The policy's name.
    pub policy: String,
    /// One result per scenario, in file order.
    pub results: Vec<ScenarioOutcome>,
    /// How many failed (the command exits 1 when any did).
    pub failed: usize,
}

/// One scenario's result.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScenarioOutcome {
    /// The scenario file.
    pub file: String,
    /// The scenario's name.
    pub scenario: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// What differed, when it failed.
    pub diff: Option<String>,
    /// The sequence as run, when the scenario ran.
    pub transcript: Option<TranscriptReport>,
}

/// A scenario's sequence, its steps as the run report writes them.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TranscriptReport {
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// How the service ended.
    pub outcome: ServiceOutcome,
    /// Its exit status, once it stopped.
    pub exit_code: Option<i32>,
    /// How long the sequence took, in virtual time.
    pub elapsed_ms: u64,
    /// Why the conservative sequence took over, if it did.
    pub policy_error: Option<String>,
    /// What the policy wrote (its stdout and stderr, `policy_log!`), capped at 64 KiB.
    pub policy_log: String,
}

impl From<&Transcript> for TranscriptReport {
    fn from(transcript: &Transcript) -> TranscriptReport {
        TranscriptReport {
            steps: transcript.steps.iter().map(StepReport::from).collect(),
            outcome: transcript.outcome,
            exit_code: transcript.exit_code,
            elapsed_ms: millis(transcript.elapsed),
            policy_error: transcript.fallback_reason.clone(),
            policy_log: transcript.policy_log.clone(),
        }
    }
}

/// `quiesce policy eval --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EvalResult {
    /// The document's version: 1.
    pub eval_version: u32,
    /// The step, as the contract's JSON (what a scenario file or the SDK's `Step` reads).
    #[schemars(with = "serde_json::Value")]
    pub step: quiesce_policy_sdk::Step,
    /// What the policy wrote to stdout/stderr during the call.
    pub log: String,
    /// The call's time, a fresh instance included, in µs.
    pub elapsed_us: u64,
    /// The instance's peak memory, in bytes.
    pub peak_memory_bytes: u64,
}

/// A document as `--json` prints it: pretty, with a final newline.
pub fn to_json<T: Serialize>(document: &T) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a document serializes");
    text.push('\n');
    text
}
