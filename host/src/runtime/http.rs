//! The HTTP client of drain endpoints (`POST /drain_listeners?graceful`,
//! `/healthcheck/fail`...): plain `http://`, one request per connection, hyper's HTTP/1.1 on
//! the wire, the response body read to its end and capped. The executor bounds the time.
//!
//! The URL is parsed by the SDK's [`HttpUrl`], the parser the allow check
//! ([`quiesce_policy_sdk::rules::http_allowed`]) used on the same text: the address checked is
//! the address called, and the path is sent as parsed (issue 17, class 5: a CR/LF in a path
//! once went into the request line and smuggled a second request to a loopback service). hyper
//! refuses what is not a valid request target or header value, a second line of defence.
//! A DNS name (callable only when `allow_http` names it) is resolved here, by the system's
//! resolver; every other host is an IP address and is connected to as such.

use http_body_util::BodyExt;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use quiesce_policy_sdk::rules::{HttpHost, HttpUrl};
use tokio::net::TcpStream;

use crate::runtime::{HttpResponse, OUTPUT_TAIL_BYTES, RuntimeError, tail};

/// The most of a response body that is read; the rest is not waited for.
const MAX_RESPONSE_BYTES: usize = 256 << 10;

fn failed(what: String) -> RuntimeError {
    RuntimeError::Failed(what)
}

/// Sends one request and reads the status and the end of the body.
pub async fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<HttpResponse, RuntimeError> {
    let parsed = HttpUrl::parse(url).map_err(failed)?;
    let address = parsed.address.to_string();
    let stream = match &parsed.address.host {
        HttpHost::Ip(ip) => TcpStream::connect((*ip, parsed.address.port)).await,
        HttpHost::Name(name) => TcpStream::connect((name.as_str(), parsed.address.port)).await,
    }
    .map_err(|error| failed(format!("connect to {address}: {error}")))?;
    let request = build(method, &parsed, body).map_err(failed)?;
    let (head, read) = exchange(stream, request, &address, MAX_RESPONSE_BYTES).await?;
    let text = String::from_utf8_lossy(&read);
    Ok(HttpResponse {
        status: head.status.as_u16(),
        body_tail: if text.len() > OUTPUT_TAIL_BYTES {
            tail(&text)
        } else {
            text.into_owned()
        },
    })
}

/// Sends `request` over `stream` (HTTP/1.1, one request on the connection) and returns the
/// response's head and its body, read to its end or to `max_bytes` (then: what was read).
/// `address` names the peer in errors.
pub async fn exchange<S>(
    stream: S,
    request: hyper::Request<String>,
    address: &str,
    max_bytes: usize,
) -> Result<(hyper::http::response::Parts, Vec<u8>), RuntimeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| failed(format!("connect to {address}: {error}")))?;
    // The connection is driven beside the request, and ends with this call.
    let connection = AbortOnDrop(tokio::spawn(connection));
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| failed(format!("request to {address}: {error}")))?;
    let (head, mut body) = response.into_parts();
    let mut read = Vec::new();
    while read.len() < max_bytes {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => {
                return Err(failed(format!("read from {address}: {error}")));
            }
        }
    }
    drop(connection);
    Ok((head, read))
}

/// The request for `url`, as parsed: its path, its authority as the `Host` header.
fn build(
    method: &str,
    url: &HttpUrl,
    body: Option<&str>,
) -> Result<hyper::Request<String>, String> {
    let body = body.unwrap_or("").to_string();
    let host = HeaderValue::from_str(&url.authority)
        .map_err(|error| format!("the host {:?}: {error}", url.authority))?;
    hyper::Request::builder()
        .method(method)
        .uri(url.path_and_query.as_str())
        .header(HOST, host)
        .header(USER_AGENT, concat!("quiesce/", env!("CARGO_PKG_VERSION")))
        .header(CONTENT_LENGTH, body.len())
        .body(body)
        .map_err(|error| format!("an HTTP request for {:?}: {error}", url.path_and_query))
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A loopback server that answers `answer` to one connection and returns what it read.
    async fn serve_once(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.unwrap();
            socket.write_all(answer).await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        (port, server)
    }

    #[tokio::test]
    async fn talks_to_a_real_server_on_loopback() {
        let (port, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                .await;
        let response = request(
            "POST",
            &format!("http://127.0.0.1:{port}/drain?graceful"),
            Some("x"),
        )
        .await
        .unwrap();
        assert_eq!((response.status, response.body_tail.as_str()), (200, "ok"));
        let seen = server.await.unwrap();
        assert!(
            seen.starts_with("POST /drain?graceful HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "{seen}"
        );
        assert!(seen.ends_with("\r\n\r\nx"), "{seen}");
    }

    #[tokio::test]
    async fn a_chunked_body_is_read_as_its_content() {
        let (port, _server) = serve_once(
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndrai\r\n5\r\nning\n\r\n0\r\n\r\n",
        )
        .await;
        let response = request("GET", &format!("http://localhost:{port}"), None)
            .await
            .unwrap();
        assert_eq!(response.status, 202);
        assert_eq!(response.body_tail, "draining\n");
    }

    #[tokio::test]
    async fn not_http_is_an_error() {
        let (port, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n").await;
        assert!(
            request("GET", &format!("http://127.0.0.1:{port}/"), None)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_url_with_a_line_break_is_refused_before_connecting() {
        let error = request(
            "POST",
            "http://127.0.0.1:9/x HTTP/1.1\r\nHost: a\r\n\r\nGET /smuggled",
            None,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("control characters"), "{error}");
    }
}
