//! Colours on the terminal: `--color auto|always|never` and the `NO_COLOR` convention.
//!
//! `auto` (the default) colours a stream only when it is a terminal, `TERM` is not `dumb`, and
//! `NO_COLOR` is unset or empty (<https://no-color.org>); `always` and `never` override all of
//! that. The choice is made once, by the command line, before anything is printed.
//!
//! Text that policies and containers wrote (a policy's version, description and errors, its
//! log, an exec's output, a command line) goes through [`safe`] before it reaches a terminal:
//! control characters are shown escaped, so such text cannot clear the screen, set the window
//! title or a hyperlink, or add rows to a table (issue 17, class 6).

use std::borrow::Cow;
use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::report::ServiceOutcome;

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

static CHOICE: OnceLock<When> = OnceLock::new();

/// Sets the choice for the whole process (the first call wins).
pub fn init(when: When) {
    let _ = CHOICE.set(when);
}

/// Which stream a text goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Whether text for `stream` is coloured.
pub fn enabled(stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    decide(
        CHOICE.get().copied().unwrap_or(When::Auto),
        terminal,
        std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
        std::env::var_os("TERM").is_some_and(|term| term == "dumb"),
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

/// `text` with every control character shown escaped, on one line: C0 controls (newlines and
/// tabs included) and DEL as `\n`, `\r`, `\t` or `\x1b`, C1 controls and the invisible
/// characters that reorder or hide text (bidirectional overrides, zero-width marks) as
/// `\u{202e}`. Everything else is left as it is.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        push_safe(&mut shown, character);
    }
    Cow::Owned(shown)
}

/// [`safe`] for text of several lines (a policy's log, a multi-line message): each line made
/// safe, the line breaks kept.
pub fn safe_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| safe(line.strip_suffix('\r').unwrap_or(line)).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

fn push_safe(shown: &mut String, character: char) {
    match character {
        '\n' => shown.push_str("\\n"),
        '\r' => shown.push_str("\\r"),
        '\t' => shown.push_str("\\t"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(shown, "\\x{:02x}", u32::from(character));
        }
        character if needs_escape(character) => {
            let _ = write!(shown, "\\u{{{:x}}}", u32::from(character));
        }
        character => shown.push(character),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_on_one_line() {
        assert_eq!(safe("nginx 1.27"), "nginx 1.27");
        assert!(matches!(safe("plain"), Cow::Borrowed(_)));
        assert_eq!(
            safe("1.0\x1b[2J\x1b]0;pwned\x07\nfake  row\r\t\x7f"),
            "1.0\\x1b[2J\\x1b]0;pwned\\x07\\nfake  row\\r\\t\\x7f"
        );
        assert_eq!(safe("a\u{9b}31mb\u{202e}c"), "a\\u{9b}31mb\\u{202e}c");
        assert_eq!(safe("caf\u{e9} \u{2713}"), "caf\u{e9} \u{2713}");
    }

    #[test]
    fn safe_lines_keeps_the_line_breaks_only() {
        assert_eq!(
            safe_lines("one\r\ntwo \x1b[31mred\nthree"),
            "one\ntwo \\x1b[31mred\nthree"
        );
    }

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
