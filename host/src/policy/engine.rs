//! The sandbox policies run in: one wasmtime `Engine` and `Linker` for the whole process, a
//! deny-all WASI context, and a fresh, limited `Store` for every call.
//!
//! Limits, each named in the error that reports it:
//! - time: epoch interruption; while any call runs, a background thread ticks the epoch every
//!   [`EPOCH_TICK`] (it sleeps when none does), and each call may run for
//!   [`PolicyLimits::call_timeout`];
//! - memory: a `ResourceLimiter` caps the sum of an instance's linear memories and tables
//!   (not each one alone), and records the peak;
//! - stack: wasmtime's `max_wasm_stack`;
//! - output: stdout and stderr share one capped in-memory pipe.
//!
//! One policy cannot starve another (issue 17, class 3): the pooling allocator caps what one
//! component may hold (one linear memory, [`TABLES_PER_INSTANCE`] tables,
//! [`CORE_INSTANCES_PER_INSTANCE`] core instances; a component that needs more is refused at
//! load) and its pools are sized so that only the number of instances can run out; the calls
//! in flight are then bounded by [`POOLED_INSTANCES`] in all and [`INSTANCES_PER_POLICY`] per
//! policy, so a call waits for a slot (at most one call's time limit) instead of failing,
//! and one policy's calls can never hold the slots another policy's calls need.
//!
//! The WASI context grants nothing: no preopened directories, no environment, no arguments, no
//! sockets, no name lookup, frozen clocks, and timers that trap instead of blocking (a sleeping
//! policy would otherwise hold a host thread beyond any epoch deadline).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreContextMut, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::codegen::{DEFAULT_STACK_BYTES, code_config};
use super::error::CallFailure;
use super::shape::{
    CORE_INSTANCES_PER_INSTANCE, MEMORIES_PER_INSTANCE, ShapeLimits, TABLES_PER_INSTANCE,
};

/// How often the epoch advances; the time limit's resolution.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The WASI clocks package version whose timers are replaced (the one wasmtime-wasi provides).
const WASI_MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The limits every policy call runs under. Operators can change them (config and flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLimits {
    /// The most linear memory (plus tables) one instance may have, in bytes.
    pub memory_bytes: usize,
    /// The longest one call (`metadata`, `validate-settings`, `next`) may run.
    pub call_timeout: Duration,
    /// The most a call may write to stdout and stderr together, in bytes.
    pub output_bytes: usize,
    /// The wasm stack size, in bytes: deeper recursion traps.
    pub stack_bytes: usize,
    /// The longest compiling one untrusted component may take (in a worker process).
    pub compile_timeout: Duration,
    /// The most memory compiling one untrusted component may use (the worker's data limit).
    pub compile_memory_bytes: u64,
    /// What an untrusted component may contain, checked before it is compiled.
    pub shape: ShapeLimits,
}

impl Default for PolicyLimits {
    fn default() -> PolicyLimits {
        PolicyLimits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_millis(100),
            output_bytes: 64 << 10,
            stack_bytes: DEFAULT_STACK_BYTES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            compile_memory_bytes: 1 << 30,
            shape: ShapeLimits::default(),
        }
    }
}

/// The default compile time limit: a policy compiles in well under a second in a release
/// build, a hundred times less than this; a debug build (tests) compiles ten times slower,
/// on machines busy with other tests, and gets a limit to match.
const DEFAULT_COMPILE_TIMEOUT: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(120)
} else {
    Duration::from_secs(10)
};

/// Instances the pool holds at once: far more than concurrent decisions ever need.
pub const POOLED_INSTANCES: u32 = 64;
/// Calls of one policy in flight at once: a quarter of the pool, so that no policy (nor three)
/// can take every slot.
pub const INSTANCES_PER_POLICY: u32 = POOLED_INSTANCES / 4;
/// Memory kept resident in each pooled slot between instances.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// The settings that decide how code is compiled ([`code_config`]): the same in the engine, in
/// a compile worker and in the build script's precompiled built-ins, so their artifacts load in
/// the engine.
pub(super) fn base_config(limits: &PolicyLimits) -> Config {
    code_config(limits.stack_bytes)
}

fn engine_config(limits: &PolicyLimits, pooling: bool) -> Config {
    let mut config = base_config(limits);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Sized so that only component instances can run out: every instance fits its caps.
        pool.total_component_instances(POOLED_INSTANCES)
            .max_memories_per_component(MEMORIES_PER_INSTANCE)
            .max_tables_per_component(TABLES_PER_INSTANCE)
            .max_core_instances_per_component(CORE_INSTANCES_PER_INSTANCE)
            .total_core_instances(POOLED_INSTANCES * CORE_INSTANCES_PER_INSTANCE)
            .total_memories(POOLED_INSTANCES * MEMORIES_PER_INSTANCE)
            .total_tables(POOLED_INSTANCES * TABLES_PER_INSTANCE)
            .total_stacks(0)
            .max_memory_size(limits.memory_bytes)
            // Reset small memories and tables with memset rather than madvise: cheaper for
            // the ~1 MiB a typical policy touches.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages an instance
            // dirtied instead of memsetting the whole resident region: a Rust policy's 1 MiB
            // stack is mostly untouched, and that memset was most of a decision's cost.
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Per-store state: the WASI context and the memory limiter.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the sum of an instance's linear memories and tables (a table entry counts as a
/// pointer, 8 bytes), and remembers the peak and whether the cap was hit. Each memory or
/// table reports its own growth, from 0 when the instance is created: the sum is exact.
struct MemoryLimiter {
    limit: usize,
    used: usize,
    peak: usize,
    refused: Option<usize>,
}

impl MemoryLimiter {
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let used = self.used.saturating_sub(current).saturating_add(desired);
        if used > self.limit {
            self.refused = Some(used);
            wasmtime::bail!("memory limit of {} bytes reached", self.limit);
        }
        self.used = used;
        self.peak = self.peak.max(used);
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current.saturating_mul(8), desired.saturating_mul(8))
    }
}

/// A bounded number of instances in flight: [`Slots::take`] waits for a free one.
pub(super) struct Slots {
    capacity: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// `capacity` slots.
    pub(super) fn new(capacity: u32) -> Slots {
        Slots {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting while all are taken; the slot is given back on drop.
    fn take(&self) -> Slot<'_> {
        let used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        let mut used = self
            .freed
            .wait_while(used, |used| *used >= self.capacity)
            .unwrap_or_else(PoisonError::into_inner);
        *used += 1;
        Slot(self)
    }
}

/// One taken slot; see [`Slots::take`].
struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.used.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.freed.notify_one();
    }
}

/// A clock that always reads zero: policies get time only through their context.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while at least one call runs, until
/// dropped. Between calls (most of a run: waiting on Docker) the thread sleeps instead of
/// waking 500 times a second on a machine whose cores the Docker daemon needs.
struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct TickerShared {
    state: Mutex<TickerState>,
    changed: Condvar,
}

#[derive(Default)]
struct TickerState {
    running_calls: usize,
    stopping: bool,
}

impl TickerShared {
    fn update(&self, change: impl FnOnce(&mut TickerState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let shared = Arc::new(TickerShared::default());
        let ticker_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("quiesce-epoch".into())
            .spawn(move || {
                loop {
                    let state = ticker_shared
                        .state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let state = ticker_shared
                        .changed
                        .wait_while(state, |state| state.running_calls == 0 && !state.stopping)
                        .unwrap_or_else(PoisonError::into_inner);
                    if state.stopping {
                        return;
                    }
                    drop(state);
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch thread");
        EpochTicker {
            shared,
            thread: Some(thread),
        }
    }

    /// Keeps the epoch ticking until the returned guard is dropped.
    fn call_running(&self) -> RunningCall<'_> {
        self.shared.update(|state| state.running_calls += 1);
        RunningCall(&self.shared)
    }
}

/// One call in flight; see [`EpochTicker::call_running`].
struct RunningCall<'a>(&'a TickerShared);

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        self.0.update(|state| state.running_calls -= 1);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.update(|state| state.stopping = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The process-wide sandbox: engine, linker, limits.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<SandboxState>,
    limits: PolicyLimits,
    ticker: EpochTicker,
    slots: Slots,
}

/// The result of one call, with what the policy printed and the resources it used.
pub struct CallResult<R> {
    /// The call's return value, or why there is none.
    pub result: Result<R, CallFailure>,
    /// What the policy wrote to stdout/stderr.
    pub log: String,
    /// The largest linear memory the instance reached, in bytes.
    pub peak_memory: usize,
    /// Wall time of instantiation plus the call.
    pub elapsed: Duration,
}

impl Sandbox {
    /// Creates the engine and the deny-all linker.
    pub fn new(limits: PolicyLimits) -> anyhow::Result<Sandbox> {
        // The pooling allocator reuses memory slots between the many short-lived instances
        // (one per decision), which makes instantiation cheaper. Where the address space
        // cannot be reserved (a tight `ulimit -v`), fall back to on-demand allocation.
        let engine = Engine::new(&engine_config(&limits, true))
            .or_else(|_| Engine::new(&engine_config(&limits, false)))
            .map_err(anyhow::Error::from)
            .context("create the wasm engine")?;

        let mut linker = Linker::<SandboxState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("link the WASI sandbox")?;
        deny_timers(&mut linker)
            .map_err(anyhow::Error::from)
            .context("replace the WASI timers")?;

        let ticker = EpochTicker::start(engine.clone());
        Ok(Sandbox {
            engine,
            linker,
            limits,
            ticker,
            slots: Slots::new(POOLED_INSTANCES),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with the sandbox's imports.
    pub fn linker(&self) -> &Linker<SandboxState> {
        &self.linker
    }

    /// The limits in force.
    pub fn limits(&self) -> &PolicyLimits {
        &self.limits
    }

    /// Runs `call` in a fresh store with every limit armed, and classifies its failure. The
    /// call first takes one of `policy_slots` (the calling policy's own), then one of the
    /// sandbox's, waiting for them if need be.
    ///
    /// `call` instantiates and calls; it returns `Err(Instantiate)` for instantiation failures
    /// and the raw wasmtime error of the call otherwise.
    pub(super) fn run<R: Send>(
        &self,
        policy_slots: &Slots,
        call: impl FnOnce(&mut Store<SandboxState>) -> Result<R, RunError> + Send,
    ) -> CallResult<R> {
        // wasmtime-wasi's synchronous bindings drive their I/O (a policy's stderr, for one)
        // with `Handle::block_on` when a tokio runtime is current, which panics on a runtime's
        // own thread. On the multi-threaded runtime (the CLI's) the call leaves the runtime
        // with `block_in_place`: the worker's other tasks move to a pooled thread meanwhile.
        // On a current-thread runtime (tests in virtual time) it runs on a short-lived plain
        // thread; the caller's thread waits, so a paused clock does not move meanwhile.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                return tokio::task::block_in_place(|| self.run_here(policy_slots, call));
            }
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.run_here(policy_slots, call))
                    .join()
                    .expect("a policy call thread panicked")
            });
        }
        self.run_here(policy_slots, call)
    }

    fn run_here<R>(
        &self,
        policy_slots: &Slots,
        call: impl FnOnce(&mut Store<SandboxState>) -> Result<R, RunError>,
    ) -> CallResult<R> {
        // Waiting for a slot is not the call's time: the clock starts once both are held.
        let _policy_slot = policy_slots.take();
        let _slot = self.slots.take();
        let started = std::time::Instant::now();
        let _ticking = self.ticker.call_running();
        let output = MemoryOutputPipe::new(self.limits.output_bytes);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .build();
        let state = SandboxState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: self.limits.memory_bytes,
                used: 0,
                peak: 0,
                refused: None,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let ticks = self.limits.call_timeout.as_micros() / EPOCH_TICK.as_micros() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let outcome = call(&mut store);
        let limiter = &store.data().limiter;
        let log_bytes = output.contents();
        let result = outcome.map_err(|error| match error {
            RunError::Instantiate(error) if limiter.refused.is_none() => CallFailure::Instantiate {
                message: format!("{error:#}"),
            },
            RunError::Instantiate(error) | RunError::Call(error) => {
                self.classify(&error, limiter, log_bytes.len())
            }
        });
        CallResult {
            result,
            log: String::from_utf8_lossy(&log_bytes).into_owned(),
            peak_memory: limiter.peak,
            elapsed: started.elapsed(),
        }
    }

    /// Names the limit (or the trap) behind a failed call.
    fn classify(
        &self,
        error: &wasmtime::Error,
        limiter: &MemoryLimiter,
        output_len: usize,
    ) -> CallFailure {
        if let Some(requested) = limiter.refused {
            return CallFailure::MemoryLimit {
                limit: self.limits.memory_bytes,
                requested,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                return CallFailure::TimeLimit {
                    limit: self.limits.call_timeout,
                };
            }
            Some(Trap::StackOverflow) => return CallFailure::StackOverflow,
            _ => {}
        }
        if output_len >= self.limits.output_bytes {
            return CallFailure::OutputLimit {
                limit: self.limits.output_bytes,
            };
        }
        CallFailure::Trap {
            message: format!("{error:?}"),
        }
    }
}

/// Why a sandboxed call failed, before classification.
pub enum RunError {
    /// Instantiating the component failed.
    Instantiate(wasmtime::Error),
    /// The call itself failed.
    Call(wasmtime::Error),
}

/// Replaces the monotonic clock's timers with functions that trap. With frozen clocks and no
/// sockets, files or stdin, nothing else a policy can poll ever blocks.
fn deny_timers(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_MONOTONIC_CLOCK)?;
    for function in ["subscribe-duration", "subscribe-instant"] {
        clock.func_new(
            function,
            move |_: StoreContextMut<'_, SandboxState>, _, _, _| {
                wasmtime::bail!("policies may not sleep or wait on timers ({function} denied)")
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}
