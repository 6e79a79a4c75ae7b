//! The `quiesce` binary: everything lives in the library; see `quiesce::cli`.

fn main() -> std::process::ExitCode {
    quiesce::cli::main()
}
