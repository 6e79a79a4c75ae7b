//! One stop per container on a host, whoever asks, and a record of what a stop changed
//! (issue 29).
//!
//! Two `quiesce stop`s of one container at once would signal it twice (a second SIGTERM means
//! "now" to oslo.service), and the second would read the restart policy the first had set
//! (`no`) as the container's own. Both happen on a Kolla host at shutdown, where
//! `quiesce.service` runs `quiesce stop --all` while systemd stops each Kolla unit through
//! `quiesce stop NAME`. So a stop first *claims* the container:
//!
//! - the claim is an exclusive lock on `<dir>/<id>.lock` (an open file description lock,
//!   `F_OFD_SETLK`). The kernel drops it when its process ends, however it ends: a stop that
//!   was SIGKILLed never blocks the next one. Others test it without taking it (`F_OFD_GETLK`),
//!   so looking never makes a claim fail;
//! - beside it, `<dir>/<id>.json` is the stop's [`StopRecord`], written (atomically, by rename)
//!   each time the stop changes something: the restart policy it set to `no` and the original,
//!   the systemd unit it held, and, as soon as the sequence is over, its outcome;
//! - a second stop that finds the container claimed does not start a sequence: it waits, within
//!   its own budget, until the record carries the outcome (then it reports that outcome, with
//!   `stopped_by` naming the other process) or the claim is free again;
//! - a stop that claims a container whose record is unfinished (its owner was killed) inherits
//!   what that owner changed: it puts back the original restart policy, removes a hold's
//!   drop-in, and says so. `quiesce recover` does the same for every such record; `quiesce
//!   plan` shows them and reads the original restart policy from them.
//!
//! The directory is `QUIESCE_STATE_DIR`, else `/run/quiesce` for root, else
//! `$XDG_RUNTIME_DIR/quiesce` (a tmpfs: records do not outlive a reboot, and neither does
//! anything they describe). It must be owned by the user and writable by nobody else: a record
//! says which restart policy to put back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::report::{ServiceOutcome, StoppedBy};
use crate::model::units::{from_epoch_ms, millis, now_ms, timestamp};
use crate::model::vars::Vars;

/// The version of the record's shape.
const RECORD_VERSION: u32 = 1;

/// Finished records older than this are removed by the next stop: every waiter has read its
/// outcome long before (waiters look every `CLAIM_POLL` of the executor).
const FINISHED_RECORD_AGE: Duration = Duration::from_secs(60);

/// The directory of claims and records.
#[derive(Clone, Debug)]
pub struct Claims {
    dir: PathBuf,
    /// When this process opened it (ms since the Unix epoch): a stop that finished later was
    /// under way while this process's run was asked for.
    opened_ms: u64,
    /// Where a record that cannot be written is said (the caller's error log).
    write_failed: fn(&str),
}

/// Why the claims directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stop records directory {} cannot be used: {reason}; two stops of one container cannot \
     be told apart, and a killed stop's changes are not recorded (set QUIESCE_STATE_DIR to a \
     directory only you can write)",
    .dir.display()
)]
pub struct ClaimsUnavailable {
    /// The directory.
    pub dir: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl ClaimsUnavailable {
    /// The warning a run carries when it goes on without claims.
    pub fn warning(&self) -> crate::model::warning::Warning {
        crate::model::warning::Warning::new(
            crate::model::warning::WarningCode::StopRecordFailed,
            self.to_string(),
        )
    }
}

/// What a stop changed on a container and its unit, and how it ended: all the next
/// invocation needs to undo a killed stop's changes or report a finished one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRecord {
    /// The shape's version.
    pub version: u32,
    /// The stopping process.
    pub pid: u32,
    /// When it claimed the container (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// The container's name.
    pub container: String,
    /// The restart policy set to `no` for the stop, if one was.
    pub restart_policy: Option<RecordedRestartPolicy>,
    /// The systemd unit held for the stop, if one was.
    pub unit_hold: Option<RecordedHold>,
    /// How the sequence ended, once it has.
    pub outcome: Option<RecordedOutcome>,
    /// When the stop finished (ms since the Unix epoch): everything it changed was given back
    /// as far as it could be.
    pub finished_at_ms: Option<u64>,
}

/// The engine restart policy a stop turned off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRestartPolicy {
    /// The container's own, in the CLI's form (`always`, `on-failure:3`).
    pub original: String,
    /// Put back.
    pub restored: bool,
}

/// A systemd unit a stop held (`Restart=no`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHold {
    /// The unit.
    pub unit: String,
    /// Given back.
    pub released: bool,
}

/// How a stop's sequence ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOutcome {
    /// The outcome.
    pub outcome: ServiceOutcome,
    /// The container's exit status.
    pub exit_code: Option<i32>,
    /// How long the sequence took.
    pub elapsed_ms: u64,
}

impl StopRecord {
    /// True when its stop left a change behind: a restart policy not put back, a unit still
    /// held. Either the stop was killed before it finished, or it finished without giving the
    /// change back (the container was left running, the engine or systemd refused).
    pub fn left_changes(&self) -> bool {
        self.restart_policy.as_ref().is_some_and(|r| !r.restored)
            || self.unit_hold.as_ref().is_some_and(|h| !h.released)
    }

    /// How its stop ended, for a message about what it left: "ended before it finished" (it
    /// was killed) or "finished but could not give back what it changed".
    pub fn how_it_ended(&self) -> &'static str {
        if self.finished_at_ms.is_none() {
            "ended before it finished"
        } else {
            "finished but could not give back what it changed"
        }
    }

    /// The restart policy the container really has, when this record's stop turned it off and
    /// did not put it back.
    pub fn original_restart_policy(&self) -> Option<&str> {
        self.restart_policy
            .as_ref()
            .filter(|policy| !policy.restored)
            .map(|policy| policy.original.as_str())
    }

    /// `quiesce stop (pid N, since HH:MM:SS)`, for messages.
    pub fn describe(&self) -> String {
        let since = from_epoch_ms(self.started_at_ms);
        format!("quiesce (pid {}, started {})", self.pid, timestamp(since))
    }
}

impl From<&StopRecord> for StoppedBy {
    fn from(record: &StopRecord) -> StoppedBy {
        StoppedBy {
            pid: record.pid,
            started_at: timestamp(from_epoch_ms(record.started_at_ms)),
        }
    }
}

/// A claim attempt's result.
#[derive(Debug)]
pub enum Attempt {
    /// The container is this process's to stop.
    Claimed(Box<Claim>),
    /// Another process is stopping it; its record so far.
    Busy(Option<StopRecord>),
}

/// A container claimed for a stop: the lock, held until dropped, and the stop's record.
#[derive(Debug)]
pub struct Claim {
    claims: Claims,
    id: String,
    /// Holds the lock.
    _lock: File,
    record: StopRecord,
    /// The record of the stop before this one, if there is one.
    pub previous: Option<StopRecord>,
    /// The record of an earlier stop that was killed, or that finished without giving back
    /// what it changed: what it left is this stop's to give back.
    pub inherited: Option<StopRecord>,
}

impl Claims {
    /// The default directory (see the module's doc), checked.
    pub fn open_default(vars: &Vars, write_failed: fn(&str)) -> Result<Claims, ClaimsUnavailable> {
        Claims::open(default_dir(vars)).map(|claims| claims.saying_write_failures_to(write_failed))
    }

    /// `dir`, created (mode 0700) when missing, and checked.
    pub fn open(dir: PathBuf) -> Result<Claims, ClaimsUnavailable> {
        let refuse = |reason: String| ClaimsUnavailable {
            dir: dir.clone(),
            reason,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|error| refuse(format!("cannot create it: {error}")))?;
        let meta = std::fs::symlink_metadata(&dir)
            .map_err(|error| refuse(format!("cannot read it: {error}")))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() {
            return Err(refuse("it is not a directory".into()));
        }
        if meta.uid() != me {
            return Err(refuse(format!(
                "it belongs to uid {}, not {me}",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "others can write it (mode {:o})",
                meta.mode() & 0o777
            )));
        }
        Ok(Claims {
            dir,
            opened_ms: now_ms(),
            write_failed: |text| eprintln!("error: {text}"),
        })
    }

    /// These claims, saying a record they cannot write through `write_failed` (the run's
    /// error log; standard error by default).
    pub fn saying_write_failures_to(mut self, write_failed: fn(&str)) -> Claims {
        self.write_failed = write_failed;
        self
    }

    /// When this process opened the directory (ms since the Unix epoch).
    pub fn opened_ms(&self) -> u64 {
        self.opened_ms
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", file_stem(id)))
    }

    /// Claims container `id` (named `container`), or says who has it.
    pub fn try_claim(&self, id: &str, container: &str) -> std::io::Result<Attempt> {
        let lock_path = self.path(id, "lock");
        let lock = loop {
            let lock = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&lock_path)?;
            if !lock_file(&lock, LockRequest::Take)? {
                return Ok(Attempt::Busy(self.read(id)));
            }
            // A finished claim's files may have been removed (and made anew) between the open
            // and the lock: only a lock on the file the path names now counts.
            let same = std::fs::symlink_metadata(&lock_path)
                .is_ok_and(|now| now.ino() == lock.metadata().map(|m| m.ino()).unwrap_or(0));
            if same {
                break lock;
            }
        };
        let previous = self.read(id);
        let inherited = previous
            .clone()
            .filter(|record| record.finished_at_ms.is_none() || record.left_changes());
        let mut record = StopRecord {
            version: RECORD_VERSION,
            pid: std::process::id(),
            started_at_ms: now_ms(),
            container: container.to_string(),
            ..StopRecord::default()
        };
        if let Some(earlier) = &inherited {
            // What the killed stop left is this stop's to put back; recorded at once, so a
            // second kill loses nothing either.
            record.restart_policy = earlier
                .restart_policy
                .clone()
                .filter(|policy| !policy.restored);
            record.unit_hold = earlier.unit_hold.clone().filter(|hold| !hold.released);
        }
        let claim = Claim {
            claims: self.clone(),
            id: id.to_string(),
            _lock: lock,
            record,
            previous,
            inherited,
        };
        claim.write();
        Ok(Attempt::Claimed(Box::new(claim)))
    }

    /// The record of container `id`, if there is a readable one.
    pub fn read(&self, id: &str) -> Option<StopRecord> {
        read_record(&self.path(id, "json"))
    }

    /// Every record whose stop was killed before it gave back what it changed, with the
    /// container's id: those whose claim is free now.
    pub fn left_behind(&self) -> Vec<(String, StopRecord)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, StopRecord)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".json")?.to_string();
                let record = self.read(&id)?;
                (record.left_changes() && !self.busy(&id)).then_some((id, record))
            })
            .collect();
        found.sort_by(|a, b| a.1.container.cmp(&b.1.container));
        found
    }

    /// True when a live process holds container `id`'s claim (tested, not taken).
    pub fn busy(&self, id: &str) -> bool {
        File::open(self.path(id, "lock"))
            .and_then(|lock| lock_file(&lock, LockRequest::Test))
            .is_ok_and(|free| !free)
    }

    /// Removes finished records older than [`FINISHED_RECORD_AGE`], with their lock files
    /// (each under its own lock, so a claim in progress, this process's included, is never
    /// removed). It reads every record: a stop runs it once, beside its sequences, not as
    /// each one finishes.
    pub fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let old = now_ms().saturating_sub(millis(FINISHED_RECORD_AGE));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            // A record is written last when its stop finishes: one written since `old` is not
            // old enough, and is not read (a busy host's directory holds many recent ones).
            let written_ms = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .map(|modified| {
                    millis(
                        modified
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default(),
                    )
                });
            if written_ms.is_ok_and(|written| written >= old) {
                continue;
            }
            // A record of changes not given back is kept until they are.
            let finished = read_record(&entry.path())
                .filter(|record| !record.left_changes())
                .and_then(|record| record.finished_at_ms)
                .is_some_and(|at| at < old);
            let lock_path = self.dir.join(format!("{stem}.lock"));
            // Writable: a write lock on a descriptor opened read-only is refused (EBADF).
            let Ok(lock) = OpenOptions::new().read(true).write(true).open(&lock_path) else {
                continue;
            };
            if finished && lock_file(&lock, LockRequest::Take).unwrap_or(false) {
                let _ = std::fs::remove_file(entry.path());
                let _ = std::fs::remove_file(&lock_path);
            }
        }
    }
}

impl Claim {
    /// The record so far.
    pub fn record(&self) -> &StopRecord {
        &self.record
    }

    /// Changes the record and writes it (atomically).
    pub fn update(&mut self, change: impl FnOnce(&mut StopRecord)) {
        change(&mut self.record);
        self.write();
    }

    fn write(&self) {
        let path = self.claims.path(&self.id, "json");
        let staging = self.claims.dir.join(format!(
            ".{}.{}.tmp",
            file_stem(&self.id),
            std::process::id()
        ));
        let bytes = serde_json::to_vec(&self.record).expect("a record serializes");
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&staging)
            .and_then(|mut file| file.write_all(&bytes))
            .and_then(|()| std::fs::rename(&staging, &path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&staging);
            (self.claims.write_failed)(&format!(
                "cannot write the stop record {}: {error}",
                path.display()
            ));
        }
    }

    /// The stop is over: recorded as finished, the claim given up.
    pub fn finish(mut self) {
        self.update(|record| record.finished_at_ms = Some(now_ms()));
    }

    /// The stop is over with `outcome`: both recorded in one write, the claim given up.
    pub fn finish_with(mut self, outcome: RecordedOutcome) {
        self.update(|record| {
            record.outcome = Some(outcome);
            record.finished_at_ms = Some(now_ms());
        });
    }
}

/// Taking a lock, or testing whether it could be taken.
#[derive(Clone, Copy)]
enum LockRequest {
    Take,
    Test,
}

/// An exclusive open-file-description lock on all of `file`, taken without waiting (true when
/// taken), or tested (true when it could be taken). It lasts until the file is closed, however
/// the process ends.
fn lock_file(file: &File, request: LockRequest) -> std::io::Result<bool> {
    // SAFETY: a zeroed `flock` is a valid value of this plain C struct.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    let command = match request {
        LockRequest::Take => libc::F_OFD_SETLK,
        LockRequest::Test => libc::F_OFD_GETLK,
    };
    // SAFETY: fcntl on a descriptor `file` owns, with a pointer to a live `flock`.
    if unsafe { libc::fcntl(file.as_raw_fd(), command, &mut lock) } != 0 {
        let error = std::io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => Ok(false),
            _ => Err(error),
        };
    }
    Ok(match request {
        LockRequest::Take => true,
        LockRequest::Test => lock.l_type == libc::F_UNLCK as libc::c_short,
    })
}

/// A container id as a file name: ids are hex; anything else is hashed.
/// The record in the file at `path`, if it is a readable one.
fn read_record(path: &Path) -> Option<StopRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn file_stem(id: &str) -> String {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        id.to_string()
    } else {
        crate::model::digest::content_digest(id.as_bytes()).replace(':', "-")
    }
}

/// `QUIESCE_STATE_DIR`, else `/run/quiesce` for root, else `$XDG_RUNTIME_DIR/quiesce`, else
/// `/tmp/quiesce-<uid>`.
pub fn default_dir(vars: &Vars) -> PathBuf {
    if let Some(dir) = vars.get("QUIESCE_STATE_DIR") {
        return PathBuf::from(dir);
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/quiesce");
    }
    vars.get("XDG_RUNTIME_DIR").map_or_else(
        || PathBuf::from(format!("/tmp/quiesce-{uid}")),
        |dir| Path::new(dir).join("quiesce"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> (tempfile::TempDir, Claims) {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::open(dir.path().join("state")).unwrap();
        (dir, claims)
    }

    #[test]
    fn a_claimed_container_is_busy_for_everyone_else_until_the_claim_ends() {
        let (_dir, claims) = claims();
        let Attempt::Claimed(mut claim) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("the first claim succeeds");
        };
        claim.update(|record| {
            record.restart_policy = Some(RecordedRestartPolicy {
                original: "always".into(),
                restored: false,
            })
        });
        // Another open file description (as another process has) is refused.
        match claims.try_claim("abc123", "web").unwrap() {
            Attempt::Busy(Some(record)) => {
                assert_eq!(record.pid, std::process::id());
                assert_eq!(record.original_restart_policy(), Some("always"));
            }
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(claims.busy("abc123"));
        claim.update(|record| record.restart_policy.as_mut().unwrap().restored = true);
        claim.finish();
        assert!(!claims.busy("abc123"));
        let Attempt::Claimed(next) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("free again");
        };
        assert!(
            next.inherited.is_none(),
            "a finished stop that gave everything back leaves nothing to inherit"
        );
    }

    #[test]
    fn a_stop_that_finished_without_giving_back_leaves_its_changes_until_they_are() {
        let (_dir, claims) = claims();
        let Attempt::Claimed(mut claim) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("claimed");
        };
        // The container was left running (`leave-running`): its policy stays `no`.
        claim.update(|record| {
            record.restart_policy = Some(RecordedRestartPolicy {
                original: "always".into(),
                restored: false,
            })
        });
        claim.finish();
        let record = claims.read("abc123").unwrap();
        assert!(record.left_changes());
        assert_eq!(
            record.how_it_ended(),
            "finished but could not give back what it changed"
        );
        // `quiesce recover` finds it, the sweep keeps it however old it is...
        assert_eq!(claims.left_behind().len(), 1);
        let long_ago = now_ms() - 2 * millis(FINISHED_RECORD_AGE);
        let mut old = record;
        old.finished_at_ms = Some(long_ago);
        let path = claims.path("abc123", "json");
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(crate::model::units::from_epoch_ms(long_ago)))
            .unwrap();
        claims.sweep();
        assert!(claims.read("abc123").is_some(), "swept with a change left");
        // ...and the next stop takes it over, as from a killed one.
        let Attempt::Claimed(next) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("claimed again");
        };
        let inherited = next.inherited.clone().expect("inherited");
        assert_eq!(inherited.original_restart_policy(), Some("always"));
        assert_eq!(next.record().original_restart_policy(), Some("always"));
    }

    #[test]
    fn a_claim_dropped_unfinished_leaves_its_changes_to_the_next_one() {
        let (_dir, claims) = claims();
        let Attempt::Claimed(mut claim) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("claimed");
        };
        claim.update(|record| {
            record.restart_policy = Some(RecordedRestartPolicy {
                original: "on-failure:3".into(),
                restored: false,
            });
            record.unit_hold = Some(RecordedHold {
                unit: "kolla-web-container.service".into(),
                released: false,
            });
        });
        drop(claim); // as if the process had been killed: the lock goes, the record stays
        let left = claims.left_behind();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.original_restart_policy(), Some("on-failure:3"));
        let Attempt::Claimed(next) = claims.try_claim("abc123", "web").unwrap() else {
            panic!("a killed stop does not block the next one");
        };
        let inherited = next.inherited.clone().expect("inherited");
        assert_eq!(inherited.original_restart_policy(), Some("on-failure:3"));
        // Carried over at once: killed again, nothing is lost.
        assert_eq!(
            next.record().original_restart_policy(),
            Some("on-failure:3")
        );
        assert_eq!(
            next.record().unit_hold.as_ref().map(|h| h.unit.as_str()),
            Some("kolla-web-container.service")
        );
    }

    #[test]
    fn finished_records_are_swept_once_old_and_nothing_else_is() {
        let (_dir, claims) = claims();
        let past = now_ms() - 2 * millis(FINISHED_RECORD_AGE);
        let leave = |id: &str, finished_at_ms: Option<u64>| {
            let Attempt::Claimed(mut claim) = claims.try_claim(id, id).unwrap() else {
                panic!("claimed {id}");
            };
            claim.update(|record| record.finished_at_ms = finished_at_ms);
        };
        // As written then (the sweep reads only records written before its horizon).
        let written_at = |id: &str, at_ms: u64| {
            let file = File::options()
                .write(true)
                .open(claims.path(id, "json"))
                .unwrap();
            file.set_modified(crate::model::units::from_epoch_ms(at_ms))
                .unwrap();
        };
        leave("finished-long-ago", Some(past));
        written_at("finished-long-ago", past);
        leave("finished-just-now", Some(now_ms()));
        // Its file dated back: the record's own time still keeps it.
        leave("finished-just-now-dated-back", Some(now_ms()));
        written_at("finished-just-now-dated-back", past);
        leave("killed-long-ago", None);
        written_at("killed-long-ago", past);
        let Attempt::Claimed(claim) = claims.try_claim("this-one", "web").unwrap() else {
            panic!("claimed");
        };
        claim.finish();
        claims.sweep();
        assert!(claims.read("finished-long-ago").is_none());
        assert!(!claims.path("finished-long-ago", "lock").exists());
        assert!(claims.read("finished-just-now").is_some());
        assert!(claims.read("finished-just-now-dated-back").is_some());
        assert!(claims.read("killed-long-ago").is_some());
        assert!(claims.read("this-one").is_some());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let refused = Claims::open(open).unwrap_err();
        assert!(
            refused.to_string().contains("others can write it"),
            "{refused}"
        );
    }

    #[test]
    fn ids_that_are_not_plain_become_safe_file_names() {
        assert_eq!(file_stem("0123abcd"), "0123abcd");
        let odd = file_stem("../../etc/passwd");
        assert!(odd.starts_with("sha256-") && !odd.contains('/'), "{odd}");
    }
}
