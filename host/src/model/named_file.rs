//! Reading a file a person named (a config, a policy's context, scenarios, keys): whatever it
//! is, a FIFO from `<(...)` included, but never more than [`NAMED_FILE_MAX_BYTES`], so that
//! `/dev/zero` named by mistake is refused instead of read until memory runs out.

use std::io::Read;
use std::path::Path;

/// The most a named file may hold: far more than any config, context, scenario file or key.
pub const NAMED_FILE_MAX_BYTES: u64 = 16 << 20;

/// The text of the file at `path`, refused past [`NAMED_FILE_MAX_BYTES`] (having read no more
/// than that) or when it is not UTF-8.
pub fn read_named(path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(NAMED_FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > NAMED_FILE_MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "it holds more than {} MiB, far more than such a file does: is it the right file?",
            NAMED_FILE_MAX_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not text (UTF-8): is it the right file?",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_is_read_and_an_endless_one_is_refused_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiesce.toml");
        std::fs::write(&path, "parallel = 4\n").unwrap();
        assert_eq!(read_named(&path).unwrap(), "parallel = 4\n");
        let endless = read_named(Path::new("/dev/zero")).unwrap_err();
        assert!(
            endless.to_string().contains("more than 16 MiB"),
            "{endless}"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_named(&path).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            read_named(&dir.path().join("missing")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
