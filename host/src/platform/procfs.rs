//! What this host's `/proc` says about a container's processes, where the engine runs here:
//! its PID 1 and the tree under it (read in microseconds, where the engine's `top` runs `ps`
//! for 10–15 ms on every stop's way to its first signal, issue 24), and stopping a command that
//! `docker exec` started.
//!
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

use crate::model::process::Process;
use crate::platform::reaper::send_signal;

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

/// Every living descendant of process `ancestor` (children, their children...), as pid,
/// parent and command line; processes running this same program (quiesce's own helpers) are
/// left out.
pub fn descendants(ancestor: i32) -> Vec<Process> {
    descendants_in(Path::new("/proc"), ancestor)
}

fn descendants_in(proc: &Path, ancestor: i32) -> Vec<Process> {
    let all = processes(proc);
    let own_program = std::fs::read_link(proc.join(ancestor.to_string()).join("exe")).ok();
    let descends = |mut pid: i32| {
        for _ in 0..all.len() {
            match all.get(&pid) {
                Some(ids) if ids.ppid == ancestor => return true,
                Some(ids) if ids.ppid > 0 && ids.ppid != pid => pid = ids.ppid,
                _ => return false,
            }
        }
        false
    };
    let mut found: Vec<Process> = all
        .iter()
        .filter(|(pid, _)| **pid != ancestor && descends(**pid))
        .filter(|(pid, _)| {
            own_program.is_none()
                || std::fs::read_link(proc.join(pid.to_string()).join("exe")).ok() != own_program
        })
        .map(|(pid, ids)| Process {
            pid: u64::try_from(*pid).unwrap_or_default(),
            ppid: u64::try_from(ids.ppid).unwrap_or_default(),
            args: std::fs::read(proc.join(pid.to_string()).join("cmdline"))
                .map(|line| {
                    String::from_utf8_lossy(&line)
                        .split('\0')
                        .filter(|arg| !arg.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            signals: None,
        })
        .collect();
    found.sort_by_key(|process| process.pid);
    found
}

/// Container `container_id`'s PID 1 (`pid1`, in this host's PID namespace: the engine's
/// `State.Pid`) and every process under it, as the engine's `top` lists them for what quiesce
/// needs (PID 1's parent is outside the list). `None` when `pid1` is not visible here as a
/// process of that container (a remote engine, quiesce in a PID namespace of its own) or ends
/// while it is read: the caller asks the engine instead.
pub fn container_tree(pid1: i32, container_id: &str) -> Option<Vec<Process>> {
    container_tree_in(Path::new("/proc"), pid1, container_id)
}

/// At most this many processes are read (`docker top` lists no more for what quiesce needs).
const TREE_LIMIT: usize = 4096;

fn container_tree_in(proc: &Path, pid1: i32, container_id: &str) -> Option<Vec<Process>> {
    if pid1 <= 0 || !in_container(proc, pid1, container_id) {
        return None;
    }
    let read = |pid: i32| -> Option<(Process, Vec<i32>)> {
        let dir = proc.join(pid.to_string());
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
        let args = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|arg| !arg.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut children = Vec::new();
        for task in std::fs::read_dir(dir.join("task")).ok()?.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                children.extend(
                    list.split_whitespace()
                        .filter_map(|child| child.parse::<i32>().ok()),
                );
            }
        }
        let signals = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|status| crate::model::process::Dispositions::parse(&status));
        let process = Process {
            pid: u64::try_from(pid).ok()?,
            ppid: u64::try_from(ids(&stat)?.ppid).ok()?,
            args,
            signals,
        };
        Some((process, children))
    };
    let (first, mut queue) = read(pid1)?;
    let mut tree = vec![first];
    while let Some(pid) = queue.pop() {
        if tree.len() >= TREE_LIMIT {
            break;
        }
        // A child that ended meanwhile is simply not listed, as `ps` would not list it.
        if let Some((process, children)) = read(pid) {
            tree.push(process);
            queue.extend(children);
        }
    }
    Some(tree)
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
pub fn kill_exec(pid: i32, container_id: &str) -> Result<usize, ExecNotKilled> {
    kill_exec_in(Path::new("/proc"), pid, container_id)
}

/// Why a command `docker exec` started could not be SIGKILLed from this host.
#[derive(Debug, thiserror::Error)]
pub enum ExecNotKilled {
    /// The pid the engine gave is another process here: the engine is elsewhere.
    #[error(
        "the engine's process {0} is not the container's here: the engine is not on this host (or quiesce runs in a PID namespace of its own), so it cannot be stopped from here"
    )]
    NotTheContainers(i32),
    /// The pid the engine gave is no process here.
    #[error(
        "the engine's process {0} is not visible on this host: the engine is remote (or quiesce runs in a PID namespace of its own), so it cannot be stopped from here"
    )]
    NotVisible(i32),
    /// A signal was refused.
    #[error(
        "cannot SIGKILL its process {pid}: {error} (stopping a command run in a container needs root)"
    )]
    Refused {
        /// The process.
        pid: i32,
        /// What `kill` said.
        error: std::io::Error,
    },
}

fn kill_exec_in(proc: &Path, pid: i32, container_id: &str) -> Result<usize, ExecNotKilled> {
    let mut signalled = 0;
    // A second round catches a child forked while the first was being signalled.
    for _ in 0..2 {
        let all = processes(proc);
        if signalled == 0 && all.contains_key(&pid) && !in_container(proc, pid, container_id) {
            return Err(ExecNotKilled::NotTheContainers(pid));
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
                    return Err(ExecNotKilled::Refused { pid: victim, error });
                }
            }
        }
    }
    if signalled == 0 && !proc.join(pid.to_string()).exists() {
        // Gone already, or never visible here: the engine says it runs, so it is elsewhere.
        return Err(ExecNotKilled::NotVisible(pid));
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
    fn a_containers_tree_is_its_pid1_and_what_runs_under_it_and_nothing_elsewhere() {
        // A fake /proc: 100 is the container's PID 1 (a shell), 101 its child, 102 a
        // grandchild; 7 (the shim, PID 1's parent) is in another control group.
        let proc = tempfile::tempdir().unwrap();
        let process = |pid: i32, ppid: i32, cmdline: &str, cgroup: &str, children: &str| {
            let dir = proc.path().join(pid.to_string());
            std::fs::create_dir_all(dir.join("task").join(pid.to_string())).unwrap();
            std::fs::write(
                dir.join("stat"),
                format!("{pid} (x) S {ppid} {pid} {pid} 0"),
            )
            .unwrap();
            std::fs::write(dir.join("cmdline"), cmdline.replace(' ', "\0") + "\0").unwrap();
            std::fs::write(dir.join("cgroup"), cgroup).unwrap();
            std::fs::write(
                dir.join("task").join(pid.to_string()).join("children"),
                children,
            )
            .unwrap();
        };
        process(
            7,
            1,
            "containerd-shim",
            "0::/system.slice/containerd.service",
            "100 ",
        );
        process(100, 7, "/bin/sh -c serve", "0::/docker/abc123", "101 ");
        process(101, 100, "/serve --workers 2", "0::/docker/abc123", "102 ");
        process(102, 101, "/serve --worker", "0::/docker/abc123", "");
        let tree = container_tree_in(proc.path(), 100, "abc123").unwrap();
        let listed: Vec<(u64, u64, &str)> = tree
            .iter()
            .map(|process| (process.pid, process.ppid, process.args.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (100, 7, "/bin/sh -c serve"),
                (101, 100, "/serve --workers 2"),
                (102, 101, "/serve --worker")
            ]
        );
        // The shim is not the container's: the engine is asked instead.
        assert!(container_tree_in(proc.path(), 7, "abc123").is_none());
        assert!(container_tree_in(proc.path(), 555, "abc123").is_none());
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
        assert!(error.to_string().contains("not on this host"), "{error}");
        let error = kill_exec_in(proc.path(), 77, "0123abcd").unwrap_err();
        assert!(
            error.to_string().contains("not visible on this host"),
            "{error}"
        );
    }
}
