//! `mysql`: TERM (clean shutdown: flush, close tables, write the redo log); SIGKILL only after a long wait.
//!
//! MySQL and MariaDB: TERM starts a normal shutdown (connections are closed, InnoDB flushes its
//! buffer pool unless fast shutdown is configured). It can take minutes on a large buffer pool;
//! SIGKILL forces crash recovery at the next start.
//!
//! TERM does not wait for running statements: the server kills them and rolls their
//! transactions back (measured with MariaDB 10.11: a transaction in flight is lost, the shutdown
//! is clean). To keep them, set `inflight_command` to a command printing how many statements are
//! running, for example
//! `["mariadb", "-N", "-e", "select count(*) from information_schema.processlist where command not in ('Sleep','Daemon') and id <> connection_id()"]`:
//! the policy then runs it every `check_interval` before TERM and sends TERM when the count
//! reaches 0, when it has not fallen for `stuck_after`, or after `max_drain` (each decided on a
//! fresh reading). New statements are not refused meanwhile: take the server out of its clients'
//! rotation first where that matters. PID 1 may be `mysqld`/`mariadbd` itself: it handles TERM
//! and QUIT; it ignores INT, so the policy never sends it.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `mysql` policy.
pub struct MysqlPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `mysql`.
    pub struct Settings {
        /// A command printing the number of statements running (empty: TERM at once).
        inflight_command: Vec<String> = Vec::new(),
        /// How often to run inflight_command.
        check_interval: PositiveDuration = PositiveDuration::secs(2),
        /// Send TERM when the count has not fallen for this long.
        stuck_after: PositiveDuration = PositiveDuration::secs(60),
        /// The longest wait for running statements in any case.
        max_drain: PositiveDuration = PositiveDuration::secs(300),
        /// How long the clean shutdown may take after TERM.
        shutdown_timeout: PositiveDuration = PositiveDuration::secs(180),
        /// SIGKILL when it takes longer (crash recovery at the next start).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let mut rungs = Vec::new();
    if !s.inflight_command.is_empty() {
        rungs.push(Rung::Progress {
            probe: s.inflight_command.clone(),
            interval: s.check_interval.get(),
            stuck_after: s.stuck_after.get(),
            max: s.max_drain.get(),
        });
    }
    rungs.push(Rung::signal(Signal::TERM, s.shutdown_timeout.get()));
    Ladder::new(rungs).with_kill(s.kill)
}

impl Policy for MysqlPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "mysql",
            env!("CARGO_PKG_VERSION"),
            "MySQL / MariaDB: TERM (clean shutdown: flush, close tables, write the redo log); SIGKILL only after a long wait.",
        )
        .images(["mysql*", "mariadb*", "percona*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(MysqlPolicy);

quiesce_policy_sdk::policy_tests!(
    MysqlPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/mysql.toml"),
);
