//! The built-in policies against the real servers Debian packages (issue 18, part 4): HAProxy,
//! Apache httpd, MariaDB, gunicorn, Celery with Redis, an oslo.service program, RabbitMQ,
//! Sidekiq with Redis and PostgreSQL, each in a container of the host's `/usr` (loopback or no
//! network). Every test puts real work in flight and stops the container with
//! `docker stop -t 10` (the reference: what it loses), starts the same container again, puts
//! the same work in flight and stops it with `quiesce stop` and the built-in policy (chosen by
//! image name, or by the `quiesce.policy` label): the work is kept and the server logs its own
//! clean shutdown (and, where it has one, needs no recovery at the next start).
//!
//! Determinism: the work is held by a gate the test opens (a backend that waits, a file the
//! program waits for, a lock a session holds), so "in flight" and "done" never depend on the
//! machine's speed. The reference never opens its gate: what it loses, it loses to its own
//! limits. Under quiesce the gate opens once the server has logged that its graceful shutdown
//! began, and, where `docker stop` loses the work to its 10 s, only 11 s after that line.
//! `cargo test -p quiesce-tests library:: -- --nocapture` prints each server's figures.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_policy_sdk::Signal;
use quiesce_tests::dir_with;
use quiesce_tests::docker::Container;
use quiesce_tests::servers::{
    DOCKER_STOP_SECONDS, GATE_FILE, GATED_BODY_BYTES, GATED_CHUNK_BYTES, GatedBackend, HOST_USR,
    PG_BIN, SharedDir, data_dir_of, docker_stop_reference, drain_time, free_port, host_usr_image,
    initdb, logs_since_start, poll_until, psql, psql_command, run_once, sql_output, start_again,
    wait_for_log_since_start, wait_for_port, wait_for_postgres, wait_until_pid1_handles,
};
use serde_json::Value;

use crate::servers::{Download, redis_command, stop_json};

/// How long a server may take to be ready (RabbitMQ takes 6-8 s on an idle machine).
const READY: Duration = Duration::from_secs(120);

/// How long held work may wait without a byte moving (clients' and servers' own timeouts):
/// the first `quiesce stop` of a run compiles the built-in policies, which takes minutes on a
/// busy 2-core machine, while the work waits.
const HELD: Duration = Duration::from_secs(600);

/// A download through the server on `port`, once its first bytes have arrived.
fn download_in_flight(port: u16) -> Download {
    let download = crate::servers::download(port, HELD);
    download.wait_until_in_flight();
    download
}

/// When the work held under `quiesce stop` is let go.
pub(crate) struct Release<'a> {
    /// The line the server prints when its graceful shutdown begins: the policy's signal
    /// arrived while the work was in flight. `None`: from the start of `quiesce stop`.
    pub after_line: Option<&'a str>,
    /// Hold it 11 s more, past `docker stop`'s 10 s (where the reference lost the work to them).
    pub past_docker_limit: bool,
}

/// What `quiesce stop` did.
pub(crate) struct Kept {
    /// The service's entry of the report.
    pub service: Value,
    /// The server's own drain time (from its line to its exit, by the engine's clock).
    pub drain: Option<Duration>,
}

/// Runs `quiesce stop` on `container` (work in flight), lets the work go (`let_go`) as
/// `release` says, and checks that the stop was graceful: exit status 0, outcome `graceful`,
/// exit code 0.
pub(crate) fn quiesce_stop_keeping(
    container: &Container,
    release: Release,
    let_go: impl FnOnce(),
) -> Kept {
    let name = container.name.clone();
    let stop = std::thread::spawn(move || stop_json(&name));
    if let Some(line) = release.after_line {
        let deadline = Instant::now() + HELD;
        while !logs_since_start(container).contains(line) {
            if stop.is_finished() {
                let (status, report, stderr) = stop.join().unwrap();
                panic!(
                    "quiesce stop ended (status {status:?}) before {} printed {line:?}\n{stderr}\n{report:#}\n{}",
                    container.name,
                    logs_since_start(container)
                );
            }
            assert!(Instant::now() < deadline, "quiesce stop never returned");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if release.past_docker_limit {
        std::thread::sleep(Duration::from_secs(DOCKER_STOP_SECONDS + 1));
    }
    let_go();
    let (status, report, stderr) = stop.join().unwrap();
    let logs = logs_since_start(container);
    let service = report["services"][0].clone();
    assert_eq!(status, Some(0), "{stderr}\n{report:#}\n{logs}");
    assert_eq!(service["outcome"], "graceful", "{report:#}\n{logs}");
    assert_eq!(service["exit_code"], 0, "{report:#}\n{logs}");
    if let (Some(_), true) = (release.after_line, release.past_docker_limit) {
        // Certain: the server printed the line after quiesce began, and its work was held
        // 11 s after that.
        let elapsed = service["elapsed_ms"].as_u64().unwrap();
        assert!(elapsed > DOCKER_STOP_SECONDS * 1000, "{report:#}");
    }
    Kept {
        drain: release
            .after_line
            .and_then(|line| drain_time(container, line)),
        service,
    }
}

/// Checks the policy quiesce chose and its first step (`detail`: the signal or the command).
pub(crate) fn assert_policy(kept: &Kept, policy: &str, first_step: &str) {
    let service = &kept.service;
    assert_eq!(service["policy"]["name"], policy, "{service:#}");
    let detail = service["steps"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(first_step), "{service:#}");
}

/// Prints one server's figures (shown with `--nocapture`).
fn print_figures(server: &str, reference: &str, kept_work: &str, kept: &Kept) {
    let drain = kept
        .drain
        .map_or("-".to_string(), |drain| format!("{} ms", drain.as_millis()));
    eprintln!(
        "figures | {server} | docker stop -t 10: {reference} | quiesce: {kept_work} | quiesce elapsed {} ms | server drain {drain} |",
        kept.service["elapsed_ms"]
    );
}

/// `docker run` arguments: the host's `/usr` and the host network.
fn host_network() -> Vec<&'static str> {
    let [usr_flag, usr_mount] = HOST_USR;
    vec!["--network", "host", usr_flag, usr_mount]
}

/// The same with a directory mounted (`-v MOUNT`).
fn host_network_with(mount: &str) -> Vec<&str> {
    let mut args = host_network();
    args.extend(["-v", mount]);
    args
}

// ---- Proxies: HAProxy and Apache in front of a backend that holds its responses ----

/// A proxy container in front of a [`GatedBackend`], with a download through it in flight at
/// each stop.
pub(crate) struct ProxyTrial {
    /// The proxy (stopped by quiesce at the end).
    pub container: Container,
    /// The container's exit code under `docker stop`.
    pub reference_exit: i64,
    /// Its output during the reference run.
    pub reference_logs: String,
    /// What quiesce did.
    pub kept: Kept,
    _config: tempfile::TempDir,
}

/// Runs a proxy (`image`, its configuration `config(port, backend_port)` mounted at
/// `config_at` as `config_file`; ready when its port is open and its PID 1 handles
/// `signals`), then the reference and the quiesce stop, each with a download through it in
/// flight; under quiesce the backend finishes its response once the proxy has printed
/// `draining`. Checks that `quiesce stop` kept the whole download.
pub(crate) fn proxy_trial(
    name: &str,
    image: &str,
    (config_at, config_file): (&str, &str),
    config: impl Fn(u16, u16) -> String,
    (draining, signals): (&str, &[Signal]),
) -> ProxyTrial {
    let backend = GatedBackend::start();
    let port = free_port();
    let config_dir = dir_with(&[(config_file, config(port, backend.port).as_bytes())]);
    let mount = format!("{}:{config_at}:ro", config_dir.path().display());
    let container = Container::start(name, &host_network_with(&mount), image, &[]);
    wait_for_port(port, READY);
    wait_until_pid1_handles(&container, signals);
    let download = download_in_flight(port);
    let reference_exit = docker_stop_reference(&container);
    let reference_received = download.received();
    let reference_logs = logs_since_start(&container);
    assert!(
        reference_received < GATED_BODY_BYTES,
        "the download finished under docker stop"
    );

    start_again(&container);
    wait_for_port(port, READY);
    wait_until_pid1_handles(&container, signals);
    let download = download_in_flight(port);
    let release = Release {
        after_line: Some(draining),
        past_docker_limit: false,
    };
    let kept = quiesce_stop_keeping(&container, release, || backend.open());
    assert_eq!(
        download.received(),
        GATED_BODY_BYTES,
        "the download was cut\n{}",
        logs_since_start(&container)
    );
    print_figures(
        name,
        &format!("{reference_received} of {GATED_BODY_BYTES} bytes, exit {reference_exit}"),
        &format!("{GATED_BODY_BYTES} of {GATED_BODY_BYTES} bytes"),
        &kept,
    );
    ProxyTrial {
        container,
        reference_exit,
        reference_logs,
        kept,
        _config: config_dir,
    }
}

fn haproxy_config(port: u16, backend: u16) -> String {
    let held = HELD.as_secs();
    format!(
        "global\n  log stdout format raw local0 info\n\
         defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 5s\n  timeout client {held}s\n  timeout server {held}s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:{backend}\n"
    )
}

#[test]
fn haproxy_finishes_a_proxied_download_under_quiesce_and_cuts_it_under_docker_stop() {
    // The official image's form: master-worker (-W), in the foreground.
    let image = host_usr_image(
        "haproxy-test",
        &[],
        &[("/run/haproxy", 0o755)],
        &[r#"ENTRYPOINT ["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]"#],
    );
    let trial = proxy_trial(
        "haproxy",
        &image,
        ("/etc/haproxy", "haproxy.cfg"),
        haproxy_config,
        ("Proxy fe stopped", &[Signal::TERM, Signal::USR1]),
    );
    // docker stop: TERM is HAProxy's hard stop. The container still exits 0.
    assert!(
        trial
            .reference_logs
            .contains("exited with code 143 (Terminated)"),
        "{}",
        trial.reference_logs
    );
    assert_eq!(trial.reference_exit, 0);
    // quiesce: the haproxy policy (image name) sends USR1, the soft-stop.
    assert_policy(&trial.kept, "haproxy", "SIGUSR1");
    let logs = logs_since_start(&trial.container);
    assert!(logs.contains("exited with code 0 (Exit)"), "{logs}");
    assert!(
        logs.contains("All workers exited. Exiting... (0)"),
        "{logs}"
    );
}

/// Apache's configuration (mounted as /etc/apache2/apache2.conf, apache2's default file):
/// mpm_event, a reverse proxy to the backend, the error log on stderr.
pub(crate) fn apache_config(port: u16, backend: u16) -> String {
    let module = |name: &str, file: &str| {
        format!("LoadModule {name}_module /usr/lib/apache2/modules/mod_{file}.so\n")
    };
    [
        "ServerName localhost\nDefaultRuntimeDir /run/apache2\nPidFile /run/apache2/apache2.pid\n"
            .to_string(),
        module("mpm_event", "mpm_event"),
        module("authz_core", "authz_core"),
        module("proxy", "proxy"),
        module("proxy_http", "proxy_http"),
        format!(
            "User www-data\nGroup www-data\nListen 127.0.0.1:{port}\nErrorLog /proc/self/fd/2\nLogLevel info\n\
             Timeout {}\n\
             # 0 (the default): a graceful stop waits for every request in flight.\n\
             GracefulShutdownTimeout 0\nProxyPass / http://127.0.0.1:{backend}/\n",
            HELD.as_secs()
        ),
    ]
    .concat()
}

/// An image for Apache with `config` (`ENTRYPOINT` or `CMD`); its configuration is mounted.
pub(crate) fn apache_image(name: &str, config: &[&str]) -> String {
    host_usr_image(
        name,
        &[],
        &[
            ("/run/apache2", 0o755),
            ("/var/run/apache2", 0o755),
            ("/var/lock/apache2", 0o755),
            ("/var/log/apache2", 0o755),
        ],
        config,
    )
}

/// The draining line of Apache's graceful stop (WINCH).
pub(crate) const APACHE_GRACEFUL: &str = "AH00492: caught SIGWINCH, shutting down gracefully";

#[test]
fn apache_as_pid_1_finishes_a_proxied_download_under_quiesce_and_cuts_it_under_docker_stop() {
    // apache2 itself is PID 1 (`apache2 -D FOREGROUND`, as the official httpd image runs
    // it). The apache2ctl form: apache2ctl_as_pid_1_is_warned_about_and_reached_with_signal_target_child.
    let image = apache_image(
        "apache2-test",
        &[r#"ENTRYPOINT ["/usr/sbin/apache2", "-D", "FOREGROUND"]"#],
    );
    let trial = proxy_trial(
        "apache2",
        &image,
        ("/etc/apache2", "apache2.conf"),
        apache_config,
        (APACHE_GRACEFUL, &[Signal::TERM, Signal::WINCH]),
    );
    // docker stop cut the download (proxy_trial checks it). How the container ends depends on
    // the backend: TERM stops Apache at once, but a child stuck reading from a silent backend
    // is still being reclaimed by the parent (TERM, then KILL) when docker's SIGKILL comes.
    // quiesce: the httpd policy (image name apache*) sends WINCH, the graceful stop.
    assert_policy(&trial.kept, "httpd", "SIGWINCH");
    let logs = logs_since_start(&trial.container);
    assert!(!logs.contains("AH00491"), "{logs}");
}

// ---- gunicorn: a streamed response held by the WSGI app ----

/// A Python line that waits until the gate file exists in `dir`.
fn python_wait_for_gate(dir: &str, indent: &str) -> String {
    format!(
        "{indent}while not os.path.exists(os.path.join({dir}, {GATE_FILE:?})):\n{indent}    time.sleep(0.05)\n"
    )
}

#[test]
fn gunicorn_finishes_a_streamed_response_under_quiesce_and_is_killed_under_docker_stop() {
    let chunks = GATED_BODY_BYTES / GATED_CHUNK_BYTES;
    let app = format!(
        "\"\"\"A WSGI app whose response is held: one chunk, then the rest once the gate opens.\"\"\"\n\
         import os, time\n\
         CHUNK = b\"q\" * {GATED_CHUNK_BYTES}\n\
         def app(environ, start_response):\n\
         \x20   start_response(\"200 OK\", [(\"Content-Length\", str({chunks} * len(CHUNK)))])\n\
         \x20   def body():\n\
         \x20       yield CHUNK\n{}\
         \x20       for _ in range({chunks} - 1):\n\
         \x20           yield CHUNK\n\
         \x20   return body()\n",
        python_wait_for_gate("\"/shared\"", "        ")
    );
    // --timeout 600 (HELD): a sync worker busy with one request that long is not restarted.
    let image = host_usr_image(
        "gunicorn-test",
        &[("/app/app.py", app.as_bytes(), 0o644)],
        &[],
        &[
            r#"ENTRYPOINT ["/usr/bin/python3", "-m", "gunicorn", "--chdir", "/app", "--workers", "2", "--graceful-timeout", "30", "--timeout", "600", "--access-logfile", "-"]"#,
        ],
    );
    let shared = SharedDir::new(&[]);
    let mount = shared.mount("/shared");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let container = Container::start(
        "gunicorn",
        &host_network_with(&mount),
        &image,
        &["--bind", &bind, "app:app"],
    );
    wait_for_port(port, READY);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    let download = download_in_flight(port);
    // docker stop: TERM is gunicorn's graceful stop, but its workers get 30 s and docker 10.
    let reference_exit = docker_stop_reference(&container);
    let reference_received = download.received();
    assert_eq!(reference_exit, 137);
    assert!(reference_received < GATED_BODY_BYTES);

    start_again(&container);
    wait_for_port(port, READY);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    let download = download_in_flight(port);
    let release = Release {
        after_line: Some("Handling signal: term"),
        past_docker_limit: true,
    };
    let kept = quiesce_stop_keeping(&container, release, || shared.open_gate());
    assert_eq!(download.received(), GATED_BODY_BYTES);
    assert_policy(&kept, "gunicorn", "SIGTERM");
    let logs = logs_since_start(&container);
    assert!(logs.contains("Shutting down: Master"), "{logs}");
    print_figures(
        "gunicorn",
        &format!("{reference_received} of {GATED_BODY_BYTES} bytes, exit {reference_exit}"),
        &format!("{GATED_BODY_BYTES} of {GATED_BODY_BYTES} bytes"),
        &kept,
    );
}

// ---- Workers with a broker: Celery and Sidekiq on Redis ----

/// A worker (Celery, Sidekiq) with a Redis broker, and its app in a shared directory (mounted
/// at /app) whose job, named by its argument, leaves `started-NAME`, waits for the gate, then
/// leaves `done-NAME`.
struct Worker<'a> {
    name: &'a str,
    container: Container,
    job: Job<'a>,
    shared: SharedDir,
    /// `VARIABLE=URL` of the broker.
    broker: String,
    redis_port: u16,
    _redis: Container,
}

/// What differs between the workers.
struct Job<'a> {
    /// The app: file name and contents. Run on the host (`CLIENT FILE NAME`), it enqueues the
    /// job NAME.
    app: (&'a str, String),
    /// The program that runs the app on the host.
    client: &'a str,
    /// The variable giving the broker's URL (to the worker and the client).
    variable: &'a str,
    /// The broker's list of waiting jobs.
    queue: &'a str,
    /// The line the worker prints when ready (`None`: the job starting is the sign).
    ready: Option<&'a str>,
    /// Signals the worker's PID 1 must handle before a stop.
    signals: &'a [Signal],
}

impl<'a> Worker<'a> {
    fn start(name: &'a str, image: &str, job: Job<'a>) -> Worker<'a> {
        let (redis, redis_port) = quiesce_tests::servers::redis_broker(&format!("{name}-redis"));
        let shared = SharedDir::new(&[(job.app.0, job.app.1.as_bytes())]);
        let mount = shared.mount("/app");
        let broker = format!("{}=redis://127.0.0.1:{redis_port}/0", job.variable);
        let mut args = host_network_with(&mount);
        args.extend(["-e", &broker]);
        let container = Container::start(name, &args, image, &[]);
        Worker {
            name,
            container,
            job,
            shared,
            broker,
            redis_port,
            _redis: redis,
        }
    }

    /// Enqueues the job `name` and waits until the worker runs it and can be stopped.
    fn job_in_flight(&self, name: &str) {
        if let Some(line) = self.job.ready {
            wait_for_log_since_start(&self.container, line, READY);
        }
        let (variable, url) = self.broker.split_once('=').unwrap();
        let status = Command::new(self.job.client)
            .args([self.job.app.0, name])
            .current_dir(self.shared.path())
            .env(variable, url)
            .status()
            .expect("run the job's client");
        assert!(status.success(), "could not enqueue {name}");
        self.shared
            .wait_for(&format!("started-{name}"), &self.container, READY);
        wait_until_pid1_handles(&self.container, self.job.signals);
    }

    /// The reference: `docker stop` with the job in flight. Checks that the job is lost (not
    /// done, not back in the queue); returns the exit code.
    fn reference(&self) -> i64 {
        self.job_in_flight("docker-stop");
        let exit = docker_stop_reference(&self.container);
        let logs = logs_since_start(&self.container);
        assert!(!self.shared.has("done-docker-stop"), "{logs}");
        let waiting = redis_command(self.redis_port, &["LLEN", self.job.queue]);
        assert_eq!(waiting.trim(), ":0", "the job went back to the queue");
        exit
    }

    /// Starts the worker again and stops it with `quiesce stop`, the job in flight; checks
    /// that the job was done.
    fn kept(&self, release: Release) -> Kept {
        start_again(&self.container);
        self.job_in_flight("quiesce");
        let kept = quiesce_stop_keeping(&self.container, release, || self.shared.open_gate());
        let logs = logs_since_start(&self.container);
        assert!(self.shared.has("done-quiesce"), "{logs}");
        kept
    }

    /// The comparison: the reference loses the job to SIGKILL (exit 137); `quiesce stop`
    /// (the job let go as `release` says) keeps it, with `policy` and its `first_step`, and
    /// the worker prints `clean` on its way out. Prints the figures.
    fn compare(&self, release: Release, (policy, first_step): (&str, &str), clean: &str) -> Kept {
        let reference_exit = self.reference();
        assert_eq!(reference_exit, 137);
        let kept = self.kept(release);
        assert_policy(&kept, policy, first_step);
        let logs = logs_since_start(&self.container);
        assert!(logs.contains(clean), "{logs}");
        print_figures(
            self.name,
            &format!("job lost (not done, not queued), exit {reference_exit}"),
            "job done",
            &kept,
        );
        kept
    }
}

#[test]
fn celery_finishes_a_running_task_under_quiesce_and_loses_it_under_docker_stop() {
    let tasks = format!(
        "\"\"\"A Celery app: one task, held until the test opens its gate.\"\"\"\n\
         import os, sys, time\n\
         from celery import Celery\n\
         app = Celery(\"tasks\", broker=os.environ[\"BROKER_URL\"])\n\
         app.conf.worker_hijack_root_logger = False\n\
         HERE = os.path.dirname(os.path.abspath(__file__))\n\
         @app.task\n\
         def held(name):\n\
         \x20   open(os.path.join(HERE, \"started-\" + name), \"w\").close()\n{}\
         \x20   open(os.path.join(HERE, \"done-\" + name), \"w\").close()\n\
         if __name__ == \"__main__\":\n\
         \x20   held.delay(sys.argv[1])\n",
        python_wait_for_gate("HERE", "    ")
    );
    let image = host_usr_image(
        "celery-test",
        &[],
        &[("/app", 0o755)],
        &[
            "WORKDIR /app",
            r#"ENTRYPOINT ["/usr/bin/python3", "-m", "celery", "-A", "tasks", "worker", "--loglevel=INFO", "--concurrency=1", "--without-mingle", "--without-gossip"]"#,
        ],
    );
    let job = Job {
        app: ("tasks.py", tasks),
        client: "/usr/bin/python3",
        variable: "BROKER_URL",
        queue: "celery",
        ready: Some("ready."),
        signals: &[Signal::TERM],
    };
    // docker stop: TERM is Celery's warm shutdown, but the task needs more than 10 s.
    Worker::start("celery", &image, job).compare(
        Release {
            after_line: Some("Warm shutdown"),
            past_docker_limit: true,
        },
        ("celery", "SIGTERM"),
        "succeeded in",
    );
}

#[test]
fn sidekiq_finishes_a_running_job_under_quiesce_and_loses_it_under_docker_stop() {
    let app = format!(
        "# A Sidekiq app: one job, held until the test opens its gate.\n\
         require \"sidekiq\"\n\
         HERE = __dir__\n\
         Sidekiq.configure_server {{ |config| config.redis = {{ url: ENV.fetch(\"REDIS_URL\") }} }}\n\
         Sidekiq.configure_client {{ |config| config.redis = {{ url: ENV.fetch(\"REDIS_URL\") }} }}\n\
         class HeldJob\n\
         \x20 include Sidekiq::Worker\n\
         \x20 sidekiq_options retry: false\n\
         \x20 def perform(name)\n\
         \x20   File.write(File.join(HERE, \"started-#{{name}}\"), \"\")\n\
         \x20   sleep 0.05 until File.exist?(File.join(HERE, {GATE_FILE:?}))\n\
         \x20   File.write(File.join(HERE, \"done-#{{name}}\"), \"\")\n\
         \x20 end\n\
         end\n\
         HeldJob.perform_async(ARGV[0]) if $PROGRAM_NAME == __FILE__\n"
    );
    let image = host_usr_image(
        "sidekiq-test",
        &[],
        &[("/app", 0o755)],
        &[
            "WORKDIR /app",
            r#"ENTRYPOINT ["/usr/bin/sidekiq", "-r", "/app/worker.rb", "-c", "1"]"#,
        ],
    );
    let job = Job {
        app: ("worker.rb", app),
        client: "/usr/bin/ruby",
        variable: "REDIS_URL",
        queue: "queue:default",
        // Sidekiq prints nothing when it is ready (no TTY): the job starting is the sign.
        ready: None,
        signals: &[Signal::TERM, Signal::TSTP],
    };
    // docker stop: TERM, and Sidekiq gives the job its -t 25 s; docker gives it 10. The
    // policy: TSTP (quiet), 10 s, TERM; the job is let go after TERM.
    let kept = Worker::start("sidekiq", &image, job).compare(
        Release {
            after_line: Some("Pausing to allow workers to finish"),
            past_docker_limit: false,
        },
        ("sidekiq", "SIGTSTP"),
        "Bye!",
    );
    // Certain: the line comes after TERM, which follows the policy's 10 s quiet period.
    assert!(kept.service["elapsed_ms"].as_u64().unwrap() > DOCKER_STOP_SECONDS * 1000);
}

// ---- An oslo.service program ----

/// A `ServiceLauncher` program: its service runs four operations that wait for the gate;
/// its `stop()` waits for them.
fn oslo_program() -> String {
    format!(
        "\"\"\"An oslo.service ServiceLauncher program whose stop() waits for in-flight operations.\"\"\"\n\
         import eventlet\n\
         eventlet.monkey_patch()\n\
         import logging, os, sys\n\
         from oslo_config import cfg\n\
         from oslo_service import service\n\
         logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=\"%(asctime)s %(name)s %(levelname)s %(message)s\")\n\
         LOG = logging.getLogger(\"svc\")\n\
         class Svc(service.Service):\n\
         \x20   def start(self):\n\
         \x20       super().start()\n\
         \x20       self.inflight = 4\n\
         \x20       for i in range(4):\n\
         \x20           self.tg.add_thread(self.operation, i)\n\
         \x20       LOG.info(\"started 4 operations; ready\")\n\
         \x20   def operation(self, i):\n\
         \x20       while not os.path.exists(\"/shared/{GATE_FILE}\"):\n\
         \x20           eventlet.sleep(0.05)\n\
         \x20       self.inflight -= 1\n\
         \x20       with open(\"/shared/finished\", \"a\") as finished:\n\
         \x20           finished.write(\"%d\\n\" % i)\n\
         \x20       LOG.info(\"operation %d finished; in flight: %d\", i, self.inflight)\n\
         \x20   def stop(self, graceful=False):\n\
         \x20       LOG.info(\"stop(): waiting for %d in-flight operations\", self.inflight)\n\
         \x20       while self.inflight:\n\
         \x20           eventlet.sleep(0.05)\n\
         \x20       super().stop(graceful=True)\n\
         CONF = cfg.CONF\n\
         CONF([], project=\"quiesce-test\")\n\
         launcher = service.ServiceLauncher(CONF)\n\
         launcher.launch_service(Svc())\n\
         status = launcher.wait()\n\
         LOG.info(\"launcher.wait() returned %r; exiting\", status)\n\
         sys.exit(status or 0)\n"
    )
}

#[test]
fn oslo_service_program_finishes_its_operations_under_quiesce_and_loses_them_under_docker_stop() {
    // The oslo policy sends one TERM and waits (version 2 has no INT rung: a second signal
    // either kills oslo.service at once or, as PID 1, is dropped).
    let image = host_usr_image(
        "oslo-service-test",
        &[("/app/svc.py", oslo_program().as_bytes(), 0o644)],
        &[],
        &[r#"ENTRYPOINT ["/usr/bin/python3", "/app/svc.py"]"#],
    );
    let shared = SharedDir::new(&[]);
    let mount = shared.mount("/shared");
    // The launcher installs its signal handlers only after the service has started
    // (wait_until_pid1_handles below).
    let [usr_flag, usr_mount] = HOST_USR;
    let container = Container::start(
        "oslo",
        &[
            "--network",
            "none",
            usr_flag,
            usr_mount,
            "-v",
            &mount,
            "--label",
            "quiesce.policy=oslo",
        ],
        &image,
        &[],
    );
    wait_for_log_since_start(&container, "started 4 operations; ready", READY);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    // docker stop: TERM starts the graceful shutdown, SIGKILL 10 s later ends it.
    let reference_exit = docker_stop_reference(&container);
    assert_eq!(reference_exit, 137);
    assert!(!shared.has("finished"), "{}", container.logs());

    start_again(&container);
    wait_for_log_since_start(&container, "started 4 operations; ready", READY);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    let release = Release {
        after_line: Some("stop(): waiting for 4 in-flight operations"),
        past_docker_limit: true,
    };
    let kept = quiesce_stop_keeping(&container, release, || shared.open_gate());
    let finished = std::fs::read_to_string(shared.path().join("finished")).unwrap_or_default();
    assert_eq!(finished.lines().count(), 4, "{}", container.logs());
    assert_policy(&kept, "oslo", "SIGTERM");
    let logs = logs_since_start(&container);
    assert!(logs.contains("launcher.wait() returned None"), "{logs}");
    print_figures(
        "oslo.service",
        &format!("0 of 4 operations finished, exit {reference_exit}"),
        "4 of 4 operations finished",
        &kept,
    );
}

// ---- RabbitMQ: unacknowledged persistent messages ----

/// An AMQP client run in the RabbitMQ container (`docker exec`): `publish QUEUE` (100
/// persistent, confirmed messages), `count QUEUE`, `consume QUEUE` (acks 3, then holds 10
/// unacknowledged until its connection ends).
const AMQP_TOOL: &str = r#""""AMQP client for the quiesce tests, run in the RabbitMQ container."""
import socket, sys
import amqp

def connect():
    connection = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
    connection.connect()
    return connection

command, queue = sys.argv[1], sys.argv[2]
connection = connect()
channel = connection.channel()
if command == "publish":
    channel.confirm_select()
    channel.queue_declare(queue, durable=True, auto_delete=False)
    for i in range(100):
        channel.basic_publish(amqp.Message(str(i), delivery_mode=2), routing_key=queue, confirm_timeout=60)
    connection.close()
elif command == "count":
    print(channel.queue_declare(queue, passive=True).message_count)
    connection.close()
elif command == "consume":
    channel.basic_qos(0, 10, False)
    received, acked, holding = [], 0, False
    channel.basic_consume(queue, callback=received.append)
    try:
        while True:
            try:
                connection.drain_events(timeout=1)
            except socket.timeout:
                pass
            while received and acked < 3:
                channel.basic_ack(received.pop(0).delivery_tag)
                acked += 1
            if not holding and acked == 3 and len(received) == 10:
                print("holding 10 unacknowledged", flush=True)
                holding = True
    except Exception as error:
        print("connection ended: %r" % (error,), flush=True)
"#;

/// The consumer of [`AMQP_TOOL`], holding messages unacknowledged.
struct Consumer {
    child: Child,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Consumer {
    /// What it printed when its connection ended (it ends with the connection).
    fn ending(mut self) -> String {
        let mut ending = String::new();
        std::io::Read::read_to_string(&mut self.output, &mut ending).unwrap();
        self.child.wait().unwrap();
        ending
    }
}

/// A RabbitMQ container (`--network none`; its clients run in it).
struct Rabbit {
    container: Container,
    _data: tempfile::TempDir,
}

impl Rabbit {
    fn start() -> Rabbit {
        let image = host_usr_image(
            "rabbitmq-test",
            &[("/app/amqp_tool.py", AMQP_TOOL.as_bytes(), 0o644)],
            &[("/var/log/rabbitmq", 0o1777)],
            &[
                "USER rabbitmq",
                "WORKDIR /var/lib/rabbitmq",
                "ENV HOME=/var/lib/rabbitmq",
                "ENV RABBITMQ_NODENAME=rabbit@localhost",
                "ENV RABBITMQ_LOGS=-",
                "ENV ERL_EPMD_ADDRESS=127.0.0.1",
                "ENV RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
                // Not /usr/sbin/rabbitmq-server: that wrapper redirects the output to files.
                r#"ENTRYPOINT ["/usr/lib/rabbitmq/bin/rabbitmq-server"]"#,
            ],
        );
        let data = data_dir_of("rabbitmq");
        let mount = format!("{}:/var/lib/rabbitmq", data.path().display());
        let [usr_flag, usr_mount] = HOST_USR;
        let container = Container::start(
            "rabbitmq",
            &["--network", "none", usr_flag, usr_mount, "-v", &mount],
            &image,
            &[],
        );
        let rabbit = Rabbit {
            container,
            _data: data,
        };
        rabbit.wait_until_ready();
        rabbit
    }

    fn wait_until_ready(&self) {
        wait_for_log_since_start(&self.container, "Server startup complete", READY);
        wait_until_pid1_handles(&self.container, &[Signal::TERM]);
    }

    fn tool(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .args([
                "exec",
                &self.container.name,
                "/usr/bin/python3",
                "/app/amqp_tool.py",
            ])
            .args(args);
        command
    }

    /// Publishes 100 messages to `queue` and starts a consumer; returns it once it holds 10
    /// of them unacknowledged (3 acknowledged).
    fn messages_in_flight(&self, queue: &str) -> Consumer {
        let published = self.tool(&["publish", queue]).status().unwrap();
        assert!(published.success(), "publishing failed");
        let mut child = self
            .tool(&["consume", queue])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the consumer");
        let mut output = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "holding 10 unacknowledged");
        Consumer { child, output }
    }

    /// Starts the node again and counts the messages in `queue`.
    fn count_after_restart(&self, queue: &str) -> String {
        start_again(&self.container);
        self.wait_until_ready();
        let output = self.tool(&["count", queue]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// Set when RabbitMQ's message store was not closed cleanly.
const RABBITMQ_UNCLEAN: &str = "rebuilding indices from scratch";

#[test]
fn rabbitmq_keeps_unacknowledged_messages_and_shuts_down_cleanly_under_quiesce() {
    let rabbit = Rabbit::start();
    let consumer = rabbit.messages_in_flight("work-docker-stop");
    // docker stop: TERM is a clean stop for RabbitMQ, well within 10 s: nothing lost.
    let reference_exit = docker_stop_reference(&rabbit.container);
    consumer.ending();
    assert_eq!(reference_exit, 0);
    assert_eq!(rabbit.count_after_restart("work-docker-stop"), "97");
    let logs = logs_since_start(&rabbit.container);
    assert!(!logs.contains(RABBITMQ_UNCLEAN), "{logs}");

    let consumer = rabbit.messages_in_flight("work-quiesce");
    let release = Release {
        after_line: None,
        past_docker_limit: false,
    };
    let kept = quiesce_stop_keeping(&rabbit.container, release, || ());
    let ended = consumer.ending();
    // The policy's first step, `rabbitmq-upgrade drain`, closed the clients' connections.
    assert!(ended.contains("maintenance mode"), "{ended}");
    assert_policy(&kept, "rabbitmq", "rabbitmq-upgrade drain");
    // The server's own drain: from the maintenance mode to its exit.
    let kept = Kept {
        drain: drain_time(
            &rabbit.container,
            "This node is being put into maintenance (drain) mode",
        ),
        ..kept
    };
    let logs = logs_since_start(&rabbit.container);
    assert!(
        logs.contains("Node is ready to be shut down for maintenance or upgrade"),
        "{logs}"
    );
    assert!(logs.contains("SIGTERM received - shutting down"), "{logs}");
    // The node serves clients again after the restart; every unacknowledged message is back.
    assert_eq!(rabbit.count_after_restart("work-quiesce"), "97");
    let logs = logs_since_start(&rabbit.container);
    assert!(!logs.contains(RABBITMQ_UNCLEAN), "{logs}");
    print_figures(
        "rabbitmq",
        &format!("97 of 97 messages kept, clean, exit {reference_exit}"),
        "97 of 97 messages kept, clean",
        &kept,
    );
}

// ---- Databases: an open transaction waits for a lock a test session holds ----

/// A client session holding a lock (the gate of an open transaction): a client process whose
/// standard input stays open; closing it ends the session and frees the lock.
pub(crate) struct LockHolder {
    client: Child,
}

impl LockHolder {
    /// Runs the SQL client `command` and sends it `sql`.
    pub fn start(mut command: Command, sql: &str) -> LockHolder {
        let mut client = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
        let stdin = client.stdin.as_mut().unwrap();
        writeln!(stdin, "{sql}").unwrap();
        stdin.flush().unwrap();
        LockHolder { client }
    }

    /// Ends the session.
    pub fn release(mut self) {
        drop(self.client.stdin.take());
        let _ = self.client.wait();
    }
}

/// Polls `query` (through `run`) until it answers `expected`.
fn wait_until(run: impl Fn(&str) -> Result<String, String>, query: &str, expected: &str) {
    poll_until(
        READY,
        || run(query).as_deref() == Ok(expected),
        || format!("{query} never gave {expected}: {:?}", run(query)),
    );
}

fn postgres_lock_holder(port: u16) -> LockHolder {
    let holder = LockHolder::start(psql_command(port), "select pg_advisory_lock(42);");
    let granted = "select count(*) from pg_locks where locktype = 'advisory' and granted";
    wait_until(|sql| psql(port, sql), granted, "1");
    holder
}

/// A session inserting the row `name` in a transaction that waits for the lock.
fn postgres_transaction(port: u16, name: &str) -> std::thread::JoinHandle<Result<String, String>> {
    let sql = format!(
        "BEGIN; INSERT INTO orders VALUES ('{name}'); SELECT pg_advisory_xact_lock(42); COMMIT;"
    );
    let session = std::thread::spawn(move || psql(port, &sql));
    let waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted";
    wait_until(|sql| psql(port, sql), waiting, "1");
    session
}

/// Lines PostgreSQL prints when it starts after an unclean stop.
const POSTGRES_RECOVERY: [&str; 2] = ["not properly shut down", "automatic recovery"];

#[test]
fn postgres_commits_an_open_transaction_under_quiesce_stop_and_needs_recovery_after_docker_stop() {
    let image = host_usr_image(
        "postgres-test",
        &[],
        &[("/var/lib/postgresql", 0o755)],
        &[
            "USER postgres",
            &format!(
                r#"ENTRYPOINT ["{PG_BIN}/postgres", "-D", "/var/lib/postgresql/data", "-c", "unix_socket_directories=/tmp", "-c", "listen_addresses=127.0.0.1"]"#
            ),
        ],
    );
    let data = data_dir_of("postgres");
    let data_mount = format!("{}:/var/lib/postgresql", data.path().display());
    initdb(&image, &data_mount);
    let port = free_port();
    let container = Container::start(
        "postgres",
        &host_network_with(&data_mount),
        &image,
        &["-p", &port.to_string()],
    );
    wait_for_postgres(port, &container);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    psql(port, "create table orders (id text)").unwrap();

    let holder = postgres_lock_holder(port);
    let session = postgres_transaction(port, "docker-stop");
    // docker stop: TERM is the smart shutdown (it waits for sessions); SIGKILL at 10 s.
    let reference_exit = docker_stop_reference(&container);
    holder.release();
    assert!(session.join().unwrap().is_err(), "the session survived");
    assert_eq!(reference_exit, 137);
    start_again(&container);
    wait_for_postgres(port, &container);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    let logs = logs_since_start(&container);
    assert!(
        POSTGRES_RECOVERY.iter().all(|line| logs.contains(line)),
        "{logs}"
    );

    let holder = postgres_lock_holder(port);
    let session = postgres_transaction(port, "quiesce");
    let release = Release {
        after_line: Some("received smart shutdown request"),
        past_docker_limit: true,
    };
    let kept = quiesce_stop_keeping(&container, release, || holder.release());
    let committed = session.join().unwrap();
    assert!(committed.is_ok(), "the session was cut: {committed:?}");
    assert_policy(&kept, "postgres", "SIGTERM");
    let logs = logs_since_start(&container);
    assert!(logs.contains("database system is shut down"), "{logs}");

    // The next start needs no recovery; only the row of the quiesce run is there.
    start_again(&container);
    wait_for_postgres(port, &container);
    wait_until_pid1_handles(&container, &[Signal::TERM]);
    let logs = logs_since_start(&container);
    assert!(
        !POSTGRES_RECOVERY.iter().any(|line| logs.contains(line)),
        "{logs}"
    );
    assert_eq!(
        psql(port, "select string_agg(id, ',') from orders").as_deref(),
        Ok("quiesce")
    );
    print_figures(
        "postgres",
        &format!("transaction lost, crash recovery at the next start, exit {reference_exit}"),
        "transaction committed, no recovery",
        &kept,
    );
}

/// A MariaDB server (the `mysql` policy, by image name) with a database `t` and a table
/// `t.orders`.
pub(crate) struct Mariadb {
    /// Its container.
    pub container: Container,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _data: tempfile::TempDir,
}

/// Printed by InnoDB when it starts after an unclean stop.
const MARIADB_RECOVERY: &str = "crash recovery";

impl Mariadb {
    /// Installs the system tables in a fresh data directory and starts the server in
    /// container `name` (unique per test), labelled with `labels` (`KEY=VALUE`).
    pub fn start(name: &str, labels: &[&str]) -> Mariadb {
        let image = host_usr_image(
            "mariadb-test",
            &[],
            &[("/var/lib/mysql", 0o755)],
            &[
                r#"ENTRYPOINT ["/usr/sbin/mariadbd", "--no-defaults", "--user=mysql", "--datadir=/var/lib/mysql", "--socket=/tmp/mysqld.sock", "--pid-file=/tmp/mysqld.pid", "--bind-address=127.0.0.1"]"#,
            ],
        );
        let data = data_dir_of("mysql");
        let data_mount = format!("{}:/var/lib/mysql", data.path().display());
        run_once(
            &image,
            &data_mount,
            "/usr/bin/mariadb-install-db",
            &[
                "--no-defaults",
                "--user=mysql",
                "--datadir=/var/lib/mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let port = free_port();
        let mut args = host_network_with(&data_mount);
        for label in labels {
            args.extend(["--label", label]);
        }
        let container = Container::start(name, &args, &image, &[&format!("--port={port}")]);
        let server = Mariadb {
            container,
            port,
            _data: data,
        };
        server.wait_until_ready();
        server
            .sql("create database t; create table t.orders (id text) engine=innodb")
            .unwrap();
        server
    }

    /// The host's `mariadb` client for this server.
    fn client(&self) -> Command {
        let mut command = Command::new("mariadb");
        command
            .args([
                "--protocol=tcp",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-N",
                "-B",
            ])
            .arg(format!("--port={}", self.port));
        command
    }

    /// Runs `sql` with the host's `mariadb` client; its output, or the error.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        let mut client = self.client();
        client.args(["-e", sql]);
        sql_output(client)
    }

    /// Waits until it answers.
    pub fn wait_until_ready(&self) {
        wait_until(|sql| self.sql(sql), "select 1", "1");
        wait_until_pid1_handles(&self.container, &[Signal::TERM]);
    }

    /// A session holding the user lock `gate`.
    pub fn lock_holder(&self) -> LockHolder {
        let holder = LockHolder::start(self.client(), "SELECT GET_LOCK('gate', 0);");
        wait_until(
            |sql| self.sql(sql),
            "select is_used_lock('gate') is not null",
            "1",
        );
        holder
    }

    /// A session inserting the row `name` in a transaction that waits for the lock `gate`.
    pub fn transaction(&self, name: &str) -> std::thread::JoinHandle<Result<String, String>> {
        let sql = format!(
            "BEGIN; INSERT INTO t.orders VALUES ('{name}'); SELECT GET_LOCK('gate', 3600); COMMIT;"
        );
        let mut client = self.client();
        client.args(["-e", &sql]);
        let session = std::thread::spawn(move || sql_output(client));
        let waiting =
            "select count(*) from information_schema.processlist where state = 'User lock'";
        wait_until(|sql| self.sql(sql), waiting, "1");
        session
    }

    /// Checks that the server stopped cleanly, then that it starts again without recovery.
    pub fn assert_clean_stop_and_start(&self) {
        let logs = logs_since_start(&self.container);
        assert!(logs.contains("mariadbd: Shutdown complete"), "{logs}");
        start_again(&self.container);
        self.wait_until_ready();
        let logs = logs_since_start(&self.container);
        assert!(!logs.contains(MARIADB_RECOVERY), "{logs}");
    }
}

#[test]
fn mariadb_shuts_down_cleanly_under_quiesce_and_docker_stop_with_a_transaction_open() {
    // MariaDB has no "wait for sessions" shutdown: TERM (docker stop's, and the mysql
    // policy's first step) kills the sessions, rolls their transactions back and shuts down
    // cleanly. Keeping the transaction needs a drain before TERM (the policy's
    // inflight_command): mariadb_commits_an_open_transaction_when_the_policy_waits_for_it.
    let server = Mariadb::start("mariadb", &[]);
    let holder = server.lock_holder();
    let session = server.transaction("docker-stop");
    let reference_exit = docker_stop_reference(&server.container);
    holder.release();
    let lost = session.join().unwrap();
    assert!(lost.is_err(), "the transaction survived docker stop");
    assert_eq!(reference_exit, 0);
    server.assert_clean_stop_and_start();

    let holder = server.lock_holder();
    let session = server.transaction("quiesce");
    let release = Release {
        after_line: Some("Normal shutdown"),
        past_docker_limit: false,
    };
    let kept = quiesce_stop_keeping(&server.container, release, || holder.release());
    let outcome = session.join().unwrap();
    assert_policy(&kept, "mysql", "SIGTERM");
    server.assert_clean_stop_and_start();
    print_figures(
        "mariadb",
        &format!("transaction rolled back, clean, exit {reference_exit}"),
        &format!(
            "transaction {}, clean",
            if outcome.is_ok() {
                "committed"
            } else {
                "rolled back"
            }
        ),
        &kept,
    );
}

#[test]
fn apache2ctl_as_pid_1_is_warned_about_and_reached_with_signal_target_child() {
    // Debian's common `CMD apache2ctl -D FOREGROUND`: PID 1 is `/bin/sh /usr/sbin/apache2ctl`
    // and apache2 its child (the script does not exec it); the shell drops every signal.
    // quiesce sees it in the running container and warns; with quiesce.signal-target=child
    // the httpd policy's WINCH reaches apache2, which finishes the download.
    let image = apache_image(
        "apache2ctl-test",
        &[
            r#"CMD ["apache2ctl", "-D", "FOREGROUND"]"#,
            "LABEL quiesce.signal-target=child",
        ],
    );
    // PID 1 (the shell) handles no signal: nothing to wait for before the stops.
    let trial = proxy_trial(
        "apache2ctl",
        &image,
        ("/etc/apache2", "apache2.conf"),
        apache_config,
        (APACHE_GRACEFUL, &[]),
    );
    assert_policy(&trial.kept, "httpd", "SIGWINCH");
    let logs = logs_since_start(&trial.container);
    assert!(!logs.contains("AH00491"), "{logs}");
}

/// The statements MariaDB is running, but the poll's own: the mysql policy's inflight_command.
const MARIADB_RUNNING: &str = r#"quiesce.settings={"inflight_command": ["mariadb", "--socket=/tmp/mysqld.sock", "-uroot", "-N", "-e", "select count(*) from information_schema.processlist where command not in ('Sleep', 'Daemon') and id <> connection_id()"], "check_interval": "1s"}"#;

#[test]
fn mariadb_commits_an_open_transaction_when_the_policy_waits_for_it() {
    // TERM kills MariaDB's sessions; the mysql policy with an inflight_command waits until no
    // statement runs, then sends TERM: the transaction, let go 11 s after quiesce starts
    // (past docker stop's 10 s), commits, and the server shuts down cleanly.
    let server = Mariadb::start("mariadb-drained", &[MARIADB_RUNNING]);
    let holder = server.lock_holder();
    let session = server.transaction("quiesce");
    let release = Release {
        after_line: None,
        past_docker_limit: true,
    };
    let kept = quiesce_stop_keeping(&server.container, release, || holder.release());
    let committed = session.join().unwrap();
    assert!(
        committed.is_ok(),
        "the transaction was cut: {committed:?}\n{}",
        logs_since_start(&server.container)
    );
    assert_eq!(kept.service["policy"]["name"], "mysql");
    assert_eq!(kept.service["outcome"], "graceful", "{:#}", kept.service);
    server.assert_clean_stop_and_start();
    assert_eq!(
        server
            .sql("select count(*) from t.orders where id = 'quiesce'")
            .as_deref(),
        Ok("1")
    );
}
