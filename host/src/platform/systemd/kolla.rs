//! Kolla's units (kolla-ansible 16 and later: `kolla-<name>-container.service`, written from
//! its `kolla_systemd_worker.py` template) and the drop-in `quiesce generate kolla-dropins`
//! writes for each, so that systemd's own stop of the unit (what kolla-ansible's handlers ask
//! for over D-Bus: `StopUnit`, `RestartUnit`) stops the container through quiesce.

use std::time::Duration;

use super::unit_file::quote;
use super::{Systemd, UNIT_DIRS};

use crate::platform::paths::SYSTEM_CACHE_DIR;

/// The unit name of Kolla's container `name`.
pub fn kolla_unit_name(container: &str) -> String {
    format!("kolla-{container}-container.service")
}

impl Systemd {
    /// The containers Kolla's units run (from `kolla-<name>-container.service` unit names).
    pub fn kolla_containers(&self) -> Vec<String> {
        let mut names: Vec<String> = UNIT_DIRS
            .iter()
            .filter_map(|dir| std::fs::read_dir(self.root.join(dir)).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_prefix("kolla-")?
                    .strip_suffix("-container.service")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The drop-in that makes `systemctl stop` (and `restart`) of Kolla's unit for `container`
/// stop it through quiesce: `ExecStop` replaced by `stop_command` and the container (its
/// failure ignored: exit 1 means something needed SIGKILL, not that the stop failed),
/// `TimeoutStopSec` the policy's worst case plus `margin`, and the compile cache where the
/// unit finds it warm.
///
/// systemd runs `ExecStop` also when the main process (`docker start -a`) ends on its own,
/// e.g. after the container crashed: quiesce then finds the container stopped and returns at
/// once, and the unit's `Restart=` applies as before.
pub fn kolla_drop_in(
    stop_command: &[String],
    container: &str,
    policy: &str,
    worst: Duration,
    margin: Duration,
) -> String {
    let command: Vec<String> = stop_command
        .iter()
        .map(String::as_str)
        .chain([container])
        .map(quote)
        .collect();
    format!(
        "# Written by `quiesce generate kolla-dropins` for the container {container}: `systemctl stop`
# and `restart` of this unit (what kolla-ansible's handlers run) stop it through quiesce and its
# policy `{policy}`, whose worst case was {worst} when this was written; systemd waits that long
# and {margin} more. Regenerate after changing the policy, its settings or the budgets.
[Service]
Environment=QUIESCE_CACHE_DIR={SYSTEM_CACHE_DIR}
ExecStop=
ExecStop=-{command}
TimeoutStopSec={timeout}
",
        command = command.join(" "),
        worst = humantime::format_duration(worst),
        margin = humantime::format_duration(margin),
        timeout = (worst + margin).as_secs().max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_command_is_written_as_systemd_reads_it() {
        let stop = [
            "/opt/my tools/quiesce",
            "stop",
            "--config",
            "/etc/q.toml",
            "-H",
            "unix:///run/podman/podman.sock",
        ]
        .map(String::from);
        let text = kolla_drop_in(
            &stop,
            "nova_api",
            "oslo",
            Duration::from_secs(75),
            Duration::from_secs(30),
        );
        assert!(
            text.contains("\nExecStop=-\"/opt/my tools/quiesce\" stop --config /etc/q.toml -H unix:///run/podman/podman.sock nova_api\n"),
            "{text}"
        );
        assert!(text.contains("\nTimeoutStopSec=105\n"), "{text}");
        assert!(
            text.contains("\nEnvironment=QUIESCE_CACHE_DIR=/var/cache/quiesce\n"),
            "{text}"
        );
        assert_eq!(quote("50%"), "50%%");
    }
}
