//! The shape of a component, checked before anything compiles it (issue 17, classes 2 and 3).
//!
//! Compiling costs time and memory that grow with a function's size and, faster than linearly,
//! with the values it keeps live at once; a policy with one huge tangled function (even one
//! never called) can take minutes to compile. Instances cost memories and tables. So an
//! untrusted component is parsed first (one linear pass, no compilation) and refused, naming
//! the limit, when any core module in it exceeds what a policy needs: the number of functions,
//! one function's body size or locals, linear memories (one, no larger than the memory cap),
//! tables, data, globals. The limits are far above what the built-in policies use (their
//! largest figures are in the tests) and far below what makes compiling slow.

use wasmparser::{Encoding, Parser, Payload};

use super::error::{LoadError, ShapeViolation};

/// The most an untrusted component may contain, checked before compiling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Core modules in the component.
    pub modules: u64,
    /// Functions defined, all core modules together.
    pub functions: u64,
    /// Bytes of one function's body.
    pub function_bytes: u64,
    /// Locals one function declares.
    pub function_locals: u64,
    /// Linear memories defined, all core modules together.
    pub memories: u64,
    /// Tables defined, all core modules together.
    pub tables: u64,
    /// Initial elements of one table.
    pub table_elements: u64,
    /// Bytes of data segments, all core modules together.
    pub data_bytes: u64,
    /// Globals defined, all core modules together.
    pub globals: u64,
}

impl Default for ShapeLimits {
    fn default() -> ShapeLimits {
        ShapeLimits {
            modules: 16,
            functions: 50_000,
            function_bytes: 128 << 10,
            function_locals: 2_000,
            memories: 1,
            // The pool's own cap on one instance (a component over it could not run).
            tables: u64::from(TABLES_PER_INSTANCE),
            table_elements: 20_000,
            data_bytes: 16 << 20,
            globals: 10_000,
        }
    }
}

impl ShapeLimits {
    /// Limits no real input reaches: the shape is not checked (for tests of what lies behind).
    pub fn unlimited() -> ShapeLimits {
        ShapeLimits {
            modules: u64::MAX,
            functions: u64::MAX,
            function_bytes: u64::MAX,
            function_locals: u64::MAX,
            memories: u64::MAX,
            tables: u64::MAX,
            table_elements: u64::MAX,
            data_bytes: u64::MAX,
            globals: u64::MAX,
        }
    }
}

/// What a component holds, as far as the limits are concerned (the largest single items and
/// the totals).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Core modules.
    pub modules: u64,
    /// Functions defined.
    pub functions: u64,
    /// The largest function body, in bytes.
    pub largest_function_bytes: u64,
    /// The most locals one function declares.
    pub most_function_locals: u64,
    /// Linear memories defined.
    pub memories: u64,
    /// The largest initial linear memory, in bytes.
    pub largest_memory_bytes: u64,
    /// Tables defined.
    pub tables: u64,
    /// The largest initial table, in elements.
    pub largest_table_elements: u64,
    /// Bytes of data segments.
    pub data_bytes: u64,
    /// Globals defined.
    pub globals: u64,
}

/// Parses `wasm` and refuses it at the first limit it exceeds; `memory_bytes` is the memory
/// cap one instance runs under (a memory that starts larger could never be instantiated).
pub fn check_shape(
    wasm: &[u8],
    limits: &ShapeLimits,
    memory_bytes: usize,
) -> Result<Shape, LoadError> {
    let memory_cap = u64::try_from(memory_bytes).unwrap_or(u64::MAX);
    let mut shape = Shape::default();
    // Which core module the payloads belong to (1-based; 0 while in the component itself),
    // and how many functions of it were seen, to name the culprit.
    let mut module = 0u64;
    let mut function = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|error| LoadError::Invalid(error.to_string()))?;
        let place = |function: Option<u64>| match function {
            Some(index) => format!("function {index} of core module {module}"),
            None => format!("core module {module}"),
        };
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => {
                shape.modules += 1;
                module = shape.modules;
                function = 0;
                within("core modules", shape.modules, limits.modules, || {
                    "the component".into()
                })?;
            }
            Payload::FunctionSection(reader) => {
                shape.functions += u64::from(reader.count());
                within("functions", shape.functions, limits.functions, || {
                    "the component's core modules together".into()
                })?;
            }
            Payload::CodeSectionEntry(body) => {
                function += 1;
                let bytes = u64::try_from(body.range().len()).unwrap_or(u64::MAX);
                shape.largest_function_bytes = shape.largest_function_bytes.max(bytes);
                within("bytes of code", bytes, limits.function_bytes, || {
                    place(Some(function))
                })?;
                let mut locals = 0u64;
                let reader = body.get_locals_reader().map_err(invalid)?;
                for declaration in reader {
                    let (count, _) = declaration.map_err(invalid)?;
                    locals = locals.saturating_add(u64::from(count));
                }
                shape.most_function_locals = shape.most_function_locals.max(locals);
                within("locals", locals, limits.function_locals, || {
                    place(Some(function))
                })?;
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    shape.memories += 1;
                    within("linear memories", shape.memories, limits.memories, || {
                        "the component's core modules together".into()
                    })?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16).min(63);
                    let bytes = memory.initial.saturating_mul(page);
                    shape.largest_memory_bytes = shape.largest_memory_bytes.max(bytes);
                    within("bytes of initial memory", bytes, memory_cap, || place(None))?;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(invalid)?;
                    shape.tables += 1;
                    within("tables", shape.tables, limits.tables, || {
                        "the component's core modules together".into()
                    })?;
                    let elements = table.ty.initial;
                    shape.largest_table_elements = shape.largest_table_elements.max(elements);
                    within(
                        "initial table elements",
                        elements,
                        limits.table_elements,
                        || place(None),
                    )?;
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    let data = data.map_err(invalid)?;
                    let bytes = u64::try_from(data.data.len()).unwrap_or(u64::MAX);
                    shape.data_bytes = shape.data_bytes.saturating_add(bytes);
                    within("bytes of data", shape.data_bytes, limits.data_bytes, || {
                        "the component's core modules together".into()
                    })?;
                }
            }
            Payload::GlobalSection(reader) => {
                shape.globals += u64::from(reader.count());
                within("globals", shape.globals, limits.globals, || {
                    "the component's core modules together".into()
                })?;
            }
            _ => {}
        }
    }
    Ok(shape)
}

fn invalid(error: wasmparser::BinaryReaderError) -> LoadError {
    LoadError::Invalid(error.to_string())
}

/// `Ok` when `found` is within `limit`; otherwise the violation, naming `what` and where.
fn within(
    what: &'static str,
    found: u64,
    limit: u64,
    place: impl FnOnce() -> String,
) -> Result<(), LoadError> {
    if found <= limit {
        return Ok(());
    }
    Err(LoadError::Shape(ShapeViolation {
        place: place(),
        what,
        found,
        limit,
    }))
}

/// Linear memories one instance may have (a Rust policy has one).
pub const MEMORIES_PER_INSTANCE: u32 = 1;

/// Tables one instance may have (a Rust policy has two or three: its own and the component
/// model's shims).
pub const TABLES_PER_INSTANCE: u32 = 8;

/// Core module instances one instance may have (a Rust policy has a few).
pub const CORE_INSTANCES_PER_INSTANCE: u32 = 16;
