//! Driving shutdowns: the SDK's sequence over a runtime, for one service ([`executor`]) and for
//! many ([`orchestrate`]: dependency order, parallelism, one deadline; [`stop`]: a whole stop
//! to its report), and putting back what
//! a stop that was killed had changed ([`recover`]). [`simulated`]: a whole run against scripted
//! services in virtual time, for `plan` and the worst case.

pub mod executor;
pub mod orchestrate;
pub mod recover;
pub mod simulated;
pub mod stop;
