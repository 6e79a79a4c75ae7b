//! Containers supervised by systemd units, as Kolla runs them, under a real systemd: systemd
//! 252 as PID 1 of a container (`quiesce_tests::systemd`), units written from kolla-ansible's
//! template running `docker start -a NAME` against the machine's Docker daemon, and quiesce
//! inside that host as an operator or as the unit's own `ExecStop` (issue 23).

use std::process::Output;
use std::time::Duration;

use quiesce_tests::docker::{Container, Engine};
use quiesce_tests::systemd::{QUIESCE, SystemdHost};
use serde_json::Value;

/// Kolla's `RestartSec` (11 s) and a margin: a restart systemd was going to make has happened
/// by then.
const PAST_RESTART: Duration = Duration::from_secs(15);

fn host(name: &str) -> SystemdHost {
    SystemdHost::boot(name, crate::quiesce_bin(), &crate::cache_dir(), &[])
}

/// A test-service container created (not started) as Kolla creates them, and its unit started
/// by systemd from kolla-ansible's template; returned once the service is ready.
fn kolla(host: &SystemdHost, name: &str, service_args: &[&str]) -> (Container, String) {
    kolla_with(host, name, &[], service_args, 60)
}

fn kolla_with(
    host: &SystemdHost,
    name: &str,
    docker_args: &[&str],
    service_args: &[&str],
    graceful: u64,
) -> (Container, String) {
    host.kolla_container(
        Engine::Docker,
        "docker",
        name,
        docker_args,
        service_args,
        graceful,
    )
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An operator's `quiesce` stop of one Kolla container: exit 0, graceful, its unit held.
fn held_stop(host: &SystemdHost, args: &[&str]) {
    let output = host.quiesce(args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["services"][0]["outcome"], "graceful", "{report:#}");
    assert_eq!(report["services"][0]["supervisor"]["action"], "held");
}

/// The container has stayed stopped and its unit inactive, with its own `Restart=always`,
/// nothing of quiesce's left in /run, and no restart scheduled or made.
fn assert_stays_stopped(host: &SystemdHost, container: &Container, unit: &str) {
    assert!(!container.running(), "{} runs again", container.name);
    assert_eq!(
        host.state(unit),
        "inactive (dead)",
        "{}",
        host.journal(unit)
    );
    assert_eq!(host.property(unit, "Restart"), "always");
    assert_eq!(
        host.property(unit, "NRestarts"),
        "0",
        "{}",
        host.journal(unit)
    );
    assert_eq!(host.runtime_drop_ins(unit), "", "a runtime drop-in is left");
    assert!(
        !host.journal(unit).contains("Scheduled restart job"),
        "{}",
        host.journal(unit)
    );
}

#[test]
fn a_stopped_kolla_container_stays_stopped_and_its_unit_gets_its_restart_back() {
    let host = host("one");
    let (container, unit) = kolla(&host, "nova", &["--job-ms", "1500"]);
    let output = host
        .quiesce(&["stop", &container.name, "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "graceful", "{report:#}");
    let supervisor = &service["supervisor"];
    assert_eq!(supervisor["unit"], unit.as_str(), "{report:#}");
    assert_eq!(supervisor["found_by"], "Kolla's unit name");
    assert_eq!(supervisor["action"], "held", "{report:#}");
    assert_eq!(supervisor["restored"], true, "{report:#}");
    // Given back once it had settled, or once systemd had a stop job for it (it then ends the
    // unit's stop state itself, restarting nothing).
    assert!(
        matches!(
            supervisor["unit_state"].as_str(),
            Some("inactive" | "deactivating")
        ),
        "{report:#}"
    );
    // In-flight work was kept.
    let (started, completed) = container.jobs();
    assert_eq!(started, completed, "{}", container.logs());
    std::thread::sleep(PAST_RESTART);
    assert_stays_stopped(&host, &container, &unit);
}

#[test]
fn three_kolla_containers_stopped_in_one_run_all_stay_stopped() {
    let host = host("three");
    let kolla: Vec<(Container, String)> = ["glance", "cinder", "neutron"]
        .iter()
        .map(|name| kolla(&host, name, &["--job-ms", "800"]))
        .collect();
    let names: Vec<&str> = kolla.iter().map(|(c, _)| c.name.as_str()).collect();
    let mut args = vec!["stop", "--json"];
    args.extend(&names);
    let output = host.quiesce(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    for service in report["services"].as_array().unwrap() {
        assert_eq!(service["outcome"], "graceful", "{report:#}");
        assert_eq!(service["supervisor"]["action"], "held", "{report:#}");
        assert_eq!(service["supervisor"]["restored"], true, "{report:#}");
    }
    std::thread::sleep(PAST_RESTART);
    for (container, unit) in &kolla {
        assert_stays_stopped(&host, container, unit);
    }
}

#[test]
fn a_stop_abandoned_by_a_second_interrupt_gives_the_unit_back_at_once() {
    let host = host("abandon");
    // Jobs of 20 s: the drain is still running when the stop is abandoned.
    let (container, unit) = kolla(&host, "heat", &["--job-ms", "20000"]);
    let report = "/tmp/report.json";
    let mut stop = host
        .quiesce(&["stop", &container.name, "--report", report])
        .spawn()
        .unwrap();
    // Generous: a cold compile cache makes a debug quiesce compile every built-in first.
    assert!(
        host.wait_until(Duration::from_secs(300), || container
            .logs()
            .contains("graceful: draining")),
        "the stop never began: {}",
        container.logs()
    );
    assert!(
        host.runtime_drop_ins(&unit).contains("Restart=no"),
        "not held during the stop"
    );
    for _ in 0..2 {
        host.exec(&["pkill", "-INT", "-x", "quiesce"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = stop.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let text = host.sh(&format!("cat {report}"));
    let written: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(written["interrupted"], true, "{text}");
    assert!(text.contains("\"abandoned\""), "{text}");
    // Given back: no drop-in, Restart=always in force; the container still drains under its
    // unit, which is active.
    assert_eq!(host.runtime_drop_ins(&unit), "");
    assert_eq!(host.property(&unit, "Restart"), "always");
    assert_eq!(host.state(&unit), "active (running)");
    assert!(container.running());
}

#[test]
fn a_unit_that_cannot_be_held_leaves_its_container_untouched() {
    let host = host("unheld");
    let (container, unit) = kolla(&host, "keystone", &[]);
    // A file where the drop-in's directory would go: the hold cannot be written.
    host.write(&format!("/run/systemd/system/{unit}.d"), "in the way\n");
    let output = host
        .quiesce(&["stop", &container.name, "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "failed", "{report:#}");
    assert_eq!(
        service["warnings"][0]["code"], "unit-hold-failed",
        "{report:#}"
    );
    assert!(service["steps"].as_array().unwrap().is_empty());
    assert!(container.running());
    assert!(!container.logs().contains("signal"), "{}", container.logs());
    assert_eq!(host.state(&unit), "active (running)");
}

#[test]
fn plan_warns_when_the_units_own_stop_is_shorter_than_the_policys_worst_case() {
    let host = host("plan");
    // Kolla's only knob: graceful_timeout (here 10 s), while the nginx policy may need 70 s.
    let (container, unit) = kolla_with(
        &host,
        "horizon",
        &["--label", "quiesce.policy=nginx"],
        &[],
        10,
    );
    let output = host.quiesce(&["plan", &container.name]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&format!("supervised by {unit}")), "{text}");
    assert!(
        text.contains("its ExecStop gives the engine 10s (-t) before SIGKILL")
            && text.contains("the policy's worst case is 1m 10s")
            && text.contains("quiesce generate kolla-dropins"),
        "{text}"
    );
    assert_eq!(host.runtime_drop_ins(&unit), "", "plan touched the unit");
    assert_eq!(host.state(&unit), "active (running)");
}

/// `quiesce generate kolla-dropins` for the containers, then `systemctl daemon-reload`.
fn install_drop_ins(host: &SystemdHost, containers: &[&str]) -> String {
    let mut args = vec!["generate", "kolla-dropins", "--binary", QUIESCE];
    args.extend_from_slice(containers);
    let output = host.quiesce(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    host.systemctl(&["daemon-reload"]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn systemctl_stop_through_the_drop_ins_keeps_the_work_kollas_own_stop_cuts() {
    let host = host("dropins");
    // A service that drains on QUIT only (TERM abandons its work), under the nginx policy.
    let service = [
        "--job-ms",
        "2000",
        "--graceful",
        "QUIT",
        "--immediate",
        "TERM",
    ];
    let labels = ["--label", "quiesce.policy=nginx"];
    let (with_quiesce, with_unit) = kolla_with(&host, "web", &labels, &service, 60);
    let (kollas, kollas_unit) = kolla_with(&host, "web-plain", &labels, &service, 60);
    let printed = install_drop_ins(&host, &[&with_quiesce.name]);
    assert!(printed.contains("worst case 1m 10s"), "{printed}");
    let verify = host.exec(&[
        "systemd-analyze",
        "verify",
        &format!("/etc/systemd/system/{with_unit}"),
    ]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    for container in [&with_quiesce, &kollas] {
        container.wait_for_log("started job", Duration::from_secs(10));
    }
    host.systemctl(&["stop", &with_unit, &kollas_unit]);
    // Through quiesce: QUIT, every job finished, exit 0, the unit inactive and not held.
    assert_eq!(with_quiesce.inspect("{{.State.ExitCode}}"), "0");
    let (started, completed) = with_quiesce.jobs();
    assert_eq!(started, completed, "{}", with_quiesce.logs());
    assert!(with_quiesce.logs().contains("signal SIGQUIT graceful"));
    assert_eq!(host.state(&with_unit), "inactive (dead)");
    assert_eq!(host.runtime_drop_ins(&with_unit), "");
    // Kolla's own `docker stop -t 60`: TERM, the work in flight abandoned.
    assert_eq!(kollas.inspect("{{.State.ExitCode}}"), "143");
    assert!(
        kollas.logs().contains("abandoning") && !kollas.logs().contains("abandoned=0"),
        "{}",
        kollas.logs()
    );
    // A restart through the drop-in: stopped gracefully, then running again.
    host.systemctl(&["start", &with_unit]);
    with_quiesce.wait_for_log("ready pid=", Duration::from_secs(30));
    let drains_before = with_quiesce.logs().matches("graceful: draining").count();
    host.systemctl(&["restart", &with_unit]);
    assert_eq!(host.state(&with_unit), "active (running)");
    assert!(
        host.wait_until(Duration::from_secs(30), || with_quiesce.running()),
        "not started again"
    );
    let logs = with_quiesce.logs();
    assert_eq!(
        logs.matches("graceful: draining").count(),
        drains_before + 1,
        "{logs}"
    );
    assert!(
        !logs.contains("abandoned=1") && !logs.contains("abandoned=2"),
        "{logs}"
    );
}

#[test]
fn an_operators_stop_of_a_unit_with_the_drop_ins_is_not_stopped_twice() {
    let host = host("operator");
    let (container, unit) = kolla(&host, "nova-api", &["--job-ms", "1500"]);
    install_drop_ins(&host, &[&container.name]);
    held_stop(&host, &["stop", &container.name, "--json"]);
    std::thread::sleep(PAST_RESTART);
    // The unit's ExecStop ran (systemd runs it when the main process ends, and for the stop
    // job quiesce queued) and found the container being stopped by the operator's quiesce
    // (it waited and sent nothing) or already stopped: one signal in all.
    let journal = host.journal(&unit);
    assert!(
        journal.contains("stopped by quiesce") || journal.contains(" 1 already stopped"),
        "{journal}"
    );
    assert_eq!(container.logs().matches("signal SIGTERM").count(), 1);
    assert_stays_stopped(&host, &container, &unit);
}

#[test]
fn a_unit_stop_that_outlives_timeout_stop_sec_keeps_the_containers_work() {
    let host = host("timeout");
    // Jobs of 12 s: longer than systemd's two TimeoutStopSec periods (stop, then SIGTERM).
    let (container, unit) = kolla(&host, "cinder-volume", &["--job-ms", "12000"]);
    install_drop_ins(&host, &[&container.name]);
    // The operator shortened the unit's TimeoutStopSec below the drain.
    host.write(
        &format!("/etc/systemd/system/{unit}.d/zz-short.conf"),
        "[Service]\nTimeoutStopSec=3\n",
    );
    host.systemctl(&["daemon-reload"]);
    container.wait_for_log("started job", Duration::from_secs(10));
    // systemctl's job ends either way; the unit's result says it timed out.
    host.exec(&["systemctl", "stop", &unit]);
    assert_eq!(
        host.property(&unit, "Result"),
        "timeout",
        "{}",
        host.journal(&unit)
    );
    assert_eq!(host.state(&unit), "failed (failed)");
    // systemd killed quiesce and the attached client, not the container: the drain goes on,
    // and the unit does not restart it.
    assert!(
        host.wait_until(Duration::from_secs(30), || !container.running()),
        "the drain never ended"
    );
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0");
    let (started, completed) = container.jobs();
    assert_eq!(started, completed, "{}", container.logs());
    std::thread::sleep(PAST_RESTART);
    assert!(!container.running());
    assert_eq!(host.property(&unit, "NRestarts"), "0");
}

/// kolla-ansible's own `kolla_container` module (pinned, from PyPI: `scripts/ensure-kolla`),
/// run with ansible inside the systemd host, as kolla-ansible's handlers run it: it writes the
/// unit from its template and drives systemd over D-Bus (`StopUnit`, `RestartUnit`, then
/// `ListUnits` every 5 s).
struct KollaModule {
    venv: String,
}

/// Where the project's contrib/ is inside the systemd host.
const CONTRIB: &str = "/opt/quiesce/contrib";

impl KollaModule {
    fn ensure() -> KollaModule {
        let output =
            std::process::Command::new(quiesce_tests::workspace().join("scripts/ensure-kolla"))
                .output()
                .expect("run scripts/ensure-kolla");
        assert!(output.status.success(), "{}", stderr(&output));
        KollaModule {
            venv: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        }
    }

    /// The mounts that make the environment, and the project's contrib/, visible inside the
    /// systemd host.
    fn mounts(&self) -> [String; 2] {
        [
            format!("{0}:{0}:ro", self.venv),
            format!(
                "{}:{CONTRIB}:ro",
                quiesce_tests::workspace().join("contrib").display()
            ),
        ]
    }

    /// `ansible-playbook contrib/ansible/PLAYBOOK` inside `host` (on itself), with `extra`
    /// arguments; must succeed.
    fn playbook(&self, host: &SystemdHost, playbook: &str, extra: &[&str]) {
        let output = std::process::Command::new("docker")
            .args(["exec", "-e", "LANG=C.UTF-8"])
            .arg("-e")
            .arg(format!(
                "ANSIBLE_PYTHON_INTERPRETER={}/bin/python",
                self.venv
            ))
            .args(["-e", "PYTHONWARNINGS=ignore:DSA is deprecated", &host.name])
            .arg(format!("{}/bin/ansible-playbook", self.venv))
            .args(["-i", "localhost,", "-c", "local"])
            .arg(format!("{CONTRIB}/ansible/{playbook}"))
            .args(extra)
            .output()
            .expect("run ansible-playbook");
        assert!(
            output.status.success(),
            "{playbook}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
    }

    /// `ansible localhost -m kolla_container -a ARGS` inside `host`; must succeed.
    fn run(&self, host: &SystemdHost, args: &Value) {
        let modules = format!("{}/share/kolla-ansible/ansible", self.venv);
        let output = std::process::Command::new("docker")
            .args(["exec", "-e", "LANG=C.UTF-8"])
            .arg("-e")
            .arg(format!("ANSIBLE_LIBRARY={modules}/library"))
            .arg("-e")
            .arg(format!("ANSIBLE_MODULE_UTILS={modules}/module_utils"))
            .arg("-e")
            .arg(format!(
                "ANSIBLE_PYTHON_INTERPRETER={}/bin/python",
                self.venv
            ))
            .args([
                "-e",
                "ANSIBLE_LOCALHOST_WARNING=False",
                "-e",
                "PYTHONWARNINGS=ignore:DSA is deprecated",
                &host.name,
            ])
            .arg(format!("{}/bin/ansible", self.venv))
            .args(["localhost", "-c", "local", "-m", "kolla_container", "-a"])
            .arg(args.to_string())
            .output()
            .expect("run ansible");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !text.contains("FAILED"),
            "kolla_container {args}: {text}{}",
            stderr(&output)
        );
    }
}

#[test]
fn kolla_ansibles_own_module_stops_and_restarts_through_the_drop_ins_keeping_the_work() {
    let module = KollaModule::ensure();
    let host = SystemdHost::boot(
        "kolla-ansible",
        crate::quiesce_bin(),
        &crate::cache_dir(),
        &module.mounts(),
    );
    // kolla-ansible 22's docker_common_options with its defaults (restart_policy
    // unless-stopped, so the unit restarts always; graceful_timeout 60).
    let common = serde_json::json!({
        "container_engine": "docker", "restart_policy": "unless-stopped",
        "restart_retries": "10", "graceful_timeout": 60, "client_timeout": 120,
    });
    let image = Engine::Docker.test_image();
    // A service that drains on QUIT only (TERM cuts its work), under the nginx policy.
    let start = |name: &str| {
        let container = Container {
            name: format!("qt-{}-{name}", std::process::id()),
            engine: Engine::Docker,
        };
        let args = serde_json::json!({
            "action": "start_container", "name": container.name, "image": image,
            "command": "serve --job-ms 3000 --graceful QUIT --immediate TERM",
            "labels": { "quiesce.policy": "nginx", "quiesce.test": "1" },
            "common_options": common,
        });
        (container, args)
    };
    let (with_quiesce, with_args) = start("kolla-module");
    let (kollas, kollas_args) = start("kolla-module-plain");
    module.run(&host, &with_args);
    // The recipe, contrib/ansible/kolla.yml, run with ansible-playbook on the host: drop-ins
    // for every Kolla unit there (this one), systemd reloaded, every stop planned against the
    // window.
    module.playbook(
        &host,
        "kolla.yml",
        &["-e", &format!("quiesce_stop_binary={QUIESCE}")],
    );
    assert!(
        host.sh(&format!(
            "cat /etc/systemd/system/kolla-{}-container.service.d/quiesce.conf",
            with_quiesce.name
        ))
        .contains(&format!("ExecStop=-{QUIESCE} stop {}", with_quiesce.name)),
        "no drop-in"
    );
    module.run(&host, &kollas_args);
    // The module's unit files are loaded only once something references them: a reload.
    host.systemctl(&["daemon-reload"]);
    for container in [&with_quiesce, &kollas] {
        container.wait_for_log("started job", Duration::from_secs(30));
    }
    let stop = |container: &Container| {
        module.run(
            &host,
            &serde_json::json!({
                "action": "stop_container", "name": container.name, "common_options": common,
            }),
        )
    };
    stop(&with_quiesce);
    stop(&kollas);
    let unit = |container: &Container| format!("kolla-{}-container.service", container.name);
    // Through quiesce: SIGQUIT, every job finished, exit 0.
    assert_eq!(with_quiesce.inspect("{{.State.ExitCode}}"), "0");
    let (started, completed) = with_quiesce.jobs();
    assert_eq!(started, completed, "{}", with_quiesce.logs());
    assert!(with_quiesce.logs().contains("signal SIGQUIT graceful"));
    assert_eq!(host.state(&unit(&with_quiesce)), "inactive (dead)");
    // kolla-ansible's own unit: `docker stop -t 60`, SIGTERM, the work in flight cut.
    assert_eq!(kollas.inspect("{{.State.ExitCode}}"), "143");
    assert!(!kollas.logs().contains("abandoned=0"), "{}", kollas.logs());
    // Restarts through the module: started, then stopped (through quiesce, or Kolla's own
    // `docker stop`) and started again.
    let restart_twice = |container: &Container, args: &Value| {
        let jobs_before = container.logs().matches("started job").count();
        module.run(&host, &args.clone().merged("restart_container"));
        let working = host.wait_until(Duration::from_secs(30), || {
            container.logs().matches("started job").count() > jobs_before
        });
        assert!(working, "no job after the start: {}", container.logs());
        // The module returns as soon as the unit's state reads "running", which it may still
        // do before systemd has begun the restart: wait for the service's next start.
        let starts_before = container.logs().matches("ready pid=").count();
        module.run(&host, &args.clone().merged("restart_container"));
        let restarted = host.wait_until(Duration::from_secs(60), || {
            container.logs().matches("ready pid=").count() > starts_before && container.running()
        });
        assert!(restarted, "not started again: {}", container.logs());
    };
    restart_twice(&kollas, &kollas_args);
    let logs = kollas.logs();
    assert_eq!(
        logs.matches("signal SIGTERM immediate").count(),
        2,
        "{logs}"
    );
    // A restart through the module: started, then stopped through quiesce and started again.
    restart_twice(&with_quiesce, &with_args);
    let logs = with_quiesce.logs();
    assert_eq!(logs.matches("signal SIGQUIT graceful").count(), 2, "{logs}");
    assert!(!logs.contains("signal SIGTERM"), "{logs}");
    assert_eq!(logs.matches("abandoned=0").count(), 2, "{logs}");
    host.systemctl(&["stop", &unit(&with_quiesce), &unit(&kollas)]);
}

/// Module arguments with another action.
trait WithAction {
    fn merged(self, action: &str) -> Value;
}

impl WithAction for Value {
    fn merged(mut self, action: &str) -> Value {
        self["action"] = Value::from(action);
        self
    }
}

/// Where the Podman API socket (scripts/ensure-podman) is inside the systemd host: not below
/// its /run, where the host's own tmpfiles rules for Podman would clean it.
const PODMAN_API: &str = "/podman-api";

#[test]
fn podman_units_are_held_and_stop_through_their_drop_ins_as_dockers_do() {
    let host = SystemdHost::boot(
        "podman",
        crate::quiesce_bin(),
        &crate::cache_dir(),
        &[format!("/run/podman:{PODMAN_API}")],
    );
    let endpoint = format!("unix://{PODMAN_API}/podman.sock");
    // Kolla's template with `podman` (its remote client here: the API service runs outside).
    let engine = format!("/usr/bin/podman --url {endpoint}");
    let units: Vec<(Container, String)> = ["pod-nova", "pod-glance"]
        .iter()
        .map(|name| {
            let kolla = host.kolla_container(
                Engine::Podman,
                &engine,
                name,
                &[],
                &["--job-ms", "1500"],
                60,
            );
            kolla.0.wait_for_log("started job", Duration::from_secs(30));
            kolla
        })
        .collect();
    // The operator's stop: held, given back, stays stopped.
    let (held, held_unit) = &units[0];
    held_stop(&host, &["stop", "-H", &endpoint, &held.name, "--json"]);
    // systemd's stop through the generated drop-in, which names the engine.
    let (dropped, dropped_unit) = &units[1];
    let output = host
        .quiesce(&[
            "generate",
            "kolla-dropins",
            "--binary",
            QUIESCE,
            "-H",
            &endpoint,
            &dropped.name,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    host.systemctl(&["daemon-reload"]);
    host.systemctl(&["stop", dropped_unit]);
    let journal = host.journal(dropped_unit);
    assert!(journal.contains("graceful"), "{journal}");
    std::thread::sleep(PAST_RESTART);
    for (container, unit) in [(held, held_unit), (dropped, dropped_unit)] {
        assert_stays_stopped(&host, container, unit);
        let (started, completed) = container.jobs();
        assert_eq!(started, completed, "{}", container.logs());
    }
}

#[test]
fn powering_off_a_kolla_host_stops_every_container_gracefully_and_exactly_once() {
    let host = host("poweroff");
    let shutdown = format!("quiesce.shutdown={}", host.name);
    let label = ["--label", shutdown.as_str()];
    // Three Kolla containers with the drop-ins, and one no unit runs.
    let kolla: Vec<(Container, String)> = ["nova-compute", "neutron-agent", "cinder-vol"]
        .iter()
        .map(|name| kolla_with(&host, name, &label, &["--job-ms", "2000"], 60))
        .collect();
    let names: Vec<&str> = kolla.iter().map(|(c, _)| c.name.as_str()).collect();
    install_drop_ins(&host, &names);
    let loose = Container::run("poweroff-loose", &label, &["--job-ms", "2000"]);
    // quiesce.service as `quiesce generate systemd-unit` writes it; only its `--all` is
    // narrowed to this host's containers (the Docker daemon is shared with other tests).
    let unit = host
        .quiesce(&["generate", "systemd-unit", "--binary", QUIESCE])
        .output()
        .unwrap();
    let unit = String::from_utf8_lossy(&unit.stdout)
        .replace(" stop --all ", &format!(" stop --label {shutdown} "));
    assert!(
        unit.contains(&format!("stop --label {shutdown} --deadline")),
        "{unit}"
    );
    host.write("/etc/systemd/system/quiesce.service", &unit);
    host.systemctl(&["daemon-reload"]);
    host.systemctl(&["enable", "--now", "quiesce.service"]);
    for (container, _) in &kolla {
        container.wait_for_log("started job", Duration::from_secs(30));
    }
    loose.wait_for_log("started job", Duration::from_secs(30));
    host.power_off();
    let text = host.read("/var/log/quiesce/shutdown-report.json");
    let report: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let docker_stopped = host.read("/var/log/docker-stopped");
    let docker_stopped: i128 = docker_stopped
        .trim()
        .parse()
        .expect("docker.service stopped");
    // Every container: one SIGTERM, every job finished, exit 0, before docker.service stopped.
    let mut stopped_by_units = 0;
    for container in kolla.iter().map(|(c, _)| c).chain([&loose]) {
        let logs = container.logs();
        assert_eq!(
            logs.matches("signal SIGTERM").count(),
            1,
            "{}: {logs}",
            container.name
        );
        assert!(logs.contains("abandoned=0"), "{}: {logs}", container.name);
        assert_eq!(container.inspect("{{.State.ExitCode}}"), "0");
        let finished = humantime::parse_rfc3339_weak(
            container
                .inspect("{{.State.FinishedAt}}")
                .trim_end_matches('Z')
                .split('.')
                .next()
                .unwrap(),
        )
        .unwrap();
        let finished_ns = finished
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        // FinishedAt was cut to whole seconds above.
        assert!(
            finished_ns <= docker_stopped,
            "{} finished after docker.service stopped",
            container.name
        );
        // quiesce.service's report has every one: stopped by it, or by the container's unit
        // while it waited (`stopped_by`).
        let service = report["services"]
            .as_array()
            .and_then(|services| {
                services
                    .iter()
                    .find(|s| s["name"] == container.name.as_str())
            })
            .unwrap_or_else(|| panic!("{} not in the shutdown report: {text}", container.name));
        assert!(
            matches!(service["outcome"].as_str(), Some("graceful")),
            "{service:#}"
        );
        if !service["stopped_by"].is_null() {
            stopped_by_units += 1;
        }
    }
    // The loose container has no unit: quiesce.service stopped it itself.
    let loose_entry = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == loose.name.as_str())
        .unwrap();
    assert!(loose_entry["stopped_by"].is_null(), "{loose_entry:#}");
    eprintln!("power-off: {stopped_by_units} of 3 Kolla containers stopped by their own unit");
}
