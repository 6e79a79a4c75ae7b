//! Reading a policy file without trusting what the directory entry claims (issue 17, class 4).
//!
//! A `*.wasm` entry may be a symlink to anything: a procfs file whose size reads as 0 but whose
//! contents never end, a FIFO or a device whose read blocks forever. So the file is opened
//! without blocking (`O_NONBLOCK`: a FIFO opens at once, and special files that honour it
//! answer "would block" instead of waiting), the opened descriptor is checked with `fstat`
//! (only a regular file is read: the check is on what was opened, after following the link,
//! so it cannot be raced), and reading stops past `cap` bytes whatever the size says.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::error::LoadError;

/// How much is read at a time.
const CHUNK_BYTES: usize = 64 << 10;

/// Reads the file at `path` (following a symlink) if it is a regular file of at most `cap`
/// bytes; never blocks on a special file and never reads more than `cap` bytes and a chunk.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, LoadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(LoadError::Read)?;
    let kind = file.metadata().map_err(LoadError::Read)?.file_type();
    if !kind.is_file() {
        return Err(LoadError::NotAFile {
            kind: describe(kind),
        });
    }
    read_at_most(file, cap)
}

/// Reads an opened regular file, stopping as soon as it has more than `cap` bytes.
fn read_at_most(mut file: File, cap: u64) -> Result<Vec<u8>, LoadError> {
    // Whole chunks of a power of two: some procfs files (pagemap) refuse a read whose length is
    // not a multiple of their record size.
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut bytes = Vec::new();
    loop {
        let read = match file.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(LoadError::WouldBlock);
            }
            Err(error) => return Err(LoadError::Read(error)),
        };
        bytes.extend_from_slice(&chunk[..read]);
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
            return Err(LoadError::TooLarge { limit: cap });
        }
    }
}

/// What a non-regular file is, in words.
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_within_the_cap_is_read_whole_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, [7u8; 100]).unwrap();
        assert_eq!(read_capped(&path, 100).unwrap().len(), 100);
        assert!(matches!(
            read_capped(&path, 99),
            Err(LoadError::TooLarge { limit: 99 })
        ));
    }

    #[test]
    fn a_fifo_and_a_directory_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.wasm");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        match read_capped(&fifo, 1 << 20) {
            Err(LoadError::NotAFile { kind }) => assert!(kind.contains("FIFO"), "{kind}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let sub = dir.path().join("dir.wasm");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            read_capped(&sub, 1 << 20),
            Err(LoadError::NotAFile {
                kind: "a directory"
            })
        ));
    }
}
