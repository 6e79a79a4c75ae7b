//! Containers that a systemd unit supervises: Kolla's `kolla-<name>-container.service` (since
//! kolla-ansible 16: `ExecStart=<engine> start -a <name>`, `Restart=always`), Podman's
//! `podman generate systemd` and Quadlet units (the container labelled `PODMAN_SYSTEMD_UNIT`).
//! A container such a unit supervises and that exits because quiesce stopped it is started
//! again by systemd (`start -a` returns, `Restart=` applies), whatever the engine's restart
//! policy says.
//!
//! What quiesce does about it (its design, README "Kolla on systemd"):
//! - it finds the unit: the `PODMAN_SYSTEMD_UNIT` label, Kolla's unit name, or a unit whose
//!   `ExecStart` starts or runs the container;
//! - for the stop, it adds a runtime drop-in (`/run/systemd/system/<unit>.d/zz-quiesce-stop.conf`,
//!   `Restart=no`) and reloads systemd, stops the container itself, then removes the drop-in
//!   and reloads again: the unit ends inactive, and its next `systemctl start` behaves as
//!   before. When quiesce runs as that unit's own `ExecStop` (the drop-ins of `quiesce generate
//!   kolla-dropins`), systemd will not restart the unit anyway and nothing is changed;
//! - `quiesce plan` warns when the unit's own stop (its `ExecStop`'s `-t`, `TimeoutStopSec`)
//!   is shorter than the policy's worst case.
//!
//! Unit files are read from the usual directories below a root (`/`, or `QUIESCE_SYSTEMD_ROOT`
//! to inspect another tree); `systemctl` is `QUIESCE_SYSTEMCTL` when set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;
use serde::Serialize;

/// The label Podman puts on containers its units run.
pub const PODMAN_UNIT_LABEL: &str = "PODMAN_SYSTEMD_UNIT";

/// systemd's own stop timeout when a unit sets none.
pub const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(90);

/// The runtime drop-in's file name: after an administrator's `override.conf`, so it wins.
const DROP_IN: &str = "zz-quiesce-stop.conf";

/// Where units are found, in systemd's order of precedence, below the root.
const UNIT_DIRS: [&str; 5] = [
    "etc/systemd/system",
    "run/systemd/system",
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
];

/// The systemd quiesce works with: a root to read units below, and its `systemctl`.
#[derive(Clone, Debug)]
pub struct Systemd {
    /// `/`, or another tree's root.
    pub root: PathBuf,
    /// The `systemctl` to run.
    pub systemctl: PathBuf,
    /// Every service unit, read once (for the `ExecStart` search) and shared by clones.
    services: std::sync::Arc<std::sync::OnceLock<Vec<(String, UnitFile)>>>,
}

impl Default for Systemd {
    fn default() -> Self {
        Systemd::from_env()
    }
}

/// A unit file as read: `[section]` → key → every value in order (drop-ins applied).
type UnitFile = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The unit that supervises a container, as far as its stop is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Supervisor {
    /// The unit's name, e.g. `kolla-nova_compute-container.service`.
    pub unit: String,
    /// How it was found: `label PODMAN_SYSTEMD_UNIT`, `Kolla's unit name`, `its ExecStart`.
    pub found_by: String,
    /// Its `Restart=` (`always`, `on-failure`, `no`...).
    pub restart: String,
    /// Its `TimeoutStopSec` (systemd's 90 s when unset), in ms; none for `infinity`.
    pub timeout_stop_ms: Option<u64>,
    /// The grace its `ExecStop` gives the engine (`stop -t N`), in ms, if it says.
    pub engine_stop_timeout_ms: Option<u64>,
    /// Its `ExecStop` runs quiesce (the drop-ins of `quiesce generate kolla-dropins`).
    pub stops_with_quiesce: bool,
}

/// A supervising unit as a job of a run sees it: the unit, and whether quiesce must hold it
/// (systemd runs, the unit restarts its container, and quiesce is not its own stop).
#[derive(Clone, Debug)]
pub struct Supervision {
    /// The systemd to ask.
    pub systemd: Systemd,
    /// The unit.
    pub unit: Supervisor,
    /// Hold it (`Restart=no` for the time of the stop).
    pub hold: bool,
}

impl Supervision {
    /// The supervision of the container `facts` describe, if a unit supervises it.
    pub fn of(systemd: &Systemd, facts: &ServiceFacts) -> Option<Supervision> {
        let unit = systemd.supervisor(facts)?;
        let hold = systemd.running() && unit.restarts() && !systemd.inside(&unit.unit);
        Some(Supervision {
            systemd: systemd.clone(),
            unit,
            hold,
        })
    }
}

impl Supervisor {
    /// True when systemd would start the container again after it exits.
    pub fn restarts(&self) -> bool {
        !matches!(self.restart.as_str(), "" | "no")
    }
}

/// What quiesce did about a supervising unit, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SupervisorReport {
    /// The unit, as found.
    #[serde(flatten)]
    pub unit: Supervisor,
    /// What was done: `none` (it would not restart the container, or quiesce is its stop),
    /// or `restart turned off for the stop` (the runtime drop-in).
    pub action: String,
    /// For the drop-in: it was removed again and systemd reloaded.
    pub restored: bool,
}

impl Systemd {
    /// `/` and `systemctl`, or `QUIESCE_SYSTEMD_ROOT` and `QUIESCE_SYSTEMCTL`.
    pub fn from_env() -> Systemd {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        Systemd::at(
            var("QUIESCE_SYSTEMD_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from),
            var("QUIESCE_SYSTEMCTL").map_or_else(|| "systemctl".into(), PathBuf::from),
        )
    }

    /// The units below `root`, managed with `systemctl`.
    pub fn at(root: PathBuf, systemctl: PathBuf) -> Systemd {
        Systemd {
            root,
            systemctl,
            services: Default::default(),
        }
    }

    /// True when systemd runs this tree (`/run/systemd/system` exists, as sd_booted checks).
    pub fn running(&self) -> bool {
        self.root.join("run/systemd/system").is_dir()
    }

    /// The path of unit `name`, in the first directory that has it.
    fn unit_path(&self, name: &str) -> Option<PathBuf> {
        UNIT_DIRS
            .iter()
            .map(|dir| self.root.join(dir).join(name))
            .find(|path| path.is_file())
    }

    /// The unit `name` with its drop-ins applied (in file-name order; a drop-in of a
    /// directory earlier in precedence hides one of the same name later).
    fn read_unit(&self, name: &str) -> Option<UnitFile> {
        let text = std::fs::read_to_string(self.unit_path(name)?).ok()?;
        let mut unit = UnitFile::new();
        apply(&mut unit, &text);
        let mut drop_ins: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in UNIT_DIRS.iter().rev() {
            let Ok(entries) = std::fs::read_dir(self.root.join(dir).join(format!("{name}.d")))
            else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if file.ends_with(".conf") {
                    drop_ins.insert(file, entry.path());
                }
            }
        }
        for path in drop_ins.values() {
            if let Ok(text) = std::fs::read_to_string(path) {
                apply(&mut unit, &text);
            }
        }
        Some(unit)
    }

    /// Every `*.service` unit, read once.
    fn services(&self) -> &[(String, UnitFile)] {
        self.services.get_or_init(|| {
            let mut names: Vec<String> = UNIT_DIRS
                .iter()
                .filter_map(|dir| std::fs::read_dir(self.root.join(dir)).ok())
                .flat_map(|entries| entries.flatten())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".service"))
                .collect();
            names.sort();
            names.dedup();
            names
                .into_iter()
                .filter_map(|name| Some((name.clone(), self.read_unit(&name)?)))
                .collect()
        })
    }

    /// The unit that supervises the container `facts` describe, if one does.
    pub fn supervisor(&self, facts: &ServiceFacts) -> Option<Supervisor> {
        let by_label = facts
            .label(PODMAN_UNIT_LABEL)
            .map(|unit| (unit.to_string(), format!("label {PODMAN_UNIT_LABEL}")));
        let kolla = format!("kolla-{}-container.service", facts.name);
        let by_kolla = self
            .unit_path(&kolla)
            .map(|_| (kolla, "Kolla's unit name".to_string()));
        let by_exec_start = || {
            self.services().iter().find_map(|(name, unit)| {
                let starts = values(unit, "Service", "ExecStart")
                    .iter()
                    .any(|line| starts_container(line, facts));
                starts.then(|| (name.clone(), "its ExecStart".to_string()))
            })
        };
        let (name, found_by) = by_label.or(by_kolla).or_else(by_exec_start)?;
        let unit = self.read_unit(&name)?;
        let exec_stop = values(&unit, "Service", "ExecStop");
        let timeout = values(&unit, "Service", "TimeoutStopSec")
            .last()
            .or(values(&unit, "Service", "TimeoutSec").last())
            .map_or(Some(DEFAULT_TIMEOUT_STOP), |value| parse_timespan(value));
        Some(Supervisor {
            unit: name,
            found_by,
            restart: values(&unit, "Service", "Restart")
                .last()
                .cloned()
                .unwrap_or_else(|| "no".into()),
            timeout_stop_ms: timeout.map(crate::report::millis),
            engine_stop_timeout_ms: exec_stop
                .iter()
                .find_map(|line| engine_stop_timeout(line))
                .map(crate::report::millis),
            stops_with_quiesce: exec_stop.iter().any(|line| runs_quiesce(line)),
        })
    }

    /// True when this process runs in `unit`'s control group: quiesce is that unit's own
    /// `ExecStop`, inside a stop job that systemd will not follow with a restart.
    pub fn inside(&self, unit: &str) -> bool {
        std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|cgroup| {
            cgroup
                .lines()
                .any(|line| line.split('/').any(|part| part == unit))
        })
    }

    fn drop_in_path(&self, unit: &str) -> PathBuf {
        self.root
            .join("run/systemd/system")
            .join(format!("{unit}.d"))
            .join(DROP_IN)
    }

    async fn systemctl(&self, args: &[&str]) -> Result<(), String> {
        let mut command = std::process::Command::new(&self.systemctl);
        command.args(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(|error| error.to_string())
            .and_then(|output| output.map_err(|error| error.to_string()))
            .map_err(|error| format!("cannot run {}: {error}", self.systemctl.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`systemctl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Keeps systemd from restarting `unit` during and after the stop: the runtime drop-in
    /// `Restart=no`, then `systemctl daemon-reload`.
    pub async fn hold(&self, unit: &str) -> Result<(), String> {
        let path = self.drop_in_path(unit);
        let dir = path.parent().expect("a drop-in has a directory");
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                std::fs::write(
                    &path,
                    "# Written by quiesce for the time of a stop; removed after it.\n[Service]\nRestart=no\n",
                )
            })
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        self.systemctl(&["daemon-reload"]).await
    }

    /// Removes the runtime drop-in and reloads: the unit's own `Restart=` is back.
    pub async fn release(&self, unit: &str) -> Result<(), String> {
        let path = self.drop_in_path(unit);
        std::fs::remove_file(&path)
            .map_err(|error| format!("cannot remove {}: {error}", path.display()))?;
        let _ = std::fs::remove_dir(path.parent().expect("a drop-in has a directory"));
        self.systemctl(&["daemon-reload"]).await
    }
}

/// Applies one unit file's (or drop-in's) text: `[Section]`, `Key=value` lines with `\`
/// continuations and comments; an empty value resets a list (`ExecStop=`).
fn apply(unit: &mut UnitFile, text: &str) {
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            let values = unit
                .entry(section.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default();
            let value = value.trim();
            if value.is_empty() {
                values.clear();
            } else {
                values.push(value.to_string());
            }
        }
    }
}

fn values<'a>(unit: &'a UnitFile, section: &str, key: &str) -> &'a [String] {
    unit.get(section)
        .and_then(|keys| keys.get(key))
        .map_or(&[], Vec::as_slice)
}

/// The words of a command line, its `-`/`@`/`+`/`!` prefixes dropped.
fn words(line: &str) -> Vec<&str> {
    line.trim_start_matches(['-', '@', '+', '!', ':'])
        .split_whitespace()
        .collect()
}

fn is_engine(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("docker" | "podman" | "nerdctl")
    )
}

/// True when the command line `start`s the container (by name or id) or `run`s it under its
/// name.
fn starts_container(line: &str, facts: &ServiceFacts) -> bool {
    let words = words(line);
    let Some((program, args)) = words.split_first() else {
        return false;
    };
    if !is_engine(program) {
        return false;
    }
    let names = |word: &&str| {
        *word == facts.name
            || (!facts.id.is_empty() && facts.id.starts_with(*word) && word.len() >= 12)
    };
    match args
        .iter()
        .position(|word| matches!(*word, "start" | "run"))
    {
        Some(at) if args[at] == "start" => args[at + 1..].iter().any(names),
        Some(at) => {
            let rest = &args[at + 1..];
            rest.windows(2)
                .any(|pair| pair[0] == "--name" && pair[1] == facts.name)
                || rest
                    .iter()
                    .any(|word| word.strip_prefix("--name=") == Some(facts.name.as_str()))
        }
        None => false,
    }
}

/// The `-t N` / `--time N` / `--timeout N` of an engine's `stop` command line.
fn engine_stop_timeout(line: &str) -> Option<Duration> {
    let words = words(line);
    let (program, args) = words.split_first()?;
    if !is_engine(program) || !args.contains(&"stop") {
        return None;
    }
    args.windows(2).find_map(|pair| match pair[0] {
        "-t" | "--time" | "--timeout" => pair[1].parse().ok().map(Duration::from_secs),
        flag => flag
            .strip_prefix("--time=")
            .or_else(|| flag.strip_prefix("--timeout="))
            .or_else(|| flag.strip_prefix("-t="))
            .and_then(|seconds| seconds.parse().ok())
            .map(Duration::from_secs),
    })
}

fn runs_quiesce(line: &str) -> bool {
    words(line)
        .first()
        .is_some_and(|program| program.rsplit('/').next() == Some("quiesce"))
}

/// A systemd time span (`90`, `90s`, `5min`, `1h 30min`); `None` for `infinity`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "infinity" {
        return None;
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .ok()
        .or(Some(DEFAULT_TIMEOUT_STOP))
}

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
/// stop it through quiesce: `ExecStop` replaced (its failure ignored: exit 1 means something
/// needed SIGKILL, not that the stop failed), `TimeoutStopSec` the policy's worst case plus
/// `margin`.
pub fn kolla_drop_in(
    binary: &std::path::Path,
    config: Option<&std::path::Path>,
    container: &str,
    policy: &str,
    worst: Duration,
    margin: Duration,
) -> String {
    let config = config.map_or(String::new(), |config| {
        format!(" --config {}", config.display())
    });
    format!(
        "# Written by `quiesce generate kolla-dropins` for the container {container}: `systemctl stop`
# and `restart` of this unit (what kolla-ansible's handlers run) stop it through quiesce and its
# policy `{policy}`, whose worst case was {worst} when this was written; systemd waits that long
# and {margin} more. Regenerate after changing the policy, its settings or the budgets.
[Service]
ExecStop=
ExecStop=-{binary}{config} stop {container}
TimeoutStopSec={timeout}
",
        worst = humantime::format_duration(worst),
        margin = humantime::format_duration(margin),
        binary = binary.display(),
        timeout = (worst + margin).as_secs().max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kolla_unit(name: &str, graceful: u64) -> String {
        format!(
            "# kolla-{name}-container.service\n# autogenerated by Kolla-Ansible\n\n[Unit]\nDescription=docker kolla-{name}-container.service\n\n[Service]\nExecStart=/usr/bin/docker start -a {name}\nExecStop=/usr/bin/docker stop {name} -t {graceful}\nRestart=always\nRestartSec=11\nSuccessExitStatus=143\n\n[Install]\nWantedBy=multi-user.target\n"
        )
    }

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Systemd) {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let systemd = Systemd::at(root.path().to_path_buf(), "systemctl".into());
        (root, systemd)
    }

    fn facts(name: &str, labels: &[(&str, &str)]) -> ServiceFacts {
        ServiceFacts {
            id: "0123456789abcdef0123".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            ..ServiceFacts::default()
        }
    }

    #[test]
    fn kollas_unit_is_found_by_its_name_with_its_restart_and_stop_timeouts() {
        let (_root, systemd) = tree(&[(
            "etc/systemd/system/kolla-nova_compute-container.service",
            &kolla_unit("nova_compute", 60),
        )]);
        let found = systemd.supervisor(&facts("nova_compute", &[])).unwrap();
        assert_eq!(found.unit, "kolla-nova_compute-container.service");
        assert_eq!(found.found_by, "Kolla's unit name");
        assert!(found.restarts());
        assert_eq!(found.timeout_stop_ms, Some(90_000));
        assert_eq!(found.engine_stop_timeout_ms, Some(60_000));
        assert!(!found.stops_with_quiesce);
        assert!(systemd.supervisor(&facts("glance_api", &[])).is_none());
    }

    #[test]
    fn drop_ins_apply_in_order_and_an_empty_value_resets_a_list() {
        let (_root, systemd) = tree(&[
            (
                "etc/systemd/system/kolla-cinder_volume-container.service",
                &kolla_unit("cinder_volume", 60),
            ),
            (
                "etc/systemd/system/kolla-cinder_volume-container.service.d/quiesce.conf",
                "[Service]\nExecStop=\nExecStop=-/usr/local/bin/quiesce stop \\\n  --budget 20m cinder_volume\nTimeoutStopSec=21min\n",
            ),
            (
                "run/systemd/system/kolla-cinder_volume-container.service.d/zz-quiesce-stop.conf",
                "[Service]\nRestart=no\n",
            ),
        ]);
        let found = systemd.supervisor(&facts("cinder_volume", &[])).unwrap();
        assert!(found.stops_with_quiesce);
        assert_eq!(found.engine_stop_timeout_ms, None);
        assert_eq!(found.timeout_stop_ms, Some(21 * 60_000));
        assert!(!found.restarts());
    }

    #[test]
    fn podman_units_are_found_by_label_or_by_what_their_exec_start_runs() {
        let generated = "[Service]\nEnvironment=PODMAN_SYSTEMD_UNIT=%n\nRestart=always\nTimeoutStopSec=90\nExecStart=/usr/bin/podman run \\\n\t--cidfile=%t/%n.ctr-id \\\n\t--rm \\\n\t-d \\\n\t--replace \\\n\t--name web \\\n\t--stop-timeout 30 localhost/web\nExecStop=/usr/bin/podman stop \\\n\t--ignore -t 30 \\\n\t--cidfile=%t/%n.ctr-id\n";
        let (_root, systemd) = tree(&[("etc/systemd/system/container-web.service", generated)]);
        let by_exec = systemd.supervisor(&facts("web", &[])).unwrap();
        assert_eq!(
            (by_exec.unit.as_str(), by_exec.found_by.as_str()),
            ("container-web.service", "its ExecStart")
        );
        assert_eq!(by_exec.engine_stop_timeout_ms, Some(30_000));
        let by_label = systemd
            .supervisor(&facts(
                "other",
                &[(PODMAN_UNIT_LABEL, "container-web.service")],
            ))
            .unwrap();
        assert_eq!(by_label.found_by, "label PODMAN_SYSTEMD_UNIT");
        assert!(systemd.supervisor(&facts("webserver", &[])).is_none());
    }

    #[test]
    fn time_spans_are_read_as_systemd_writes_them() {
        assert_eq!(parse_timespan("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timespan("5min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_timespan("1h 30min"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_timespan("infinity"), None);
    }
}
