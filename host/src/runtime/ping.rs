//! The engine's `/_ping`: the one request that says that an engine answers, which engine it is
//! and which API version it speaks, in its response headers (`Api-Version: 1.41`,
//! `Server: Docker/20.10.24 (linux)`, Podman's `Libpod-Api-Version: 4.3.1`). The docker CLI
//! negotiates with it too. `/version` says the same in its body but costs the engine far more
//! (Docker 20.10 asks containerd and runs `runc --version`: 6–8 ms here; Podman 4.3 about
//! 500 ms), so it is only the fallback for an endpoint this module cannot reach by itself or an
//! engine whose ping lacks the headers.

use hyper::header::HeaderMap;

use super::RuntimeError;

/// What an engine's ping headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinged {
    /// The API version the engine speaks at most ("1.41").
    pub api_version: String,
    /// `docker` or `podman`.
    pub kind: &'static str,
    /// The engine's own version (Podman's for Podman).
    pub version: String,
}

/// Pings the engine at `host` (`unix:///path` or `tcp://HOST:PORT`). `None`: this endpoint's
/// form is not one pinged here, or the answer lacks what [`Pinged`] needs (ask `/version`).
pub async fn ping(host: &str) -> Result<Option<Pinged>, RuntimeError> {
    let Some((head, _)) = super::raw::get(host, "/_ping").await? else {
        return Ok(None);
    };
    if !head.status.is_success() {
        return Ok(None);
    }
    Ok(from_headers(&head.headers))
}

/// The engine a ping's headers describe, if they say enough.
fn from_headers(headers: &HeaderMap) -> Option<Pinged> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let api_version = text("api-version")?.to_string();
    if let Some(version) = text("libpod-api-version") {
        return Some(Pinged {
            api_version,
            kind: "podman",
            version: version.to_string(),
        });
    }
    // `Docker/20.10.24+dfsg1 (linux)`.
    let version = text("server")?
        .strip_prefix("Docker/")?
        .split_whitespace()
        .next()?
        .to_string();
    Some(Pinged {
        api_version,
        kind: "docker",
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn docker_and_podman_are_told_apart_by_their_headers() {
        let docker = headers(&[
            ("Api-Version", "1.41"),
            ("Server", "Docker/20.10.24+dfsg1 (linux)"),
        ]);
        assert_eq!(
            from_headers(&docker),
            Some(Pinged {
                api_version: "1.41".into(),
                kind: "docker",
                version: "20.10.24+dfsg1".into()
            })
        );
        let podman = headers(&[
            ("Api-Version", "1.41"),
            ("Libpod-Api-Version", "4.3.1"),
            ("Server", "Libpod/4.3.1 (linux)"),
        ]);
        assert_eq!(
            from_headers(&podman).map(|p| (p.kind, p.version)),
            Some(("podman", "4.3.1".to_string()))
        );
    }

    #[test]
    fn a_ping_that_says_too_little_leaves_it_to_version() {
        assert_eq!(
            from_headers(&headers(&[("Server", "Docker/27.0 (linux)")])),
            None
        );
        assert_eq!(from_headers(&headers(&[("Api-Version", "1.41")])), None);
        let proxy = headers(&[("Api-Version", "1.41"), ("Server", "nginx/1.22")]);
        assert_eq!(from_headers(&proxy), None);
    }
}
