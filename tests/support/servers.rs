//! Real servers in containers, without pulling anything: an image is built from a binary of
//! Debian's packages installed on this machine (nginx-light, redis-server; `scripts/test`
//! installs them), the shared libraries `ldd` names, and a few files, imported with
//! `docker import`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::docker::docker;

/// Builds (once per tag) a `FROM scratch`-style image holding `binary` at `target`, its shared
/// libraries, `files` (path in the image, contents) and empty `dirs`, with `entrypoint`.
pub fn image_from_host_binary(
    tag: &str,
    binary: &Path,
    target: &str,
    files: &[(&str, &[u8])],
    dirs: &[&str],
    entrypoint: &[&str],
) -> String {
    assert!(
        binary.exists(),
        "{} is not installed: run the tests with scripts/test (it installs Debian's nginx-light and redis-server)",
        binary.display()
    );
    if docker(&["image", "inspect", tag]).status.success() {
        return tag.to_string();
    }
    let staging = tempfile::tempdir().expect("a staging directory");
    let put = |path: &str, contents: &[u8]| {
        let destination = staging.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(destination.parent().unwrap()).unwrap();
        std::fs::write(&destination, contents).unwrap();
        // Executables, libraries and the ELF loader (which the kernel also opens for exec).
        std::fs::set_permissions(
            &destination,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        destination
    };
    let executable = put(target, &std::fs::read(binary).expect("read the binary"));
    std::fs::set_permissions(
        &executable,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for library in shared_libraries(binary) {
        put(
            library.to_str().unwrap(),
            &std::fs::read(&library).expect("read a library"),
        );
    }
    for (path, contents) in files {
        put(path, contents);
    }
    for dir in dirs {
        std::fs::create_dir_all(staging.path().join(dir.trim_start_matches('/'))).unwrap();
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(staging.path())
        .args(["-c", "."])
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "tar failed");
    let change = format!(
        "ENTRYPOINT [{}]",
        entrypoint
            .iter()
            .map(|part| format!("{part:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut import = Command::new("docker")
        .args(["import", "-c", &change, "-", tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run docker import");
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), &tar.stdout).unwrap();
    drop(import.stdin.take());
    assert!(import.wait().unwrap().success(), "docker import failed");
    tag.to_string()
}

/// The absolute paths `ldd` lists for `binary` (libraries and the loader).
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("run ldd");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A free TCP port on loopback (bound and released; good enough for one test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
