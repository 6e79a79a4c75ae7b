//! Containers that a systemd unit supervises: Kolla's `kolla-<name>-container.service` (since
//! kolla-ansible 16: `ExecStart=<engine> start -a <name>`, `Restart=always`), Podman's
//! `podman generate systemd` and Quadlet units (the container labelled `PODMAN_SYSTEMD_UNIT`).
//! A container such a unit supervises and that exits because quiesce stopped it is started
//! again by systemd (`start -a` returns, `Restart=` applies), whatever the engine's restart
//! policy says.
//!
//! What quiesce does about it (README "Kolla on systemd"):
//! - it finds the unit ([`Systemd::supervisor`]): the `PODMAN_SYSTEMD_UNIT` label, Kolla's
//!   unit name, or a unit whose `ExecStart` starts or runs the container;
//! - for the stop it holds the unit ([`hold`]): `Restart=no` in a runtime drop-in until systemd
//!   has seen the unit's main process exit and the unit has settled, then gives it back. No
//!   hold is needed when quiesce is the unit's own `ExecStop`, when systemd is already stopping
//!   the unit, or when the unit is not active;
//! - `quiesce plan` warns when the unit's own stop (its `ExecStop`'s `-t`, `TimeoutStopSec`)
//!   is shorter than the policy's worst case; `quiesce generate kolla-dropins` makes Kolla's
//!   units stop through quiesce ([`kolla`]).
//!
//! Unit files are read from the usual directories below a root (`/`, or `QUIESCE_SYSTEMD_ROOT`
//! to inspect another tree); `systemctl` is `QUIESCE_SYSTEMCTL` when set.

pub mod hold;
pub mod kolla;
pub mod shutdown_unit;
pub mod unit_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quiesce_policy_sdk::ServiceFacts;

use crate::model::supervision::{NotHeld, Supervisor, SupervisorAction, SupervisorReport};
use crate::model::vars::Vars;
pub use hold::{Hold, Released, UnitHold};
pub use kolla::{kolla_drop_in, kolla_unit_name};
pub use shutdown_unit::{UNIT_STOP_MARGIN, systemd_unit};
pub use unit_file::{DEFAULT_TIMEOUT_STOP, parse_timespan};
use unit_file::{UnitFile, apply, engine_stop_timeout, runs_quiesce, starts_container, values};

/// The label Podman puts on containers its units run.
pub const PODMAN_UNIT_LABEL: &str = "PODMAN_SYSTEMD_UNIT";

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
    services: Arc<std::sync::OnceLock<Vec<(String, UnitFile)>>>,
    /// `daemon-reload`s asked for and done, shared by clones: one reload serves every drop-in
    /// written before it started.
    reloads: Arc<Reloads>,
}

/// Why a `systemctl` call failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// `systemctl` could not be run at all.
    #[error("cannot run {}: {source}", .systemctl.display())]
    Run {
        /// The program.
        systemctl: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("`systemctl {command}` failed: {stderr}")]
    Failed {
        /// Its arguments.
        command: String,
        /// What it said.
        stderr: String,
    },
    /// A drop-in could not be written or removed.
    #[error("cannot {action} {}: {source}", .path.display())]
    File {
        /// `write` or `remove`.
        action: &'static str,
        /// The drop-in.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A supervising unit as a job of a run sees it: the unit, and whether the stop will hold it.
#[derive(Clone, Debug)]
pub struct Supervision {
    /// The systemd to ask.
    pub systemd: Systemd,
    /// The unit.
    pub unit: Supervisor,
    /// Why the stop will not hold the unit, when that is known before the run; `None`: it
    /// holds it, unless at the time systemd is already stopping the unit or it is not active.
    pub not_held: Option<NotHeld>,
}

impl Supervision {
    /// The supervision of the container `facts` describe, if a unit supervises it.
    pub fn of(systemd: &Systemd, facts: &ServiceFacts) -> Option<Supervision> {
        let unit = systemd.supervisor(facts)?;
        let not_held = if !systemd.running() {
            Some(NotHeld::NoSystemd)
        } else if !unit.restarts() {
            Some(NotHeld::RestartOff)
        } else if systemd.inside(&unit.unit) {
            Some(NotHeld::OwnStop)
        } else {
            None
        };
        Some(Supervision {
            systemd: systemd.clone(),
            unit,
            not_held,
        })
    }
}

impl Supervision {
    /// The report of this supervision before anything was done.
    pub fn report(&self) -> SupervisorReport {
        SupervisorReport {
            unit: self.unit.clone(),
            action: SupervisorAction::None,
            not_held: self.not_held,
            restored: false,
            unit_state: None,
        }
    }
}

/// The `ActiveState`, `SubState` and pending job of a unit, as `systemctl show` gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitState {
    /// `active`, `activating`, `deactivating`, `inactive`, `failed`, `reloading`.
    pub active: String,
    /// `running`, `auto-restart`, `stop`, `dead`, `exited`...
    pub sub: String,
    /// The type of the job pending for the unit (`stop`, `restart`, `start`...), if any.
    pub job: Option<String>,
}

impl UnitState {
    /// Inactive or failed: its processes are gone and systemd has decided what follows.
    pub fn settled(&self) -> bool {
        matches!(self.active.as_str(), "inactive" | "failed")
    }

    /// `active (running)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.active, self.sub)
    }
}

impl Default for Systemd {
    fn default() -> Self {
        Systemd::host()
    }
}

impl Systemd {
    /// `/` and `systemctl`, or `QUIESCE_SYSTEMD_ROOT` and `QUIESCE_SYSTEMCTL` of `vars`.
    pub fn from_vars(vars: &Vars) -> Systemd {
        Systemd::at(
            vars.get("QUIESCE_SYSTEMD_ROOT")
                .map_or_else(|| PathBuf::from("/"), PathBuf::from),
            vars.get("QUIESCE_SYSTEMCTL")
                .map_or_else(|| "systemctl".into(), PathBuf::from),
        )
    }

    /// The host's own: `/` and `systemctl` (what [`Systemd::from_vars`] gives without
    /// `QUIESCE_SYSTEMD_ROOT` and `QUIESCE_SYSTEMCTL`).
    pub fn host() -> Systemd {
        Systemd::at(PathBuf::from("/"), PathBuf::from("systemctl"))
    }

    /// The units below `root`, managed with `systemctl`.
    pub fn at(root: PathBuf, systemctl: PathBuf) -> Systemd {
        Systemd {
            root,
            systemctl,
            services: Default::default(),
            reloads: Default::default(),
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

    /// The unit `name` with its drop-ins applied.
    fn read_unit(&self, name: &str) -> Option<UnitFile> {
        let drop_in_dirs = UNIT_DIRS
            .iter()
            .rev()
            .map(|dir| self.root.join(dir).join(format!("{name}.d")));
        read_unit_at(&self.unit_path(name)?, drop_in_dirs)
    }

    /// Reads every `*.service` unit now (they are read once, by the first call or the first
    /// look for a container's supervisor), so that a look later does not wait for the disk;
    /// unless every container is named (`containers`) and has a unit by Kolla's name, which
    /// the look finds without reading the others (each unit's `quiesce stop NAME` on a Kolla
    /// host).
    pub fn read_units_for(&self, containers: Option<&[String]>) {
        let kolla_units_only = containers.is_some_and(|names| {
            names.iter().all(|name| {
                let unit = kolla::kolla_unit_name(name);
                valid_unit_name(&unit) && self.unit_path(&unit).is_some()
            })
        });
        if !kolla_units_only {
            self.services();
        }
    }

    /// Every `*.service` unit, read once. The directories are listed once, so that only the
    /// files and drop-in directories that exist are opened (a host has hundreds of units).
    fn services(&self) -> &[(String, UnitFile)] {
        self.services.get_or_init(|| {
            let listing = Listing::of(&self.root);
            listing
                .files
                .iter()
                .filter_map(|(name, path)| {
                    Some((
                        name.clone(),
                        read_unit_at(path, listing.drop_in_dirs(name))?,
                    ))
                })
                .collect()
        })
    }

    /// The unit that supervises the container `facts` describe, if one does.
    pub fn supervisor(&self, facts: &ServiceFacts) -> Option<Supervisor> {
        // The label is the container's own text: only a plain unit name is taken.
        let by_label = facts
            .label(PODMAN_UNIT_LABEL)
            .filter(|unit| valid_unit_name(unit))
            .map(|unit| (unit.to_string(), format!("label {PODMAN_UNIT_LABEL}")));
        let kolla = kolla_unit_name(&facts.name);
        let by_kolla = (valid_unit_name(&kolla) && self.unit_path(&kolla).is_some())
            .then(|| (kolla, "Kolla's unit name".to_string()));
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
            timeout_stop_ms: timeout.map(crate::model::units::millis),
            engine_stop_timeout_ms: exec_stop
                .iter()
                .find_map(|line| engine_stop_timeout(line))
                .map(crate::model::units::millis),
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

    /// Runs `systemctl ARGS` and returns its stdout.
    async fn systemctl(&self, args: &[&str]) -> Result<String, SystemdError> {
        let mut command = std::process::Command::new(&self.systemctl);
        command.args(args).stdin(std::process::Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(std::io::Error::other)
            .and_then(|output| output)
            .map_err(|source| SystemdError::Run {
                systemctl: self.systemctl.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(SystemdError::Failed {
                command: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// The unit's state, and the type of its pending job.
    pub async fn state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let shown = self
            .systemctl(&["show", unit, "--property=ActiveState,SubState,Job"])
            .await?;
        let property = |name: &str| {
            shown
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let mut state = UnitState {
            active: property("ActiveState"),
            sub: property("SubState"),
            job: None,
        };
        if !property("Job").is_empty() {
            // `JOB UNIT TYPE STATE`; the job may be done by now (then: none).
            let jobs = self
                .systemctl(&["list-jobs", "--no-legend", "--plain", unit])
                .await?;
            state.job = jobs.lines().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(1) == Some(&unit))
                    .then(|| fields.get(2).map(|kind| kind.to_string()))
                    .flatten()
            });
        }
        Ok(state)
    }

    /// `systemctl daemon-reload`, once for every caller whose change was made before it began:
    /// units held at the same moment share one reload.
    async fn daemon_reload(&self) -> Result<(), SystemdError> {
        let ticket = self.reloads.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.reloads.done.lock().await;
        if *done >= ticket {
            return Ok(());
        }
        let covered = self.reloads.requested.load(Ordering::SeqCst);
        self.systemctl(&["daemon-reload"]).await?;
        *done = covered;
        Ok(())
    }
}

/// The unit `path` with the drop-ins of `drop_in_dirs` applied (given lowest precedence
/// first): in file-name order, a drop-in of a directory earlier in precedence hiding one of the
/// same name later.
fn read_unit_at(path: &Path, drop_in_dirs: impl Iterator<Item = PathBuf>) -> Option<UnitFile> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut unit = UnitFile::new();
    apply(&mut unit, &text);
    let mut drop_ins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in drop_in_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
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

/// The service units below a root, from one listing of each unit directory.
#[derive(Debug, Default)]
struct Listing {
    /// Each unit's file, from the first directory (in precedence) that has it as a file.
    files: BTreeMap<String, PathBuf>,
    /// Each unit's `NAME.d` drop-in directories, highest precedence first.
    drop_in_dirs: BTreeMap<String, Vec<PathBuf>>,
}

impl Listing {
    fn of(root: &Path) -> Listing {
        let mut listing = Listing::default();
        for dir in UNIT_DIRS {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // A symbolic link counts as what it points to (a unit masked by a link to
                // /dev/null is no file, as `Path::is_file` says for a single look).
                let pointed = || std::fs::metadata(entry.path()).ok();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if let Some(unit) = name.strip_suffix(".d")
                    && unit.ends_with(".service")
                {
                    if kind.is_dir() || (kind.is_symlink() && pointed().is_some_and(|m| m.is_dir()))
                    {
                        let dirs = listing.drop_in_dirs.entry(unit.to_string()).or_default();
                        dirs.push(entry.path());
                    }
                } else if name.ends_with(".service")
                    && !listing.files.contains_key(&name)
                    && (kind.is_file()
                        || (kind.is_symlink() && pointed().is_some_and(|m| m.is_file())))
                {
                    listing.files.insert(name, entry.path());
                }
            }
        }
        listing
    }

    /// Unit `name`'s drop-in directories, lowest precedence first (as they are applied).
    fn drop_in_dirs(&self, name: &str) -> impl Iterator<Item = PathBuf> + '_ {
        self.drop_in_dirs
            .get(name)
            .into_iter()
            .flat_map(|dirs| dirs.iter().rev().cloned())
    }
}

/// Reloads asked for (a counter) and the last one covered by a finished reload.
#[derive(Debug, Default)]
struct Reloads {
    requested: AtomicU64,
    done: tokio::sync::Mutex<u64>,
}

/// True for a unit name systemd could have written: no path separators, no `..`, only the
/// characters unit names use.
pub fn valid_unit_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.contains('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '@' | '\\'))
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

    #[test]
    fn units_are_read_ahead_unless_every_named_container_has_a_kolla_unit() {
        let files = [
            (
                "etc/systemd/system/kolla-web-container.service",
                kolla_unit("web", 60),
            ),
            (
                "etc/systemd/system/other.service",
                "[Service]\nExecStart=/bin/true\n".into(),
            ),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (_root, systemd) = tree(&files);
        systemd.read_units_for(Some(&["web".to_string()]));
        assert!(
            systemd.services.get().is_none(),
            "Kolla's unit is found by its name"
        );
        systemd.read_units_for(Some(&["web".to_string(), "db".to_string()]));
        assert_eq!(systemd.services.get().map(Vec::len), Some(2));
        let (_root, by_selector) = tree(&files);
        by_selector.read_units_for(None);
        assert_eq!(by_selector.services.get().map(Vec::len), Some(2));
    }

    #[test]
    fn the_listing_reads_each_unit_as_a_single_look_does() {
        let (root, systemd) = tree(&[
            (
                "lib/systemd/system/web.service",
                "[Service]\nExecStart=/usr/bin/docker start -a web\nRestart=always\n",
            ),
            (
                "etc/systemd/system/web.service.d/10-stop.conf",
                "[Service]\nTimeoutStopSec=5min\n",
            ),
            (
                "run/systemd/system/web.service.d/10-stop.conf",
                "[Service]\nTimeoutStopSec=7min\n",
            ),
            (
                "usr/lib/systemd/system/web.service.d/20-restart.conf",
                "[Service]\nRestart=no\n",
            ),
            (
                "lib/systemd/system/masked.service",
                "[Service]\nExecStart=/usr/bin/docker start -a masked\n",
            ),
            (
                "usr/lib/systemd/system/db.service",
                "[Service]\nExecStart=/usr/bin/docker start -a db\n",
            ),
            (
                "lib/systemd/system/db.service",
                "[Service]\nExecStart=/usr/bin/docker start -a other\n",
            ),
        ]);
        // Masked in /etc: a link to /dev/null hides nothing from a look (it is no file).
        std::os::unix::fs::symlink(
            "/dev/null",
            root.path().join("etc/systemd/system/masked.service"),
        )
        .unwrap();
        let listed: Vec<(String, String)> = systemd
            .services()
            .iter()
            .map(|(name, unit)| (name.clone(), format!("{unit:?}")))
            .collect();
        let looked: Vec<(String, String)> = ["db.service", "masked.service", "web.service"]
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    format!("{:?}", systemd.read_unit(name).unwrap()),
                )
            })
            .collect();
        assert_eq!(listed, looked);
        let web = systemd.supervisor(&facts("web", &[])).unwrap();
        assert_eq!(
            web.timeout_stop_ms,
            Some(5 * 60_000),
            "/etc's drop-in hides /run's"
        );
        assert!(!web.restarts(), "a drop-in of another directory applies");
        let db = systemd.supervisor(&facts("db", &[])).unwrap();
        assert_eq!(db.unit, "db.service", "/usr/lib's file hides /lib's");
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
}
