//! The runner's rules that policies can rely on, in one place for the runner and the native
//! test harness: how many steps a sequence may take, how much of a budget is kept for SIGKILL,
//! how often probes and health checks are repeated.

use std::time::Duration;

/// The most steps one sequence may take; past it the policy counts as failed and the
/// conservative sequence takes over.
pub const MAX_STEPS: usize = 200;

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
}
