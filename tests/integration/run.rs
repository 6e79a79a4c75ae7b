//! `quiesce run` as a container's ENTRYPOINT, against a real Docker Engine: the engine's own
//! stop (`docker stop -t N`: TERM to PID 1, SIGKILL at N seconds, what the kubelet does through
//! the CRI) is the trigger. The image holds the quiesce binary under test and the project's
//! test service; nothing is pulled.

use std::path::Path;
use std::time::Duration;

use quiesce_tests::docker::{Container, docker, docker_ok};
use quiesce_tests::fixtures::TEST_SERVICE_BIN;
use quiesce_tests::servers::{
    PG_BIN, free_port, image_from_host_binaries, initdb, psql, stripped, user_ids, wait_for_port,
    wait_for_postgres,
};
use quiesce_tests::{dir_with, quiesce};
use serde_json::Value;

/// The image: `/quiesce` (the binary under test) and `/test-service`, ENTRYPOINT `quiesce run`.
pub(crate) fn run_image() -> String {
    let (quiesce, digest) = stripped(crate::quiesce_bin());
    let service = quiesce::model::digest::content_digest(&std::fs::read(TEST_SERVICE_BIN).unwrap());
    let tag = format!(
        "quiesce-run-test:{digest}-{}",
        &service["sha256:".len()..][..12]
    );
    image_from_host_binaries(
        &tag,
        &[
            (&quiesce, "/quiesce"),
            (Path::new(TEST_SERVICE_BIN), "/test-service"),
        ],
        &[],
        &["/tmp", "/run", "/out", "/cache"],
        &["/quiesce", "run"],
    )
}

/// A container of the run image; its report directory is mounted at /out, the shared compile
/// cache at /cache.
pub(crate) struct Run {
    pub(crate) container: Container,
    out: tempfile::TempDir,
}

impl Run {
    fn start(name: &str, args: &[&str]) -> Run {
        Run::start_with(name, &[], args)
    }

    /// The same with more `docker run` arguments (mounts).
    pub(crate) fn start_with(name: &str, docker_args: &[&str], args: &[&str]) -> Run {
        let out = tempfile::tempdir().unwrap();
        let cache = crate::cache_dir();
        std::fs::create_dir_all(&cache).unwrap();
        let out_mount = format!("{}:/out", out.path().display());
        let cache_mount = format!("{}:/cache", cache.display());
        let container = Container::start(
            name,
            &[
                "--network",
                "none",
                "-v",
                &out_mount,
                "-v",
                &cache_mount,
                "-e",
                "QUIESCE_CACHE_DIR=/cache",
            ]
            .into_iter()
            .chain(docker_args.iter().copied())
            .collect::<Vec<_>>(),
            &run_image(),
            args,
        );
        Run { container, out }
    }

    /// Waits for the container to exit; its exit status.
    pub(crate) fn exit_code(&self) -> i32 {
        let code = docker_ok(&["wait", &self.container.name]);
        code.parse()
            .unwrap_or_else(|_| panic!("docker wait said {code:?}"))
    }

    /// The report quiesce wrote to /out/report.json.
    pub(crate) fn report(&self) -> Value {
        let text =
            std::fs::read_to_string(self.out.path().join("report.json")).unwrap_or_else(|error| {
                panic!("no report ({error}); logs:\n{}", self.container.logs())
            });
        serde_json::from_str(&text).unwrap()
    }
}

#[test]
fn docker_stop_drains_a_service_through_its_policy_and_the_exit_status_is_the_services() {
    // The service drains only on QUIT; the engine sends TERM. The nginx policy turns it into
    // QUIT; every job in flight completes.
    let run = Run::start(
        "run-drain",
        &[
            "--policy",
            "nginx",
            "--grace-period",
            "30s",
            "--report",
            "/out/report.json",
            "--",
            "/test-service",
            "serve",
            "--graceful",
            "QUIT",
            "--job-ms",
            "3000",
        ],
    );
    run.container
        .wait_for_log("started job", Duration::from_secs(20));
    docker_ok(&["stop", "-t", "30", &run.container.name]);
    assert_eq!(run.exit_code(), 0, "{}", run.container.logs());
    let logs = run.container.logs();
    assert!(logs.contains("signal SIGQUIT graceful"), "{logs}");
    let (started, completed) = run.container.jobs();
    assert!(
        started > 0 && completed == started,
        "{started} started, {completed} completed:\n{logs}"
    );
    assert!(logs.contains("abandoned=0"), "{logs}");
    let report = run.report();
    assert_eq!(report["policy"]["name"], "nginx");
    assert_eq!(report["outcome"], "graceful", "{report:#}");
    assert_eq!(report["steps"][0]["detail"], "SIGQUIT");
    assert_eq!(report["exit_code"], 0);
    // One line per step on stderr as it happens: what `kubectl logs` shows.
    assert!(logs.contains("+0.0s signal SIGQUIT"), "{logs}");
}

#[test]
fn a_service_that_ignores_every_signal_is_killed_by_quiesce_within_the_grace_period() {
    let run = Run::start(
        "run-deaf",
        &[
            "--grace-period",
            "5s",
            "--report",
            "/out/report.json",
            "--",
            "/test-service",
            "serve",
            "--ignore-all",
        ],
    );
    run.container
        .wait_for_log("ready pid=", Duration::from_secs(20));
    // The engine would wait a minute: the kill is quiesce's own, inside its 5 s.
    docker_ok(&["stop", "-t", "60", &run.container.name]);
    assert_eq!(run.exit_code(), 137);
    let report = run.report();
    assert_eq!(report["outcome"], "killed", "{report:#}");
    let elapsed = report["elapsed_ms"].as_u64().unwrap();
    assert!(
        elapsed <= 5_000,
        "quiesce took {elapsed} ms of a 5 s grace period"
    );
    let kill = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["action"] == "kill")
        .expect("a kill step");
    assert_eq!(kill["result"], "killed");
}

/// The pid of the orphan the service left (`--orphan-ms`), once it has been announced.
fn orphan_pid(container: &Container) -> String {
    container.wait_for_log("orphaned pid=", Duration::from_secs(20));
    let logs = container.logs();
    let line = logs
        .lines()
        .find_map(|line| line.strip_prefix("orphaned pid="))
        .unwrap();
    line.trim().to_string()
}

/// The state of process `pid` in `container` (`S`, `Z`, ... or `gone`).
fn pid_state(container: &Container, pid: &str) -> String {
    let stat = docker(&["exec", &container.name, "/test-service", "pid-state", pid]);
    String::from_utf8_lossy(&stat.stdout).trim().to_string()
}

/// Polls until `done` holds for the state of `pid`; the last state seen.
fn await_state(container: &Container, pid: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = pid_state(container, pid);
        if done(&state) || std::time::Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn other_signals_reach_the_child_and_orphans_are_reaped() {
    let run = Run::start(
        "run-pid1",
        &[
            "--",
            "/test-service",
            "serve",
            "--orphan-ms",
            "100",
            "--no-reap",
        ],
    );
    run.container
        .wait_for_log("ready pid=", Duration::from_secs(20));
    docker_ok(&["kill", "-s", "HUP", &run.container.name]);
    run.container
        .wait_for_log("signal SIGHUP ignored", Duration::from_secs(10));
    docker_ok(&["kill", "-s", "USR2", &run.container.name]);
    run.container
        .wait_for_log("signal SIGUSR2 ignored", Duration::from_secs(10));

    // The service left an orphan, reparented to PID 1 (quiesce): once it exits, it is reaped.
    let pid = orphan_pid(&run.container);
    let state = await_state(&run.container, &pid, |state| state == "gone");
    assert_eq!(state, "gone", "the orphan {pid} was not reaped");
    assert_eq!(
        docker_ok(&["exec", &run.container.name, "/test-service", "zombies"]),
        "zombies=0"
    );

    // The control: with the service itself as PID 1 (it reaps nothing), the orphan stays a
    // zombie.
    let control = Container::run(
        "run-pid1-control",
        &[],
        &["--orphan-ms", "100", "--no-reap"],
    );
    let pid = orphan_pid(&control);
    let state = await_state(&control, &pid, |state| state == "Z" || state == "gone");
    assert_eq!(
        state, "Z",
        "without an init, the orphan {pid} should stay a zombie"
    );
}

#[test]
fn the_command_s_exit_status_is_the_container_s() {
    for (command, expected) in [
        (vec!["exit", "0"], 0),
        (vec!["exit", "3"], 3),
        (vec!["raise", "USR1"], 128 + 10),
    ] {
        let mut args = vec!["--", "/test-service"];
        args.extend(&command);
        let run = Run::start("run-status", &args);
        assert_eq!(
            run.exit_code(),
            expected,
            "{command:?}: {}",
            run.container.logs()
        );
        drop(run);
    }
}

#[test]
fn an_unknown_policy_or_invalid_settings_fail_the_container_before_the_command_starts() {
    let run = Run::start(
        "run-unknown",
        &["--policy", "nope", "--", "/test-service", "serve"],
    );
    assert_eq!(run.exit_code(), 2);
    let logs = run.container.logs();
    assert!(logs.contains("unknown policy `nope`"), "{logs}");
    assert!(!logs.contains("ready pid="), "the command started:\n{logs}");

    let run = Run::start(
        "run-settings",
        &[
            "--policy",
            "nginx",
            "--settings",
            r#"{"graceful_timeout": "0s"}"#,
            "--",
            "/test-service",
            "serve",
        ],
    );
    assert_eq!(run.exit_code(), 2);
    let logs = run.container.logs();
    assert!(
        logs.contains("`graceful_timeout` must be more than 0s"),
        "{logs}"
    );
    assert!(!logs.contains("ready pid="), "the command started:\n{logs}");
}

#[test]
fn the_pods_annotations_choose_the_policy_and_a_progress_drain_runs_its_probe_in_the_container() {
    // A downward-API annotations file, as the kubelet writes it.
    let podinfo = tempfile::tempdir().unwrap();
    std::fs::write(
        podinfo.path().join("annotations"),
        "kubernetes.io/config.seen=\"2026-11-29T00:00:00Z\"\n\
         quiesce.policy=\"cinder-volume\"\n\
         quiesce.settings=\"{\\\"inflight_command\\\": [\\\"/test-service\\\", \\\"inflight\\\"], \\\"check_interval\\\": \\\"1s\\\", \\\"exit_timeout\\\": \\\"20s\\\"}\"\n",
    )
    .unwrap();
    let mount = format!("{}:/etc/podinfo:ro", podinfo.path().display());
    let out = tempfile::tempdir().unwrap();
    let out_mount = format!("{}:/out", out.path().display());
    let cache = crate::cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let cache_mount = format!("{}:/cache", cache.display());
    let container = Container::start(
        "run-podinfo",
        &[
            "--network",
            "none",
            "-v",
            &mount,
            "-v",
            &out_mount,
            "-v",
            &cache_mount,
            "-e",
            "QUIESCE_CACHE_DIR=/cache",
            "-e",
            "QUIESCE_POD_INFO=/etc/podinfo",
            "-e",
            "QUIESCE_GRACE_PERIOD=60s",
        ],
        &run_image(),
        &[
            "--report",
            "/out/report.json",
            "--",
            "/test-service",
            "serve",
            "--job-ms",
            "2500",
        ],
    );
    container.wait_for_log("started job", Duration::from_secs(20));
    docker_ok(&["stop", "-t", "60", &container.name]);
    assert_eq!(
        docker_ok(&["wait", &container.name]),
        "0",
        "{}",
        container.logs()
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["policy"]["name"], "cinder-volume", "{report:#}");
    assert_eq!(report["outcome"], "graceful", "{report:#}");
    let probes: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["action"] == "exec")
        .collect();
    assert!(!probes.is_empty(), "{report:#}");
    assert!(
        probes[0]["result"].as_str().unwrap().starts_with("exit 0"),
        "{report:#}"
    );
    let (started, completed) = container.jobs();
    assert_eq!(started, completed, "{}", container.logs());
}

#[test]
fn nginx_under_quiesce_run_finishes_an_in_flight_download_when_docker_stops_it() {
    // nginx is the child; the nginx policy is chosen by the command's name, and the engine's
    // TERM becomes nginx's graceful QUIT.
    let (quiesce, digest) = stripped(crate::quiesce_bin());
    let files = crate::servers::nginx_files();
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (*path, &bytes[..]))
        .collect();
    let mut dirs = crate::servers::NGINX_DIRS.to_vec();
    dirs.extend(["/out", "/cache"]);
    let image = image_from_host_binaries(
        &format!("nginx-run:{digest}"),
        &[
            (&quiesce, "/quiesce"),
            (Path::new("/usr/sbin/nginx"), "/usr/sbin/nginx"),
        ],
        &files,
        &dirs,
        &[
            "/quiesce",
            "run",
            "--grace-period",
            "30s",
            "--report",
            "/out/report.json",
            "--",
            "/usr/sbin/nginx",
            "-g",
            "daemon off;",
        ],
    );
    let port = free_port();
    let config = dir_with(&[("nginx.conf", crate::servers::nginx_config(port).as_bytes())]);
    let out = tempfile::tempdir().unwrap();
    let cache = crate::cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let mounts = [
        format!("{}:/etc/quiesce-nginx:ro", config.path().display()),
        format!("{}:/out", out.path().display()),
        format!("{}:/cache", cache.display()),
    ];
    let container = Container::start(
        "run-nginx",
        &[
            "--network",
            "host",
            "-v",
            &mounts[0],
            "-v",
            &mounts[1],
            "-v",
            &mounts[2],
            "-e",
            "QUIESCE_CACHE_DIR=/cache",
        ],
        &image,
        &["-c", "/etc/quiesce-nginx/nginx.conf"],
    );
    wait_for_port(port, Duration::from_secs(20));
    let download = crate::servers::slow_download(port);
    download.wait_until_in_flight();
    docker_ok(&["stop", "-t", "30", &container.name]);
    let received = download.received();
    assert_eq!(
        received,
        crate::servers::BIG_FILE_BYTES,
        "the in-flight download was cut:\n{}",
        container.logs()
    );
    assert_eq!(
        docker_ok(&["wait", &container.name]),
        "0",
        "{}",
        container.logs()
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["policy"]["name"], "nginx", "{report:#}");
    assert_eq!(report["steps"][0]["detail"], "SIGQUIT", "{report:#}");
    assert_eq!(report["outcome"], "graceful", "{report:#}");
}

#[test]
fn postgres_under_quiesce_run_lets_an_open_session_finish_and_shuts_down_cleanly() {
    assert!(
        Path::new(PG_BIN).join("postgres").exists(),
        "PostgreSQL 15 is not installed: run the tests with scripts/test (it installs postgresql)"
    );
    let (quiesce, _) = stripped(crate::quiesce_bin());
    let binary = std::fs::read(&quiesce).unwrap();
    let postgres = format!("{PG_BIN}/postgres");
    let entrypoint = format!(
        "ENTRYPOINT [\"/quiesce\", \"run\", \"--grace-period\", \"60s\", \"--report\", \"/out/report.json\", \"--\", \"{postgres}\", \"-D\", \"/var/lib/postgresql/data\", \"-c\", \"unix_socket_directories=/tmp\", \"-c\", \"listen_addresses=127.0.0.1\"]"
    );
    let image = quiesce_tests::servers::host_usr_image(
        "postgres-run",
        &[("/quiesce", &binary, 0o755)],
        &[("/var/lib/postgresql", 0o755)],
        &[
            "USER postgres",
            "ENV QUIESCE_CACHE_DIR=/tmp/quiesce-cache",
            &entrypoint,
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (uid, gid) = user_ids("postgres");
    std::os::unix::fs::chown(data.path(), Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(out.path(), Some(uid), Some(gid)).unwrap();
    let data_mount = format!("{}:/var/lib/postgresql", data.path().display());
    let out_mount = format!("{}:/out", out.path().display());
    let [usr_flag, usr_mount] = quiesce_tests::servers::HOST_USR;
    initdb(&image, &data_mount);
    let port = free_port();
    let container = Container::start(
        "run-postgres",
        &[
            "--network",
            "host",
            usr_flag,
            usr_mount,
            "-v",
            &data_mount,
            "-v",
            &out_mount,
        ],
        &image,
        &["-p", &port.to_string()],
    );
    wait_for_postgres(port, &container);
    psql(port, "create table orders (id text)").unwrap();

    // A session in a transaction that needs 5 s more when the stop comes.
    let session = std::thread::spawn(move || {
        psql(
            port,
            "BEGIN; INSERT INTO orders VALUES ('kept'); SELECT pg_sleep(5); COMMIT;",
        )
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while psql(port, "select count(*) from pg_stat_activity where query like '%pg_sleep(5)%' and pid <> pg_backend_pid()").as_deref() != Ok("1") {
        assert!(std::time::Instant::now() < deadline, "the session never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    docker_ok(&["stop", "-t", "60", &container.name]);
    let committed = session.join().unwrap();
    assert!(
        committed.is_ok(),
        "the session was cut: {committed:?}\n{}",
        container.logs()
    );
    assert_eq!(
        docker_ok(&["wait", &container.name]),
        "0",
        "{}",
        container.logs()
    );
    let logs = container.logs();
    assert!(logs.contains("database system is shut down"), "{logs}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["policy"]["name"], "postgres", "{report:#}");
    assert_eq!(report["steps"][0]["detail"], "SIGTERM", "{report:#}");
    assert_eq!(report["outcome"], "graceful", "{report:#}");

    // The next start needs no recovery, and the row is there.
    docker_ok(&["start", &container.name]);
    wait_for_postgres(port, &container);
    let logs = container.logs();
    assert!(
        !logs.contains("not properly shut down") && !logs.contains("automatic recovery"),
        "{logs}"
    );
    assert_eq!(
        psql(port, "select count(*) from orders where id = 'kept'").as_deref(),
        Ok("1")
    );
}

/// `quiesce run --check --policy nginx --grace-period GRACE -- COMMAND`, which must succeed:
/// its stdout and stderr. The look lasts up to 5 s (a busy machine may be slow to reach the
/// command's `exec`); it ends at once for a command that handles every signal.
fn check_nginx(grace: &str, command: &[&str]) -> (String, String) {
    let output = quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .args(["run", "--check", "--check-for", "5s", "--policy", "nginx"])
        .args(["--grace-period", grace])
        .arg("--")
        .args(command)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_grace_period_shorter_than_the_policy_needs_is_warned_about_before_the_command_starts() {
    let check = |grace: &str| check_nginx(grace, &["/bin/true"]).1;
    // nginx's sequence: QUIT, wait up to graceful_timeout (1m), TERM, wait 10s, SIGKILL.
    let short = check("30s");
    assert!(short.contains("[budget-below-policy]"), "{short}");
    assert!(short.contains("graceful_timeout"), "{short}");
    assert!(short.contains("terminationGracePeriodSeconds"), "{short}");
    let enough = check("2m");
    assert!(!enough.contains("budget-below-policy"), "{enough}");
}

/// Issue 27: `quiesce run --check` starts the command and says what it does with each signal
/// of the policy's sequence (nginx: QUIT, then TERM); a command that ignores one is warned
/// about; the command started for the look is gone when the check returns.
#[test]
fn run_check_says_what_the_command_does_with_each_signal_of_its_policy() {
    let check = |command: &[&str]| check_nginx("2m", command);
    // The test service takes its signals on a signal thread (blocked in every thread).
    let (heard, stderr) = check(&[TEST_SERVICE_BIN, "--workers", "0"]);
    assert!(
        heard.contains(
            "the command (`test-service`): SIGQUIT blocked, for a signal thread, SIGTERM blocked, for a signal thread"
        ),
        "{heard}"
    );
    assert!(!stderr.contains("signal-not-handled"), "{stderr}");
    // No handler at all: the command is not PID 1 (quiesce is), so the default actions end it.
    let (heard, stderr) = check(&[TEST_SERVICE_BIN, "sleep", "600127"]);
    assert!(
        heard.contains("SIGQUIT default, SIGTERM default"),
        "{heard}"
    );
    assert!(!stderr.contains("signal-not-handled"), "{stderr}");
    // A shell's `trap '' TERM` is kept across its `exec`: the service ignores TERM.
    let ignoring = format!("trap '' TERM; exec {TEST_SERVICE_BIN} sleep 600127");
    let (heard, stderr) = check(&["/bin/sh", "-c", &ignoring]);
    assert!(
        heard.contains("the command (`test-service`): SIGQUIT default, SIGTERM ignored"),
        "{heard}"
    );
    assert!(
        stderr.contains("the command (`test-service`) ignores SIGTERM")
            && stderr.contains("[signal-not-handled]"),
        "{stderr}"
    );
    // A command this check cannot start (the cache-warming `-- true` in an image without
    // `true`): said, and the policy's check still passes.
    let (checked, stderr) = check(&["/nonexistent/true"]);
    assert!(checked.starts_with("ok: policy nginx"), "{checked}");
    assert!(
        stderr.contains("cannot start `/nonexistent/true` to read its signal handlers"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains("600127"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// Issue 17, class 9: a timed-out `exec` and a timed-out probe are SIGKILLed with their process
/// group when their step ends: a later command finds quiesce, the service and itself only.
#[test]
fn timed_out_commands_leave_nothing_running_beside_the_service() {
    let policies = dir_with(&[(
        "playback.wasm",
        &quiesce_tests::wasm(quiesce_tests::fixtures::PLAYBACK),
    )]);
    let mount = format!("{}:/policies:ro", policies.path().display());
    let sleep = serde_json::json!(["/test-service", "sleep", "600000"]);
    let settings = serde_json::json!({ "steps": [
        { "exec": { "argv": sleep, "timeout_ms": 1000 } },
        { "wait": { "until": { "probe": sleep }, "timeout_ms": 1500 } },
        { "exec": { "argv": ["/test-service", "procs"], "timeout_ms": 30000 } },
        { "signal": "SIGTERM" },
        { "wait": { "until": "exited", "timeout_ms": 30000 } }
    ]});
    let run = Run::start_with(
        "run-leftovers",
        &["-v", &mount],
        &[
            "--policies",
            "/policies",
            "--policy",
            "playback",
            "--settings",
            &settings.to_string(),
            "--grace-period",
            "60s",
            "--report",
            "/out/report.json",
            "--",
            "/test-service",
            "serve",
            "--workers",
            "0",
        ],
    );
    run.container
        .wait_for_log("ready pid=", Duration::from_secs(30));
    docker_ok(&["stop", "-t", "60", &run.container.name]);
    assert_eq!(run.exit_code(), 0, "{}", run.container.logs());
    let report = run.report();
    let steps = &report["steps"];
    assert_eq!(steps[0]["result"], "timed out", "{steps:#}");
    assert_eq!(steps[1]["result"], "timed out", "{steps:#}");
    // quiesce (PID 1), the service, and `procs` itself.
    let census = steps[2]["result"].as_str().unwrap_or_default();
    assert!(census.ends_with("processes 3"), "{steps:#}");
}

#[test]
fn what_the_command_leaves_behind_finishes_within_the_budget_or_is_killed_and_is_reported() {
    // The command leaves a `setsid` worker with 3 s of work, which TERM does not cut, and
    // exits at once: quiesce gives the worker its stop signal and the rest of the budget, and
    // the work is done before quiesce exits with the command's status.
    let kept = Run::start(
        "run-leftover",
        &[
            "--grace-period",
            "20s",
            "--",
            "/test-service",
            "worker",
            "3000",
        ],
    );
    assert_eq!(kept.exit_code(), 0, "{}", kept.container.logs());
    let logs = kept.container.logs();
    assert!(logs.contains("worker done after 3000 ms"), "{logs}");
    assert!(
        logs.contains("left by the command: pid") && logs.contains("work 3000`): exited 0"),
        "{logs}"
    );

    // A worker that outlasts the budget is SIGKILLed by quiesce before the grace period ends.
    let stubborn = Run::start(
        "run-leftover-stubborn",
        &[
            "--grace-period",
            "4s",
            "--",
            "/test-service",
            "worker",
            "600000",
        ],
    );
    // (Its 10 minutes of work would keep the container running: it exits because quiesce
    // killed the worker.)
    assert_eq!(stubborn.exit_code(), 0, "{}", stubborn.container.logs());
    let logs = stubborn.container.logs();
    assert!(
        logs.contains("work 600000`): SIGKILLed by quiesce when the budget ran out"),
        "{logs}"
    );
    assert!(!logs.contains("worker done"), "{logs}");

    // `--leave-descendants`: the old behaviour, the kernel ends the worker with quiesce.
    let left = Run::start(
        "run-leftover-left",
        &[
            "--leave-descendants",
            "--grace-period",
            "20s",
            "--",
            "/test-service",
            "worker",
            "3000",
        ],
    );
    assert_eq!(left.exit_code(), 0);
    let logs = left.container.logs();
    assert!(
        !logs.contains("worker done") && !logs.contains("left by the command"),
        "{logs}"
    );
}
