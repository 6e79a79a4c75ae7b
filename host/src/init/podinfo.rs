//! The pod's labels and annotations from Kubernetes downward-API files, so a deployment can say
//! `quiesce.policy` and `quiesce.settings` in its metadata, as a container's labels do.
//!
//! The kubelet writes `metadata.labels` and `metadata.annotations` as one `key="value"` line per
//! entry, the value quoted as Go's `strconv.Quote` quotes it (escapes such as `\"`, `\\`, `\n`,
//! `\t`, `\xNN`, `\u00e9`). A path may name such a file, or a directory holding `labels` and
//! `annotations` (annotations win where both have a key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A downward-API file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PodInfoError {
    /// It could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `key="value"`.
    #[error("{}:{line}: {reason} (expected key=\"value\", as the downward API writes it)", .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The largest downward-API file read (Kubernetes caps a pod's annotations at 256 KiB).
const MAX_FILE: u64 = 1 << 20;

/// The labels and annotations in `paths` (files, or directories with `labels` and
/// `annotations`), later entries overriding earlier ones.
pub fn read(paths: &[PathBuf]) -> Result<BTreeMap<String, String>, PodInfoError> {
    let mut entries = BTreeMap::new();
    for path in paths {
        if path.is_dir() {
            for name in ["labels", "annotations"] {
                let file = path.join(name);
                if file.exists() {
                    entries.extend(read_file(&file)?);
                }
            }
        } else {
            entries.extend(read_file(path)?);
        }
    }
    Ok(entries)
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, PodInfoError> {
    let read_error = |source| PodInfoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE), &mut text)
        .map_err(read_error)?;
    parse(&text).map_err(|(line, reason)| PodInfoError::Syntax {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// Parses `key="value"` lines; an error gives the line number and the reason.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut entries = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (key, quoted) = line
            .split_once('=')
            .ok_or_else(|| (index + 1, "no `=`".to_string()))?;
        let value = unquote(quoted).map_err(|reason| (index + 1, reason))?;
        entries.insert(key.to_string(), value);
    }
    Ok(entries)
}

/// Reads a Go-quoted string (`"..."` with Go's escapes).
fn unquote(quoted: &str) -> Result<String, String> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(|| "the value is not in double quotes".to_string())?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        let escape = chars.next().ok_or("a lone `\\` at the end")?;
        let simple = match escape {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            '\'' => Some(b'\''),
            _ => None,
        };
        if let Some(byte) = simple {
            bytes.push(byte);
            continue;
        }
        let mut digits = |count: usize, radix: u32| -> Result<u32, String> {
            let text: String = chars.by_ref().take(count).collect();
            if text.len() != count {
                return Err(format!("a short `\\{escape}` escape"));
            }
            u32::from_str_radix(&text, radix)
                .map_err(|_| format!("a bad `\\{escape}{text}` escape"))
        };
        match escape {
            'x' => bytes.push(u8::try_from(digits(2, 16)?).expect("two hex digits fit a byte")),
            'u' | 'U' => {
                let code = digits(if escape == 'u' { 4 } else { 8 }, 16)?;
                let c = char::from_u32(code).ok_or(format!("`\\{escape}` is not a character"))?;
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let code = u32::from_str_radix(&format!("{escape}{rest}"), 8)
                    .ok()
                    .and_then(|code| u8::try_from(code).ok())
                    .ok_or("a bad octal escape")?;
                bytes.push(code);
            }
            other => return Err(format!("an unknown escape `\\{other}`")),
        }
    }
    String::from_utf8(bytes).map_err(|_| "the value is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_lines_are_read_with_gos_escapes() {
        let text = "app=\"cinder\"\nquiesce.policy=\"cinder-volume\"\nquiesce.settings=\"{\\\"stuck_after\\\": \\\"15m\\\", \\\"inflight_command\\\": [\\\"cat\\\", \\\"/tmp/inflight\\\"]}\"\nnote=\"caf\\u00e9\\ttab\\x41\\101\"\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries["quiesce.policy"], "cinder-volume");
        assert_eq!(
            entries["quiesce.settings"],
            r#"{"stuck_after": "15m", "inflight_command": ["cat", "/tmp/inflight"]}"#
        );
        assert_eq!(entries["note"], "café\ttabAA");
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        assert_eq!(parse("a=\"b\"\nbroken\n").unwrap_err().0, 2);
        assert!(parse("a=unquoted").unwrap_err().1.contains("double quotes"));
        assert!(parse("a=\"\\q\"").unwrap_err().1.contains("unknown escape"));
        assert!(parse("a=\"\\u12\"").is_err());
    }

    proptest::proptest! {
        /// Fuzzing: any text is parsed or refused, never a panic.
        #[test]
        fn any_text_is_parsed_or_refused(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }
    }
}
