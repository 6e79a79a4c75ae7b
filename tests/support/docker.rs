//! Engine helpers for the integration tests: the test-service image (imported from our own
//! static binary; nothing is pulled) and containers that are removed when the test ends, on
//! Docker or on Podman.
//!
//! Set-up and checks use the engine's own CLI (`docker`, `podman`); what is under test
//! (quiesce) talks to the engine through its own client.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::fixtures::TEST_SERVICE_BIN;

/// The engine a test runs its containers on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The Docker Engine (scripts/ensure-docker).
    Docker,
    /// Podman's Docker-compatible API service (scripts/ensure-podman).
    Podman,
}

/// Where scripts/ensure-podman serves Podman's Docker-compatible API.
pub const PODMAN_SOCKET: &str = "unix:///run/podman/podman.sock";

impl Engine {
    /// Its CLI.
    pub fn cli(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// The `-H` quiesce needs to reach it (none for Docker: the default endpoint).
    pub fn quiesce_host(self) -> Vec<&'static str> {
        match self {
            Engine::Docker => Vec::new(),
            Engine::Podman => vec!["-H", PODMAN_SOCKET],
        }
    }

    /// Runs `CLI ARGS`, panics unless it succeeds, returns trimmed stdout.
    pub fn ok(self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`{} {}` failed: {}",
            self.cli(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Runs `CLI ARGS` and returns its output.
    pub fn run(self, args: &[&str]) -> Output {
        Command::new(self.cli())
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run `{} {}`: {error}", self.cli(), args.join(" "))
            })
    }

    /// The test-service image in this engine's store.
    pub fn test_image(self) -> String {
        match self {
            Engine::Docker => test_image().to_string(),
            Engine::Podman => {
                static IMAGE: OnceLock<String> = OnceLock::new();
                IMAGE
                    .get_or_init(|| import_test_service(Engine::Podman))
                    .clone()
            }
        }
    }
}

/// Imports the test-service binary as a `FROM scratch` image into `engine`'s store (once per
/// binary: the tag is its digest).
fn import_test_service(engine: Engine) -> String {
    import_test_service_with(&[engine.cli()])
}

/// Imports the test-service binary with `cli` (`docker`, `podman`, or `docker -H ENDPOINT`)
/// unless that engine has it already; returns its tag.
pub fn import_test_service_with(cli: &[&str]) -> String {
    let binary = std::fs::read(TEST_SERVICE_BIN).expect("read the test-service binary");
    let digest = quiesce::model::digest::content_digest(&binary);
    let tag = format!(
        "localhost/quiesce-test-service:{}",
        &digest["sha256:".len()..][..12]
    );
    let (program, base) = cli.split_first().expect("a CLI");
    let known = Command::new(program)
        .args(base)
        .args(["image", "inspect", &tag])
        .output()
        .is_ok_and(|output| output.status.success());
    if known {
        return tag;
    }
    let staging = tempfile::tempdir().expect("a staging directory");
    std::fs::copy(TEST_SERVICE_BIN, staging.path().join("test-service")).expect("copy the binary");
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(staging.path())
        .args(["-c", "test-service"])
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "tar failed");
    let mut import = Command::new(program)
        .args(base)
        .args(["import", "-c", r#"ENTRYPOINT ["/test-service"]"#, "-", &tag])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the engine's import");
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), &tar.stdout)
        .expect("feed the import");
    drop(import.stdin.take());
    assert!(
        import.wait().expect("the import").success(),
        "the import failed"
    );
    tag
}

/// Runs `docker ARGS` and returns its output; panics if docker cannot be run at all.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `docker {}`: {error}", args.join(" ")))
}

/// Runs `docker ARGS`, panics unless it succeeds, returns trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    assert!(
        output.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The test-service image, imported once per test process from the static binary
/// (`FROM scratch` with `/test-service` as entrypoint). Panics with the fix when no Docker
/// daemon answers.
pub fn test_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "no Docker daemon answers: run the tests with scripts/test (it starts one), or start dockerd yourself\n{}",
            String::from_utf8_lossy(&info.stderr)
        );
        import_test_service(Engine::Docker)
    })
}

/// A container removed (with `rm -f`) when dropped.
pub struct Container {
    /// Its name (unique per test process).
    pub name: String,
    /// The engine it runs on.
    pub engine: Engine,
}

impl Container {
    /// The test service: `docker run -d --name NAME --network none DOCKER_ARGS IMAGE serve
    /// SERVICE_ARGS`, once it is ready.
    pub fn run(name: &str, docker_args: &[&str], service_args: &[&str]) -> Container {
        Container::run_on(Engine::Docker, name, docker_args, service_args)
    }

    /// The same on `engine`.
    pub fn run_on(
        engine: Engine,
        name: &str,
        engine_args: &[&str],
        service_args: &[&str],
    ) -> Container {
        let mut args = vec!["--network", "none"];
        args.extend_from_slice(engine_args);
        let service = [&["serve"], service_args].concat();
        let container = Container::start_on(engine, name, &args, &engine.test_image(), &service);
        container.wait_for_log("ready pid=", Duration::from_secs(20));
        container
    }

    /// Any image: `docker run -d --name NAME DOCKER_ARGS IMAGE ARGS`.
    pub fn start(name: &str, docker_args: &[&str], image: &str, args: &[&str]) -> Container {
        Container::start_on(Engine::Docker, name, docker_args, image, args)
    }

    /// The same on `engine`.
    pub fn start_on(
        engine: Engine,
        name: &str,
        engine_args: &[&str],
        image: &str,
        args: &[&str],
    ) -> Container {
        let name = format!("qt-{}-{name}", std::process::id());
        let mut all = vec!["run", "-d", "--name", &name, "--label", "quiesce.test=1"];
        all.extend_from_slice(engine_args);
        all.push(image);
        all.extend_from_slice(args);
        engine.ok(&all);
        Container { name, engine }
    }

    /// The container's combined output so far.
    pub fn logs(&self) -> String {
        let output = self.engine.run(&["logs", &self.name]);
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }

    /// Waits until the output contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.logs().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never printed {text:?}; output:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `docker inspect --format FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        self.engine.ok(&["inspect", "--format", format, &self.name])
    }

    /// True while it runs.
    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// Jobs started and completed, from its log (what SIGKILL loses is the difference).
    pub fn jobs(&self) -> (usize, usize) {
        let logs = self.logs();
        let count = |prefix: &str| logs.lines().filter(|line| line.starts_with(prefix)).count();
        (count("started job "), count("completed job "))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.run(&["rm", "-f", &self.name]);
    }
}

/// A Docker daemon of a test's own, on a private socket and data root, so a test can stop and
/// restart it without disturbing the shared one. Stopped (SIGTERM) when dropped.
pub struct PrivateDaemon {
    /// Its working directory (socket, data, logs).
    pub dir: tempfile::TempDir,
    daemon: Option<std::process::Child>,
}

impl PrivateDaemon {
    /// Starts a daemon and waits until it answers.
    pub fn start() -> PrivateDaemon {
        let mut daemon = PrivateDaemon {
            dir: tempfile::tempdir().expect("a daemon directory"),
            daemon: None,
        };
        daemon.resume();
        daemon
    }

    /// `unix://` address of its socket, for DOCKER_HOST and `docker -H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// Runs `docker -H <this daemon> ARGS`, panics unless it succeeds, returns trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let host = self.host();
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        docker_ok(&all)
    }

    /// Starts (again) the daemon; waits until it answers.
    pub fn resume(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("a log file");
        let child = std::process::Command::new("dockerd")
            .arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--shutdown-timeout=1",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd (the daemon tests need root)");
        self.daemon = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !docker(&["-H", &self.host(), "info"]).status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private dockerd did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon (SIGTERM: it stops its containers, as on a host shutdown) and waits.
    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = std::process::Command::new("kill")
                .arg(daemon.id().to_string())
                .status();
            let _ = daemon.wait();
        }
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let _ = docker(&["-H", &self.host(), "rm", "-f", "quiesce-daemon-test"]);
        }
        self.stop();
    }
}

/// Podman 5.4 (Debian 13's) of a test's own, serving its Docker-compatible API in a container
/// of the machine's Docker Engine (`scripts/ensure-podman5`, which builds and caches its root),
/// on a socket of its own, so a test can reboot it. Removed when dropped.
pub struct PrivatePodman5 {
    /// Its socket's directory.
    pub dir: tempfile::TempDir,
    /// The container Podman runs in.
    pub container: String,
}

impl PrivatePodman5 {
    /// Starts one and waits until it answers.
    pub fn start(name: &str) -> PrivatePodman5 {
        let podman = PrivatePodman5 {
            dir: tempfile::tempdir().expect("a socket directory"),
            container: format!("qt-{}-podman5-{name}", std::process::id()),
        };
        let output = Command::new(crate::workspace().join("scripts/ensure-podman5"))
            .env("QUIESCE_PODMAN5_SOCKET_DIR", podman.dir.path())
            .env("QUIESCE_PODMAN5_CONTAINER", &podman.container)
            .output()
            .expect("run scripts/ensure-podman5");
        assert!(
            output.status.success(),
            "scripts/ensure-podman5 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        podman
    }

    /// `unix://` address of its socket, for `-H` and DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("podman.sock").display())
    }

    /// Runs `docker -H <this Podman> ARGS`, panics unless it succeeds, returns trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let host = self.host();
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        docker_ok(&all)
    }

    /// The test-service image in this Podman.
    pub fn test_image(&self) -> String {
        let host = self.host();
        import_test_service_with(&["docker", "-H", &host])
    }

    /// A reboot of the host Podman runs on: the container restarted (its /run is a fresh
    /// tmpfs, so Podman refreshes every container's state as at boot), then what Podman's
    /// `podman-restart.service` runs at boot (its `ExecStart` in Podman 5.4).
    pub fn reboot(&self) {
        docker_ok(&["restart", "-t", "5", &self.container]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !docker(&["-H", &self.host(), "version"]).status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "Podman did not come back"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        docker_ok(&[
            "exec",
            &self.container,
            "podman",
            "start",
            "--all",
            "--filter",
            "restart-policy=always",
        ]);
    }
}

impl Drop for PrivatePodman5 {
    fn drop(&mut self) {
        let _ = docker(&[
            "exec",
            &self.container,
            "podman",
            "rm",
            "-a",
            "-f",
            "-t",
            "0",
        ]);
        let _ = docker(&["rm", "-f", &self.container]);
    }
}
