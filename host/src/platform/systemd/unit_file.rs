//! Reading systemd unit files as far as quiesce needs them: sections, keys and values with
//! drop-ins applied, command lines split into words, which container an `ExecStart` runs and
//! how long an `ExecStop`'s engine `stop` waits, and systemd's time spans.

use std::collections::BTreeMap;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;

/// systemd's own stop timeout when a unit sets none.
pub const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(90);

/// A unit file as read: `[section]` → key → every value in order (drop-ins applied).
pub type UnitFile = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Applies one unit file's (or drop-in's) text: `[Section]`, `Key=value` lines with `\`
/// continuations and comments; an empty value resets a list (`ExecStop=`).
pub fn apply(unit: &mut UnitFile, text: &str) {
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            let values = unit
                .entry(section.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default();
            let value = value.trim();
            if value.is_empty() {
                values.clear();
            } else {
                values.push(value.to_string());
            }
        }
    }
}

/// Every value of `key` in `section`, in order.
pub fn values<'a>(unit: &'a UnitFile, section: &str, key: &str) -> &'a [String] {
    unit.get(section)
        .and_then(|keys| keys.get(key))
        .map_or(&[], Vec::as_slice)
}

/// The words of a command line, its `-`/`@`/`+`/`!` prefixes dropped.
fn words(line: &str) -> Vec<&str> {
    line.trim_start_matches(['-', '@', '+', '!', ':'])
        .split_whitespace()
        .collect()
}

fn is_engine(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("docker" | "podman" | "nerdctl")
    )
}

/// True when the command line `start`s the container (by name or id) or `run`s it under its
/// name.
pub fn starts_container(line: &str, facts: &ServiceFacts) -> bool {
    let words = words(line);
    let Some((program, args)) = words.split_first() else {
        return false;
    };
    if !is_engine(program) {
        return false;
    }
    let names = |word: &&str| {
        *word == facts.name
            || (!facts.id.is_empty() && facts.id.starts_with(*word) && word.len() >= 12)
    };
    match args
        .iter()
        .position(|word| matches!(*word, "start" | "run"))
    {
        Some(at) if args[at] == "start" => args[at + 1..].iter().any(names),
        Some(at) => {
            let rest = &args[at + 1..];
            rest.windows(2)
                .any(|pair| pair[0] == "--name" && pair[1] == facts.name)
                || rest
                    .iter()
                    .any(|word| word.strip_prefix("--name=") == Some(facts.name.as_str()))
        }
        None => false,
    }
}

/// The `-t N` / `--time N` / `--timeout N` of an engine's `stop` command line.
pub fn engine_stop_timeout(line: &str) -> Option<Duration> {
    let words = words(line);
    let (program, args) = words.split_first()?;
    if !is_engine(program) || !args.contains(&"stop") {
        return None;
    }
    args.windows(2).find_map(|pair| match pair[0] {
        "-t" | "--time" | "--timeout" => pair[1].parse().ok().map(Duration::from_secs),
        flag => flag
            .strip_prefix("--time=")
            .or_else(|| flag.strip_prefix("--timeout="))
            .or_else(|| flag.strip_prefix("-t="))
            .and_then(|seconds| seconds.parse().ok())
            .map(Duration::from_secs),
    })
}

/// True when the command line runs quiesce.
pub fn runs_quiesce(line: &str) -> bool {
    words(line)
        .first()
        .is_some_and(|program| program.rsplit('/').next() == Some("quiesce"))
}

/// A systemd time span (`90`, `90s`, `5min`, `1h 30min`); `None` for `infinity`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "infinity" {
        return None;
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .ok()
        .or(Some(DEFAULT_TIMEOUT_STOP))
}

/// A word of a command line as systemd reads it: quoted when it holds what would split it,
/// and `%` (a specifier) doubled. A word with a control character (a newline would end the
/// line) cannot be written: [`fits_a_command_line`] says so first.
pub fn quote(word: &str) -> String {
    let word = word.replace('%', "%%");
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || "\"';".contains(c)) {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word
    }
}

/// True when `word` can be written into a unit's command line: no control characters.
pub fn fits_a_command_line(word: &str) -> bool {
    !word.contains(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans_are_read_as_systemd_writes_them() {
        assert_eq!(parse_timespan("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timespan("5min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_timespan("1h 30min"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_timespan("infinity"), None);
    }

    #[test]
    fn an_engine_stop_names_its_grace_in_any_spelling() {
        for line in [
            "/usr/bin/docker stop nova -t 60",
            "-/usr/bin/podman stop --time=60 nova",
            "docker stop --timeout 60 nova",
        ] {
            assert_eq!(
                engine_stop_timeout(line),
                Some(Duration::from_secs(60)),
                "{line}"
            );
        }
        assert_eq!(engine_stop_timeout("/usr/bin/quiesce stop nova"), None);
        assert!(runs_quiesce("-/usr/local/bin/quiesce stop nova"));
    }
}
