//! A minimal HTTP/1.1 client for drain endpoints (`POST /drain_listeners?graceful`,
//! `/healthcheck/fail`...): plain `http://`, one request per connection, the response read to
//! its end and capped. The executor checks the address is allowed and bounds the time.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::runtime::{HttpResponse, OUTPUT_TAIL_BYTES, RuntimeError, tail};

/// The most of a response that is read.
const MAX_RESPONSE_BYTES: usize = 256 << 10;

/// Sends one request and reads the status and the end of the body.
pub async fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<HttpResponse, RuntimeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| RuntimeError::Failed(format!("{url}: only http:// is supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    // `localhost` is loopback without asking a resolver (a static binary in a scratch image
    // has none to ask).
    let address = match address.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => address,
    };
    let mut stream = TcpStream::connect(&address)
        .await
        .map_err(|error| RuntimeError::Failed(format!("connect to {address}: {error}")))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: quiesce/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| RuntimeError::Failed(format!("send to {address}: {error}")))?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stream
            .read(&mut buffer)
            .await
            .map_err(|error| RuntimeError::Failed(format!("read from {address}: {error}")))?;
        if read == 0 || response.len() >= MAX_RESPONSE_BYTES {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    parse_response(&response)
}

/// Parses the status line and returns the end of the body.
fn parse_response(response: &[u8]) -> Result<HttpResponse, RuntimeError> {
    let text = String::from_utf8_lossy(response);
    let status_line = text.lines().next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| {
            RuntimeError::Failed(format!(
                "not an HTTP response: {:?}",
                status_line.chars().take(80).collect::<String>()
            ))
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or("");
    let body = if body.len() > OUTPUT_TAIL_BYTES {
        tail(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse {
        status,
        body_tail: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let response =
            parse_response(b"HTTP/1.1 202 Accepted\r\nContent-Length: 9\r\n\r\ndraining\n")
                .unwrap();
        assert_eq!(response.status, 202);
        assert_eq!(response.body_tail, "draining\n");
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[tokio::test]
    async fn talks_to_a_real_server_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let read = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
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
        assert!(seen.ends_with("\r\n\r\nx"), "{seen}");
    }
}
