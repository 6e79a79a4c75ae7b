//! Plain GET requests to the engine over its own endpoint, for what bollard cannot ask or
//! read: the ping's headers ([`super::ping`]) and an inspection whose state bollard's types do
//! not know (Podman's `stopping`). One request per connection; the body is capped as the
//! drain client caps it ([`super::http::exchange`]).

use hyper::header::{HOST, USER_AGENT};
use tokio::net::{TcpStream, UnixStream};

use super::RuntimeError;

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
        return super::http::exchange(stream, request, host).await.map(Some);
    }
    if let Some(address) = tcp_address(host) {
        let stream = TcpStream::connect(address).await.map_err(unreachable)?;
        return super::http::exchange(stream, request, host).await.map(Some);
    }
    Ok(None)
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
