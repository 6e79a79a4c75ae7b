//! What quiesce writes on stderr besides live progress, in the format asked for
//! (`--log-format text|json`), and the libraries' own logs (`-v`).
//!
//! `text` (the default) writes lines for people. `json` writes one JSON object per line and
//! per event, for journald, ELK and other log shippers: every object has `time` (RFC 3339,
//! UTC, ms) and `event`; the rest depends on the event (see [`Record`] and the README's
//! "Logs"). The sequence's own events (`start`, `step-start`, `step-end`, `note`, `finished`)
//! come from [`crate::output::progress`] in the same shape.
//!
//! Text for people is made safe for a terminal first (policies and containers supply some of
//! it: [`crate::model::text::safe`]); JSON escapes what it must by itself.
//!
//! With `-v` (or `QUIESCE_LOG` set, in `tracing`'s `EnvFilter` syntax, e.g.
//! `bollard=trace,wasmtime=debug`), what the Docker client (bollard), its HTTP stack and
//! wasmtime log goes to stderr through `tracing`, as text or JSON lines in the same format.

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde::Serialize;

use crate::model::text::{safe, safe_lines};
use crate::model::units::timestamp;
use crate::model::warning::Warning;

/// The format of stderr's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// The filter of the libraries' logs with `-v`, unless `QUIESCE_LOG` gives one.
const VERBOSE_FILTER: &str = "warn,quiesce=debug,bollard=debug,hyper=info,hyper_util=info,wasmtime=info,wasmtime_cranelift=info,cranelift_codegen=info";

/// Sets the format for the whole process (the first call wins) and, with `verbose` or a
/// `filter` (`QUIESCE_LOG`), sends the libraries' logs to stderr.
pub fn init(format: Format, verbose: bool, filter: Option<&str>) {
    let _ = FORMAT.set(format);
    let filter = match filter {
        Some(filter) if !filter.trim().is_empty() => filter.to_string(),
        _ if verbose => VERBOSE_FILTER.to_string(),
        _ => return,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|error| {
        warning_text(&format!(
            "QUIESCE_LOG `{filter}` is not a valid filter ({error}); using `{VERBOSE_FILTER}`"
        ));
        tracing_subscriber::EnvFilter::new(VERBOSE_FILTER)
    });
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Another subscriber (a test's) may be installed already: then that one logs.
    let _ = match format {
        Format::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(crate::output::style::enabled(
                crate::output::style::Stream::Stderr,
            ))
            .try_init()
            .map_err(|error| error.to_string()),
        Format::Json => tracing_subscriber::registry()
            .with(filter)
            .with(JsonLayer)
            .try_init()
            .map_err(|error| error.to_string()),
    };
}

/// The libraries' log events as [`Record`]s (`event` `log`, with `level` and `target`).
struct JsonLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        use tracing_log::NormalizeEvent;
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut message = Message::default();
        event.record(&mut message);
        Record {
            level: Some(metadata.level().as_str()),
            target: Some(metadata.target()),
            message: Some(&message.0),
            ..Record::new("log")
        }
        .write();
    }
}

/// An event's fields as one text: `message` first, then `name=value` for the others (the
/// `log.*` fields of a bridged `log` record are its metadata, already taken).
#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if name == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{name}={value:?}");
        }
    }
}

/// The format in use.
pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or_default()
}

/// One event of the JSON log. Only the fields an event has are written.
#[derive(Debug, Default, Serialize)]
pub struct Record<'a> {
    /// When, RFC 3339 (UTC, ms).
    pub time: String,
    /// `start`, `step-start`, `step-end`, `note`, `finished`, `warning`, `error`, `info`, or
    /// `log` (a library's log line, with `-v`).
    pub event: &'a str,
    /// The level of a library's log line (`log`): `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'a str>,
    /// The module that logged it (`log`), e.g. `bollard::docker`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    /// The service (container name, or `quiesce run`'s child).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a str>,
    /// The policy (`start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'a str>,
    /// The service's budget in ms (`start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_ms: Option<u64>,
    /// Time since the service's sequence began, in ms (steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The step's action: `signal`, `exec`, `http`, `wait`, `kill`, `finish` (steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'a str>,
    /// The step in words, as in the report (steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who chose the step: `policy`, `fallback`, `runner` (`step-start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<quiesce_policy_sdk::sequence::StepOrigin>,
    /// What came of the step, in words, as in the report (`step-end`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// How the service ended: the report's outcome (`finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::model::report::ServiceOutcome>,
    /// Its exit status (`finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How long its sequence took, in ms (`finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// The warning's stable code (`warning`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    /// The text (`note`, `warning`, `error`, `info`, `log`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// A record of `event`, now.
    pub fn new(event: &'a str) -> Record<'a> {
        Record {
            time: timestamp(SystemTime::now()),
            event,
            ..Record::default()
        }
    }

    /// Writes it on stderr, one line.
    pub fn write(&self) {
        stderr_line(&serde_json::to_string(self).expect("a log record serializes"));
    }
}

/// Writes `line` and a newline on stderr in one system call: lines of concurrent writers never
/// interleave, and a line costs one write however it was formatted (stderr is unbuffered; a
/// formatted `writeln!` writes each piece on its own, nine writes for a progress line).
pub fn stderr_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// A warning about `service` (or quiesce itself), before or outside a sequence.
pub fn warning(service: Option<&str>, warning: &Warning) {
    match format() {
        Format::Text => stderr_line(&format!(
            "{}: {} {}",
            safe(service.unwrap_or("quiesce")),
            crate::output::style::warning_word(),
            safe_lines(&warning.to_string())
        )),
        Format::Json => Record {
            service,
            code: Some(warning.code),
            message: Some(&warning.message),
            ..Record::new("warning")
        }
        .write(),
    }
}

/// A warning of quiesce's own that has no code (an environment problem it works around).
pub fn warning_text(text: &str) {
    match format() {
        Format::Text => stderr_line(&format!(
            "quiesce: {} {}",
            crate::output::style::warning_word(),
            safe_lines(text)
        )),
        Format::Json => Record {
            message: Some(text),
            ..Record::new("warning")
        }
        .write(),
    }
}

/// An error: what failed and what to do.
pub fn error(text: &str) {
    match format() {
        Format::Text => stderr_line(&format!(
            "{} {}",
            crate::output::style::error_prefix(),
            safe_lines(text)
        )),
        Format::Json => Record {
            message: Some(text),
            ..Record::new("error")
        }
        .write(),
    }
}

/// Something the operator should know that is neither a warning nor an error.
pub fn info(service: Option<&str>, text: &str) {
    match format() {
        Format::Text => stderr_line(&format!("quiesce: {}", safe_lines(text))),
        Format::Json => Record {
            service,
            message: Some(text),
            ..Record::new("info")
        }
        .write(),
    }
}
