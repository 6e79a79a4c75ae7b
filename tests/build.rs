//! Compiles the test fixture policies (`fixtures/policies/*`: hostile, broken and well-behaved
//! components) to wasm, and generates `fixtures.rs`: a constant with each component's path,
//! named after its crate (`fixture-loop-forever` becomes `LOOP_FOREVER`). It also builds the
//! static `test-service` binary the Docker tests put in a `FROM scratch` image.

#[path = "../host/build/guests.rs"]
mod guests;

use std::fmt::Write;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let tests = Path::new(&manifest_dir);
    let workspace = tests.parent().expect("workspace root");
    let fixtures = guests::build(
        workspace,
        &guests::crate_dirs(&tests.join("fixtures/policies")),
    );

    let mut code = String::new();
    let mut all = String::from(
        "/// Every fixture: (crate name, component path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for fixture in &fixtures {
        let constant = fixture
            .package
            .trim_start_matches("fixture-")
            .replace('-', "_")
            .to_uppercase();
        let path = fixture.wasm.display().to_string();
        writeln!(code, "/// The compiled `{}` component.", fixture.package).unwrap();
        writeln!(code, "pub const {constant}: &str = {path:?};").unwrap();
        writeln!(all, "    ({:?}, {path:?}),", fixture.package).unwrap();
    }
    all.push_str("];\n");
    code.push_str(&all);
    let service =
        guests::build_static_binary(workspace, &tests.join("test-service"), "test-service");
    writeln!(
        code,
        "/// The static test-service binary (for the `FROM scratch` test image)."
    )
    .unwrap();
    writeln!(
        code,
        "pub const TEST_SERVICE_BIN: &str = {:?};",
        service.display().to_string()
    )
    .unwrap();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("fixtures.rs");
    std::fs::write(out, code).expect("write fixtures.rs");
}
