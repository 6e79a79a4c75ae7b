//! Real servers in containers, without pulling anything: an image is built from a binary of
//! Debian's packages installed on this machine (nginx-light, redis-server; `scripts/test`
//! installs them), the shared libraries `ldd` names, and a few files, imported with
//! `docker import`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker::{Container, docker, docker_ok};

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
    image_from_host_binaries(tag, &[(binary, target)], files, dirs, entrypoint)
}

/// The same with several binaries (host path, path in the image), each with its libraries.
pub fn image_from_host_binaries(
    tag: &str,
    binaries: &[(&Path, &str)],
    files: &[(&str, &[u8])],
    dirs: &[&str],
    entrypoint: &[&str],
) -> String {
    for (binary, _) in binaries {
        assert!(
            binary.exists(),
            "{} is not installed: run the tests with scripts/test (it installs the servers the tests use)",
            binary.display()
        );
    }
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
    };
    for (binary, target) in binaries {
        put(target, &std::fs::read(binary).expect("read the binary"));
        for library in shared_libraries(binary) {
            put(
                library.to_str().unwrap(),
                &std::fs::read(&library).expect("read a library"),
            );
        }
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

/// A copy of `binary` without its debug information (a debug build of quiesce is hundreds of
/// megabytes), made once per process, and the first 12 hex digits of its SHA-256 (for tags).
pub fn stripped(binary: &Path) -> (PathBuf, String) {
    static STRIPPED: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    STRIPPED
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("quiesce-stripped-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let copy = dir.join("quiesce");
            let status = Command::new("strip")
                .arg("-o")
                .arg(&copy)
                .arg(binary)
                .status()
                .expect("run strip (binutils)");
            assert!(status.success(), "strip failed");
            let digest = quiesce::policy::content_digest(&std::fs::read(&copy).unwrap());
            (copy, digest["sha256:".len()..][..12].to_string())
        })
        .clone()
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

/// `docker run` arguments that give a container the host's `/usr`, read-only: Debian's
/// servers (and their Python or Ruby) as installed on this machine, without copying them.
pub const HOST_USR: [&str; 2] = ["-v", "/usr:/usr:ro"];

/// An image for programs of the host's `/usr` (mounted at run time with [`HOST_USR`]): a root
/// filesystem skeleton with the merged-/usr links (`/bin`, `/lib`... into `/usr`), the host's
/// users, name-service and loader configuration, writable `/tmp`, `/run` and `/var`, plus
/// `files` (path, contents, mode) and `dirs` (path, mode). `config` holds `docker import -c`
/// lines (`USER postgres`, `ENTRYPOINT [...]`). Built once per content.
pub fn host_usr_image(
    name: &str,
    files: &[(&str, &[u8], u32)],
    dirs: &[(&str, u32)],
    config: &[&str],
) -> String {
    let mut fingerprint = Vec::new();
    for (path, contents, mode) in files {
        fingerprint.extend_from_slice(format!("{path}:{mode}:").as_bytes());
        fingerprint.extend_from_slice(contents);
    }
    for (dir, mode) in dirs {
        fingerprint.extend_from_slice(format!("dir {dir}:{mode}").as_bytes());
    }
    fingerprint.extend_from_slice(config.join("\n").as_bytes());
    let digest = quiesce::policy::content_digest(&fingerprint);
    let tag = format!("{name}:{}", &digest["sha256:".len()..][..12]);
    if docker(&["image", "inspect", &tag]).status.success() {
        return tag;
    }
    let staging = tempfile::tempdir().expect("a staging directory");
    let root = staging.path();
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    };
    for dir in [
        "usr", "etc", "root", "proc", "sys", "dev", "run", "var/log", "var/lib",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for dir in ["tmp", "var/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        mode(&root.join(dir), 0o1777);
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    for file in [
        "passwd",
        "group",
        "nsswitch.conf",
        "ld.so.cache",
        "ld.so.conf",
        "localtime",
    ] {
        if let Ok(contents) = std::fs::read(Path::new("/etc").join(file)) {
            std::fs::write(root.join("etc").join(file), contents).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n",
    )
    .unwrap();
    for (dir, dir_mode) in dirs {
        let path = root.join(dir.trim_start_matches('/'));
        std::fs::create_dir_all(&path).unwrap();
        mode(&path, *dir_mode);
    }
    for (path, contents, file_mode) in files {
        let path = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        mode(&path, *file_mode);
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["-c", "."])
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "tar failed");
    let mut args = vec!["import".to_string()];
    for line in config {
        args.push("-c".into());
        args.push(line.to_string());
    }
    args.extend(["-".to_string(), tag.clone()]);
    let mut import = Command::new("docker")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run docker import");
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), &tar.stdout).unwrap();
    drop(import.stdin.take());
    assert!(import.wait().unwrap().success(), "docker import failed");
    tag
}

/// Where Debian's PostgreSQL 15 programs are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The host's `psql` for the server on 127.0.0.1:`port` (user and database `postgres`,
/// unaligned output without headers).
pub fn psql_command(port: u16) -> Command {
    let mut command = Command::new("psql");
    command
        .args([
            "-X",
            "-qAt",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-p", &port.to_string()]);
    command
}

/// Runs the host's `psql` against the server on 127.0.0.1:`port`; its output, or the error.
pub fn psql(port: u16, sql: &str) -> Result<String, String> {
    let mut command = psql_command(port);
    command.args(["-c", sql]);
    sql_output(command)
}

/// The trimmed output of the SQL client `command` (psql, mariadb), or its error output.
pub fn sql_output(mut command: Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Waits until the postgres of `container` answers `psql` on `port`.
pub fn wait_for_postgres(port: u16, container: &Container) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while psql(port, "select 1").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "postgres never answered:\n{}",
            container.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `entrypoint ARGS` once in a container of `image` (a [`host_usr_image`]) without a
/// network, with `data_mount` (`-v` value): set-up steps such as `initdb`.
pub fn run_once(image: &str, data_mount: &str, entrypoint: &str, args: &[&str]) {
    let [usr_flag, usr_mount] = HOST_USR;
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "none",
        usr_flag,
        usr_mount,
        "-v",
        data_mount,
        "--entrypoint",
        entrypoint,
        image,
    ];
    all.extend_from_slice(args);
    docker_ok(&all);
}

/// Creates a PostgreSQL cluster in `data_mount` (`HOST:/var/lib/postgresql`, owned by the
/// postgres user) with `initdb` run from `image` (a [`host_usr_image`] with `USER postgres`).
pub fn initdb(image: &str, data_mount: &str) {
    run_once(
        image,
        data_mount,
        &format!("{PG_BIN}/initdb"),
        &[
            "-D",
            "/var/lib/postgresql/data",
            "--auth=trust",
            "--locale=C",
            "--encoding=UTF8",
        ],
    );
}

/// The uid and gid of `user` on this machine (the [`host_usr_image`] images share its
/// /etc/passwd, so a directory chowned here belongs to the same user in the container).
pub fn user_ids(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|line| line.starts_with(&format!("{user}:")))
        .unwrap_or_else(|| {
            panic!("no user {user}: is its server installed (scripts/ensure-servers)?")
        });
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}
