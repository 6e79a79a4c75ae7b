//! Plain GET requests to the engine over its own endpoint, for what bollard cannot ask or
//! read: the ping's headers ([`super::ping`]) and an inspection whose state bollard's types do
//! not know (Podman's `stopping`). One request per connection ([`super::http::exchange`]),
//! the body read up to [`MAX_BODY_BYTES`].

use hyper::header::{HOST, USER_AGENT};
use tokio::net::{TcpStream, UnixStream};

use super::RuntimeError;

/// The most of an engine's answer read here: a listing of a few thousand containers.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// `GET path` at the engine `host` (`unix:///path` or `tcp://HOST:PORT`): the response's
/// head and body, or `None` when this endpoint's form is not one reached here.
pub async fn get(
    host: &str,
    path: &str,
) -> Result<Option<(hyper::http::response::Parts, Vec<u8>)>, RuntimeError> {
    let unreachable = |error: std::io::Error| RuntimeError::Unreachable(error.to_string());
    let request = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, "docker")
        .header(USER_AGENT, concat!("quiesce/", env!("CARGO_PKG_VERSION")))
        .body(String::new())
        .map_err(|error| RuntimeError::Failed(error.to_string()))?;
    if let Some(socket) = host.strip_prefix("unix://") {
        let stream = UnixStream::connect(socket).await.map_err(unreachable)?;
        return super::http::exchange(stream, request, host, MAX_BODY_BYTES)
            .await
            .map(Some);
    }
    if let Some(address) = tcp_address(host) {
        let stream = TcpStream::connect(address).await.map_err(unreachable)?;
        return super::http::exchange(stream, request, host, MAX_BODY_BYTES)
            .await
            .map(Some);
    }
    Ok(None)
}

/// `text` as a URL query value: every byte but the unreserved ones percent-encoded.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// `HOST:PORT` of a `tcp://` or `http://` endpoint that names its port (bollard supplies the
/// default port of one that does not: that one is left to it).
fn tcp_address(host: &str) -> Option<&str> {
    let rest = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))?;
    let address = rest.trim_end_matches('/');
    let (_, port) = address.rsplit_once(':')?;
    (!address.contains('/') && port.parse::<u16>().is_ok()).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_value(r#"{"label":["a=b c"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%20c%22%5D%7D"
        );
        assert_eq!(query_value("é"), "%C3%A9");
    }

    #[test]
    fn only_tcp_endpoints_with_a_port_are_reached_here() {
        assert_eq!(tcp_address("tcp://127.0.0.1:2375"), Some("127.0.0.1:2375"));
        assert_eq!(
            tcp_address("http://engine.lan:2375/"),
            Some("engine.lan:2375")
        );
        assert_eq!(tcp_address("tcp://127.0.0.1"), None);
        assert_eq!(tcp_address("ssh://me@host"), None);
        assert_eq!(tcp_address("tcp://host:2375/path"), None);
    }
}
