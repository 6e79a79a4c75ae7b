//! This host's operating system, as the layers above need it: no engine and no policy here.
//!
//! - `procfs`: what `/proc` says about a container's processes; stopping what an exec left;
//! - `reaper`: a PID 1's duties: signals on one thread, reaping, process groups;
//! - `pipes`: a command's output passed through and offered line by line;
//! - `systemd`: the units that supervise containers, and holding them during a stop;
//! - `claim`: one stop per container on a host, and the record of what a stop changed;
//! - `paths`: where quiesce keeps its state and caches on a host.

pub mod claim;
pub mod paths;
pub mod pipes;
pub mod procfs;
pub mod reaper;
pub mod systemd;
