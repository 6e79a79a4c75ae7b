//! The sandbox policies run in: one wasmtime `Engine` and `Linker` for the whole process, a
//! deny-all WASI context, and a fresh, limited `Store` for every call.
//!
//! Limits, each named in the error that reports it:
//! - time: epoch interruption; while any call runs, a background thread ticks the epoch every
//!   [`EPOCH_TICK`] (it sleeps when none does), and each call may run for
//!   [`PolicyLimits::call_timeout`];
//! - memory: a `ResourceLimiter` caps linear memory and tables, and records the peak;
//! - stack: wasmtime's `max_wasm_stack`;
//! - output: stdout and stderr share one capped in-memory pipe.
//!
//! The WASI context grants nothing: no preopened directories, no environment, no arguments, no
//! sockets, no name lookup, frozen clocks, and timers that trap instead of blocking (a sleeping
//! policy would otherwise hold a host thread beyond any epoch deadline).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreContextMut, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::error::CallFailure;

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
}

impl Default for PolicyLimits {
    fn default() -> PolicyLimits {
        PolicyLimits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_millis(100),
            output_bytes: 64 << 10,
            stack_bytes: 512 << 10,
        }
    }
}

/// Instances the pool holds at once: far more than concurrent decisions ever need.
const POOLED_INSTANCES: u32 = 64;
/// Memory kept resident in each pooled slot between instances.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

fn engine_config(limits: &PolicyLimits, pooling: bool) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_INSTANCES)
            .total_core_instances(POOLED_INSTANCES * 8)
            .total_memories(POOLED_INSTANCES * 2)
            .total_tables(POOLED_INSTANCES * 8)
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

/// Caps memory and tables, and remembers the peak and whether the cap was hit.
struct MemoryLimiter {
    limit: usize,
    peak: usize,
    refused: Option<usize>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            wasmtime::bail!("memory limit of {} bytes reached", self.limit);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table entry is a pointer; count tables against the same budget.
        Ok(desired.saturating_mul(8) <= self.limit)
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

    /// Compiles a component from its bytes (no cache).
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<Component> {
        Ok(Component::new(&self.engine, wasm)?)
    }

    /// Runs `call` in a fresh store with every limit armed, and classifies its failure.
    ///
    /// `call` instantiates and calls; it returns `Err(Instantiate)` for instantiation failures
    /// and the raw wasmtime error of the call otherwise.
    pub fn run<R: Send>(
        &self,
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
                return tokio::task::block_in_place(|| self.run_here(call));
            }
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.run_here(call))
                    .join()
                    .expect("a policy call thread panicked")
            });
        }
        self.run_here(call)
    }

    fn run_here<R>(
        &self,
        call: impl FnOnce(&mut Store<SandboxState>) -> Result<R, RunError>,
    ) -> CallResult<R> {
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
