//! A systemd unit that supervises a container, as the report and `plan` show it, and what a stop
//! did about it (the unit is found and held in `platform::systemd`).

use serde::{Deserialize, Serialize};

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

impl Supervisor {
    /// True when systemd would start the container again after it exits.
    pub fn restarts(&self) -> bool {
        restarts(&self.restart)
    }
}

/// What quiesce did about a supervising unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SupervisorAction {
    /// Nothing: `not_held` says why none was needed.
    None,
    /// Held: `Restart=no` (a runtime drop-in) from before the first step until systemd had seen
    /// the unit's main process exit and the unit had settled.
    Held,
}

/// What quiesce did about a supervising unit, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SupervisorReport {
    /// The unit, as found.
    #[serde(flatten)]
    pub unit: Supervisor,
    /// `none` or `held`.
    pub action: SupervisorAction,
    /// For `none`: why no hold was needed.
    pub not_held: Option<NotHeld>,
    /// For `held`: the drop-in was removed again and systemd reloaded (the unit's own
    /// `Restart=` is back).
    pub restored: bool,
    /// For `held`: the unit's state when it was given back: `inactive` or `failed` (it had
    /// settled after the container's exit), `active` (the container still runs: left running,
    /// or the run was abandoned), or what systemd said when it did not settle in time.
    pub unit_state: Option<String>,
}

/// Why a stop did not hold a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotHeld {
    /// systemd does not run here.
    NoSystemd,
    /// The unit would not start the container again (`Restart=no`).
    RestartOff,
    /// quiesce runs as the unit's own `ExecStop`: systemd is stopping the unit.
    OwnStop,
    /// systemd had a stop or restart job for the unit (`systemctl stop`, a host shutdown):
    /// it does not restart a unit it is stopping.
    StopJob,
    /// The unit was not active: the container runs outside it, and the unit has no process
    /// whose exit systemd could answer with a restart.
    UnitInactive,
}

impl NotHeld {
    /// In words, for `plan`.
    pub fn describe(self) -> &'static str {
        match self {
            NotHeld::NoSystemd => "systemd does not run here",
            NotHeld::RestartOff => "it does not restart its container",
            NotHeld::OwnStop => "quiesce is its own ExecStop",
            NotHeld::StopJob => "systemd is stopping it",
            NotHeld::UnitInactive => "it is not active",
        }
    }
}

/// True when a restart setting (a unit's `Restart=`, an engine's restart policy) would start
/// the container again after it exits: anything but unset or `no`.
pub fn restarts(setting: &str) -> bool {
    !matches!(setting, "" | "no")
}

/// True when the container has a restart policy the engine would act on.
pub fn has_restart_policy(facts: &quiesce_policy_sdk::ServiceFacts) -> bool {
    restarts(&facts.restart_policy)
}
