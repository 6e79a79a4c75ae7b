//! Where a run's report goes: the summary (or the plan) or the JSON report on stdout, the JSON
//! report and the SVG timeline to files when asked, the policies' logs on stderr with `-v`. A
//! file that cannot be written is said on stderr and makes the exit status 3; the run itself
//! is not undone.

use std::path::Path;

use crate::model::exit;
use crate::model::report::Report;
use crate::output::stdout::print_out;

/// What a stop or a plan writes besides its live output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outputs<'a> {
    /// The JSON report on stdout instead of `text` (`--json`).
    pub json: bool,
    /// The JSON report to this file too (`--report FILE`).
    pub report: Option<&'a Path>,
    /// The SVG timeline to this file (`--timeline FILE`).
    pub timeline: Option<&'a Path>,
    /// Every policy's log on stderr (`-v`).
    pub policy_logs: bool,
}

/// Writes `report` (or `text`, for people) where `outputs` say; returns `status`, raised to 3
/// when a file could not be written.
pub fn emit(report: &Report, text: &str, status: u8, outputs: &Outputs<'_>) -> u8 {
    let json = serde_json::to_string_pretty(report).expect("the report serializes");
    if outputs.policy_logs {
        eprint!("{}", crate::output::progress::policy_logs(report));
    }
    if outputs.json {
        print_out(&format!("{json}\n"));
    } else {
        print_out(text);
    }
    let mut status = status;
    let files = [
        ("the report", outputs.report, format!("{json}\n")),
        (
            "the timeline",
            outputs.timeline,
            outputs
                .timeline
                .map(|_| crate::output::timeline::render_svg(report))
                .unwrap_or_default(),
        ),
    ];
    for (what, path, contents) in files {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, contents)
        {
            crate::output::logs::error(&format!(
                "cannot write {what} to {}: {error}; the run itself completed (see above); check that the directory exists and is writable",
                path.display()
            ));
            status = status.max(exit::ENVIRONMENT);
        }
    }
    status
}
