//! A tiny HTTP/1.1 control server on 127.0.0.1, for tests of HTTP-driven shutdowns.
//!
//! It binds the loopback address only, serves one connection at a time on one thread,
//! and closes every connection after the response (`Connection: close`). Routes:
//! `GET /inflight` (200, body `<count>\n`), `POST /drain` (202, starts the graceful
//! drain), anything else 404; an unparsable request gets 400.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::service::{Drain, DrainOrigin, Service};

/// Largest request head (request line plus headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Largest request body read (and discarded) before answering.
const MAX_BODY: u64 = 64 * 1024;
/// How long a client may take to send its request or read the response.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `127.0.0.1:port`, and never any other address.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Serves `listener` on a new thread for the life of the process.
pub fn spawn(listener: TcpListener, service: Arc<Service>) -> io::Result<()> {
    thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Err(err) = handle(stream, &service) {
                    eprintln!("test-service: http connection failed: {err}");
                }
            }
        })
        .map(drop)
}

/// The parts of a request line the server cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path without any query string, e.g. `/inflight`.
    pub path: &'a str,
}

/// Parses `METHOD SP TARGET SP HTTP/1.x`; `None` if it is not a valid HTTP/1 request line.
pub fn parse_request_line(line: &str) -> Option<RequestLine<'_>> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && target.starts_with('/')
        && version.starts_with("HTTP/1.");
    let path = target.split('?').next().unwrap_or(target);
    valid.then_some(RequestLine { method, path })
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /inflight`.
    Inflight,
    /// `POST /drain`.
    Drain,
    /// Anything else.
    NotFound,
}

/// Maps a request line to its route.
pub fn route(request: RequestLine<'_>) -> Route {
    match (request.method, request.path) {
        ("GET", "/inflight") => Route::Inflight,
        ("POST", "/drain") => Route::Drain,
        _ => Route::NotFound,
    }
}

/// The `Content-Length` of a request head (request line and headers): 0 if absent,
/// `None` if it is not a number.
pub fn content_length(head: &str) -> Option<u64> {
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            return value.trim().parse().ok();
        }
    }
    Some(0)
}

/// Where the request head ends (index just past the blank line), if it has ended.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    crlf.or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

/// Reads one request, answers it and closes the connection.
fn handle(mut stream: TcpStream, service: &Service) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break Some(end);
        }
        if buf.len() > MAX_HEAD {
            break None;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let parsed = end.and_then(|end| {
        let head = std::str::from_utf8(&buf[..end]).ok()?;
        let request = parse_request_line(head.lines().next()?)?;
        Some((end, request, content_length(head)?))
    });
    // Dropped when this function returns, i.e. once the response is written.
    let mut _hold = None;
    let response = match parsed {
        None => respond(400, "Bad Request", "bad request\n"),
        Some((end, request, length)) => {
            // Read the body, if any, so closing the socket does not reset the connection
            // before the client has read the response.
            let already = (buf.len() - end) as u64;
            let rest = length.min(MAX_BODY).saturating_sub(already);
            io::copy(&mut (&mut stream).take(rest), &mut io::sink())?;
            let route = route(request);
            if route == Route::Drain {
                // The drain may complete at once; keep the process alive to answer.
                _hold = Some(service.hold_exit());
            }
            answer(route, service)
        }
    };
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Carries out a route and builds the response.
fn answer(route: Route, service: &Service) -> String {
    match route {
        Route::Inflight => respond(200, "OK", &format!("{}\n", service.inflight())),
        Route::Drain => match service.drain(DrainOrigin::Http) {
            Drain::Started(inflight) => respond(202, "Accepted", &format!("draining {inflight}\n")),
            Drain::AlreadyDraining(inflight) => {
                respond(202, "Accepted", &format!("already draining {inflight}\n"))
            }
        },
        Route::NotFound => respond(404, "Not Found", "not found\n"),
    }
}

/// A complete `Connection: close` response with a plain-text body.
fn respond(status: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_lines() {
        let get = parse_request_line("GET /inflight HTTP/1.1").unwrap();
        assert_eq!(get.method, "GET");
        assert_eq!(get.path, "/inflight");
        assert_eq!(route(get), Route::Inflight);

        let post = parse_request_line("POST /drain?now=1 HTTP/1.0").unwrap();
        assert_eq!(post.path, "/drain");
        assert_eq!(route(post), Route::Drain);
    }

    #[test]
    fn rejects_malformed_request_lines() {
        for line in [
            "",
            "GET",
            "GET /inflight",
            "GET /inflight HTTP/2",
            "get /inflight HTTP/1.1",
            "GET inflight HTTP/1.1",
            "GET  /inflight HTTP/1.1",
            "GET /inflight HTTP/1.1 extra",
        ] {
            assert_eq!(parse_request_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn unknown_routes_are_not_found() {
        for line in [
            "POST /inflight HTTP/1.1",
            "GET /drain HTTP/1.1",
            "GET / HTTP/1.1",
            "DELETE /drain HTTP/1.1",
            "GET /inflight/ HTTP/1.1",
        ] {
            let request = parse_request_line(line).unwrap();
            assert_eq!(route(request), Route::NotFound, "{line:?}");
        }
    }

    #[test]
    fn finds_the_end_of_the_head_and_the_body_length() {
        let head = "POST /drain HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(head_end(head.as_bytes()), Some(head.len()));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(content_length(head), Some(12));
        assert_eq!(content_length("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Some(0));
        assert_eq!(
            content_length("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            None
        );
    }

    #[test]
    fn responses_are_complete() {
        assert_eq!(
            respond(200, "OK", "3\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n3\n"
        );
    }
}
