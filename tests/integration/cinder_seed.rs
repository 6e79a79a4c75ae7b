//! The cinder seed end to end: a real oslo.service 3.0 `ServiceLauncher` program modelled on
//! cinder-volume (Debian's python3-oslo.service, run from the host's `/usr` mounted read-only)
//! under `dumb-init --single-child`, as Kolla runs it, stopped by `quiesce stop` with the built-in
//! `cinder-volume` policy, and by `docker stop -t 30` for reference.
//!
//! The program stops in three phases, as cinder-volume does: on TERM it stops taking new work,
//! waits for its in-flight volume operations (each finishes a set time after the stop) and then
//! cleans up and exits 0. It writes the in-flight count to `/tmp/inflight`, which the policy
//! reads with `cat` (its `inflight_command`).

use std::path::Path;
use std::time::Duration;

use quiesce_tests::docker::{Container, docker_ok};
use quiesce_tests::servers::{HOST_USR, host_usr_image};
use serde_json::Value;

/// The program. Environment: OPS operations, the first finishing FIRST s after the stop and
/// one more every STEP s; operation STUCK (if set) never finishes.
const PROGRAM: &str = r#"
import eventlet
eventlet.monkey_patch()
import logging, os, sys, time
from oslo_config import cfg
from oslo_service import service

logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s %(message)s")
LOG = logging.getLogger("cinder-seed")
OPS = int(os.environ.get("OPS", "6"))
FIRST = float(os.environ.get("FIRST", "8"))
STEP = float(os.environ.get("STEP", "6"))
STUCK = int(os.environ.get("STUCK", "-1"))


def publish(count):
    with open("/tmp/inflight.new", "w") as f:
        f.write("%d\n" % count)
    os.rename("/tmp/inflight.new", "/tmp/inflight")


class VolumeService(service.Service):
    def start(self):
        super().start()
        self.stopping = None
        self.inflight = OPS
        publish(OPS)
        for i in range(OPS):
            self.tg.add_thread(self.operation, i)
        LOG.info("%d volume operations in flight; ready", OPS)

    def operation(self, i):
        while self.stopping is None:
            eventlet.sleep(0.1)
        if i == STUCK:
            LOG.info("operation %d is stuck", i)
            while True:
                eventlet.sleep(3600)
        eventlet.sleep(max(0, self.stopping + FIRST + STEP * i - time.time()))
        self.inflight -= 1
        publish(self.inflight)
        LOG.info("operation %d finished %.1f s after the stop; in flight: %d",
                 i, time.time() - self.stopping, self.inflight)

    def stop(self, graceful=False):
        LOG.info("phase 1: taking no new work; %d operations in flight", self.inflight)
        self.stopping = time.time()
        while self.inflight:
            eventlet.sleep(0.2)
        LOG.info("phase 2: every operation finished")
        super().stop(graceful=True)
        LOG.info("phase 3: cleaned up")


CONF = cfg.CONF
CONF([], project="cinder-seed")
launcher = service.ServiceLauncher(CONF)
# As the cinder deployment sets it: longer than any drain (under an init, the service's own
# alarm would end the drain at this timeout). The launcher registers the option.
CONF.set_override("graceful_shutdown_timeout", 600)
launcher.launch_service(VolumeService())
status = launcher.wait()
LOG.info("exiting with %r", status)
sys.exit(status or 0)
"#;

const PYTHON: &str = "/usr/bin/python3";
const DUMB_INIT: &str = "/usr/bin/dumb-init";

/// The image: the program, run by `dumb-init --single-child`; its name matches the
/// `cinder-volume` policy's image pattern (`*cinder-volume*`), as Kolla's images do.
fn image() -> String {
    let oslo = Path::new("/usr/lib/python3/dist-packages/oslo_service");
    assert!(
        oslo.is_dir() && Path::new(DUMB_INIT).exists(),
        "python3-oslo.service or dumb-init is not installed: run the tests with scripts/test (scripts/ensure-servers installs them)"
    );
    host_usr_image(
        "quiesce-test-cinder-volume",
        &[("/app/cinder_seed.py", PROGRAM.as_bytes(), 0o644)],
        &[],
        &[&format!(
            "ENTRYPOINT [\"{DUMB_INIT}\", \"--single-child\", \"{PYTHON}\", \"/app/cinder_seed.py\"]"
        )],
    )
}

/// A running program, ready (its operations in flight), with its settings label.
fn start(name: &str, env: &[&str], settings: Option<&str>) -> Container {
    let [usr_flag, usr_mount] = HOST_USR;
    let mut args = vec!["--network", "none", usr_flag, usr_mount];
    for variable in env {
        args.extend(["-e", variable]);
    }
    let label = settings.map(|settings| format!("quiesce.settings={settings}"));
    if let Some(label) = &label {
        args.extend(["--label", label]);
    }
    let container = Container::start(name, &args, &image(), &[]);
    container.wait_for_log("; ready", Duration::from_secs(60));
    container
}

/// Operations that finished, from the program's log.
fn finished(container: &Container) -> usize {
    container
        .logs()
        .lines()
        .filter(|line| line.contains("finished") && line.contains("after the stop"))
        .count()
}

/// `quiesce stop NAME --budget BUDGET --json`: the exit status and the service's report.
fn quiesce_stop(container: &Container, budget: &str) -> (Option<i32>, Value, String) {
    let output = quiesce_tests::quiesce(crate::quiesce_bin(), &crate::cache_dir())
        .env_remove("QUIESCE_CONFIG")
        .args(["stop", &container.name, "--budget", budget, "--json"])
        .output()
        .expect("run quiesce");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let service = report["services"][0].clone();
    assert_eq!(service["name"], container.name, "{report:#}\n{stderr}");
    (output.status.code(), service, stderr)
}

/// The signals the report's steps delivered (SIGKILL included), in order.
fn signals(service: &Value) -> Vec<String> {
    steps(service)
        .iter()
        .filter_map(|step| match step["action"].as_str() {
            Some("signal") => step["detail"].as_str().map(str::to_string),
            Some("kill") => Some("SIGKILL".to_string()),
            _ => None,
        })
        .collect()
}

fn steps(service: &Value) -> &Vec<Value> {
    service["steps"].as_array().expect("steps")
}

/// When the in-flight count was first read as `count`: the end of that probe, in ms.
fn first_reading(service: &Value, count: &str) -> Option<u64> {
    steps(service)
        .iter()
        .find(|step| {
            step["action"] == "exec" && step["result"].as_str().is_some_and(|r| r.ends_with(count))
        })
        .and_then(|step| step["end_ms"].as_u64())
}

#[test]
fn every_operation_finishes_under_quiesce_where_docker_stop_t30_loses_two() {
    let settings = r#"{"inflight_command": ["cat", "/tmp/inflight"], "check_interval": "2s", "stuck_after": "1m"}"#;
    // Six operations finishing 8, 14, 20, 26, 32 and 38 s after the stop.
    let reference = start("cinder-seed-docker", &[], None);
    let drained = start("cinder-seed-quiesce", &[], Some(settings));

    let reference_name = reference.name.clone();
    let docker_stop = std::thread::spawn(move || docker_ok(&["stop", "-t", "30", &reference_name]));
    let (status, service, stderr) = quiesce_stop(&drained, "5m");
    docker_stop.join().unwrap();

    // docker stop -t 30: TERM, then SIGKILL at 30 s; the operations at 32 and 38 s are lost.
    assert_eq!(reference.inspect("{{.State.ExitCode}}"), "137");
    assert_eq!(finished(&reference), 4, "{}", reference.logs());

    // quiesce: TERM once, the count read every 2 s while it falls, the exit after the last.
    let logs = drained.logs();
    assert_eq!(
        service["outcome"], "graceful",
        "{service:#}\n{stderr}\n{logs}"
    );
    assert_eq!(service["exit_code"], 0, "{service:#}");
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(signals(&service), ["SIGTERM"], "{service:#}");
    assert_eq!(finished(&drained), 6, "{logs}");
    assert!(logs.contains("phase 3: cleaned up"), "{logs}");
    let probes = steps(&service)
        .iter()
        .filter(|step| {
            step["action"] == "exec"
                && step["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("cat /tmp/inflight"))
        })
        .count();
    assert!(
        probes >= 10,
        "the count was read {probes} times: {service:#}"
    );
    let elapsed = service["elapsed_ms"].as_u64().unwrap();
    assert!(elapsed >= 38_000, "{service:#}");
    eprintln!(
        "cinder seed: docker stop -t 30 kept 4 of 6 (exit 137); quiesce kept 6 of 6 in {:.1} s ({probes} readings), exit 0",
        elapsed as f64 / 1000.0
    );
}

#[test]
fn a_stuck_operation_is_waited_for_stuck_after_and_the_exit_timeout_then_killed() {
    // Operations finishing 4, 6, 8 and 10 s after the stop; the fifth never does.
    let settings = r#"{"inflight_command": ["cat", "/tmp/inflight"], "check_interval": "1s", "stuck_after": "10s", "exit_timeout": "5s"}"#;
    let container = start(
        "cinder-seed-stuck",
        &["OPS=5", "FIRST=4", "STEP=2", "STUCK=4"],
        Some(settings),
    );
    let (status, service, stderr) = quiesce_stop(&container, "5m");
    let logs = container.logs();

    assert_eq!(
        service["outcome"], "killed",
        "{service:#}\n{stderr}\n{logs}"
    );
    assert_eq!(service["exit_code"], 137, "{service:#}");
    assert_eq!(status, Some(1), "{stderr}");
    // No INT and no second TERM: either would have cut the four operations still running
    // when the drain began; they all finished.
    assert_eq!(signals(&service), ["SIGTERM", "SIGKILL"], "{service:#}");
    assert_eq!(finished(&container), 4, "{logs}");

    // SIGKILL no earlier than stuck_after (10 s) plus exit_timeout (5 s) after the count was
    // last seen to change (to 1).
    let last_change = first_reading(&service, ": 1").expect("a reading of 1");
    let kill = steps(&service)
        .iter()
        .find(|step| step["action"] == "kill")
        .and_then(|step| step["start_ms"].as_u64())
        .expect("a kill step");
    assert!(
        kill >= last_change + 15_000,
        "SIGKILL at {kill} ms, the count last changed at {last_change} ms: {service:#}"
    );
    eprintln!(
        "cinder seed, stuck: 4 of 4 finishable operations kept; SIGKILL {:.1} s after the count last changed (stuck_after 10 s + exit_timeout 5 s)",
        (kill - last_change) as f64 / 1000.0
    );
}
