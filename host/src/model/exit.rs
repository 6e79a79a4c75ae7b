//! The exit statuses every command ends with (README, "Exit status"): automation branches on
//! them, so each keeps its meaning across releases.

/// Everything asked for succeeded.
pub const SUCCESS: u8 = 0;
/// The command ran and found problems.
pub const PROBLEMS: u8 = 1;
/// Bad arguments, configuration or input; nothing was touched.
pub const INVALID_INPUT: u8 = 2;
/// The environment failed.
pub const ENVIRONMENT: u8 = 3;
