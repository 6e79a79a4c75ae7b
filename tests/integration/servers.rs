//! Built-in policies against real servers: Debian's nginx and Redis binaries in containers
//! (host network, loopback only), chosen by their image patterns, stopped by quiesce.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use quiesce_tests::docker::{Container, docker_ok};
use quiesce_tests::servers::{free_port, image_from_host_binary, wait_for_port};
use quiesce_tests::{dir_with, quiesce};
use serde_json::Value;

/// `quiesce stop CONTAINER --json --budget 2m`: its exit status, report and stderr. A real
/// server handles the signals its policy sends: no `signal-not-handled` warning (issue 27: no
/// false positive on any built-in's real server).
pub fn stop_json(container: &str) -> (Option<i32>, Value, String) {
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(["stop", container, "--json", "--budget", "2m"])
        .output()
        .expect("run quiesce");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !report.to_string().contains("signal-not-handled"),
        "a real server's stop says it cannot hear its signals:\n{report:#}\n{stderr}"
    );
    (output.status.code(), report, stderr)
}

/// Size of the file nginx serves slowly: at 256 KiB/s a download takes about 4 s.
pub const BIG_FILE_BYTES: usize = 1 << 20;

/// The files of an nginx image besides its binary: users, and the big file it serves.
pub fn nginx_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/false\n".to_vec(),
        ),
        ("/etc/group", b"root:x:0:\n".to_vec()),
        ("/www/big", vec![b'q'; BIG_FILE_BYTES]),
    ]
}

/// The directories nginx writes to.
pub const NGINX_DIRS: [&str; 4] = ["/var/log/nginx", "/var/lib/nginx", "/tmp", "/run"];

fn nginx_image() -> String {
    let files = nginx_files();
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (*path, &bytes[..]))
        .collect();
    image_from_host_binary(
        "nginx:quiesce-test",
        Path::new("/usr/sbin/nginx"),
        "/usr/sbin/nginx",
        &files,
        &NGINX_DIRS,
        &["/usr/sbin/nginx", "-g", "daemon off;"],
    )
}

/// nginx's configuration: one server on 127.0.0.1:`port` serving /www at 256 KiB/s.
pub fn nginx_config(port: u16) -> String {
    format!(
        "user root;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log stderr info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path /tmp;\n  proxy_temp_path /tmp;\n\
           fastcgi_temp_path /tmp;\n  uwsgi_temp_path /tmp;\n  scgi_temp_path /tmp;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root /www;\n    limit_rate 256k;\n  }}\n}}\n"
    )
}

/// A slow download of /big under way.
pub struct Download {
    thread: std::thread::JoinHandle<usize>,
    started: std::sync::mpsc::Receiver<()>,
}

impl Download {
    /// Waits until the first bytes of the response have arrived: the request is in flight.
    pub fn wait_until_in_flight(&self) {
        self.started
            .recv_timeout(Duration::from_secs(30))
            .expect("the download never started");
    }

    /// How many body bytes arrived, once the connection has closed.
    pub fn received(self) -> usize {
        self.thread.join().unwrap()
    }
}

/// Starts a slow download of /big.
pub fn slow_download(port: u16) -> Download {
    download(port, Duration::from_secs(30))
}

/// Starts a download of /big that gives up when no byte comes for `read_timeout`.
pub fn download(port: u16, read_timeout: Duration) -> Download {
    let (started_tx, started) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        stream.set_read_timeout(Some(read_timeout)).unwrap();
        stream
            .write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let mut chunk = [0u8; 16 << 10];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    response.extend_from_slice(&chunk[..read]);
                    let _ = started_tx.send(());
                }
            }
        }
        let header_end = response
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map_or(response.len(), |at| at + 4);
        response.len() - header_end
    });
    Download { thread, started }
}

fn start_nginx(name: &str) -> (Container, u16, tempfile::TempDir) {
    let port = free_port();
    let config = dir_with(&[("nginx.conf", nginx_config(port).as_bytes())]);
    let mount = format!("{}:/etc/quiesce-nginx:ro", config.path().display());
    let container = Container::start(
        name,
        &["--network", "host", "-v", &mount],
        &nginx_image(),
        &["-c", "/etc/quiesce-nginx/nginx.conf"],
    );
    wait_for_port(port, Duration::from_secs(10));
    (container, port, config)
}

#[test]
fn nginx_finishes_an_in_flight_slow_request_under_quiesce_and_not_under_docker_stop() {
    // docker stop: SIGTERM is nginx's fast shutdown; the download is cut.
    let (baseline, port, _config) = start_nginx("nginx-docker-stop");
    let download = slow_download(port);
    download.wait_until_in_flight();
    docker_ok(&["stop", &baseline.name]);
    let received = download.received();
    assert!(
        received < BIG_FILE_BYTES,
        "docker stop let the download finish ({received} bytes)"
    );

    // quiesce: the nginx policy, chosen by the image pattern, sends QUIT and waits.
    let (container, port, _config) = start_nginx("nginx-quiesce");
    let download = slow_download(port);
    download.wait_until_in_flight();
    let (status, report, stderr) = stop_json(&container.name);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let received = download.received();
    assert_eq!(received, BIG_FILE_BYTES, "the in-flight download was cut");
    let service = &report["services"][0];
    assert_eq!(service["policy"]["name"], "nginx");
    assert_eq!(service["steps"][0]["detail"], "SIGQUIT");
    assert_eq!(service["outcome"], "graceful");
    assert_eq!(service["exit_code"], 0);
    // The rest of the 4 s download, not the policy's 60 s graceful timeout. (The service's
    // own time: the command also loads and, on a cold cache, compiles the built-in policies.)
    let elapsed = service["elapsed_ms"].as_u64().unwrap();
    assert!(
        elapsed < 15_000,
        "took {elapsed} ms\n{report:#}\n{}",
        container.logs()
    );
}

fn redis_image() -> String {
    image_from_host_binary(
        "redis:quiesce-test",
        Path::new("/usr/bin/redis-server"),
        "/usr/bin/redis-server",
        &[],
        &["/data", "/tmp"],
        &["/usr/bin/redis-server"],
    )
}

/// Sends one command in RESP and returns the raw reply.
pub fn redis_command(port: u16, parts: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = format!("*{}\r\n", parts.len());
    for part in parts {
        request.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = [0u8; 256];
    let read = stream.read(&mut reply).unwrap();
    String::from_utf8_lossy(&reply[..read]).into_owned()
}

fn start_redis(name: &str, data: &Path) -> (Container, u16) {
    let port = free_port();
    let mount = format!("{}:/data", data.display());
    let port_text = port.to_string();
    let container = Container::start(
        name,
        &["--network", "host", "-v", &mount],
        &redis_image(),
        &[
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--dir",
            "/data",
            "--save",
            "3600 1",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
    );
    wait_for_port(port, Duration::from_secs(10));
    (container, port)
}

#[test]
fn redis_saves_unsaved_data_on_its_graceful_stop_and_loses_it_under_sigkill() {
    // SIGKILL: the key written after the last save is lost (no dump at all).
    let killed_data = tempfile::tempdir().unwrap();
    let (killed, port) = start_redis("redis-killed", killed_data.path());
    assert!(redis_command(port, &["SET", "order:42", "paid"]).starts_with("+OK"));
    docker_ok(&["kill", "-s", "KILL", &killed.name]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !killed_data.path().join("dump.rdb").exists(),
        "redis saved under SIGKILL?"
    );

    // quiesce: the redis policy (image pattern) sends TERM; SHUTDOWN saves the dataset.
    let data = tempfile::tempdir().unwrap();
    let (container, port) = start_redis("redis-quiesce", data.path());
    assert!(redis_command(port, &["SET", "order:42", "paid"]).starts_with("+OK"));
    let (status, report, stderr) = stop_json(&container.name);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["policy"]["name"], "redis");
    assert_eq!(service["steps"][0]["detail"], "SIGTERM");
    assert_eq!(service["outcome"], "graceful");
    assert!(
        container.logs().contains("DB saved on disk"),
        "{}",
        container.logs()
    );
    let dump = std::fs::read(data.path().join("dump.rdb")).expect("redis wrote no dump.rdb");
    assert!(dump.starts_with(b"REDIS"), "not an RDB file");
    assert!(
        dump.windows(8).any(|window| window == b"order:42"),
        "the key is not in the dump"
    );
}
