//! The cost of quiesce on a Kolla host under a real systemd (issue 23), a measurement, not a
//! test: `scripts/bench kolla` (or `cargo run --release -p quiesce-tests --bin bench-kolla --
//! QUIESCE ROUNDS FLEET`). In a systemd host (`quiesce_tests::systemd`), two Kolla units from
//! kolla-ansible's template run the same service, which exits within a millisecond of SIGTERM:
//! one with quiesce's drop-in (`quiesce generate kolla-dropins`), one with Kolla's own
//! `ExecStop` (`docker stop -t 60`). In alternating rounds it times, inside the host:
//! - `systemctl stop` of each unit (what kolla-ansible's module asks systemd for), with the
//!   compile cache warm (as `generate kolla-dropins` leaves it) and cold (emptied first);
//! - the operator's `quiesce stop NAME` of a unit without the drop-in: the hold, the stop, the
//!   wait for the unit to settle, the release;
//! - one `systemctl stop` of FLEET units at once (systemd runs their `ExecStop`s side by
//!   side: FLEET quiesce processes, or FLEET docker CLIs), with the cache warm.
//!
//! The service has no work and exits within a millisecond of SIGTERM, so each time is the
//! stop's machinery: Kolla's own path (the docker CLI, `docker start -a` ending, systemd) is
//! the baseline, and what quiesce adds is the difference.

use std::path::PathBuf;
use std::time::Duration;

use quiesce_tests::docker::{Container, Engine};
use quiesce_tests::systemd::{QUIESCE, SystemdHost};

/// Milliseconds a shell command takes inside the host (`date +%s%N` on both sides).
fn timed(host: &SystemdHost, command: &str) -> f64 {
    let out = host.sh(&format!(
        "a=$(date +%s%N); {command} >/dev/null 2>&1; b=$(date +%s%N); echo $(( (b - a) / 1000 ))"
    ));
    let micros: f64 = out
        .trim()
        .lines()
        .last()
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("no time from `{command}`: {out}"));
    micros / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A Kolla container whose service has no work (no workers) and exits within a millisecond of
/// SIGTERM, and its unit.
fn kolla(host: &SystemdHost, name: &str) -> (Container, String) {
    host.kolla_container(Engine::Docker, "docker", name, &[], &["--workers", "0"], 60)
}

/// Starts `unit` again and waits until its container is ready anew.
fn restart(host: &SystemdHost, container: &Container, unit: &str) {
    let before = container.logs().matches("ready pid=").count();
    host.systemctl(&["start", unit]);
    let ready = host.wait_until(Duration::from_secs(30), || {
        container.logs().matches("ready pid=").count() > before
    });
    assert!(ready, "{} did not start again", container.name);
}

/// `fleet` units with quiesce's drop-in and `fleet` with Kolla's own `ExecStop`, each group
/// stopped by one `systemctl stop` in alternating rounds (cache warm); the times in ms.
fn fleet_rounds(host: &SystemdHost, rounds: usize, fleet: usize) -> (Vec<f64>, Vec<f64>) {
    let group = |prefix: &str| -> Vec<(Container, String)> {
        (0..fleet)
            .map(|i| kolla(host, &format!("{prefix}-{i}")))
            .collect()
    };
    let (dropins, owns) = (group("fleet-dropin"), group("fleet-kolla"));
    let names: Vec<&str> = dropins.iter().map(|(c, _)| c.name.as_str()).collect();
    let mut generate = vec!["generate", "kolla-dropins", "--binary", QUIESCE];
    generate.extend(&names);
    assert!(host.quiesce(&generate).output().unwrap().status.success());
    host.systemctl(&["daemon-reload"]);
    let units = |group: &[(Container, String)]| {
        group
            .iter()
            .map(|(_, unit)| unit.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (mut own, mut with_quiesce) = (vec![], vec![]);
    for _ in 0..rounds {
        for (group, times) in [(&owns, &mut own), (&dropins, &mut with_quiesce)] {
            times.push(timed(host, &format!("systemctl stop {}", units(group))));
            for (container, unit) in group.iter() {
                restart(host, container, unit);
            }
        }
    }
    (own, with_quiesce)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let quiesce = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/quiesce".into()),
    );
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let fleet: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let cache = tempfile::tempdir().expect("a cache directory");
    let host = SystemdHost::boot("bench", &quiesce.canonicalize().unwrap(), cache.path(), &[]);
    let (with_quiesce, with_unit) = kolla(&host, "bench-dropin");
    let (kollas, kollas_unit) = kolla(&host, "bench-kolla");
    let (held, held_unit) = kolla(&host, "bench-held");
    let generated = host
        .quiesce(&[
            "generate",
            "kolla-dropins",
            "--binary",
            QUIESCE,
            &with_quiesce.name,
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    host.systemctl(&["daemon-reload"]);
    let (mut warm, mut cold, mut own, mut operator) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        own.push(timed(&host, &format!("systemctl stop {kollas_unit}")));
        restart(&host, &kollas, &kollas_unit);
        warm.push(timed(&host, &format!("systemctl stop {with_unit}")));
        restart(&host, &with_quiesce, &with_unit);
        host.sh("rm -rf /var/cache/quiesce/* /var/cache/quiesce/.??* 2>/dev/null; true");
        cold.push(timed(&host, &format!("systemctl stop {with_unit}")));
        restart(&host, &with_quiesce, &with_unit);
        operator.push(timed(
            &host,
            &format!(
                "QUIESCE_CACHE_DIR=/var/cache/quiesce {QUIESCE} stop -q {}",
                held.name
            ),
        ));
        restart(&host, &held, &held_unit);
    }
    let (fleet_own, fleet_quiesce) = fleet_rounds(&host, rounds, fleet);
    println!(
        "Kolla units under systemd 252, a service that exits at once; {rounds} rounds, median ms:"
    );
    let own_median = median(own.clone());
    let mut results = Vec::new();
    for (what, times) in [
        (
            "systemctl stop, Kolla's own ExecStop (docker stop -t 60)",
            own,
        ),
        ("systemctl stop, quiesce's drop-in, cache warm", warm),
        ("systemctl stop, quiesce's drop-in, cache cold", cold),
        (
            "quiesce stop NAME by an operator (held, settled, released)",
            operator,
        ),
    ] {
        let middle = median(times.clone());
        println!(
            "{what:<62} {middle:>8.1} ms  ({:+.1} ms over Kolla's own; min {:.1}, max {:.1})",
            middle - own_median,
            times.iter().copied().fold(f64::MAX, f64::min),
            times.iter().copied().fold(0.0, f64::max),
        );
        results.push((what, middle - own_median));
    }
    let (own_fleet, quiesce_fleet) = (median(fleet_own), median(fleet_quiesce));
    println!(
        "systemctl stop of {fleet} units at once: Kolla's own {own_fleet:.1} ms, quiesce's drop-in {quiesce_fleet:.1} ms ({:.2}x)",
        quiesce_fleet / own_fleet
    );
    let met = if quiesce_fleet <= own_fleet {
        "yes"
    } else {
        "NO"
    };
    println!(
        "RESULT|systemctl stop of {fleet} Kolla units, drop-in / own|<= 1.00x|{:.2}x ({quiesce_fleet:.0} ms)|{met}",
        quiesce_fleet / own_fleet
    );
    // For scripts/bench's table: what the drop-in's stops cost over the same stop without
    // quiesce (the service's own exit, about a millisecond, plus the docker CLI and systemd
    // machinery both pay), against the target: under 100 ms, cold or warm.
    for (what, over) in &results[1..3] {
        let met = if *over < 100.0 { "yes" } else { "NO" };
        println!("RESULT|{what}, over Kolla's own|< 100 ms|{over:.1} ms|{met}");
    }
}
