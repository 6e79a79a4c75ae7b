//! The vocabulary every layer speaks, as data: nothing here talks to an engine, a policy or
//! the operating system (the configuration file is the one thing read).
//!
//! - `config`: the TOML configuration file and its matching rules (globs, labels);
//! - `report`: the run report, what happened to each service step by step;
//! - `warning`: what the operator should know, with stable codes;
//! - `process`: a process seen in a container and what it does with each signal;
//! - `units`: durations and times as the report writes them, saturating;
//! - `text`: text from policies and containers made safe for a terminal;
//! - `supervision`: a systemd unit that supervises a container, and what a stop did about it;
//! - `digest`: content digests (`sha256:...`);
//! - `distribution`: the configuration of policies from OCI registries and of their trust;
//! - `exit`: the exit statuses of every command;
//! - `vars`: the environment variables quiesce reads, as a value the entry points hand down.

pub mod config;
pub mod digest;
pub mod distribution;
pub mod exit;
pub mod named_file;
pub mod process;
pub mod report;
pub mod supervision;
pub mod text;
pub mod units;
pub mod vars;
pub mod warning;
