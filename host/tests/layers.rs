//! The layout's rules (`src/lib.rs`, "Rules this layout keeps"), checked over the source's own
//! module paths: a layer imports only from itself and the layers below it, no file reaches
//! back to itself through the files it imports, and only the entry points (`cli/`, `init/`)
//! read the process's environment or reach a real engine.
//!
//! A reference is every `crate::a::b` path and every `super::` path in code (comments are not
//! code), resolved to the deepest module file it names. A module and its own child modules are
//! one concept split across files (a child may use its parent's private items, the parent its
//! children's): references between them are not counted as a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, from the ground up. `lib` (the crate root) and `main` sit above them all.
const LAYERS: [&str; 10] = [
    "model",
    "platform",
    "policy",
    "distribution",
    "runtime",
    "run",
    "prepare",
    "output",
    "init",
    "cli",
];

/// A module file: its path of module names from the crate root (`["run", "executor"]`).
type Module = Vec<String>;

fn rank(module: &Module) -> usize {
    let top = module.first().map(String::as_str).unwrap_or("lib");
    LAYERS
        .iter()
        .position(|layer| *layer == top)
        .unwrap_or(LAYERS.len())
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// `src/run/executor/mod.rs` is `run::executor`; `src/lib.rs` and `src/main.rs` are the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut names: Module = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        names.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        names.pop();
    }
    names
}

/// The file's code without comments (line comments, doc comments, block comments) and without
/// string literals' contents, so a path written in prose or in a message is not a reference.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '"' => {
                code.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                code.push('"');
            }
            c => code.push(c),
        }
    }
    code
}

/// The module paths a file's code names: `crate::x::y...` as written, `super::` resolved
/// against the file's own module. Grouped imports (`use crate::a::{b, c::d}`) name `a::b` and
/// `a::c::d`.
fn references(module: &Module, code: &str) -> Vec<Module> {
    let bytes: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let (base, skip) = if starts_word && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if starts_word && rest.starts_with("super::") {
            // A module's `super` is its parent module, whether it is `x.rs` or `x/mod.rs`.
            let mut base = module.clone();
            let mut j = i;
            let mut levels = 0;
            while bytes[j..].iter().take(7).collect::<String>() == "super::" {
                levels += 1;
                j += 7;
            }
            for _ in 0..levels {
                base.pop();
            }
            found.extend(paths_after(&bytes, j, base));
            i = j;
            continue;
        } else {
            i += 1;
            continue;
        };
        found.extend(paths_after(&bytes, i + skip, base));
        i += skip;
    }
    found
}

/// The paths written at `bytes[at..]` below `base`: `a::b::Item` or `a::{b, c::d}`.
fn paths_after(bytes: &[char], at: usize, base: Module) -> Vec<Module> {
    let mut path = base;
    let mut i = at;
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_') {
            i += 1;
        }
        if i > start {
            path.push(bytes[start..i].iter().collect());
        }
        if bytes[i..].iter().take(3).collect::<String>() == "::{" {
            // A group: each member, split at the commas of this level.
            let mut depth = 0;
            let mut member_start = i + 3;
            let mut found = Vec::new();
            let mut j = i + 3;
            while j < bytes.len() {
                match bytes[j] {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.extend(member(bytes, member_start, j, &path));
                        return found;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(member(bytes, member_start, j, &path));
                        member_start = j + 1;
                    }
                    _ => {}
                }
                j += 1;
            }
            return found;
        }
        if bytes[i..].iter().take(2).collect::<String>() == "::" {
            i += 2;
            continue;
        }
        return vec![path];
    }
}

fn member(bytes: &[char], start: usize, end: usize, base: &Module) -> Vec<Module> {
    let text: String = bytes[start..end].iter().collect();
    let trimmed = text.trim_start();
    let offset = start + (text.len() - trimmed.len());
    if trimmed.is_empty() || trimmed.starts_with("self") {
        return vec![base.clone()];
    }
    paths_after(bytes, offset, base.clone())
}

/// The deepest module file a path names (`run::executor::ServiceJob` is `run::executor`).
fn resolve<'a>(path: &Module, modules: &'a BTreeSet<Module>) -> Option<&'a Module> {
    (1..=path.len())
        .rev()
        .find_map(|len| modules.get(&path[..len].to_vec()))
}

fn is_ancestor(ancestor: &Module, of: &Module) -> bool {
    ancestor.len() < of.len() && of[..ancestor.len()] == ancestor[..]
}

struct House {
    /// Module -> the modules its code names (other than itself).
    imports: BTreeMap<Module, BTreeSet<Module>>,
}

fn house() -> House {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 40, "the sources were not found under {src:?}");
    let modules: BTreeSet<Module> = files.iter().map(|file| module_of(&src, file)).collect();
    let mut imports = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let named: BTreeSet<Module> = references(&module, &code)
            .iter()
            .filter_map(|path| resolve(path, &modules))
            .filter(|target| **target != module)
            .cloned()
            .collect();
        imports
            .entry(module)
            .or_insert_with(BTreeSet::new)
            .extend(named);
    }
    House { imports }
}

fn show(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

#[test]
fn no_layer_imports_a_layer_above_it() {
    let house = house();
    let mut upward = Vec::new();
    for (module, targets) in &house.imports {
        for target in targets {
            if rank(target) > rank(module) {
                upward.push(format!("{} -> {}", show(module), show(target)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run back up a layer (order: {LAYERS:?}):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_file_reaches_back_to_itself() {
    let house = house();
    // Edges between a module and its own descendants are one concept's inside.
    let edges: BTreeMap<&Module, Vec<&Module>> = house
        .imports
        .iter()
        .map(|(module, targets)| {
            let outside = targets
                .iter()
                .filter(|target| !is_ancestor(module, target) && !is_ancestor(target, module))
                .collect();
            (module, outside)
        })
        .collect();
    let mut cycles = Vec::new();
    for start in edges.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack: Vec<(&Module, Vec<&Module>)> = vec![(start, vec![start])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(at).into_iter().flatten() {
                if next == start {
                    let mut names: Vec<String> = path.iter().map(|m| show(m)).collect();
                    names.push(show(start));
                    cycles.push(names.join(" -> "));
                } else if seen.insert(*next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push((next, longer));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}

/// The entry points: the only layers that read the process's environment or reach an engine.
const ENTRY_POINTS: [&str; 2] = ["cli", "init"];

/// The files outside the entry points whose code (comments left out) holds one of `needles`.
fn outside_entry_points_holding(needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        if module
            .first()
            .is_some_and(|layer| ENTRY_POINTS.contains(&layer.as_str()))
        {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for needle in needles {
            if code.contains(needle) {
                found.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    found
}

#[test]
fn only_the_entry_points_read_the_environment() {
    let found = outside_entry_points_holding(&["env::var", "env::vars", "env::set_var"]);
    assert!(
        found.is_empty(),
        "environment read below cli/ and init/ (take a `model::vars::Vars` instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_entry_points_reach_a_real_engine() {
    let found = outside_entry_points_holding(&["DockerRuntime::connect", "ProcessRuntime::new"]);
    assert!(
        found.is_empty(),
        "an engine reached below cli/ and init/ (take a `Runtime` instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_checks() {
    // The checker itself: a grouped import, a `super::` path and a path in a comment.
    let module: Module = vec!["run".into(), "executor".into(), "keeping".into()];
    let code = code_of(
        "use crate::model::{report::ServiceReport, warning::{Warning, WarningCode}};\n\
         use super::ServiceJob;\n\
         // crate::cli::main is only prose here\n\
         let text = \"crate::output::logs\";\n",
    );
    let found: BTreeSet<String> = references(&module, &code).iter().map(show).collect();
    let expected: BTreeSet<String> = [
        "model::report::ServiceReport",
        "model::warning::Warning",
        "model::warning::WarningCode",
        "run::executor::ServiceJob",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
    // And the house as built is read: the executor names the runtime's trait.
    let house = house();
    let executor: Module = vec!["run".into(), "executor".into()];
    assert!(house.imports[&executor].contains(&vec!["runtime".to_string()]));
}
