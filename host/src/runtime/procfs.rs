//! Stopping a command that `docker exec` started, from this host: the Docker Engine API has no
//! way to stop an exec (`docker exec` itself leaves a command running when the client goes
//! away), and Podman's compatible API none either.
//!
//! What the engine does give is the command's process id in the host's PID namespace (`Pid` of
//! `GET /exec/{id}/json`). When the engine runs on this host and quiesce sees the host's
//! processes (`/proc`), quiesce SIGKILLs that process and every process it started: its
//! descendants, and the members of its session and process group (an exec'd command is a
//! session leader; a child that was orphaned and adopted elsewhere stays in its session).
//! Only processes in the container's control group (their `/proc/PID/cgroup` names the
//! container's id) are touched, so a process id reused by anything else is never signalled.
//!
//! What it cannot cover: a remote engine (`tcp://`, an SSH tunnel), or quiesce in a PID
//! namespace of its own (in a container with the engine's socket): the process is not visible
//! here, nothing is signalled, and the caller reports that the command may still run; a child
//! that started a session of its own and was adopted outside the command's process tree.
//! Signalling another user's processes needs root (or CAP_KILL), as `docker` needs access to
//! the engine's socket.

use std::collections::HashMap;
use std::path::Path;

use quiesce_policy_sdk::Signal;

use crate::init::supervisor::send_signal;

/// A process's ids, from `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ids {
    ppid: i32,
    group: i32,
    session: i32,
}

/// Reads the ids after the command name (which may hold spaces and parentheses).
fn ids(stat: &str) -> Option<Ids> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(1);
    Some(Ids {
        ppid: fields.next()?.parse().ok()?,
        group: fields.next()?.parse().ok()?,
        session: fields.next()?.parse().ok()?,
    })
}

/// True when `pid` runs in the control group of container `container_id`.
fn in_container(proc: &Path, pid: i32, container_id: &str) -> bool {
    !container_id.is_empty()
        && std::fs::read_to_string(proc.join(pid.to_string()).join("cgroup"))
            .is_ok_and(|cgroups| cgroups.contains(container_id))
}

/// Every process, with its ids.
fn processes(proc: &Path) -> HashMap<i32, Ids> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, ids(&stat)?))
        })
        .collect()
}

/// The processes `leader` started: itself, its descendants, and its session's and process
/// group's members.
fn started_by(leader: i32, all: &HashMap<i32, Ids>) -> Vec<i32> {
    let descends = |mut pid: i32| {
        for _ in 0..all.len() {
            if pid == leader {
                return true;
            }
            match all.get(&pid) {
                Some(ids) if ids.ppid > 0 && ids.ppid != pid => pid = ids.ppid,
                _ => return false,
            }
        }
        false
    };
    let mut found: Vec<i32> = all
        .iter()
        .filter(|(pid, ids)| ids.session == leader || ids.group == leader || descends(**pid))
        .map(|(pid, _)| *pid)
        .collect();
    found.sort_unstable();
    found
}

/// SIGKILLs process `pid` of container `container_id` (host PID namespace) and everything it
/// started, in that container. `Ok(n)`: `n` processes signalled (0: nothing left of it).
pub fn kill_exec(pid: i32, container_id: &str) -> Result<usize, String> {
    kill_exec_in(Path::new("/proc"), pid, container_id)
}

fn kill_exec_in(proc: &Path, pid: i32, container_id: &str) -> Result<usize, String> {
    let mut signalled = 0;
    // A second round catches a child forked while the first was being signalled.
    for _ in 0..2 {
        let all = processes(proc);
        if signalled == 0 && all.contains_key(&pid) && !in_container(proc, pid, container_id) {
            return Err(format!(
                "the engine's process {pid} is not the container's here: the engine is not on this host (or quiesce runs in a PID namespace of its own), so it cannot be stopped from here"
            ));
        }
        let victims: Vec<i32> = started_by(pid, &all)
            .into_iter()
            .filter(|victim| in_container(proc, *victim, container_id))
            .collect();
        if victims.is_empty() {
            break;
        }
        for victim in victims {
            match send_signal(victim, Signal::KILL, false) {
                Ok(()) => signalled += 1,
                Err(error) if error.raw_os_error() == Some(libc::ESRCH) => {}
                Err(error) => {
                    return Err(format!(
                        "cannot SIGKILL its process {victim}: {error} (stopping a command run in a container needs root)"
                    ));
                }
            }
        }
    }
    if signalled == 0 && !proc.join(pid.to_string()).exists() {
        // Gone already, or never visible here: the engine says it runs, so it is elsewhere.
        return Err(format!(
            "the engine's process {pid} is not visible on this host: the engine is remote (or quiesce runs in a PID namespace of its own), so it cannot be stopped from here"
        ));
    }
    Ok(signalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_are_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (weird) name) S 4200 4242 4242 0 -1 4194560 93 0 0 0";
        assert_eq!(
            ids(stat),
            Some(Ids {
                ppid: 4200,
                group: 4242,
                session: 4242
            })
        );
        assert_eq!(ids("garbage"), None);
    }

    #[test]
    fn what_a_command_started_is_its_tree_its_session_and_its_group() {
        let ids = |ppid, group, session| Ids {
            ppid,
            group,
            session,
        };
        let all = HashMap::from([
            (1, ids(0, 1, 1)),     // the container's PID 1
            (10, ids(5, 10, 10)),  // the exec'd command (a session leader)
            (11, ids(10, 10, 10)), // its child
            (12, ids(11, 12, 12)), // a grandchild in a session of its own
            (13, ids(1, 10, 10)),  // an orphan adopted by PID 1, still in the session
            (20, ids(5, 20, 20)),  // another exec
            (21, ids(20, 20, 20)), // its child
        ]);
        assert_eq!(started_by(10, &all), [10, 11, 12, 13]);
        assert_eq!(started_by(99, &all), Vec::<i32>::new());
    }

    #[test]
    fn a_process_outside_the_container_is_never_signalled() {
        // A fake /proc: process 1 (this test's stand-in) is in another control group.
        let proc = tempfile::tempdir().unwrap();
        let dir = proc.path().join("1");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("stat"), "1 (init) S 0 1 1 0").unwrap();
        std::fs::write(dir.join("cgroup"), "0::/init.scope\n").unwrap();
        let error = kill_exec_in(proc.path(), 1, "0123abcd").unwrap_err();
        assert!(error.contains("not on this host"), "{error}");
        let error = kill_exec_in(proc.path(), 77, "0123abcd").unwrap_err();
        assert!(error.contains("not visible on this host"), "{error}");
    }
}
