//! What commands print on stdout (reports, lists, tables, generated files), and whether it
//! could be written. A closed pipe (`quiesce policy list | head`) is the reader's choice, not
//! an error. Any other failed write (`> /dev/full`, a full disk, an I/O error) loses what was
//! printed: the command still does its work (a stop is not undone), then says so on stderr and
//! ends with exit status 3 ([`settle`]), as a report that cannot be written with `--report`
//! does.

use std::io::{ErrorKind, Write};
use std::sync::OnceLock;

use crate::model::exit;

/// The first failed write to stdout, if any.
static FAILED: OnceLock<String> = OnceLock::new();

/// Writes `text` to stdout; a failure other than a closed pipe is kept for [`settle`].
pub(crate) fn print_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    written(
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush()),
    );
}

/// Keeps a failed write to stdout made elsewhere (clap's `--help`) for [`settle`], unless it
/// is a closed pipe.
pub(crate) fn written(result: std::io::Result<()>) {
    match result {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::BrokenPipe => {}
        Err(error) => {
            let _ = FAILED.set(error.to_string());
        }
    }
}

/// The exit status of a command that ended with `status`: 3 (said on stderr) when what it
/// printed could not be written.
pub(crate) fn settle(status: u8) -> u8 {
    let Some(error) = FAILED.get() else {
        return status;
    };
    crate::output::logs::error(&format!(
        "cannot write to stdout: {error}; what the command printed is lost, though it did its work; free space or send stdout elsewhere (for a stop, --report FILE keeps the report)"
    ));
    status.max(exit::ENVIRONMENT)
}

/// `println!` for what a command prints on stdout: [`print_out`] of the formatted line.
macro_rules! print_line {
    ($($arg:tt)*) => {
        $crate::output::stdout::print_out(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use print_line;
