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

/// The host of an HTTP address: an IP address (`localhost` is 127.0.0.1) or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HttpHost {
    /// An IPv4 address (dotted quad) or an IPv6 address (in brackets); IPv4-mapped IPv6
    /// addresses are their IPv4 address.
    Ip(std::net::IpAddr),
    /// A DNS name, lowercase; only an operator's `allow_http` entry can make one callable.
    Name(String),
}

impl HttpHost {
    /// True for 127.0.0.0/8 and ::1.
    pub fn is_loopback(&self) -> bool {
        matches!(self, HttpHost::Ip(ip) if ip.is_loopback())
    }
}

/// A `host:port` that HTTP steps may reach, parsed by the same rules as a URL's authority.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpAddress {
    /// The host.
    pub host: HttpHost,
    /// The port (80 when a URL gives none).
    pub port: u16,
}

impl HttpAddress {
    /// Parses an `allow_http` entry: `HOST:PORT` (`10.0.0.5:9901`, `[::1]:8080`,
    /// `envoy.internal:9901`, `localhost:9901`); the port is required.
    pub fn parse(entry: &str) -> Result<HttpAddress, String> {
        check_characters(entry).map_err(|error| format!("{entry:?}: {error}"))?;
        let (address, had_port) = parse_authority(entry)?;
        if !had_port {
            return Err(format!(
                "{entry:?}: write host:port, e.g. 10.0.0.5:9901 or 127.0.0.1:9901"
            ));
        }
        Ok(address)
    }
}

impl std::fmt::Display for HttpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            HttpHost::Ip(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            HttpHost::Ip(ip) => write!(f, "{ip}:{}", self.port),
            HttpHost::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// An `http://` URL, parsed once by the rules both the allow check and the HTTP client use
/// (issue 17, class 5: the check and the client once split URLs differently).
///
/// Refused: anything but `http://`; control characters (CR, LF, any C0, DEL), spaces and
/// non-ASCII bytes anywhere (percent-encode them); userinfo (`user@`); a fragment (`#`, never
/// sent); a host that is neither an IP address, `localhost` nor a DNS name (`127.1`,
/// `2130706433` and `0x7f.1` are refused, not read as numbers); a port outside 1 to 65535.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Where the request goes.
    pub address: HttpAddress,
    /// The authority as written (`localhost:9901`): the `Host` header.
    pub authority: String,
    /// The path and query, starting with `/` (`/drain_listeners?graceful`).
    pub path_and_query: String,
}

impl HttpUrl {
    /// Parses `url`; the error says what is wrong and how to write it.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let shown = truncate(url);
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{shown:?}: only http:// URLs are supported"))?;
        check_characters(url).map_err(|error| format!("URL {shown:?}: {error}"))?;
        if url.contains('#') {
            return Err(format!(
                "URL {shown:?}: a fragment (#...) is never sent; remove it"
            ));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "URL {shown:?}: user information (user@host) is refused"
            ));
        }
        let (address, _) =
            parse_authority(authority).map_err(|error| format!("URL {shown:?}: {error}"))?;
        let path_and_query = match path {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        Ok(HttpUrl {
            address,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

/// Refuses control characters, spaces and non-ASCII bytes.
fn check_characters(text: &str) -> Result<(), String> {
    match text
        .bytes()
        .enumerate()
        .find(|(_, byte)| !byte.is_ascii_graphic())
    {
        Some((at, byte)) => Err(format!(
            "byte {at} is {}: control characters, spaces and non-ASCII bytes are refused (percent-encode them)",
            describe_byte(byte)
        )),
        None => Ok(()),
    }
}

fn describe_byte(byte: u8) -> String {
    match byte {
        b'\r' => "a carriage return (CR)".into(),
        b'\n' => "a line feed (LF)".into(),
        b' ' => "a space".into(),
        0x80.. => format!("the non-ASCII byte 0x{byte:02x}"),
        _ => format!("the control character 0x{byte:02x}"),
    }
}

/// `host[:port]` to an address, and whether a port was written.
fn parse_authority(authority: &str) -> Result<(HttpAddress, bool), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{authority:?}: an IPv6 address lacks its closing `]`"))?;
        let ip: std::net::Ipv6Addr = host
            .parse()
            .map_err(|_| format!("{authority:?}: [{host}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            port => Some(port.strip_prefix(':').ok_or_else(|| {
                format!("{authority:?}: expected `:PORT` after the IPv6 address")
            })?),
        };
        (HttpHost::Ip(std::net::IpAddr::V6(ip).to_canonical()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        (
            parse_host(host).map_err(|error| format!("{authority:?}: {error}"))?,
            port,
        )
    };
    let had_port = port.is_some();
    let port = match port {
        None => 80,
        Some(digits) => digits
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("{authority:?}: the port must be a number from 1 to 65535"))?,
    };
    Ok((HttpAddress { host, port }, had_port))
}

/// A host that is not in brackets: a dotted-quad IPv4 address, `localhost`, or a DNS name.
fn parse_host(host: &str) -> Result<HttpHost, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Ok(HttpHost::Ip(ip.into()));
    }
    let name = host.to_ascii_lowercase();
    if name == "localhost" {
        return Ok(HttpHost::Ip(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = name.strip_suffix('.').unwrap_or(&name).split('.').collect();
    if name.len() > 253 || !labels.iter().all(|label| label_ok(label)) {
        return Err(format!(
            "{host:?} is not an IP address, `localhost` or a DNS name"
        ));
    }
    // What C libraries would read as a number (`127.1`, `2130706433`, `0x7f.1`) is refused:
    // an address is written as a dotted quad.
    let last = labels.last().copied().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return Err(format!(
            "{host:?} is not a dotted-quad IPv4 address (write all four numbers, in decimal)"
        ));
    }
    Ok(HttpHost::Name(name))
}

/// Checks that `url` may be called: `http://` to an address `allow_http` lists, or to
/// loopback. Loopback is open (any 127.0.0.0/8 address, `::1`, any port) while `allow_http`
/// lists no loopback address; once it lists one (`127.0.0.1:9901`), only the loopback
/// addresses and ports it lists are open. The unspecified address (`0.0.0.0`, `::`), which
/// reaches this host, is always refused.
pub fn http_allowed(url: &str, allowed: &[String]) -> Result<(), String> {
    check_http(url, allowed).map(drop)
}

/// [`http_allowed`], with the parsed URL.
pub fn check_http(url: &str, allowed: &[String]) -> Result<HttpUrl, String> {
    let parsed = HttpUrl::parse(url)?;
    let address = &parsed.address;
    if matches!(address.host, HttpHost::Ip(ip) if ip.is_unspecified()) {
        return Err(format!(
            "{}: {address} is the unspecified address, which reaches this host: write the address meant",
            truncate(url)
        ));
    }
    let allowed: Vec<HttpAddress> = allowed
        .iter()
        .filter_map(|entry| HttpAddress::parse(entry).ok())
        .collect();
    let narrowed = allowed.iter().any(|entry| entry.host.is_loopback());
    if allowed.contains(address) || (address.host.is_loopback() && !narrowed) {
        return Ok(parsed);
    }
    Err(if address.host.is_loopback() {
        format!(
            "{}: {address} is not one of the loopback addresses allow_http lists (once it lists one, only those are allowed)",
            truncate(url)
        )
    } else {
        format!(
            "{}: {address} is not an allowed address (loopback is; add it to allow_http in the config)",
            truncate(url)
        )
    })
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

    /// Issue 17, class 5: one parser for the allow check and the request.
    #[test]
    fn urls_with_control_characters_userinfo_fragments_or_numeric_hosts_are_refused() {
        let open: Vec<String> = Vec::new();
        for url in [
            "http://127.0.0.1:9901/drain HTTP/1.1\r\nHost: x\r\n\r\nPOST /containers/x/kill",
            "http://127.0.0.1:9901/a\nb",
            "http://127.0.0.1:9901/a b",
            "http://127.0.0.1:9901/a\tb",
            "http://127.0.0.1:9901/a\x7fb",
            "http://127.0.0.1:9901/caf\u{e9}",
            "http://127.0.0.1\r:9901/",
            "http://user@127.0.0.1:9901/",
            "http://127.0.0.1:9901@10.0.0.5:80/",
            "http://127.0.0.1:9901/#frag",
            "http://10.0.0.5#@127.0.0.1:9901/",
            "http://10.0.0.5?@127.0.0.1:9901/",
            "http://2130706433/",
            "http://127.1:9901/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.0.0.1.:9901/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:+80/",
            "http://127.0.0.1:/",
            "http://[::1/",
            "http://[::1]x/",
            "http://0.0.0.0:2375/",
            "http://[::]:2375/",
            "HTTP://127.0.0.1/",
        ] {
            assert!(http_allowed(url, &open).is_err(), "{url:?} was allowed");
        }
        let parsed = HttpUrl::parse("http://LocalHost:9901?graceful").unwrap();
        assert_eq!(parsed.address.to_string(), "127.0.0.1:9901");
        assert_eq!(parsed.path_and_query, "/?graceful");
        assert_eq!(parsed.authority, "LocalHost:9901");
        let mapped = HttpUrl::parse("http://[::ffff:127.0.0.1]/").unwrap();
        assert_eq!(mapped.address.to_string(), "127.0.0.1:80");
        assert!(
            http_allowed(
                "http://envoy_admin.internal:9901/x",
                &["envoy_admin.internal:9901".into()]
            )
            .is_ok()
        );
    }

    #[test]
    fn loopback_entries_in_allow_http_narrow_loopback_to_them() {
        let wide = vec!["10.0.0.5:9901".to_string()];
        assert!(http_allowed("http://127.0.0.1:2375/containers/json", &wide).is_ok());
        assert!(http_allowed("http://127.0.0.2:80/", &wide).is_ok());
        let narrow = vec!["127.0.0.1:9901".to_string(), "10.0.0.5:9901".to_string()];
        for url in [
            "http://127.0.0.1:9901/drain",
            "http://localhost:9901/drain",
            "http://[::ffff:127.0.0.1]:9901/",
            "http://10.0.0.5:9901/",
        ] {
            assert!(http_allowed(url, &narrow).is_ok(), "{url} refused");
        }
        for url in [
            "http://127.0.0.1:2375/containers/json",
            "http://127.0.0.2:9901/",
            "http://[::1]:9901/",
            "http://[::ffff:127.0.0.1]:2375/",
            "http://localhost/",
        ] {
            let error = http_allowed(url, &narrow).unwrap_err();
            assert!(
                error.contains("loopback addresses allow_http lists"),
                "{error}"
            );
        }
        let by_name = vec!["localhost:9901".to_string()];
        assert!(http_allowed("http://127.0.0.1:9901/", &by_name).is_ok());
        assert!(http_allowed("http://127.0.0.1:9902/", &by_name).is_err());
    }

    #[test]
    fn allow_http_entries_are_host_and_port() {
        assert!(HttpAddress::parse("10.0.0.5:9901").is_ok());
        assert!(HttpAddress::parse("[::1]:8080").is_ok());
        assert!(HttpAddress::parse("envoy.internal:9901").is_ok());
        for entry in [
            "10.0.0.5",
            "http://10.0.0.5:80",
            "10.0.0.5:80/x",
            "a b:80",
            "u@h:80",
            "[::1]",
        ] {
            assert!(HttpAddress::parse(entry).is_err(), "{entry:?} accepted");
        }
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
