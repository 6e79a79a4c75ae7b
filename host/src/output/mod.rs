//! What people and programs read.
//!
//! - `progress`: a run as it happens, and its summary table;
//! - `emit`: where a run's report goes (stdout, `--report`, `--timeline`);
//! - `logs`: stderr besides progress, as text or JSON lines, and the libraries' logs (`-v`);
//! - `style`: colours (`--color`, `NO_COLOR`);
//! - `documents`: the policy commands' JSON; `schema`: the JSON Schemas of every document;
//! - `timeline`: the report drawn as an SVG timeline;
//! - `stdout`: what commands print on stdout, and whether it could be written.

pub mod documents;
pub mod emit;
pub mod logs;
pub mod progress;
pub mod schema;
pub mod stdout;
pub mod style;
pub mod timeline;
