//! Text that policies and containers wrote (a policy's version, description and errors, its
//! log, an exec's output, a command line), made safe before it reaches a terminal: control
//! characters are shown escaped, so such text cannot clear the screen, set the window title or
//! a hyperlink, or add rows to a table (issue 17, class 6).

use std::borrow::Cow;
use std::fmt::Write as _;

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
}
