//! The Ansible role (`contrib/ansible/roles/quiesce_stop`) and the example playbook run for real:
//! `ansible-playbook` from the pinned virtual environment of scripts/ensure-ansible, over a
//! local connection, against containers of our own test service on the local Docker Engine,
//! with the `quiesce` binary under test. Also: `ansible-lint` passes on contrib/ansible.
//!
//! A play's verdict is read from ansible-playbook's exit status (2: a host failed) and from which
//! of the role's tasks failed; what quiesce did, from the report file the role has it write.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use quiesce_tests::docker::Container;
use quiesce_tests::workspace;
use serde_json::{Value, json};

/// The virtual environment with ansible-playbook and ansible-lint (made once per machine by
/// scripts/ensure-ansible, which returns at once when it exists).
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let output = Command::new(workspace().join("scripts/ensure-ansible"))
            .output()
            .expect("run scripts/ensure-ansible");
        assert!(
            output.status.success(),
            "scripts/ensure-ansible failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(stdout.lines().last().expect("the venv's path").trim())
    })
}

/// A command running `tool` from the venv, with its own Ansible home in `home`, no colours, and
/// the venv first in PATH.
fn ansible_command(tool: &str, home: &Path) -> Command {
    let bin = venv().join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new(bin.join(tool));
    command
        .env("PATH", std::env::join_paths(paths).expect("a PATH"))
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_REMOTE_TMP", home.join("remote-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env(
            "ANSIBLE_ROLES_PATH",
            workspace().join("contrib/ansible/roles"),
        );
    command
}

/// What a run of ansible-playbook left.
struct Play {
    /// ansible-playbook's exit status (0: every host ok; 2: a host failed).
    status: Option<i32>,
    /// Its output (the default callback's).
    stdout: String,
    /// The report file the role was told to write (it may not exist).
    report_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Play {
    /// The name of the task that failed the host (`role : task`), if any.
    fn failed_task(&self) -> Option<String> {
        let mut task = None;
        for line in self.stdout.lines() {
            if let Some(name) = line.strip_prefix("TASK [") {
                task = name.rsplit_once(']').map(|(name, _)| name.to_string());
            } else if line.starts_with("fatal: [localhost]") {
                return task;
            }
        }
        None
    }

    /// What the role's task `name` did on localhost: `ok`, `changed`, `skipping`, `fatal`, or
    /// nothing when it was not reached.
    fn result(&self, name: &str) -> Option<&str> {
        let header = format!("TASK [quiesce_stop : {name}]");
        self.stdout
            .lines()
            .skip_while(|line| !line.starts_with(&header))
            .skip(1)
            .take_while(|line| !line.starts_with("TASK [") && !line.starts_with("PLAY RECAP"))
            .find_map(|line| line.split_once(": [localhost]").map(|(result, _)| result))
    }

    /// The report quiesce wrote.
    fn report(&self) -> Value {
        let text = std::fs::read(&self.report_path).unwrap_or_else(|error| {
            panic!(
                "no report at {}: {error}\n{}",
                self.report_path.display(),
                self.stdout
            )
        });
        serde_json::from_slice(&text).expect("the report is JSON")
    }

    /// The outcome of `name` in the report.
    fn outcome(&self, name: &str) -> String {
        let report = self.report();
        let service = report["services"]
            .as_array()
            .and_then(|services| services.iter().find(|s| s["name"] == name))
            .unwrap_or_else(|| panic!("no service {name} in {report:#}"));
        service["outcome"].as_str().unwrap_or_default().to_string()
    }
}

/// Runs `playbook` (relative to the workspace) on localhost with these extra variables (passed
/// as JSON, so their types are kept), plus the binary under test and a report file in a
/// temporary directory.
fn play(playbook: &str, vars: Value) -> Play {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report_path = dir.path().join("reports/report.json");
    let mut vars = vars;
    vars["quiesce_stop_binary"] = json!(crate::quiesce_bin());
    vars["quiesce_stop_report_path"] = json!(report_path);
    let vars_file = dir.path().join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).expect("write the variables");
    let interpreter = venv().join("bin/python");
    let output = ansible_command("ansible-playbook", dir.path())
        .args(["-i", "localhost,", "-c", "local"])
        .arg("-e")
        .arg(format!(
            "ansible_python_interpreter={}",
            interpreter.display()
        ))
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(workspace().join(playbook))
        // What the role's commands inherit: quiesce's cache and the per-call time of the tests.
        .env("QUIESCE_CACHE_DIR", crate::cache_dir())
        .env("QUIESCE_POLICY_TIMEOUT", "10s")
        .env_remove("QUIESCE_CONFIG")
        .env_remove("QUIESCE_POLICIES")
        .output()
        .expect("run ansible-playbook");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Play {
        status: output.status.code(),
        stdout,
        report_path,
        _dir: dir,
    }
}

const ROLE_ONLY: &str = "tests/fixtures/ansible/stop.yml";

#[test]
fn the_role_stops_a_cooperating_container_and_the_play_passes() {
    let container = Container::run("ansible-graceful", &[], &[]);
    let play = play(
        ROLE_ONLY,
        json!({ "quiesce_stop_containers": [container.name], "quiesce_stop_within": "1h" }),
    );
    assert_eq!(play.status, Some(0), "{}", play.stdout);
    assert_eq!(
        play.result("Plan the stop (nothing is touched)"),
        Some("ok"),
        "{}",
        play.stdout
    );
    assert_eq!(
        play.result("Stop the containers with quiesce"),
        Some("changed"),
        "{}",
        play.stdout
    );
    assert!(!container.running(), "{}", play.stdout);
    assert_eq!(play.outcome(&container.name), "graceful");
}

#[test]
fn the_example_upgrade_stops_gracefully_then_starts_the_container_again() {
    let container = Container::run("ansible-upgrade", &[], &[]);
    let started = container.inspect("{{.State.StartedAt}}");
    let play = play(
        "contrib/ansible/upgrade-example.yml",
        json!({ "quiesce_stop_containers": [container.name] }),
    );
    assert_eq!(play.status, Some(0), "{}", play.stdout);
    assert_eq!(play.outcome(&container.name), "graceful");
    assert!(container.running(), "started again: {}", play.stdout);
    assert_ne!(container.inspect("{{.State.StartedAt}}"), started);
}

/// Issue 16: the role decides from `plan --within`'s exit status 1 and the warning code
/// `over-window`, before anything is stopped.
#[test]
fn a_worst_case_over_quiesce_stop_within_fails_the_role_before_anything_is_stopped() {
    // The default policy waits the container's stop timeout (10 s) before SIGKILL: over 1 s.
    let container = Container::run("ansible-window", &[], &[]);
    let play = play(
        ROLE_ONLY,
        json!({ "quiesce_stop_containers": [container.name], "quiesce_stop_within": "1s" }),
    );
    assert_eq!(play.status, Some(2), "{}", play.stdout);
    assert_eq!(
        play.failed_task().as_deref(),
        Some("quiesce_stop : Fail when the worst case does not fit in quiesce_stop_within"),
        "{}",
        play.stdout
    );
    assert_eq!(
        play.result("Stop the containers with quiesce"),
        None,
        "{}",
        play.stdout
    );
    assert!(container.running(), "nothing may be stopped");
    assert!(!play.report_path.exists(), "no stop, no report");
}

#[test]
fn a_killed_container_fails_the_role_unless_quiesce_stop_allow_killed() {
    // It ignores every signal: its 1 s budget ends in SIGKILL, however slow the machine.
    let refused = Container::run("ansible-killed", &[], &["--ignore-all"]);
    let accepted = Container::run("ansible-killed-ok", &[], &["--ignore-all"]);

    let play_refused = play(
        ROLE_ONLY,
        json!({ "quiesce_stop_containers": [refused.name], "quiesce_stop_budget": "1s" }),
    );
    assert_eq!(play_refused.status, Some(2), "{}", play_refused.stdout);
    assert_eq!(
        play_refused.failed_task().as_deref(),
        Some("quiesce_stop : Fail when a service was not stopped gracefully"),
        "{}",
        play_refused.stdout
    );
    assert_eq!(play_refused.outcome(&refused.name), "killed");

    let play_accepted = play(
        ROLE_ONLY,
        json!({
            "quiesce_stop_containers": [accepted.name],
            "quiesce_stop_budget": "1s",
            "quiesce_stop_allow_killed": true,
        }),
    );
    assert_eq!(play_accepted.status, Some(0), "{}", play_accepted.stdout);
    assert_eq!(play_accepted.outcome(&accepted.name), "killed");
    assert_eq!(
        play_accepted.result("Warn about services accepted although not graceful"),
        Some("ok"),
        "{}",
        play_accepted.stdout
    );
    assert!(!accepted.running());
}

#[test]
fn variables_of_the_wrong_type_are_refused_by_the_argument_specs_before_anything_runs() {
    let container = Container::run("ansible-types", &[], &[]);
    let play = play(
        ROLE_ONLY,
        json!({
            "quiesce_stop_containers": [container.name],
            "quiesce_stop_parallel": "many",
            "quiesce_stop_allow_killed": "maybe",
        }),
    );
    assert_eq!(play.status, Some(2), "{}", play.stdout);
    let failed = play.failed_task().unwrap_or_default();
    assert!(
        failed.starts_with("quiesce_stop : Validating arguments against arg spec"),
        "{failed:?}\n{}",
        play.stdout
    );
    for variable in ["quiesce_stop_parallel", "quiesce_stop_allow_killed"] {
        assert!(
            play.stdout.contains(variable),
            "{variable}: {}",
            play.stdout
        );
    }
    assert_eq!(play.result("Plan the stop (nothing is touched)"), None);
    assert!(container.running());
}

/// Exit status 2 from quiesce (an unknown container): the role fails at the plan, and nothing
/// is stopped.
#[test]
fn an_unknown_container_fails_the_role_at_the_plan() {
    let container = Container::run("ansible-known", &[], &[]);
    let missing = format!("{}-missing", container.name);
    let play = play(
        ROLE_ONLY,
        json!({ "quiesce_stop_containers": [container.name, missing] }),
    );
    assert_eq!(play.status, Some(2), "{}", play.stdout);
    assert_eq!(
        play.failed_task().as_deref(),
        Some("quiesce_stop : Fail when the plan could not be made"),
        "{}",
        play.stdout
    );
    assert!(
        play.stdout.contains("exited with status 2"),
        "{}",
        play.stdout
    );
    assert!(container.running());
}

#[test]
fn the_role_and_the_playbooks_pass_ansible_lint() {
    let home = tempfile::tempdir().expect("a temporary directory");
    let output = ansible_command("ansible-lint", home.path())
        .args(["--offline", "--nocolor", "--profile", "production"])
        .current_dir(workspace().join("contrib/ansible"))
        .output()
        .expect("run ansible-lint");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ansible-lint failed:\n{text}");
    assert!(
        text.contains("Passed: 0 failure(s), 0 warning(s)"),
        "{text}"
    );
}
