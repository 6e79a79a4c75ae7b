//! Finding a line in a container's log stream without holding the stream.

use std::time::{Duration, SystemTime};

/// The longest stamp a log line may start with (`2024-05-01T12:00:00.123456789Z`, with room);
/// longer, the line has none.
const MAX_STAMP_BYTES: usize = 64;

/// Looks for a text in a container's log stream (`docker logs --timestamps`), holding at most
/// the text's length (less a byte) of the current line between chunks, so a text split across
/// chunks is found while a line that never ends costs nothing more (issue 17, class 8: a
/// container writing without newlines once made quiesce grow by 100 MB in 150 s).
///
/// Each line starts with the engine's RFC 3339 stamp; lines from before `since` are skipped
/// (the API's `since` has second resolution). Podman's stamps have whole seconds: a line of
/// the wait's own second counts. Docker cuts a long line into messages of 16 KiB, each with
/// its own stamp: a message that does not end its line is continued by the next one.
pub(super) struct LogScanner<'a> {
    text: &'a str,
    since: SystemTime,
    since_second: SystemTime,
    /// The end of the current line, as far as a match may still need it.
    carry: Vec<u8>,
    /// Whether the current line counts (stamped at or after `since`).
    recent: bool,
    /// In a raw stream, at a line's start: the stamp read so far.
    stamp: Option<Vec<u8>>,
    /// The last message did not end its line.
    partial: bool,
}

impl<'a> LogScanner<'a> {
    pub(super) fn new(text: &'a str, since: SystemTime) -> LogScanner<'a> {
        let seconds = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        LogScanner {
            text,
            since,
            since_second: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            carry: Vec::new(),
            recent: false,
            stamp: Some(Vec::new()),
            partial: false,
        }
    }

    fn is_recent(&self, stamp: &[u8]) -> bool {
        let Ok(stamp) = std::str::from_utf8(stamp) else {
            return false;
        };
        let floor = if stamp.contains('.') {
            self.since
        } else {
            self.since_second
        };
        humantime::parse_rfc3339_weak(stamp).is_ok_and(|at| at >= floor)
    }

    /// One log message: `STAMP TEXT`, its text one line or the piece of one. True when the
    /// awaited text appeared.
    pub(super) fn message(&mut self, message: &[u8]) -> bool {
        let (stamp, content) = match message.iter().position(|byte| *byte == b' ') {
            Some(space) => (&message[..space], &message[space + 1..]),
            None => (message, &[][..]),
        };
        let recent = self.is_recent(stamp);
        if self.partial {
            self.recent |= recent;
        } else {
            self.recent = recent;
            self.carry.clear();
        }
        self.partial = !content.is_empty() && !content.ends_with(b"\n");
        content
            .split_inclusive(|byte| *byte == b'\n')
            .any(|piece| self.content(piece))
    }

    /// A piece of a raw stream of stamped lines, cut anywhere. True when the awaited text
    /// appeared.
    pub(super) fn raw(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if let Some(stamp) = &mut self.stamp {
                let space = bytes.iter().position(|byte| *byte == b' ');
                let end = space.unwrap_or(bytes.len());
                stamp.extend_from_slice(&bytes[..end]);
                if space.is_none() && stamp.len() <= MAX_STAMP_BYTES {
                    return false;
                }
                let stamp = self.stamp.take().unwrap_or_default();
                if space.is_some() {
                    self.recent = self.is_recent(&stamp);
                    bytes = &bytes[end + 1..];
                } else {
                    // Not a stamp: the line has none, and does not count.
                    self.recent = false;
                    bytes = &bytes[end..];
                }
                continue;
            }
            let end = bytes
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(bytes.len(), |newline| newline + 1);
            if self.content(&bytes[..end]) {
                return true;
            }
            if bytes[end - 1] == b'\n' {
                self.stamp = Some(Vec::new());
            }
            bytes = &bytes[end..];
        }
        false
    }

    /// More of the current line (ending it when `piece` ends with a newline).
    fn content(&mut self, piece: &[u8]) -> bool {
        let ends_line = piece.ends_with(b"\n");
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(piece.strip_suffix(b"\n").unwrap_or(piece));
        // A valid UTF-8 text is found in lossily decoded bytes wherever it is in them.
        let found = self.recent && String::from_utf8_lossy(&window).contains(self.text);
        if !ends_line {
            let keep = self.text.len().saturating_sub(1).min(window.len());
            window.drain(..window.len() - keep);
            self.carry = window;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(at: SystemTime) -> String {
        humantime::format_rfc3339_nanos(at).to_string()
    }

    #[test]
    fn a_log_line_split_across_messages_is_found_and_old_lines_are_not() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (before, after) = (
            stamp(since - Duration::from_millis(300)),
            stamp(since + Duration::from_millis(1)),
        );
        let mut scanner = LogScanner::new("drained", since);
        assert!(!scanner.message(format!("{before} drained\n").as_bytes()));
        assert!(!scanner.message(format!("{after} all dra").as_bytes()));
        assert!(scanner.message(format!("{after} ined\n").as_bytes()));
        // Podman: whole seconds, the wait's own second counts.
        let mut scanner = LogScanner::new("drained", since + Duration::from_millis(500));
        assert!(scanner.message(b"2023-11-14T22:13:20Z drained\n"));
    }

    #[test]
    fn a_raw_stream_is_read_line_by_line_wherever_it_is_cut() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let old = stamp(since - Duration::from_secs(1));
        let new = stamp(since + Duration::from_secs(1));
        let stream = format!("{old} drained\r\n{new} not yet\r\n{new} all drained\r\n");
        for cut in 1..stream.len() {
            let mut scanner = LogScanner::new("drained", since);
            let (first, second) = stream.as_bytes().split_at(cut);
            let found = scanner.raw(first) || scanner.raw(second);
            assert!(found, "cut at {cut}");
        }
        let mut scanner = LogScanner::new("drained", since);
        assert!(!scanner.raw(stream.split("all").next().unwrap().as_bytes()));
    }

    /// Issue 17, class 8: output without newlines does not make the wait grow.
    #[test]
    fn a_line_that_never_ends_holds_only_the_texts_length() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now = stamp(since + Duration::from_secs(1));
        let needle = "x".repeat(100) + "!";
        let piece = format!("{now} {}", "x".repeat(16 << 10));
        let mut framed = LogScanner::new(&needle, since);
        let mut raw = LogScanner::new(&needle, since);
        assert!(!raw.raw(piece.as_bytes()));
        for _ in 0..1000 {
            assert!(!framed.message(piece.as_bytes()));
            assert!(!raw.raw(&piece.as_bytes()[now.len() + 1..]));
            assert!(framed.carry.len() < needle.len() && raw.carry.len() < needle.len());
        }
        assert!(framed.message(format!("{now} !").as_bytes()));
        assert!(raw.raw(b"!"));
    }
}
