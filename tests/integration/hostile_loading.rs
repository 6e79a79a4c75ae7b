//! Hostile inputs met while loading policies (issue 17, classes 1–4), each a real component
//! through the real engine and its compile worker: native code planted in the compile cache, a
//! component too costly to compile, a component that would take more than its share of the
//! instance pool, and `*.wasm` entries that are not what they claim. Every one is refused or
//! skipped with its file and its reason named; none hangs, none runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiesce::model::digest::content_digest;
use quiesce::policy::{
    CacheUse, CallFailure, CompileCache, INSTANCES_PER_POLICY, KEY_FILE, LoadError, LoadProblem,
    PolicyEngine, PolicyLimits, PolicySource, ShapeLimits,
};
use quiesce::sdk::{Context, ServiceFacts};
use quiesce_tests::{builtin, dir_with, fixtures, many_memories, quiesce, wasm};

/// Guards against a hang only; no verdict depends on it.
const HANG_BOUND: Duration = Duration::from_secs(300);

/// A private, empty compile cache directory (mode 0700, this user's) in a temporary parent.
fn private_cache() -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    (parent, dir)
}

/// The compiled artifact of the `echo` fixture under `engine`'s settings: real native code that
/// the engine would accept, planted under another component's name.
fn echo_artifact(engine: &PolicyEngine) -> Vec<u8> {
    engine
        .sandbox()
        .engine()
        .precompile_component(&wasm(fixtures::ECHO))
        .unwrap()
}

/// The `default` policy's component as a policy file would hold it: a copy of the built-in's
/// bytes, untrusted like any file, so it is compiled through the cache (the built-ins come
/// precompiled in the binary and never read it).
fn default_copy() -> Vec<u8> {
    builtin("default").to_vec()
}

/// Loads a policies directory holding `default.wasm` (the copy above), the way every command
/// does, and checks `default` is the real one, not code planted under its digest.
fn assert_real_default(engine: &PolicyEngine) {
    let dir = dir_with(&[("default.wasm", &default_copy())]);
    let catalog = engine.catalog(Some(dir.path()), true).unwrap();
    assert!(catalog.problems().is_empty(), "{:?}", catalog.problems());
    let default = catalog.get("default").expect("the default policy");
    assert!(matches!(default.source(), PolicySource::File(_)));
    assert_eq!(default.digest(), content_digest(builtin("default")));
    assert_eq!(
        default.info().name,
        "default",
        "the planted code was loaded"
    );
}

// ----- class 1: the compile cache -----

#[test]
fn native_code_planted_in_a_private_cache_is_never_loaded() {
    let (_parent, cache) = private_cache();
    let engine = crate::engine_with_cache(PolicyLimits::default(), &cache);
    if let Some(refused) = engine.cache_refused() {
        panic!("{refused}");
    }
    let sandbox_engine = engine.sandbox().engine();
    let entry = cache.join(CompileCache::entry_name(
        sandbox_engine,
        &content_digest(builtin("default")),
    ));
    let artifact = echo_artifact(&engine);

    // A bare artifact (as entries were before they were authenticated).
    std::fs::write(&entry, &artifact).unwrap();
    assert_real_default(&engine);

    // An entry in the authenticated format, with a tag made without the key.
    let mut forged = b"QCACHE1\n".to_vec();
    forged.extend_from_slice(&[0u8; 32]);
    forged.extend_from_slice(&artifact);
    std::fs::write(&entry, &forged).unwrap();
    assert_real_default(&engine);

    // A genuine entry of another component, copied under this component's name.
    let echo = wasm(fixtures::ECHO);
    let (_, used) = engine.compile(&echo, None).unwrap();
    assert_ne!(used, CacheUse::Hit);
    let genuine = cache.join(CompileCache::entry_name(
        sandbox_engine,
        &content_digest(&echo),
    ));
    std::fs::copy(&genuine, &entry).unwrap();
    assert_real_default(&engine);

    // The real entry, written by quiesce, is used.
    let (_, used) = engine.compile(&default_copy(), None).unwrap();
    assert_eq!(used, CacheUse::Hit);
}

#[test]
fn a_cache_directory_others_can_write_is_refused_and_never_read() {
    let (_parent, cache) = private_cache();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let engine = crate::engine_with_cache(PolicyLimits::default(), &cache);
    let refused = engine.cache_refused().expect("a shared cache is refused");
    assert_eq!(refused.dir, cache);
    assert!(refused.reason.contains("mode 0777"), "{refused}");
    // Even a correctly tagged entry would not be read: plant a bare one and load.
    let entry = cache.join(CompileCache::entry_name(
        engine.sandbox().engine(),
        &content_digest(builtin("default")),
    ));
    std::fs::write(&entry, echo_artifact(&engine)).unwrap();
    assert_real_default(&engine);
    let (_, used) = engine.compile(&default_copy(), None).unwrap();
    assert_eq!(used, CacheUse::Uncached);
    assert!(!cache.join(KEY_FILE).exists(), "nothing written there");
}

#[test]
fn a_cache_directory_of_another_user_is_refused() {
    // As root, a directory given to `nobody`; as anyone else, `/` (root's).
    let (_parent, private) = private_cache();
    // SAFETY: geteuid has no preconditions.
    let dir = if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&private, Some(65534), Some(65534)).unwrap();
        private
    } else {
        PathBuf::from("/")
    };
    let engine = crate::engine_with_cache(PolicyLimits::default(), &dir);
    let refused = engine.cache_refused().expect("refused");
    assert!(refused.reason.contains("belongs to user"), "{refused}");
    assert_real_default(&engine);
}

#[test]
fn the_cli_warns_about_a_refused_cache_and_still_works() {
    let (_parent, cache) = private_cache();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let output = quiesce(crate::quiesce_bin(), &cache)
        .args(["policy", "list", "--policies"])
        .arg(empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("compile cache"), "{stderr}");
    assert!(stderr.contains(&cache.display().to_string()), "{stderr}");
    assert!(stderr.contains("mode 0777"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("default"));
}

// ----- class 2: compiling -----

/// Loads `path` from a directory holding only it, the way `policy list` does.
fn load_problem(engine: &PolicyEngine, name: &str, bytes: &[u8]) -> (PathBuf, LoadProblem) {
    let dir = dir_with(&[(name, bytes)]);
    let path = dir.path().join(name);
    let problem = engine
        .load_file(&path)
        .expect_err("the component should be refused");
    (path, problem)
}

#[test]
fn a_component_too_costly_to_compile_is_refused_before_compiling() {
    let engine = crate::engine(PolicyLimits::default());
    let (path, problem) = load_problem(&engine, "tangle.wasm", &wasm(fixtures::HARD_TO_COMPILE));
    let LoadError::Shape(violation) = &problem.error else {
        panic!("expected a shape refusal, got {problem}");
    };
    assert!(violation.found > violation.limit, "{violation}");
    let message = problem.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("refused before compiling"), "{message}");
    assert!(message.contains("over the limit of"), "{message}");
}

/// The limits with the shape checks lifted, so that compiling itself must be bounded.
fn shapeless(compile_timeout: Duration, compile_memory_bytes: u64) -> PolicyLimits {
    PolicyLimits {
        compile_timeout,
        compile_memory_bytes,
        shape: ShapeLimits::unlimited(),
        ..PolicyLimits::default()
    }
}

#[test]
fn a_compile_past_the_time_limit_is_stopped_and_names_the_file() {
    // The memory limit is far beyond what two seconds of compiling can use: only time stops it.
    let limits = shapeless(Duration::from_secs(2), 64 << 30);
    let (_parent, cache) = private_cache();
    let engine = crate::engine_with_cache(limits, &cache);
    let started = Instant::now();
    let (path, problem) = load_problem(&engine, "tangle.wasm", &wasm(fixtures::HARD_TO_COMPILE));
    assert!(started.elapsed() < HANG_BOUND, "{:?}", started.elapsed());
    assert!(
        matches!(problem.error, LoadError::CompileTimeLimit { limit } if limit == Duration::from_secs(2)),
        "{problem}"
    );
    let message = problem.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("compile time limit of 2s"), "{message}");
}

#[test]
fn a_compile_past_the_memory_limit_is_stopped_and_names_the_file() {
    // The time limit is far beyond what compiling takes: only memory stops it.
    let limits = shapeless(Duration::from_secs(3600), 64 << 20);
    let (_parent, cache) = private_cache();
    let engine = crate::engine_with_cache(limits, &cache);
    let (path, problem) = load_problem(&engine, "tangle.wasm", &wasm(fixtures::HARD_TO_COMPILE));
    assert!(
        matches!(problem.error, LoadError::CompileMemoryLimit { limit } if limit == 64 << 20),
        "{problem}"
    );
    let message = problem.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("compile memory limit of 64 MiB"),
        "{message}"
    );
}

#[test]
fn files_whose_turn_comes_after_the_loading_share_of_the_deadline_are_named_not_loaded() {
    let engine = crate::engine(PolicyLimits::default());
    let dir = dir_with(&[("echo.wasm", &wasm(fixtures::ECHO))]);
    let catalog = engine
        .catalog_until(Some(dir.path()), true, Some(Instant::now()))
        .unwrap();
    assert!(catalog.get("default").is_some(), "the built-ins still load");
    assert!(catalog.get("echo").is_none());
    let [problem] = catalog.problems() else {
        panic!("{:?}", catalog.problems());
    };
    assert!(problem.path.ends_with("echo.wasm"));
    assert!(
        matches!(problem.error, LoadError::OutOfTime { .. }),
        "{problem}"
    );
    assert!(problem.to_string().contains("--deadline"), "{problem}");
}

// ----- class 3: the instance pool -----

#[test]
fn twenty_memories_each_under_the_cap_are_refused_at_load() {
    // 20 × 62.5 MiB, each under the 64 MiB cap: the cap is on the instance, not per memory.
    let component = many_memories(20, 1000);
    let engine = crate::engine(PolicyLimits::default());
    let (path, problem) = load_problem(&engine, "memories.wasm", &component);
    let message = problem.to_string();
    assert!(
        matches!(&problem.error, LoadError::Shape(violation) if violation.what == "linear memories"),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");

    // With the shape checks lifted, the pool's per-component cap still refuses it at load.
    let engine = crate::engine(shapeless(Duration::from_secs(600), 1 << 30));
    let (_, problem) = load_problem(&engine, "memories.wasm", &component);
    assert!(problem.to_string().contains("memories"), "{problem}");
}

#[test]
fn one_policy_calling_past_the_pool_never_makes_another_fail() {
    // More calls of a looping policy at once than the pool holds instances, and a well-behaved
    // policy called meanwhile: every loop ends by its time limit (none fails for want of an
    // instance), every call of the other policy succeeds.
    let limits = PolicyLimits {
        call_timeout: Duration::from_secs(1),
        ..PolicyLimits::default()
    };
    let engine = crate::engine(limits);
    let looping = Arc::new(
        engine
            .load_bytes(
                &wasm(fixtures::LOOP_FOREVER),
                PolicySource::File(fixtures::LOOP_FOREVER.into()),
            )
            .unwrap(),
    );
    let good = Arc::new(
        engine
            .load_bytes(builtin("default"), PolicySource::Builtin)
            .unwrap(),
    );
    let context = Context {
        service: ServiceFacts {
            name: "svc".into(),
            ..ServiceFacts::default()
        },
        settings: "{}".into(),
        remaining: Duration::from_secs(60),
        ..Context::default()
    };
    let hog_calls = usize::try_from(INSTANCES_PER_POLICY * 5).unwrap();
    std::thread::scope(|scope| {
        let hogs: Vec<_> = (0..hog_calls)
            .map(|_| scope.spawn(|| looping.decide(&context)))
            .collect();
        let goods: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| (0..4).map(|_| good.decide(&context)).collect::<Vec<_>>()))
            .collect();
        for good in goods {
            for decision in good.join().unwrap() {
                decision.expect("the well-behaved policy is unaffected");
            }
        }
        for hog in hogs {
            let error = hog.join().unwrap().expect_err("the loop is stopped");
            assert!(
                matches!(error.failure, CallFailure::TimeLimit { .. }),
                "{error}"
            );
        }
    });
}

// ----- class 4: files that are not what they claim -----

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
}

/// A policies directory of one good policy and every kind of entry that is not one.
fn booby_trapped_dir() -> (tempfile::TempDir, Vec<(&'static str, &'static str)>) {
    let dir = dir_with(&[("echo.wasm", &wasm(fixtures::ECHO))]);
    let at = |name: &str| dir.path().join(name);
    mkfifo(&at("fifo.wasm"));
    std::os::unix::fs::symlink("/dev/zero", at("zero.wasm")).unwrap();
    // Its size reads as 0; its contents run to gigabytes.
    std::os::unix::fs::symlink("/proc/self/pagemap", at("procfs.wasm")).unwrap();
    std::os::unix::fs::symlink(at("fifo.wasm"), at("link-to-fifo.wasm")).unwrap();
    std::os::unix::fs::symlink(at("nowhere"), at("dangling.wasm")).unwrap();
    std::fs::create_dir(at("directory.wasm")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(at("socket.wasm")).unwrap();
    let expected = vec![
        ("fifo.wasm", "FIFO"),
        ("zero.wasm", "character device"),
        ("procfs.wasm", "larger than the"),
        ("link-to-fifo.wasm", "FIFO"),
        ("dangling.wasm", "cannot read"),
        ("directory.wasm", "a directory"),
        ("socket.wasm", "cannot read"),
    ];
    (dir, expected)
}

/// Runs `work` on a thread, failing the test (instead of hanging it) past the hang bound.
fn within_hang_bound<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(work()));
    result
        .recv_timeout(HANG_BOUND)
        .expect("loading the policies directory hung")
}

#[test]
fn entries_that_are_not_policy_files_are_skipped_without_blocking_and_named() {
    let (dir, expected) = booby_trapped_dir();
    let path = dir.path().to_path_buf();
    let catalog = within_hang_bound(move || {
        crate::engine(PolicyLimits::default())
            .catalog(Some(&path), true)
            .unwrap()
    });
    assert!(catalog.get("echo").is_some(), "{:?}", catalog.problems());
    assert_eq!(
        catalog.problems().len(),
        expected.len(),
        "{:?}",
        catalog.problems()
    );
    for (name, why) in expected {
        let problem = catalog
            .problems()
            .iter()
            .find(|problem| problem.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not named: {:?}", catalog.problems()));
        assert!(problem.to_string().contains(why), "{name}: {problem}");
    }
}

#[test]
fn policy_list_names_every_skipped_entry_and_does_not_hang() {
    let (dir, expected) = booby_trapped_dir();
    let dir_path = dir.path().to_path_buf();
    let output = within_hang_bound(move || {
        quiesce(crate::quiesce_bin(), &crate::cache_dir())
            .args(["policy", "list", "--policies"])
            .arg(&dir_path)
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("echo"));
    for (name, why) in expected {
        let line = stderr
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("{name} not named: {stderr}"));
        assert!(line.contains(why), "{name}: {line}");
    }
}
