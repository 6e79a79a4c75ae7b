//! The command's output, passed through unchanged and unbuffered, and offered line by line to
//! log-line waits.
//!
//! Each of the command's stdout and stderr is a pipe read by a thread of its own, which writes
//! every chunk to quiesce's own stdout or stderr at once (no buffering: what `kubectl logs`
//! shows is what the command wrote, when it wrote it). While some step waits for a log line,
//! the chunks are also cut into lines and sent to it. A line is at most [`MAX_LINE`] bytes:
//! longer ones are cut (so a log-line wait never holds more than that, whatever the command
//! writes without a newline).

use std::fs::File;
use std::io::{PipeReader, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use tokio::sync::broadcast;

/// The longest line offered to a log-line wait; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 64 << 10;

/// Lines buffered for a slow log-line wait before the oldest are dropped.
const LINES_QUEUED: usize = 1024;

/// Where the command's lines go.
#[derive(Clone)]
pub struct Lines {
    sender: broadcast::Sender<Arc<str>>,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            sender: broadcast::channel(LINES_QUEUED).0,
        }
    }
}

impl Lines {
    /// A receiver of every line written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }

    fn wanted(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    fn send(&self, line: &[u8]) {
        let _ = self.sender.send(String::from_utf8_lossy(line).into());
    }
}

/// Copies `pipe` to quiesce's file descriptor `fd` (1 or 2) until the pipe closes, offering
/// its lines to `lines`; `done` hears when it has.
pub fn pass_through(
    pipe: PipeReader,
    fd: i32,
    lines: Lines,
    done: std::sync::mpsc::Sender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("quiesce-output-{fd}"))
        .spawn(move || {
            copy(pipe, fd, &lines);
            let _ = done.send(());
        })
        .map(drop)
}

fn copy(mut pipe: PipeReader, fd: i32, lines: &Lines) {
    // SAFETY: fd 1 or 2 stays open for the whole process; ManuallyDrop never closes it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let mut chunk = vec![0u8; 16 << 10];
    let mut line = Vec::new();
    loop {
        let read = match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // A closed or full stdout must not stop the command's output from being drained.
        let _ = out.write_all(&chunk[..read]);
        if lines.wanted() {
            cut_lines(&chunk[..read], &mut line, lines);
        } else {
            line.clear();
        }
    }
    if !line.is_empty() && lines.wanted() {
        lines.send(&line);
    }
}

/// Appends `bytes` to the partial `line`, sending each complete line (and each [`MAX_LINE`]
/// piece of an overlong one).
fn cut_lines(bytes: &[u8], line: &mut Vec<u8>, lines: &Lines) {
    for piece in bytes.split_inclusive(|byte| *byte == b'\n') {
        let complete = piece.ends_with(b"\n");
        let piece = piece.strip_suffix(b"\n").unwrap_or(piece);
        let mut rest = piece;
        while line.len() + rest.len() > MAX_LINE {
            let take = MAX_LINE - line.len();
            line.extend_from_slice(&rest[..take]);
            lines.send(line);
            line.clear();
            rest = &rest[take..];
        }
        line.extend_from_slice(rest);
        if complete {
            lines.send(line);
            line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]]) -> Vec<String> {
        let lines = Lines::default();
        let mut receiver = lines.subscribe();
        let mut line = Vec::new();
        for chunk in chunks {
            cut_lines(chunk, &mut line, &lines);
        }
        let mut seen = Vec::new();
        while let Ok(line) = receiver.try_recv() {
            seen.push(line.to_string());
        }
        seen
    }

    #[test]
    fn chunks_are_cut_into_lines_across_reads() {
        assert_eq!(
            collect(&[b"ready\nserv", b"ing 3 jobs\n", b"\ndone"]),
            ["ready", "serving 3 jobs", ""]
        );
    }

    #[test]
    fn an_endless_line_is_cut_at_the_limit() {
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        let seen = collect(&[&big, b"\n"]);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].len(), MAX_LINE);
        assert_eq!(seen[1].len(), MAX_LINE);
        assert_eq!(seen[2].len(), 10);
    }
}
