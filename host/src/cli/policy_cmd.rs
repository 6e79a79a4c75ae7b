//! `quiesce policy list` and `quiesce policy check`.
//!
//! Their text shows what policies say about themselves (names, versions, contract versions,
//! descriptions, errors) through [`safe`]: escaped control characters, one line per cell.

use std::path::PathBuf;

use super::{EngineArgs, Failure, RegistryArgs, add_registry_policies, exit};
use crate::model::config::Config;
use crate::model::text::safe;
use crate::output::documents::{
    CheckResults, CheckedFile, DOCUMENT_VERSION, PolicyEntry, PolicyList, to_json,
};
use crate::output::stdout::print_out;
use crate::policy::{
    BUILTIN_POLICIES, DirectoryError, LoadError, LoadedPolicy, PolicySource, wasm_files,
};

fn directory_failure(error: DirectoryError) -> Failure {
    Failure::environment(error.to_string())
}

/// `quiesce policy list`.
pub fn list(args: &EngineArgs, registry: &RegistryArgs, json: bool) -> Result<u8, Failure> {
    let config =
        Config::load(registry.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let engine = args.engine_with(&config)?;
    let (dir, required) = args.policies_dir_with(&config);
    let mut catalog = engine
        .catalog(Some(&dir), required)
        .map_err(directory_failure)?;
    add_registry_policies(
        &engine,
        &mut catalog,
        &config,
        registry.store.as_deref(),
        None,
    );
    catalog.load_all();
    let policies: Vec<_> = catalog.policies().collect();
    if json {
        print_out(&to_json(&PolicyList::new(
            policies.iter().map(|policy| &**policy),
            catalog.problems(),
            catalog.withheld_all(),
        )));
    } else {
        let rows: Vec<[String; 6]> = policies
            .iter()
            .map(|policy| {
                let info = policy.info();
                [
                    &info.name,
                    &info.version,
                    &info.contract_version,
                    &short_digest(policy.digest()),
                    &policy.source().to_string(),
                    &info.description,
                ]
                .map(|cell| safe(cell).into_owned())
            })
            .collect();
        let header = [
            "NAME",
            "VERSION",
            "CONTRACT",
            "DIGEST",
            "SOURCE",
            "DESCRIPTION",
        ];
        print_out(&table(&header, &rows));
        for problem in catalog.problems() {
            crate::output::logs::warning_text(&format!("not loaded: {problem}"));
        }
    }
    Ok(exit::SUCCESS)
}

fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// Left-aligned columns, the last one unpadded.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        text.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

/// `quiesce policy check [PATH...]`.
pub fn check(paths: &[PathBuf], args: &EngineArgs, json: bool) -> Result<u8, Failure> {
    let engine = args.engine()?;
    let mut results: Vec<(PathBuf, Result<LoadedPolicy, LoadError>)> = Vec::new();
    if paths.is_empty() {
        for builtin in BUILTIN_POLICIES {
            let result = engine.load_bytes(builtin.wasm, PolicySource::Builtin);
            results.push((
                PathBuf::from(format!("(built-in {})", builtin.name)),
                result,
            ));
        }
    }
    for path in files_to_check(paths, args)? {
        let result = engine.load_file(&path).map_err(|problem| problem.error);
        results.push((path, result));
    }
    if results.is_empty() {
        return Err(Failure::invalid(
            "no policy files to check: give .wasm files or directories holding them",
        ));
    }
    for (_, result) in &mut results {
        if let Ok(policy) = result
            && let Err(error) = policy.exercise()
        {
            *result = Err(error);
        }
    }
    let invalid = results.iter().filter(|(_, result)| result.is_err()).count();
    if json {
        let files = results
            .iter()
            .map(|(path, result)| CheckedFile {
                file: path.display().to_string(),
                valid: result.is_ok(),
                policy: result.as_ref().ok().map(PolicyEntry::from),
                reason: result.as_ref().err().map(ToString::to_string),
            })
            .collect();
        print_out(&to_json(&CheckResults {
            check_version: DOCUMENT_VERSION,
            files,
            invalid,
        }));
    } else {
        let mut text = String::new();
        for (path, result) in &results {
            match result {
                Ok(policy) => text.push_str(&format!(
                    "ok       {}: {} {} (contract {})\n",
                    safe(&path.display().to_string()),
                    safe(policy.name()),
                    safe(&policy.info().version),
                    safe(&policy.info().contract_version)
                )),
                Err(error) => text.push_str(&format!(
                    "invalid  {}: {}\n",
                    safe(&path.display().to_string()),
                    safe(&error.to_string())
                )),
            }
        }
        text.push_str(&format!(
            "{} checked, {} valid, {invalid} invalid\n",
            results.len(),
            results.len() - invalid
        ));
        print_out(&text);
    }
    Ok(if invalid == 0 {
        exit::SUCCESS
    } else {
        exit::PROBLEMS
    })
}

/// The files named by `paths` (directories expand to their `*.wasm` files), or the policies
/// directory's files when no path is given (if it exists or was named).
fn files_to_check(paths: &[PathBuf], args: &EngineArgs) -> Result<Vec<PathBuf>, Failure> {
    let paths = if paths.is_empty() {
        match args.policies_dir() {
            (dir, required) if required || dir.exists() => vec![dir],
            _ => Vec::new(),
        }
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(wasm_files(&path).map_err(directory_failure)?);
        } else if path.exists() {
            files.push(path);
        } else {
            return Err(Failure::invalid(format!(
                "{}: no such file or directory; give a policy .wasm file or a directory of them",
                path.display()
            )));
        }
    }
    Ok(files)
}
