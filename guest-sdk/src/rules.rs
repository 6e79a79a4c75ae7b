//! The runner's rules that policies can rely on, as constants and checks: how many steps a
//! sequence may take, how much of a budget is kept for SIGKILL, how often probes and health
//! checks are repeated, which answers are refused and which HTTP addresses may be called.
//! [`crate::sequence`] applies them, for the runner and the native test harness alike.

use std::time::Duration;

use crate::{Step, WaitCondition};

/// The steps every sequence may take at once; past its allowance ([`step_allowance`]) the
/// policy counts as failed and the conservative sequence takes over.
pub const MAX_STEPS: usize = 200;

/// Steps the allowance grows by for every second a sequence has run.
pub const STEPS_PER_SECOND: usize = 2;

/// The most steps any sequence may take, however long it runs: every decision gets the whole
/// history, and 10,000 records cost a policy call about 10 ms (release build, this project's
/// machines) and 4 MiB of its 64 MiB.
pub const MOST_STEPS: usize = 10_000;

/// The steps a sequence may have taken after running for `elapsed`: 200, plus two for every
/// second, up to [`MOST_STEPS`]. A runaway policy (steps that take no time) is stopped after
/// 200 steps; a drain that checks its progress (a probe and a pause: two steps) once a second
/// fits 83 minutes, one that checks every 15 s (the ladder's usual interval) 20 hours.
pub fn step_allowance(elapsed: Duration) -> usize {
    let seconds = usize::try_from(elapsed.as_secs()).unwrap_or(usize::MAX);
    MAX_STEPS
        .saturating_add(seconds.saturating_mul(STEPS_PER_SECOND))
        .min(MOST_STEPS)
}

/// At most this much of a budget is kept back for SIGKILL and seeing the exit.
pub const KILL_RESERVE: Duration = Duration::from_secs(2);

/// How often probes and health checks are repeated while a policy waits on them.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long one probe command may run.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// After `finish`, how long the runner waits for an exit that is a moment behind.
pub const FINISH_GRACE: Duration = Duration::from_millis(200);

/// The part of `budget` kept back for the conservative ending: 2 s, or a fifth of a short
/// budget.
pub fn kill_reserve(budget: Duration) -> Duration {
    KILL_RESERVE.min(budget / 5)
}

/// The most arguments an `exec` step or a probe may have.
pub const MAX_ARGV_ITEMS: usize = 256;
/// The most bytes an `exec` step's or a probe's arguments, or an HTTP body, may hold.
pub const MAX_ARGV_BYTES: usize = 64 << 10;
/// The most bytes an awaited log line or a URL may hold.
pub const MAX_TEXT_BYTES: usize = 4 << 10;

/// Refuses steps the runner must not act on: empty or enormous commands, empty or enormous log
/// lines, HTTP methods other than GET, POST, PUT, DELETE and HEAD, URLs that are not `http://`.
/// A policy answering one of these counts as failed (`invalid-answer`).
pub fn check_step(step: &Step) -> Result<(), String> {
    let check_argv = |argv: &[String], what: &str| -> Result<(), String> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(format!("{what} has an empty command"));
        }
        let bytes: usize = argv.iter().map(String::len).sum();
        if argv.len() > MAX_ARGV_ITEMS || bytes > MAX_ARGV_BYTES {
            return Err(format!(
                "{what} has {} arguments of {bytes} bytes; at most {MAX_ARGV_ITEMS} arguments and {MAX_ARGV_BYTES} bytes",
                argv.len()
            ));
        }
        Ok(())
    };
    match step {
        Step::Exec { argv, .. } => check_argv(argv, "exec"),
        Step::Wait {
            until: WaitCondition::Probe(argv),
            ..
        } => check_argv(argv, "the probe"),
        Step::Wait {
            until: WaitCondition::LogLine(text),
            ..
        } if text.is_empty() || text.len() > MAX_TEXT_BYTES => Err(format!(
            "the awaited log line must be 1 to {MAX_TEXT_BYTES} bytes"
        )),
        Step::Http {
            method, url, body, ..
        } => {
            if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE" | "HEAD") {
                return Err(format!(
                    "HTTP method {:?} is not one of GET, POST, PUT, DELETE, HEAD",
                    truncate(method)
                ));
            }
            if !url.starts_with("http://") || url.len() > MAX_TEXT_BYTES {
                return Err(format!(
                    "URL {:?} must be an absolute http:// URL",
                    truncate(url)
                ));
            }
            if body
                .as_ref()
                .is_some_and(|body| body.len() > MAX_ARGV_BYTES)
            {
                return Err(format!("the HTTP body exceeds {MAX_ARGV_BYTES} bytes"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The first 80 characters of `text`, for error messages about absurd answers.
pub fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Checks that `url` is `http://` to loopback or an allowed `host:port`.
pub fn http_allowed(url: &str, allowed: &[String]) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            if port.parse::<u16>().is_err() && !authority.ends_with(']') {
                return Err(format!("{url}: invalid port"));
            }
            host
        }
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allowed.iter().any(|allowed| allowed == authority) {
        Ok(())
    } else {
        Err(format!(
            "{url}: {authority} is not an allowed address (loopback is; add it to allow_http in the config)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_steps_may_only_reach_loopback_or_allowed_addresses() {
        let allowed = vec!["10.0.0.5:9901".to_string()];
        assert!(http_allowed("http://127.0.0.1:9901/drain", &allowed).is_ok());
        assert!(http_allowed("http://localhost/healthcheck/fail", &allowed).is_ok());
        assert!(http_allowed("http://[::1]:8080/x", &allowed).is_ok());
        assert!(http_allowed("http://10.0.0.5:9901/drain_listeners?graceful", &allowed).is_ok());
        assert!(http_allowed("http://10.0.0.5:9902/drain", &allowed).is_err());
        assert!(http_allowed("http://example.com/drain", &allowed).is_err());
        assert!(http_allowed("https://127.0.0.1/drain", &allowed).is_err());
        assert!(http_allowed("http://127.0.0.1.example.com/", &allowed).is_err());
    }

    #[test]
    fn absurd_steps_are_refused() {
        let huge = vec!["x".to_string(); 10_000];
        assert!(check_step(&Step::exec(huge, Duration::from_secs(1))).is_err());
        assert!(check_step(&Step::exec(Vec::<String>::new(), Duration::from_secs(1))).is_err());
        let file = Step::http_post("file:///etc/passwd", Duration::from_secs(1));
        assert!(check_step(&file).is_err());
        let empty_line = Step::wait(WaitCondition::LogLine(String::new()), Duration::ZERO);
        assert!(check_step(&empty_line).is_err());
        assert!(check_step(&Step::exec(["nginx", "-s", "quit"], Duration::from_secs(1))).is_ok());
        let drain = Step::http_post("http://127.0.0.1:9901/drain", Duration::from_secs(1));
        assert!(check_step(&drain).is_ok());
    }

    #[test]
    fn the_step_allowance_grows_with_time_so_long_drains_fit() {
        assert_eq!(step_allowance(Duration::ZERO), 200);
        assert_eq!(step_allowance(Duration::from_millis(999)), 200);
        // A check a second for an hour: 7200 steps, within 200 + 7200.
        assert_eq!(step_allowance(Duration::from_secs(3600)), 7400);
        assert_eq!(step_allowance(Duration::from_secs(4900)), 10_000);
        assert_eq!(step_allowance(Duration::MAX), MOST_STEPS);
    }
}
