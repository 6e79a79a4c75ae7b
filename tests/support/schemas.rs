//! Writes the JSON Schemas of quiesce's machine interface (`quiesce::output::schema::all`) to
//! `schemas/` at the workspace root: `cargo run -p quiesce-tests --bin schemas` after a change
//! of a serialized type (the `schemas` integration test says when).

fn main() {
    let dir = quiesce_tests::workspace().join("schemas");
    std::fs::create_dir_all(&dir).expect("create schemas/");
    for (name, schema) in quiesce::output::schema::all() {
        let path = dir.join(name);
        std::fs::write(&path, schema).expect("write a schema");
        println!("{}", path.display());
    }
}
