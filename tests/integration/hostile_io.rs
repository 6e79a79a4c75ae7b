//! Issue 17, classes 5, 6, 8, 9 and 10, against a real Docker Engine with real containers of
//! the test service and real compiled policies: what a policy's URL, a policy's or a
//! container's text, a container's output, a timed-out command and an operator's input can
//! still do. Each test drives the release-shaped binary through exactly the steps it needs
//! (the `playback` fixture) or a policy made to be hostile (`hostile-text`).

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use quiesce_tests::docker::Container;
use quiesce_tests::{dir_with, fixtures, quiesce, wasm};
use serde_json::{Value, json};

/// A directory with the `playback` and `hostile-text` fixtures.
fn policies() -> tempfile::TempDir {
    dir_with(&[
        ("playback.wasm", &wasm(fixtures::PLAYBACK)),
        ("hostile-text.wasm", &wasm(fixtures::HOSTILE_TEXT)),
    ])
}

/// The `quiesce` binary under test, with `policies`, colours off.
fn quiesce_with(policies: &tempfile::TempDir) -> Command {
    let mut command = quiesce(crate::quiesce_bin(), &crate::cache_dir());
    command
        .env("NO_COLOR", "1")
        .env("QUIESCE_POLICIES", policies.path());
    command
}

/// `quiesce stop --json ARGS`: the status, the report, what went to stderr.
fn stop_json(policies: &tempfile::TempDir, args: &[&str]) -> (Option<i32>, Value, String) {
    let output = quiesce_with(policies)
        .args(["stop", "--json"])
        .args(args)
        .output()
        .expect("run quiesce");
    (
        output.status.code(),
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `quiesce.settings` label playing `steps`.
fn playback(steps: Value) -> Vec<String> {
    vec![
        "--label".into(),
        "quiesce.policy=playback".into(),
        "--label".into(),
        format!("quiesce.settings={}", json!({ "steps": steps })),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A listener nothing may reach: `true` once something connected to it.
fn was_reached(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(error) if error.kind() == ErrorKind::WouldBlock => false,
        Err(error) => panic!("accept: {error}"),
    }
}

/// Class 5: a CR/LF in a URL once put a second, smuggled request on a loopback service; an
/// `allow_http` listing a loopback address could not keep other loopback ports out.
#[test]
fn a_smuggling_url_and_an_unlisted_loopback_port_never_reach_a_listener() {
    let policies = policies();
    let listed = TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = TcpListener::bind("127.0.0.1:0").unwrap();
    let (listed_port, unlisted_port) = (
        listed.local_addr().unwrap().port(),
        unlisted.local_addr().unwrap().port(),
    );
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!("allow_http = [\"127.0.0.1:{listed_port}\"]\n"),
    )
    .unwrap();
    let smuggling = format!("http://127.0.0.1:{listed_port}/drain\r\n\r\nPOST /containers/x/kill");
    let fragment = format!("http://127.0.0.1:{unlisted_port}#@127.0.0.1:{listed_port}/");
    let steps = json!([
        { "http": { "method": "POST", "url": smuggling, "timeout_ms": 10000 } },
        { "http": { "method": "POST", "url": format!("http://127.0.0.1:{unlisted_port}/"), "timeout_ms": 10000 } },
        { "http": { "method": "POST", "url": format!("http://localhost:{unlisted_port}/"), "timeout_ms": 10000 } },
        { "http": { "method": "POST", "url": fragment, "timeout_ms": 10000 } },
        { "signal": "SIGTERM" },
        { "wait": { "until": "exited", "timeout_ms": 30000 } }
    ]);
    let container = Container::run("smuggle", &strs(&playback(steps)), &[]);
    let (status, report, stderr) = stop_json(
        &policies,
        &["--config", config.path().to_str().unwrap(), &container.name],
    );
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let steps = &report["services"][0]["steps"];
    let result = |index: usize| steps[index]["result"].as_str().unwrap_or("").to_string();
    assert!(result(0).contains("carriage return"), "{steps:#}");
    for index in [1, 2] {
        assert!(
            result(index).contains("loopback addresses allow_http lists"),
            "{steps:#}"
        );
    }
    assert!(result(3).contains("fragment"), "{steps:#}");
    assert_eq!(steps[5]["result"], "condition met", "{steps:#}");
    assert!(
        !was_reached(&listed),
        "the listed listener was connected to"
    );
    assert!(
        !was_reached(&unlisted),
        "the unlisted listener was connected to"
    );
}

/// Class 6: nothing a policy or a container wrote reaches the terminal raw.
#[test]
fn policy_and_container_text_reaches_the_terminal_escaped() {
    let policies = policies();
    let raw = |text: &str| text.contains(['\x1b', '\x07']);
    // `policy list`: the version and the description, each one line of its row.
    let list = quiesce_with(&policies)
        .args(["policy", "list"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{table}");
    assert!(!raw(&table), "{table:?}");
    let row = table
        .lines()
        .find(|line| line.starts_with("hostile-text"))
        .unwrap_or_else(|| panic!("no row: {table}"));
    assert!(
        row.contains("6.6.6\\x1b[2J") && row.contains("plain\\nfake  row"),
        "{row}"
    );
    assert!(
        !table.lines().any(|line| line.starts_with("fake")),
        "{table}"
    );

    // `stop`: the policy's log, an argv and an exec's output; then a `next` error.
    for (mode, escaped) in [
        ("exec", "said\\x1b[2J\\x1b]0;pwned\\x07\\nfake  row"),
        ("fail", "failed\\x1b[2J\\x1b]0;pwned\\x07\\nfake  row"),
    ] {
        let settings = format!("quiesce.settings={}", json!({ "mode": mode }));
        let container = Container::run(
            &format!("text-{mode}"),
            &[
                "--label",
                "quiesce.policy=hostile-text",
                "--label",
                &settings,
            ],
            &[],
        );
        let output = quiesce_with(&policies)
            .args(["stop", "--verbose", &container.name])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(!raw(&stdout) && !raw(&stderr), "{stdout:?}\n{stderr:?}");
        let all = format!("{stdout}{stderr}");
        assert!(all.contains(escaped), "{mode}: {all}");
        assert!(all.contains("log\\x1b[2J"), "{mode}: {all}");
        assert!(!all.lines().any(|line| line.starts_with("fake")), "{all}");
    }

    // A settings error: refused before anything is touched, shown escaped.
    let settings = format!("quiesce.settings={}", json!({ "mode": "refuse" }));
    let container = Container::run(
        "text-refuse",
        &[
            "--label",
            "quiesce.policy=hostile-text",
            "--label",
            &settings,
        ],
        &[],
    );
    let output = quiesce_with(&policies)
        .args(["stop", &container.name])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!raw(&stderr), "{stderr:?}");
    assert!(stderr.contains("refused\\x1b[2J"), "{stderr}");
    assert!(container.running());
}

/// Class 8: a container writing endless lines once made a log-line wait hold them whole. Two
/// waits in a row: the second starts at a line's end, so it reads a whole 32 MiB line before
/// its text. quiesce's peak memory is compared with the same run on short lines: a wait that
/// held the line would peak at least 32 MiB higher; this one stays within half of that.
#[test]
fn a_log_line_wait_on_endless_lines_holds_a_bounded_buffer() {
    const LINE: u64 = 32 << 20;
    // The peak counts quiesce's children too: with a cold cache, a policy compiled in a child
    // process would weigh more than the waits. Warm a cache of the test's own first (the
    // shared one is written by every test running beside it), so both runs only load.
    let cache = tempfile::tempdir().unwrap();
    let warm = quiesce_with(&policies())
        .env("QUIESCE_CACHE_DIR", cache.path())
        .args(["policy", "list"])
        .output()
        .unwrap();
    assert!(warm.status.success(), "{warm:?}");
    let (short, _) = peak_memory_of_two_log_line_waits("short-lines", 1, cache.path());
    let (long, steps) = peak_memory_of_two_log_line_waits("long-lines", LINE, cache.path());
    eprintln!("quiesce's peak: {short} KiB on 1-byte lines, {long} KiB on {LINE}-byte lines");
    assert!(
        long < short + LINE / 1024 / 2,
        "quiesce peaked at {long} KiB on {LINE}-byte lines, {short} KiB on short ones\n{steps:#}"
    );
}

/// Stops a container writing lines of `line` bytes ending with `drained` through two
/// log-line waits and SIGKILL, with the compile cache `cache`: quiesce's peak resident memory
/// (KiB) and the steps.
#[expect(
    clippy::zombie_processes,
    reason = "waited for by wait4, which also gives its peak memory"
)]
fn peak_memory_of_two_log_line_waits(
    name: &str,
    line: u64,
    cache: &std::path::Path,
) -> (u64, Value) {
    let policies = policies();
    let wait = json!({ "wait": { "until": { "log_line": "drained" }, "timeout_ms": 600000 } });
    let steps = json!([wait, wait, "kill"]);
    let container = Container::start(
        name,
        &[
            &strs(&playback(steps))[..],
            &[
                "--label",
                "quiesce.budget=30m",
                "--network",
                "none",
                // Large enough that the log file is not rotated during the test: Docker
                // 20.10's json-file follow can lose its place at a rotation, and a wait then
                // never sees the line (seen under load with 20 MB files).
                "--log-opt",
                "max-size=1g",
            ],
        ]
        .concat(),
        quiesce_tests::docker::test_image(),
        &["spew", &line.to_string(), "drained"],
    );
    let mut child = quiesce_with(&policies)
        .env("QUIESCE_CACHE_DIR", cache)
        .args(["stop", "--json", &container.name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reading = std::thread::spawn(move || {
        let report: Value = serde_json::from_reader(stdout).unwrap_or(Value::Null);
        let stderr = std::io::read_to_string(stderr).unwrap_or_default();
        (report, stderr)
    });
    let (status, peak_kib) = wait_with_peak_memory(child.id());
    let (report, stderr) = reading.join().unwrap();
    // 1: the service was killed, as the steps say.
    assert_eq!(status.code(), Some(1), "{stderr}\n{report:#}");
    let steps = report["services"][0]["steps"].clone();
    assert_eq!(steps[0]["result"], "condition met", "{steps:#}");
    assert_eq!(steps[1]["result"], "condition met", "{steps:#}");
    (peak_kib, steps)
}

/// Waits for child `pid` (not yet waited for): its status and its peak resident memory in KiB.
fn wait_with_peak_memory(pid: u32) -> (std::process::ExitStatus, u64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value to be written by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is this process's child, waited for here only; the pointers are valid.
    let waited = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(
        waited,
        pid as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    (
        std::process::ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    )
}

/// Class 9: timed-out commands, with what they started, are stopped when their step ends: a
/// later command in the same container finds no one but PID 1 and itself.
#[test]
fn timed_out_execs_and_probes_leave_nothing_running() {
    let policies = policies();
    let sleep = json!(["/test-service", "sleep", "600000"]);
    let steps = json!([
        { "exec": { "argv": sleep, "timeout_ms": 1000 } },
        { "wait": { "until": { "probe": sleep }, "timeout_ms": 1500 } },
        { "exec": { "argv": ["/test-service", "procs"], "timeout_ms": 30000 } },
        { "signal": "SIGTERM" },
        { "wait": { "until": "exited", "timeout_ms": 30000 } }
    ]);
    let container = Container::run("leftovers", &strs(&playback(steps)), &["--workers", "0"]);
    let (status, report, stderr) = stop_json(&policies, &[&container.name]);
    assert_eq!(status, Some(0), "{stderr}\n{report:#}");
    let steps = &report["services"][0]["steps"];
    assert_eq!(steps[0]["result"], "timed out", "{steps:#}");
    assert_eq!(steps[1]["result"], "timed out", "{steps:#}");
    let census = steps[2]["result"].as_str().unwrap_or_default();
    // PID 1 and `procs` itself.
    assert!(census.ends_with("processes 2"), "{steps:#}");
    assert!(!stderr.contains("may still run"), "{stderr}");
}

/// Class 10: an absurd duration is refused before anything is touched; a SIGKILL a policy
/// asked for through a `signal` step is quiesce's kill.
#[test]
fn an_absurd_budget_touches_nothing_and_a_signalled_sigkill_is_quiesces() {
    let policies = policies();
    let container = Container::run("absurd", &["--restart", "unless-stopped"], &[]);
    for flag in ["--budget", "--deadline"] {
        let output = quiesce_with(&policies)
            .args(["stop", flag, "18446744073709551615s", &container.name])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("365 days"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(container.running());
    assert_eq!(
        container.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );

    let steps =
        json!([{ "signal": "SIGKILL" }, { "wait": { "until": "exited", "timeout_ms": 30000 } }]);
    let container = Container::run("signal-kill", &strs(&playback(steps)), &[]);
    let (status, report, stderr) = stop_json(&policies, &[&container.name]);
    // 1: a service was killed.
    assert_eq!(status, Some(1), "{stderr}\n{report:#}");
    let service = &report["services"][0];
    assert_eq!(service["outcome"], "killed", "{service:#}");
    assert!(
        !report.to_string().contains("other than quiesce"),
        "{report:#}"
    );
}
