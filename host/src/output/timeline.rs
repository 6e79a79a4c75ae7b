//! The timeline picture (`--timeline FILE.svg`): one row per service on a shared time axis,
//! drawn from the run report.
//!
//! Each row shows the service's phases as the report recorded them: a signal delivered (a
//! tick), draining (waiting for the exit), waiting on a check (probe, health, log line, a fixed
//! wait), a drain action (exec or HTTP), escalation (SIGKILL and the wait after it), and the end
//! as a dot in the outcome's colour. The run's deadline is a dashed line when it falls on the
//! axis. Every mark carries a `<title>`, so a browser shows its details on hover; rows carry
//! `data-service` and `data-outcome` attributes, and marks a `class` naming their phase, so the
//! picture can be checked by a program as well as by eye.
//!
//! The picture is a standalone SVG (no scripts, no external resources): it opens in any browser
//! and embeds in an HTML page or a wiki.

use std::fmt::Write as _;
use std::time::SystemTime;

use quiesce_policy_sdk::{Step, WaitCondition};

use crate::model::report::{Report, ServiceOutcome, ServiceReport, StepOrigin, StepReport};

/// Width of the service-name column, in pixels.
const LABEL_WIDTH: f64 = 230.0;
/// Width of the time axis.
const CHART_WIDTH: f64 = 880.0;
/// Width of the outcome column.
const OUTCOME_WIDTH: f64 = 130.0;
/// Height of one service's row.
const ROW_HEIGHT: f64 = 22.0;
/// Height of the title and axis above the rows.
const HEADER_HEIGHT: f64 = 74.0;
/// Height of the legend below the rows.
const FOOTER_HEIGHT: f64 = 64.0;
/// Longest service label drawn, in characters (the full name is in the row's title).
const LABEL_CHARS: usize = 30;

/// What a stretch of a row means, as drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A signal was sent (drawn as a tick).
    Signal,
    /// Waiting for the container to exit.
    Draining,
    /// Waiting on a check: a probe, the health status, a log line, or a fixed time.
    Check,
    /// A drain action: a command run in the container, or an HTTP request.
    Action,
    /// SIGKILL, and the wait for the exit after it.
    Escalation,
}

impl Phase {
    /// The phase of a recorded step, given whether SIGKILL was already sent.
    fn of(step: &StepReport, after_kill: bool) -> Phase {
        match &step.step {
            Step::Signal(_) => Phase::Signal,
            Step::Kill => Phase::Escalation,
            Step::Exec { .. } | Step::Http { .. } => Phase::Action,
            Step::Wait { .. } if after_kill => Phase::Escalation,
            Step::Wait {
                until: WaitCondition::Exited,
                ..
            } => Phase::Draining,
            Step::Wait { .. } | Step::Finish => Phase::Check,
        }
    }

    /// The CSS class (and data name) of the phase.
    pub fn class(self) -> &'static str {
        match self {
            Phase::Signal => "signal",
            Phase::Draining => "draining",
            Phase::Check => "check",
            Phase::Action => "action",
            Phase::Escalation => "escalation",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Phase::Signal => "signal sent",
            Phase::Draining => "draining (waiting for the exit)",
            Phase::Check => "waiting on a check",
            Phase::Action => "drain command / HTTP call",
            Phase::Escalation => "escalation (SIGKILL, then the wait for the exit)",
        }
    }

    const ALL: [Phase; 5] = [
        Phase::Signal,
        Phase::Draining,
        Phase::Check,
        Phase::Action,
        Phase::Escalation,
    ];
}

/// The colour of an outcome, shared by the end dot and the outcome text.
fn outcome_colour(outcome: ServiceOutcome) -> &'static str {
    match outcome {
        ServiceOutcome::Graceful => "#1a7f37",
        ServiceOutcome::Escalated => "#9a6700",
        ServiceOutcome::Killed => "#cf222e",
        ServiceOutcome::Fallback => "#bc4c00",
        ServiceOutcome::Failed => "#6e40c9",
        ServiceOutcome::AlreadyStopped | ServiceOutcome::Gone => "#6e7781",
    }
}

const STYLE: &str = "
  text { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 12px; fill: #1f2328; }
  .title { font-size: 16px; font-weight: 600; }
  .muted { fill: #57606a; }
  .grid { stroke: #d0d7de; stroke-width: 1; }
  .row-even { fill: #f6f8fa; }
  .draining { fill: #54aeff; }
  .check { fill: #a475f9; }
  .action { fill: #2da44e; }
  .escalation { fill: #cf222e; }
  .signal { stroke: #9a6700; stroke-width: 3; }
  .kill { stroke: #cf222e; stroke-width: 4; }
  .signal-delivery { stroke: #9a6700; stroke-width: 1.5; }
  .kill-delivery { stroke: #cf222e; stroke-width: 1.5; }
  .fallback-step { stroke: #bc4c00; stroke-width: 1.5; stroke-dasharray: 3 2; }
  .budget { stroke: #57606a; stroke-width: 1.5; }
  .deadline { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 4; }
";

/// Draws the report as an SVG document.
pub fn render_svg(report: &Report) -> String {
    let run_start = parse_time(&report.started_at);
    let rows: Vec<Row<'_>> = report
        .services
        .iter()
        .map(|service| Row::new(service, run_start))
        .collect();
    let span_ms = rows
        .iter()
        .map(|row| row.offset_ms + row.service.elapsed_ms as f64)
        .fold(0.0, f64::max);
    let axis = Axis::new(span_ms);
    let deadline_ms = report.deadline_ms as f64;

    let width = LABEL_WIDTH + CHART_WIDTH + OUTCOME_WIDTH;
    let rows_height = ROW_HEIGHT * rows.len().max(1) as f64;
    let height = HEADER_HEIGHT + rows_height + FOOTER_HEIGHT;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="quiesce shutdown timeline">"#
    );
    let _ = write!(svg, "<style>{STYLE}</style>");
    let _ = write!(
        svg,
        r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    header(&mut svg, report, &axis, deadline_ms);
    grid(&mut svg, &axis, rows_height);
    for (index, row) in rows.iter().enumerate() {
        row.draw(&mut svg, index, &axis);
    }
    if deadline_ms <= axis.end_ms {
        let x = axis.x(deadline_ms);
        let bottom = HEADER_HEIGHT + rows_height;
        let _ = write!(
            svg,
            r#"<line class="deadline" x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}"><title>deadline: {}</title></line>"#,
            format_ms(deadline_ms),
            top = HEADER_HEIGHT - 6.0,
        );
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y}" text-anchor="middle" fill="#cf222e" style="fill:#cf222e">deadline</text>"##,
            y = HEADER_HEIGHT - 9.0,
        );
    }
    legend(&mut svg, HEADER_HEIGHT + rows_height + 22.0);
    svg.push_str("</svg>\n");
    svg
}

/// One service, placed on the run's time axis.
struct Row<'a> {
    service: &'a ServiceReport,
    /// When its sequence began, in ms after the run began.
    offset_ms: f64,
}

impl<'a> Row<'a> {
    fn new(service: &'a ServiceReport, run_start: Option<SystemTime>) -> Row<'a> {
        let offset_ms = match (run_start, parse_time(&service.started_at)) {
            (Some(run), Some(start)) => start
                .duration_since(run)
                .map(|offset| offset.as_secs_f64() * 1000.0)
                .unwrap_or(0.0),
            _ => 0.0,
        };
        Row { service, offset_ms }
    }

    fn draw(&self, svg: &mut String, index: usize, axis: &Axis) {
        let service = self.service;
        let top = HEADER_HEIGHT + ROW_HEIGHT * index as f64;
        let middle = top + ROW_HEIGHT / 2.0;
        let total_width = LABEL_WIDTH + CHART_WIDTH + OUTCOME_WIDTH;
        let _ = write!(
            svg,
            r#"<g class="service" data-service="{}" data-outcome="{}">"#,
            escape(&service.name),
            service.outcome.as_str()
        );
        let _ = write!(
            svg,
            r#"<title>{}: policy {} {}, {} after {}, budget {}</title>"#,
            escape(&service.name),
            escape(&service.policy.name),
            escape(&service.policy.version),
            service.outcome.as_str(),
            format_ms(service.elapsed_ms as f64),
            format_ms(service.budget_ms as f64),
        );
        if index.is_multiple_of(2) {
            let _ = write!(
                svg,
                r#"<rect class="row-even" x="0" y="{top}" width="{total_width}" height="{ROW_HEIGHT}"/>"#
            );
        }
        let _ = write!(
            svg,
            r#"<text x="8" y="{y:.1}">{}<tspan class="muted"> · {}</tspan></text>"#,
            escape(&shorten(&service.name, LABEL_CHARS)),
            escape(&service.policy.name),
            y = middle + 4.0,
        );

        let budget_end = self.offset_ms + service.budget_ms as f64;
        if budget_end <= axis.end_ms {
            let x = axis.x(budget_end);
            let _ = write!(
                svg,
                r#"<line class="budget" x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}"><title>{}: budget ends ({})</title></line>"#,
                escape(&service.name),
                format_ms(service.budget_ms as f64),
                y1 = top + 3.0,
                y2 = top + ROW_HEIGHT - 3.0,
            );
        }

        let mut after_kill = false;
        for step in &service.steps {
            let phase = Phase::of(step, after_kill);
            after_kill |= step.step == Step::Kill;
            self.draw_step(svg, step, phase, axis, top);
        }

        let colour = outcome_colour(service.outcome);
        if service.stopped_at.is_some() || service.outcome == ServiceOutcome::Failed {
            let x = axis.x(self.offset_ms + service.elapsed_ms as f64);
            let exit = match service.exit_code {
                Some(code) => format!("exit {code}"),
                None => "no exit".to_string(),
            };
            let _ = write!(
                svg,
                r##"<circle class="end" cx="{x:.1}" cy="{middle:.1}" r="5" fill="{colour}" stroke="#ffffff" stroke-width="1.5"><title>{}: {} ({exit}) at {}</title></circle>"##,
                escape(&service.name),
                service.outcome.as_str(),
                format_ms(self.offset_ms + service.elapsed_ms as f64),
            );
        }
        let exit = service
            .exit_code
            .map(|code| format!(" ({code})"))
            .unwrap_or_default();
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{y:.1}" style="fill:{colour}" font-weight="600">{}{exit}</text>"#,
            service.outcome.as_str(),
            x = LABEL_WIDTH + CHART_WIDTH + 10.0,
            y = middle + 4.0,
        );
        svg.push_str("</g>");
    }

    fn draw_step(&self, svg: &mut String, step: &StepReport, phase: Phase, axis: &Axis, top: f64) {
        let start = self.offset_ms + step.start_ms as f64;
        let end = self.offset_ms + step.end_ms as f64;
        let (action, detail) = step.step.describe();
        let title = format!(
            "{}: {action} {detail} at {}–{}: {}{}",
            self.service.name,
            format_ms(start),
            format_ms(end),
            step.outcome.describe(),
            match step.by {
                StepOrigin::Policy => "",
                StepOrigin::Fallback => " (fallback sequence)",
                StepOrigin::Runner => " (by the runner)",
            }
        );
        let outline = if step.by == StepOrigin::Policy {
            ""
        } else {
            " fallback-step"
        };
        let x = axis.x(start);
        // Signals, SIGKILL included, are instants: ticks across the row.
        if phase == Phase::Signal || step.step == Step::Kill {
            let class = if phase == Phase::Signal {
                "signal"
            } else {
                "kill"
            };
            // A signal can take a while to deliver on a busy engine: a thin line to its end.
            let delivered = axis.x(end);
            if delivered - x >= 2.0 {
                let _ = write!(
                    svg,
                    r#"<line class="{class}-delivery" x1="{x:.1}" y1="{y:.1}" x2="{delivered:.1}" y2="{y:.1}"><title>{}</title></line>"#,
                    escape(&title),
                    y = top + ROW_HEIGHT / 2.0,
                );
            }
            let _ = write!(
                svg,
                r#"<line class="{class}{outline}" data-phase="{}" x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}"><title>{}</title></line>"#,
                phase.class(),
                escape(&title),
                y1 = top + 2.0,
                y2 = top + ROW_HEIGHT - 2.0,
            );
            return;
        }
        // At least 2 px, so a kill or a quick call stays visible.
        let width = (axis.x(end) - x).max(2.0);
        let _ = write!(
            svg,
            r#"<rect class="{}{outline}" data-phase="{}" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{h:.1}" rx="2"><title>{}</title></rect>"#,
            phase.class(),
            phase.class(),
            escape(&title),
            y = top + 5.0,
            h = ROW_HEIGHT - 10.0,
        );
    }
}

/// The time axis: milliseconds since the run began, to pixels.
struct Axis {
    end_ms: f64,
    tick_ms: f64,
}

impl Axis {
    fn new(span_ms: f64) -> Axis {
        // Room after the last exit; at least one second on the axis.
        let wanted = (span_ms * 1.05).max(1000.0);
        let tick_ms = nice_tick(wanted / 8.0);
        let end_ms = (wanted / tick_ms).ceil() * tick_ms;
        Axis { end_ms, tick_ms }
    }

    fn x(&self, ms: f64) -> f64 {
        LABEL_WIDTH + CHART_WIDTH * (ms.clamp(0.0, self.end_ms) / self.end_ms)
    }

    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let count = (self.end_ms / self.tick_ms).round() as usize;
        (0..=count).map(|i| i as f64 * self.tick_ms)
    }
}

/// The smallest of 1, 2, 5 × 10^k milliseconds that is at least `rough`.
fn nice_tick(rough: f64) -> f64 {
    let mut magnitude = 1.0;
    while magnitude * 10.0 <= rough {
        magnitude *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|&tick| tick >= rough)
        .unwrap_or(10.0 * magnitude)
}

fn header(svg: &mut String, report: &Report, axis: &Axis, deadline_ms: f64) {
    let kind = if report.dry_run {
        "plan (simulated: every service obeys its policy)"
    } else {
        "stop"
    };
    let _ = write!(
        svg,
        r#"<text class="title" x="8" y="22">quiesce {kind}: {} services</text>"#,
        report.services.len()
    );
    let summary = &report.summary;
    let mut counts = vec![format!("{} graceful", summary.graceful)];
    for (count, name) in [
        (summary.killed, "killed"),
        (summary.fallback, "fallback"),
        (summary.failed, "failed"),
        (summary.already_stopped, "already stopped"),
        (summary.gone, "gone"),
    ] {
        if count > 0 {
            counts.push(format!("{count} {name}"));
        }
    }
    let deadline = if deadline_ms <= axis.end_ms {
        format!("deadline {}", format_ms(deadline_ms))
    } else {
        format!("deadline {} (beyond the axis)", format_ms(deadline_ms))
    };
    let _ = write!(
        svg,
        r#"<text class="muted" x="8" y="40">started {} · {} · {}{}</text>"#,
        escape(&report.started_at),
        counts.join(", "),
        deadline,
        if report.interrupted {
            " · interrupted"
        } else {
            ""
        }
    );
}

fn grid(svg: &mut String, axis: &Axis, rows_height: f64) {
    let bottom = HEADER_HEIGHT + rows_height;
    for tick in axis.ticks() {
        let x = axis.x(tick);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}"/><text class="muted" x="{x:.1}" y="{label}" text-anchor="middle">{}</text>"#,
            format_ms(tick),
            top = HEADER_HEIGHT - 4.0,
            label = HEADER_HEIGHT - 22.0,
        );
    }
}

fn legend(svg: &mut String, y: f64) {
    let mut x = 8.0;
    for phase in Phase::ALL {
        match phase {
            Phase::Signal => {
                let _ = write!(
                    svg,
                    r#"<line class="signal" x1="{x1:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y2:.1}"/>"#,
                    x1 = x + 5.0,
                    y1 = y - 10.0,
                    y2 = y + 2.0,
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    r#"<rect class="{}" x="{x:.1}" y="{y1:.1}" width="14" height="10" rx="2"/>"#,
                    phase.class(),
                    y1 = y - 9.0,
                );
            }
        }
        let _ = write!(
            svg,
            r#"<text x="{tx:.1}" y="{y:.1}">{}</text>"#,
            phase.legend(),
            tx = x + 20.0,
        );
        x += 40.0 + 6.5 * phase.legend().len() as f64;
    }
    let y = y + 22.0;
    let mut x = 8.0;
    for outcome in [
        ServiceOutcome::Graceful,
        ServiceOutcome::Escalated,
        ServiceOutcome::Killed,
        ServiceOutcome::Fallback,
        ServiceOutcome::Failed,
        ServiceOutcome::Gone,
    ] {
        let _ = write!(
            svg,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{}"/><text x="{tx:.1}" y="{y:.1}">{}</text>"#,
            outcome_colour(outcome),
            outcome.as_str(),
            cx = x + 5.0,
            cy = y - 4.0,
            tx = x + 16.0,
        );
        x += 30.0 + 7.0 * outcome.as_str().len() as f64;
    }
    let _ = write!(
        svg,
        r#"<line class="budget" x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}"/><text x="{tx:.1}" y="{y:.1}">budget end</text>"#,
        y1 = y - 10.0,
        y2 = y + 2.0,
        tx = x + 8.0,
    );
    let x = x + 90.0;
    let _ = write!(
        svg,
        r#"<line class="deadline" x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}"/><text x="{tx:.1}" y="{y:.1}">run deadline</text><rect class="fallback-step" x="{fx:.1}" y="{y1:.1}" width="14" height="10" fill="none"/><text x="{ftx:.1}" y="{y:.1}">step by the fallback or the runner</text>"#,
        y1 = y - 10.0,
        y2 = y + 2.0,
        tx = x + 8.0,
        fx = x + 100.0,
        ftx = x + 120.0,
    );
}

/// Parses a report timestamp (RFC 3339).
fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// A duration for people: `850ms`, `2.5s`, `1m30s`.
fn format_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0".to_string()
    } else if ms < 1000.0 {
        format!("{}ms", ms.round())
    } else if ms < 60_000.0 {
        let seconds = ms / 1000.0;
        if (seconds - seconds.round()).abs() < 0.05 {
            format!("{}s", seconds.round())
        } else {
            format!("{seconds:.1}s")
        }
    } else {
        let total = (ms / 1000.0).round() as u64;
        match (total / 60, total % 60) {
            (minutes, 0) => format!("{minutes}m"),
            (minutes, seconds) => format!("{minutes}m{seconds}s"),
        }
    }
}

fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut short: String = text.chars().take(chars - 1).collect();
    short.push('…');
    short
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{PolicyIdentity, Summary};
    use quiesce_policy_sdk::Signal;

    fn step(step: Step, start_ms: u64, end_ms: u64, by: StepOrigin) -> StepReport {
        StepReport {
            step,
            outcome: quiesce_policy_sdk::Outcome::ConditionMet,
            start_ms,
            end_ms,
            by,
        }
    }

    fn secs(seconds: u64) -> std::time::Duration {
        std::time::Duration::from_secs(seconds)
    }

    fn service(
        name: &str,
        offset_ms: u64,
        outcome: ServiceOutcome,
        steps: Vec<StepReport>,
    ) -> ServiceReport {
        let start = humantime::parse_rfc3339("2026-11-22T10:00:00Z").unwrap()
            + std::time::Duration::from_millis(offset_ms);
        let elapsed_ms = steps.last().map_or(0, |step| step.end_ms);
        ServiceReport {
            name: name.into(),
            id: format!("id-{name}"),
            policy: PolicyIdentity {
                name: "default".into(),
                version: "1.0.0".into(),
                digest: "sha256:00".into(),
                source: "(built-in)".into(),
            },
            outcome,
            exit_code: Some(if outcome == ServiceOutcome::Killed {
                137
            } else {
                0
            }),
            started_at: crate::model::units::timestamp(start),
            stopped_at: Some(crate::model::units::timestamp(start)),
            budget_ms: 20_000,
            elapsed_ms,
            steps,
            fallback_reason: None,
            fallback_kind: None,
            policy_log: String::new(),
            restart_policy: None,
            supervisor: None,
            stopped_by: None,
            warnings: Vec::new(),
        }
    }

    fn report(services: Vec<ServiceReport>, deadline_ms: u64) -> Report {
        Report {
            report_version: crate::model::report::REPORT_VERSION,
            dry_run: false,
            started_at: "2026-11-22T10:00:00.000Z".into(),
            finished_at: "2026-11-22T10:00:30.000Z".into(),
            deadline_ms,
            engine: None,
            interrupted: false,
            worst_case_ms: None,
            summary: Summary::of(&services),
            services,
            warnings: Vec::new(),
        }
    }

    /// A known run: a graceful drain, a service that needed SIGKILL after a probe, and one the
    /// fallback sequence stopped; the second starts after the first (dependency order).
    fn known_run(deadline_ms: u64) -> Report {
        report(
            vec![
                service(
                    "web",
                    0,
                    ServiceOutcome::Graceful,
                    vec![
                        step(Step::signal(Signal::QUIT), 0, 2, StepOrigin::Policy),
                        step(Step::wait_for_exit(secs(10)), 2, 4_000, StepOrigin::Policy),
                    ],
                ),
                service(
                    "db",
                    4_100,
                    ServiceOutcome::Killed,
                    vec![
                        step(Step::signal(Signal::TERM), 0, 1, StepOrigin::Policy),
                        step(
                            Step::exec(["pg_ctl", "promote"], secs(5)),
                            1,
                            500,
                            StepOrigin::Policy,
                        ),
                        step(
                            Step::wait(WaitCondition::Probe(vec!["check".into()]), secs(5)),
                            500,
                            5_500,
                            StepOrigin::Policy,
                        ),
                        step(Step::kill(), 5_500, 5_501, StepOrigin::Policy),
                        step(
                            Step::wait_for_exit(secs(2)),
                            5_501,
                            5_600,
                            StepOrigin::Policy,
                        ),
                    ],
                ),
                service(
                    "worker <&\"'>",
                    0,
                    ServiceOutcome::Fallback,
                    vec![
                        step(Step::signal(Signal::TERM), 0, 1, StepOrigin::Fallback),
                        step(
                            Step::wait_for_exit(secs(10)),
                            1,
                            3_000,
                            StepOrigin::Fallback,
                        ),
                    ],
                ),
            ],
            deadline_ms,
        )
    }

    fn rows<'a>(document: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
        document
            .descendants()
            .filter(|node| node.attribute("class") == Some("service"))
            .collect()
    }

    fn phases(row: roxmltree::Node<'_, '_>) -> Vec<(String, f64)> {
        row.descendants()
            .filter_map(|node| {
                let phase = node.attribute("data-phase")?;
                let x = node.attribute("x").or(node.attribute("x1"))?.parse().ok()?;
                Some((phase.to_string(), x))
            })
            .collect()
    }

    #[test]
    fn a_known_run_draws_one_row_per_service_with_its_phases_in_order() {
        let svg = render_svg(&known_run(12_000));
        let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let rows = rows(&document);
        let names: Vec<_> = rows
            .iter()
            .map(|row| row.attribute("data-service").unwrap())
            .collect();
        assert_eq!(names, ["web", "db", "worker <&\"'>"]);
        let outcomes: Vec<_> = rows
            .iter()
            .map(|row| row.attribute("data-outcome").unwrap())
            .collect();
        assert_eq!(outcomes, ["graceful", "killed", "fallback"]);

        let web = phases(rows[0]);
        assert_eq!(
            web.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["signal", "draining"]
        );
        let db = phases(rows[1]);
        assert_eq!(
            db.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["signal", "action", "check", "escalation", "escalation"]
        );
        // Shared axis: db began when web ended, so its signal is to the right of web's drain start
        // and its marks move left to right.
        assert!(
            db[0].1 > web[1].1,
            "db's signal ({}) after web's drain start ({})",
            db[0].1,
            web[1].1
        );
        assert!(db.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        // The end dot of each row in its outcome's colour.
        for (row, colour) in rows.iter().zip(["#1a7f37", "#cf222e", "#bc4c00"]) {
            let end = row
                .descendants()
                .find(|node| node.attribute("class") == Some("end"))
                .unwrap();
            assert_eq!(end.attribute("fill"), Some(colour));
        }
        // Fallback steps are outlined as such.
        assert!(rows[2].descendants().any(|node| {
            node.attribute("class")
                .is_some_and(|class| class.contains("fallback-step"))
        }));
        // The deadline (12 s) is on the axis (the run spans 9.7 s, the axis runs to 12 s).
        assert!(document.descendants().any(|node| {
            node.attribute("class") == Some("deadline")
                && node.has_tag_name("line")
                && node.attribute("y1").is_some()
                && node
                    .children()
                    .any(|child| child.text() == Some("deadline: 12s"))
        }));
    }

    #[test]
    fn a_deadline_beyond_the_axis_is_named_in_the_header_instead() {
        let svg = render_svg(&known_run(30 * 60 * 1000));
        let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert!(svg.contains("deadline 30m (beyond the axis)"));
        assert!(!document.descendants().any(|node| node.has_tag_name("line")
            && node.attribute("class") == Some("deadline")
            && node.children().any(|child| child.has_tag_name("title"))));
    }

    #[test]
    fn fifty_services_fit_one_readable_picture() {
        let services = (0..50)
            .map(|i| {
                service(
                    &format!("service-with-a-rather-long-name-{i:02}"),
                    i * 100,
                    ServiceOutcome::Graceful,
                    vec![
                        step(Step::signal(Signal::TERM), 0, 1, StepOrigin::Policy),
                        step(
                            Step::wait_for_exit(secs(10)),
                            1,
                            1_000 + i * 50,
                            StepOrigin::Policy,
                        ),
                    ],
                )
            })
            .collect();
        let svg = render_svg(&report(services, 60_000));
        let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(rows(&document).len(), 50);
        let root = document.root_element();
        let height: f64 = root.attribute("height").unwrap().parse().unwrap();
        assert_eq!(height, HEADER_HEIGHT + 50.0 * ROW_HEIGHT + FOOTER_HEIGHT);
        // Long names are shortened on the picture; the full name stays in the row's title.
        assert!(svg.contains("service-with-a-rather-long-na…"));
        assert!(svg.contains("<title>service-with-a-rather-long-name-49: policy"));
    }

    #[test]
    fn an_empty_run_is_still_a_picture() {
        let svg = render_svg(&report(Vec::new(), 1_000));
        roxmltree::Document::parse(&svg).expect("well-formed XML");
    }

    #[test]
    fn ticks_are_round_and_durations_read_well() {
        assert_eq!(nice_tick(130.0), 200.0);
        assert_eq!(nice_tick(1_000.0), 1_000.0);
        assert_eq!(nice_tick(3_100.0), 5_000.0);
        assert_eq!(format_ms(850.0), "850ms");
        assert_eq!(format_ms(2_000.0), "2s");
        assert_eq!(format_ms(2_500.0), "2.5s");
        assert_eq!(format_ms(90_000.0), "1m30s");
        assert_eq!(format_ms(1_800_000.0), "30m");
    }
}
