//! Colours on the terminal: `--color auto|always|never` and the `NO_COLOR` convention.
//!
//! `auto` (the default) colours a stream only when it is a terminal, `TERM` is not `dumb`, and
//! `NO_COLOR` is unset or empty (<https://no-color.org>); `always` and `never` override all of
//! that. The choice is made once, by the command line, before anything is printed.
//!
//! Text that policies and containers wrote is made safe for a terminal by
//! [`crate::model::text::safe`] first.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::model::report::ServiceOutcome;
use crate::model::vars::Vars;

/// When to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// On a terminal, unless `NO_COLOR` is set or `TERM=dumb`.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// What the environment says about colours: `NO_COLOR` set (and not empty), `TERM=dumb`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// `NO_COLOR` is set and not empty.
    pub no_color: bool,
    /// `TERM` is `dumb`.
    pub dumb_terminal: bool,
}

impl Environment {
    /// What `vars` say.
    pub fn of(vars: &Vars) -> Environment {
        Environment {
            no_color: vars.get("NO_COLOR").is_some(),
            dumb_terminal: vars.text("TERM") == Some("dumb"),
        }
    }
}

static CHOICE: OnceLock<(When, Environment)> = OnceLock::new();

/// Sets the choice and the environment for the whole process (the first call wins).
pub fn init(when: When, environment: Environment) {
    let _ = CHOICE.set((when, environment));
}

/// Which stream a text goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Whether text for `stream` is coloured, as [`init`] set it (`auto` before).
pub fn enabled(stream: Stream) -> bool {
    let (when, environment) = CHOICE
        .get()
        .copied()
        .unwrap_or((When::Auto, Environment::default()));
    would_colour(when, environment, stream)
}

/// Whether text for `stream` would be coloured under `when` and `environment` (before
/// [`init`]: clap's own help and errors).
pub fn would_colour(when: When, environment: Environment, stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    decide(
        when,
        terminal,
        environment.no_color,
        environment.dumb_terminal,
    )
}

/// The rule, apart from the environment it reads.
fn decide(when: When, terminal: bool, no_color: bool, dumb_terminal: bool) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => terminal && !no_color && !dumb_terminal,
    }
}

/// A colour or weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// Success.
    Green,
    /// Failure.
    Red,
    /// Attention.
    Yellow,
    /// Something the operator should look into.
    Magenta,
    /// Less important.
    Dim,
    /// Emphasis.
    Bold,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Green => "32",
            Paint::Red => "1;31",
            Paint::Yellow => "33",
            Paint::Magenta => "35",
            Paint::Dim => "2",
            Paint::Bold => "1",
        }
    }
}

/// `text` in `paint`, if `stream` is coloured.
pub fn paint(text: &str, paint: Paint, stream: Stream) -> String {
    if enabled(stream) {
        format!("\x1b[{}m{text}\x1b[0m", paint.code())
    } else {
        text.to_string()
    }
}

/// The colour of an outcome.
pub fn outcome_paint(outcome: ServiceOutcome) -> Paint {
    match outcome {
        ServiceOutcome::Graceful => Paint::Green,
        ServiceOutcome::Killed => Paint::Red,
        ServiceOutcome::Escalated => Paint::Yellow,
        ServiceOutcome::Fallback => Paint::Yellow,
        ServiceOutcome::Failed => Paint::Magenta,
        ServiceOutcome::AlreadyStopped | ServiceOutcome::Gone => Paint::Dim,
    }
}

/// `quiesce: error: ` for stderr.
pub fn error_prefix() -> String {
    format!("quiesce: {}", paint("error:", Paint::Red, Stream::Stderr))
}

/// `warning:` for stderr.
pub fn warning_word() -> String {
    paint("warning:", Paint::Yellow, Stream::Stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color_or_a_dumb_term() {
        assert!(decide(When::Auto, true, false, false));
        assert!(!decide(When::Auto, false, false, false));
        assert!(!decide(When::Auto, true, true, false));
        assert!(!decide(When::Auto, true, false, true));
    }

    #[test]
    fn always_and_never_override_the_environment() {
        assert!(decide(When::Always, false, true, true));
        assert!(!decide(When::Never, true, false, false));
    }
}
