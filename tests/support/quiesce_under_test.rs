//! The `quiesce` binary, built inside the test crate so integration tests can run it
//! (`CARGO_BIN_EXE_*` only names binaries of the test's own package).

fn main() -> std::process::ExitCode {
    quiesce::cli::main()
}
