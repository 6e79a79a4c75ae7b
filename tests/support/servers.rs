//! Real servers in containers, without pulling anything. Two kinds of image: one built from a
//! binary of Debian's packages installed on this machine (nginx-light, redis-server), the shared
//! libraries `ldd` names and a few files; and a root-filesystem skeleton run with the host's
//! `/usr` mounted read-only (PostgreSQL, MariaDB, HAProxy, Apache, Python and Ruby servers...).
//! Both are imported with `docker import`; `scripts/ensure-servers` installs the packages.
//! Also the helpers the real-server tests share: clients, data directories, the `docker stop`
//! reference, logs of a container's latest start, and gates that hold work in flight until a
//! test lets it finish.

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
/// The copies live in one directory named by their digest: a run reuses the last run's copy
/// of the same build, and a copy of another build over an hour old is removed (each is ~90 MB;
/// one per test process used to be left behind).
pub fn stripped(binary: &Path) -> (PathBuf, String) {
    static STRIPPED: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    STRIPPED
        .get_or_init(|| {
            let dir = std::env::temp_dir().join("quiesce-stripped");
            std::fs::create_dir_all(&dir).unwrap();
            let partial = dir.join(format!(".{}.partial", std::process::id()));
            let status = Command::new("strip")
                .arg("-o")
                .arg(&partial)
                .arg(binary)
                .status()
                .expect("run strip (binutils)");
            assert!(status.success(), "strip failed");
            let digest = quiesce::model::digest::content_digest(&std::fs::read(&partial).unwrap());
            let short = digest["sha256:".len()..][..12].to_string();
            let copy = dir.join(&short);
            // Atomic: another process renaming the same bytes there is no harm.
            std::fs::rename(&partial, &copy).unwrap();
            remove_stale_copies(&dir, &short);
            (copy, short)
        })
        .clone()
}

/// Removes the copies of other builds in `dir` last written over an hour ago.
fn remove_stale_copies(dir: &Path, keep: &str) {
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified < hour_ago);
        if stale && entry.file_name() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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
    let digest = quiesce::model::digest::content_digest(&fingerprint);
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

/// Polls `ready` every 50 ms until it holds; panics with `failure()` after `timeout`.
pub fn poll_until(
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    failure: impl FnOnce() -> String,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !ready() {
        if std::time::Instant::now() >= deadline {
            panic!("{}", failure());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// A temporary directory owned by `user`, for a server's data (mounted into its container).
pub fn data_dir_of(user: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a data directory");
    let (uid, gid) = user_ids(user);
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    dir
}

/// How long `docker stop` waits for an exit before SIGKILL (its default, and the `-t` of the
/// reference stops).
pub const DOCKER_STOP_SECONDS: u64 = 10;

/// The reference: `docker stop -t 10` (the container's StopSignal, SIGKILL 10 s later).
/// Returns the exit code.
pub fn docker_stop_reference(container: &Container) -> i64 {
    docker_ok(&[
        "stop",
        "-t",
        &DOCKER_STOP_SECONDS.to_string(),
        &container.name,
    ]);
    exit_code(container)
}

/// The exit code of a stopped container.
pub fn exit_code(container: &Container) -> i64 {
    container
        .inspect("{{.State.ExitCode}}")
        .parse()
        .expect("an exit code")
}

/// `docker start` of a stopped container (readiness is each server's own).
pub fn start_again(container: &Container) {
    docker_ok(&["start", &container.name]);
}

/// The container's output since its last start (earlier runs of a restarted container left).
pub fn logs_since_start(container: &Container) -> String {
    let started = container.inspect("{{.State.StartedAt}}");
    let output = docker(&["logs", "--since", &started, &container.name]);
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Waits until the output since the last start contains `text`.
pub fn wait_for_log_since_start(container: &Container, text: &str, timeout: Duration) {
    poll_until(
        timeout,
        || logs_since_start(container).contains(text),
        || {
            format!(
                "{} never printed {text:?} since its start; output:\n{}",
                container.name,
                logs_since_start(container)
            )
        },
    );
}

/// The server's own drain time, by the engine's clock: from the first line since the last
/// start that contains `text` (the server saying its graceful shutdown began) to the exit.
pub fn drain_time(container: &Container, text: &str) -> Option<Duration> {
    let started = container.inspect("{{.State.StartedAt}}");
    let output = docker(&["logs", "--timestamps", "--since", &started, &container.name]);
    let logs = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let at = |stamp: &str| humantime::parse_rfc3339(stamp).ok();
    let began = logs
        .lines()
        .filter(|line| line.contains(text))
        .filter_map(|line| at(line.split_whitespace().next()?))
        .min()?;
    at(&container.inspect("{{.State.FinishedAt}}"))?
        .duration_since(began)
        .ok()
}

/// A directory shared with a container (bind-mounted, writable by any user): the program in
/// the container finds its gate there and leaves markers of its work.
pub struct SharedDir {
    dir: tempfile::TempDir,
}

/// The file whose creation lets the work held in a container finish ([`SharedDir::open_gate`]).
pub const GATE_FILE: &str = "open";

impl SharedDir {
    /// An empty shared directory plus `files`.
    pub fn new(files: &[(&str, &[u8])]) -> SharedDir {
        let dir = crate::dir_with(files);
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        SharedDir { dir }
    }

    /// The `-v` value mounting it at `at`.
    pub fn mount(&self, at: &str) -> String {
        format!("{}:{at}", self.dir.path().display())
    }

    /// Its path on the host.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// True when the container has left the marker `name`.
    pub fn has(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }

    /// Waits until the container has left the marker `name` (what it logged so far if never).
    pub fn wait_for(&self, name: &str, container: &Container, timeout: Duration) {
        poll_until(
            timeout,
            || self.has(name),
            || {
                format!(
                    "{} never left {name}; output:\n{}",
                    container.name,
                    container.logs()
                )
            },
        );
    }

    /// Lets the held work finish: creates [`GATE_FILE`].
    pub fn open_gate(&self) {
        std::fs::write(self.dir.path().join(GATE_FILE), b"").unwrap();
    }
}

/// Size of a response of [`GatedBackend`] (and of the test apps that imitate it): 4 chunks of
/// 64 KiB.
pub const GATED_BODY_BYTES: usize = 4 * GATED_CHUNK_BYTES;

/// The chunk a gated response sends before it waits for its gate.
pub const GATED_CHUNK_BYTES: usize = 64 << 10;

/// An HTTP backend on 127.0.0.1 for the proxies: every response sends its headers
/// (`Content-Length` [`GATED_BODY_BYTES`]) and a first chunk, then waits until
/// [`GatedBackend::open`] before it sends the rest. A request through a proxy is therefore in
/// flight for exactly as long as a test wants, whatever the machine's speed.
pub struct GatedBackend {
    /// Its port.
    pub port: u16,
    gate: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl GatedBackend {
    /// Starts it (its threads live as long as the test process).
    pub fn start() -> GatedBackend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the backend");
        let port = listener.local_addr().unwrap().port();
        let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let shared = gate.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let gate = shared.clone();
                std::thread::spawn(move || serve_gated(stream, &gate));
            }
        });
        GatedBackend { port, gate }
    }

    /// Lets every held response (and every later one) finish.
    pub fn open(&self) {
        let (open, changed) = &*self.gate;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}

/// One response of [`GatedBackend`]; a client that went away ends it.
fn serve_gated(
    mut stream: std::net::TcpStream,
    gate: &(std::sync::Mutex<bool>, std::sync::Condvar),
) {
    use std::io::{Read, Write};
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {GATED_BODY_BYTES}\r\nConnection: close\r\n\r\n"
    );
    let chunk = vec![b'q'; GATED_CHUNK_BYTES];
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&chunk).is_err() {
        return;
    }
    let (open, changed) = gate;
    let mut is_open = open.lock().unwrap();
    while !*is_open {
        is_open = changed.wait(is_open).unwrap();
    }
    drop(is_open);
    for _ in 1..GATED_BODY_BYTES / GATED_CHUNK_BYTES {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// A Redis server (the host's redis-server) on 127.0.0.1:port, as a broker for Celery and
/// Sidekiq: no persistence. Waits until it accepts connections.
pub fn redis_broker(name: &str) -> (Container, u16) {
    let image = host_usr_image(
        "redis-broker",
        &[],
        &[("/data", 0o777)],
        &["ENTRYPOINT [\"/usr/bin/redis-server\"]"],
    );
    let port = free_port();
    let [usr_flag, usr_mount] = HOST_USR;
    let container = Container::start(
        name,
        &["--network", "host", usr_flag, usr_mount],
        &image,
        &[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/data",
        ],
    );
    wait_for_port(port, Duration::from_secs(30));
    (container, port)
}

/// Waits until the container's PID 1 is ready for each of `signals`: it catches it, or blocks
/// it (a thread takes it with `sigwait`), by the masks of `/proc/PID/status`. A signal with
/// the default action is dropped for PID 1, so a server that serves already but has not yet
/// installed its handlers (HAProxy's master, an oslo.service launcher) would lose its stop
/// signal: "in flight" is not "ready to be stopped".
pub fn wait_until_pid1_handles(container: &Container, signals: &[quiesce_policy_sdk::Signal]) {
    let status = || {
        let pid = container.inspect("{{.State.Pid}}");
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
    };
    let mask = |status: &str, field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0)
    };
    poll_until(
        Duration::from_secs(120),
        || {
            let status = status();
            let handled = mask(&status, "SigCgt:") | mask(&status, "SigBlk:");
            signals
                .iter()
                .all(|signal| handled & (1 << (signal.number() - 1)) != 0)
        },
        || {
            format!(
                "PID 1 of {} does not handle {signals:?}:\n{}\n{}",
                container.name,
                status(),
                container.logs()
            )
        },
    );
}
