//! A real OCI registry for the distribution tests: Debian's `docker-registry` (distribution
//! 2.8, installed by `scripts/ensure-servers`), one private instance per test on 127.0.0.1,
//! storing in a temporary directory, optionally behind HTTP basic authentication. Stopped (and
//! its storage removed) when dropped; [`TestRegistry::stop`] takes it down mid-test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry program.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry process and its storage.
pub struct TestRegistry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry anyone may push to and pull from, over plain HTTP.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(None, None)
    }

    /// A registry that answers only `user` with `password` (HTTP basic, bcrypt htpasswd).
    pub fn start_with_login(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start_with(Some((user, password)), None)
    }

    /// A registry over TLS only, with this certificate and key (PEM files).
    pub fn start_tls(certificate: &Path, key: &Path) -> TestRegistry {
        TestRegistry::start_with(None, Some((certificate, key)))
    }

    fn start_with(login: Option<(&str, &str)>, tls: Option<(&Path, &Path)>) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run the tests with scripts/test (scripts/ensure-servers installs Debian's docker-registry)"
        );
        let dir = tempfile::tempdir().expect("a directory for the registry");
        let auth = match login {
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                let made = Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&htpasswd)
                    .args([user, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(made.status.success(), "htpasswd: {made:?}");
                format!(
                    "auth:\n  htpasswd:\n    realm: quiesce-tests\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let tls = tls
            .map(|(certificate, key)| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    certificate.display(),
                    key.display()
                )
            })
            .unwrap_or_default();
        // A header only this registry answers with: an answer on the port is this registry's,
        // not another test's that took the port first.
        let token = dir
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A port that was free a moment ago; if another process takes it first, the registry
        // exits and the next port is tried.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  headers:\n    X-Quiesce-Test: [\"{token}\"]\n{tls}{auth}",
                    dir.path().join("data").display()
                ),
            )
            .expect("write the registry's config");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start docker-registry");
            if wait_until_listening(&mut child, port, &token) {
                return TestRegistry {
                    child: Some(child),
                    port,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start on 127.0.0.1 (five ports tried)");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where it stores blobs and manifests.
    pub fn storage(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it (a registry gone down); what it stored stays until it is dropped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port")
}

/// Waits until the registry answers `GET /v2/` on `port` with its `token` header (200, or 401
/// behind a login); false if it exited first. Over TLS it answers a plain request with a bare
/// 400: then only its being alive once the port answers says it is ours. Setting up, not a
/// verdict: a generous minute.
fn wait_until_listening(child: &mut Child, port: u16, token: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request =
                format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/")
            {
                if answer.contains(token) {
                    return true;
                }
                // Not ours (or TLS): ours is the one listening only if it is still alive.
                std::thread::sleep(Duration::from_millis(200));
                return matches!(child.try_wait(), Ok(None)) && answer.contains(" 400 ");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
