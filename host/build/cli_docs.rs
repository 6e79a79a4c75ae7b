//! Shell completions and man pages, generated from the command line's definition
//! (`src/cli/args.rs`, included here) so they cover every subcommand and never drift from it.
//! The generated `cli_docs.rs` embeds them in the binary (`quiesce generate completions SHELL`,
//! `quiesce generate man --dir DIR`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;

/// The definition refers to its parent module's duration parser. Values are never parsed at
/// build time; this one accepts what humantime accepts, like the SDK's.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| error.to_string())
}

/// The same, for the durations that must be more than zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

#[allow(dead_code)]
#[path = "../src/cli/args.rs"]
mod args;

/// Writes the completions and man pages into `out_dir`, and `cli_docs.rs` listing them.
pub fn generate(out_dir: &Path) {
    println!("cargo:rerun-if-changed=src/cli/args.rs");
    let docs = out_dir.join("cli-docs");
    let _ = std::fs::remove_dir_all(&docs);
    std::fs::create_dir_all(&docs).expect("create the cli-docs directory");

    let mut code = String::from(
        "/// Shell completion scripts, generated at build time: (shell, script).\n\
         pub const COMPLETIONS: &[(&str, &str)] = &[\n",
    );
    for shell in args::Shell::ALL {
        let generator = match shell {
            args::Shell::Bash => clap_complete::Shell::Bash,
            args::Shell::Zsh => clap_complete::Shell::Zsh,
            args::Shell::Fish => clap_complete::Shell::Fish,
            args::Shell::Elvish => clap_complete::Shell::Elvish,
            args::Shell::Powershell => clap_complete::Shell::PowerShell,
        };
        let mut command = args::Cli::command();
        let path = clap_complete::generate_to(generator, &mut command, "quiesce", &docs)
            .expect("generate completions");
        writeln!(
            code,
            "    ({:?}, include_str!({:?})),",
            shell.name(),
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n\n");

    code.push_str(
        "/// Man pages, one per command and subcommand, generated at build time: (file, page).\n\
         pub const MAN_PAGES: &[(&str, &str)] = &[\n",
    );
    let man_dir = docs.join("man");
    std::fs::create_dir_all(&man_dir).expect("create the man directory");
    clap_mangen::generate_to(args::Cli::command(), &man_dir).expect("generate man pages");
    let mut pages: Vec<_> = std::fs::read_dir(&man_dir)
        .expect("read the man directory")
        .map(|entry| entry.expect("a man page").path())
        .collect();
    pages.sort();
    for page in pages {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            page.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("cli_docs.rs"), code).expect("write cli_docs.rs");
}
