//! Showing a run as it happens, and summarising it at the end.
//!
//! On a terminal: one live line per running service (its current step, time spent, budget),
//! finished services printed above. Otherwise: one log line per event, for journals and CI logs;
//! with `--log-format json`, one JSON object per event ([`crate::output::logs::Record`]).
//!
//! Every text a policy or a container wrote (names, versions, commands, URLs, outputs, errors,
//! the policy's log) is shown through [`crate::model::text::safe`]: escaped control characters, one line per
//! event and per table cell.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiesce_policy_sdk::{Signal, Step};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::model::report::{Report, ServiceOutcome, ServiceReport};
use crate::model::text::safe;
use crate::model::units::millis;
use crate::output::style::{self, Paint, Stream};
use crate::run::executor::{Event, EventSink};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live lines on a terminal.
    Live,
    /// One line per event.
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Live on a terminal stderr, lines otherwise.
    pub fn detect() -> ProgressMode {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressMode::Live
        } else {
            ProgressMode::Lines
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// A step as a progress line shows it: `exec nginx -s quit (timeout 5s)`, made safe.
fn step_text(step: &Step) -> String {
    let (action, detail) = step.describe();
    safe(&format!("{action} {detail}")).into_owned()
}

/// An outcome as a progress line shows it (an exec's last output line...), made safe.
fn outcome_text(outcome: &quiesce_policy_sdk::Outcome) -> String {
    safe(&outcome.describe()).into_owned()
}

/// Starts the task that shows events; drop every sender clone, then await the handle.
pub fn spawn(mode: ProgressMode) -> (EventSink, JoinHandle<()>) {
    if mode == ProgressMode::Quiet {
        return (None, tokio::spawn(async {}));
    }
    let (sender, receiver) = mpsc::unbounded_channel();
    let json = crate::output::logs::format() == crate::output::logs::Format::Json;
    let handle = tokio::spawn(async move {
        match mode {
            _ if json => json_lines(receiver).await,
            ProgressMode::Live => live(receiver).await,
            _ => lines(receiver).await,
        }
    });
    (Some(sender), handle)
}

async fn lines(mut events: mpsc::UnboundedReceiver<Event>) {
    let started = Instant::now();
    while let Some(event) = events.recv().await {
        let line = match event {
            Event::Started {
                service,
                policy,
                budget,
            } => format!(
                "{}: start (policy {}, budget {})",
                safe(&service),
                safe(&policy),
                humantime::format_duration(budget)
            ),
            Event::StepStarted {
                service, at, step, ..
            } => format!("{}: +{} {}", safe(&service), seconds(at), step_text(&step)),
            Event::StepEnded {
                service,
                at,
                step,
                outcome,
            } => format!(
                "{}: +{} {} -> {}",
                safe(&service),
                seconds(at),
                step.action(),
                outcome_text(&outcome)
            ),
            Event::Note { service, text } => warning_line(&service, &text),
            Event::Warning { service, warning } => warning_line(&service, &warning.to_string()),
            Event::Finished {
                service,
                outcome,
                exit_code,
                elapsed,
            } => format!(
                "{}: {}",
                safe(&service),
                finished(outcome, exit_code, elapsed)
            ),
        };
        crate::output::logs::stderr_line(&format!("[{:>8}] {line}", seconds(started.elapsed())));
    }
}

/// `service: warning text`, made safe.
fn warning_line(service: &str, text: &str) -> String {
    format!(
        "{}: {} {}",
        safe(service),
        style::warning_word(),
        safe(text)
    )
}

async fn json_lines(mut events: mpsc::UnboundedReceiver<Event>) {
    use crate::output::logs::Record;
    while let Some(event) = events.recv().await {
        match &event {
            Event::Started {
                service,
                policy,
                budget,
            } => Record {
                service: Some(service),
                policy: Some(policy),
                budget_ms: Some(millis(*budget)),
                ..Record::new("start")
            },
            Event::StepStarted {
                service,
                at,
                step,
                by,
            } => Record {
                service: Some(service),
                at_ms: Some(millis(*at)),
                action: Some(step.action()),
                detail: Some(step.describe().1),
                by: Some(*by),
                ..Record::new("step-start")
            },
            Event::StepEnded {
                service,
                at,
                step,
                outcome,
            } => Record {
                service: Some(service),
                at_ms: Some(millis(*at)),
                action: Some(step.action()),
                detail: Some(step.describe().1),
                result: Some(outcome.describe()),
                ..Record::new("step-end")
            },
            Event::Note { service, text } => Record {
                service: Some(service),
                message: Some(text),
                ..Record::new("note")
            },
            Event::Warning { service, warning } => Record {
                service: Some(service),
                code: Some(warning.code),
                message: Some(&warning.message),
                ..Record::new("warning")
            },
            Event::Finished {
                service,
                outcome,
                exit_code,
                elapsed,
            } => Record {
                service: Some(service),
                outcome: Some(*outcome),
                exit_code: *exit_code,
                elapsed_ms: Some(millis(*elapsed)),
                ..Record::new("finished")
            },
        }
        .write();
    }
}

async fn live(mut events: mpsc::UnboundedReceiver<Event>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {prefix:<24} {elapsed:>4} {msg}")
        .expect("a valid template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
    let mut bars: HashMap<String, (ProgressBar, Duration)> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Started {
                service,
                policy,
                budget,
            } => {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_prefix(safe(&service).into_owned());
                bar.set_message(format!("policy {}", safe(&policy)));
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(service, (bar, budget));
            }
            Event::StepStarted { service, step, .. } => {
                if let Some((bar, budget)) = bars.get(&service) {
                    bar.set_message(format!(
                        "/{} {}",
                        humantime::format_duration(*budget),
                        step_text(&step)
                    ));
                }
            }
            Event::StepEnded {
                service,
                at,
                step,
                outcome,
            } => {
                if let Some((bar, _)) = bars.get(&service) {
                    let _ = multi.println(format!(
                        "  {}: +{} {} -> {}",
                        safe(&service),
                        seconds(at),
                        step.action(),
                        outcome_text(&outcome)
                    ));
                    bar.tick();
                }
            }
            Event::Note { service, text } => {
                let _ = multi.println(format!("  {}", warning_line(&service, &text)));
            }
            Event::Warning { service, warning } => {
                let _ = multi.println(format!(
                    "  {}",
                    warning_line(&service, &warning.to_string())
                ));
            }
            Event::Finished {
                service,
                outcome,
                exit_code,
                elapsed,
            } => {
                let text = finished(outcome, exit_code, elapsed);
                match bars.remove(&service) {
                    Some((bar, _)) => bar.finish_with_message(text),
                    None => {
                        let _ = multi.println(format!("  {}: {text}", safe(&service)));
                    }
                }
            }
        }
    }
}

/// `graceful (exit 0) after 1.2s`, the outcome coloured for stderr.
fn finished(outcome: ServiceOutcome, exit_code: Option<i32>, elapsed: Duration) -> String {
    format!(
        "{} (exit {}) after {}",
        style::paint(
            outcome.as_str(),
            style::outcome_paint(outcome),
            Stream::Stderr
        ),
        exit_code.map_or("-".to_string(), |code| code.to_string()),
        seconds(elapsed)
    )
}

/// What each policy wrote (stdout and stderr), for `--verbose`.
pub fn policy_logs(report: &Report) -> String {
    let mut text = String::new();
    for service in &report.services {
        if service.policy_log.trim().is_empty() {
            continue;
        }
        text.push_str(&format!(
            "{} (policy {}) wrote:\n",
            safe(&service.name),
            safe(&service.policy.name)
        ));
        for line in service.policy_log.lines() {
            text.push_str(&format!("  | {}\n", safe(line)));
        }
    }
    text
}

/// The end-of-run table: one row per service, outcomes coloured when stdout is.
pub fn summary_table(report: &Report) -> String {
    let header = ["SERVICE", "POLICY", "OUTCOME", "EXIT", "TIME", "STEPS"];
    let rows: Vec<[String; 6]> = report.services.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    // Colour after padding, so escape codes do not count as width.
    let mut line = |cells: &[&str], outcome: Option<ServiceOutcome>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                let padded = format!("{cell:<width$}");
                match outcome {
                    Some(outcome) if column == 2 => {
                        style::paint(&padded, style::outcome_paint(outcome), Stream::Stdout)
                    }
                    None => style::paint(&padded, Paint::Bold, Stream::Stdout),
                    Some(_) => padded,
                }
            })
            .collect();
        text.push_str(padded.join("  ").trim_end());
        text.push('\n');
    };
    line(&header, None);
    for (row, service) in rows.iter().zip(&report.services) {
        line(
            &row.iter().map(String::as_str).collect::<Vec<_>>(),
            Some(service.outcome),
        );
    }
    let summary = &report.summary;
    text.push_str(&format!(
        "{} graceful, {} escalated, {} killed, {} fallback, {} already stopped, {} gone, {} failed\n",
        summary.graceful,
        summary.escalated,
        summary.killed,
        summary.fallback,
        summary.already_stopped,
        summary.gone,
        summary.failed
    ));
    for warning in &report.warnings {
        let word = style::paint("warning:", Paint::Yellow, Stream::Stdout);
        text.push_str(&format!("{word} {}\n", safe(&warning.to_string())));
    }
    text
}

/// ` from REGISTRY/REPOSITORY@sha256:<12 hex> (signed by ...)` for a policy pulled from a
/// registry (its `source` holds a digest); nothing for a built-in or a file.
fn pulled_from(source: &str) -> String {
    match source.split_once("@sha256:") {
        Some((repository, rest)) => {
            let (hex, signed) = rest.split_once(' ').unwrap_or((rest, ""));
            let short: String = hex.chars().take(12).collect();
            format!(" from {repository}@sha256:{short} {signed}")
                .trim_end()
                .to_string()
        }
        None => String::new(),
    }
}

fn row(service: &ServiceReport) -> [String; 6] {
    let steps: Vec<String> = service
        .steps
        .iter()
        .map(|step| match &step.step {
            Step::Signal(signal) => signal.name(),
            Step::Kill => Signal::KILL.name(),
            other => other.action().to_string(),
        })
        .collect();
    // One line per cell: a name or version holding a line break cannot add a row.
    [
        safe(&service.name).into_owned(),
        safe(&format!(
            "{} {}{}",
            service.policy.name,
            service.policy.version,
            pulled_from(&service.policy.source)
        ))
        .into_owned(),
        service.outcome.as_str().to_string(),
        service
            .exit_code
            .map_or("-".to_string(), |code| code.to_string()),
        seconds(Duration::from_millis(service.elapsed_ms)),
        steps.join(" > "),
    ]
}

#[cfg(test)]
mod tests {
    use super::pulled_from;

    #[test]
    fn a_pulled_policy_names_its_repository_short_digest_and_signers_and_others_nothing() {
        let digest = "a".repeat(64);
        assert_eq!(
            pulled_from(&format!(
                "r.example/p/redis@sha256:{digest} (signed by a, b)"
            )),
            " from r.example/p/redis@sha256:aaaaaaaaaaaa (signed by a, b)"
        );
        assert_eq!(pulled_from("(built-in)"), "");
        assert_eq!(pulled_from("/etc/quiesce/policies/p.wasm"), "");
    }
}
