//! The Rust face of the engine: an [`Engine`] (shards, CPUs, default limits) on which servers
//! (and later clients) run.

use std::io;

use crate::runtime::{Runtime, RuntimeConfig, TaskRun};
use crate::server::Limits;

/// The running shards and the defaults servers on them start with.
///
/// ```
/// use octo_engine::Engine;
/// let engine = Engine::builder().shards(2).cpus(vec![]).build().unwrap();
/// assert_eq!(engine.shard_count(), 2);
/// ```
#[derive(Debug)]
pub struct Engine {
    runtime: Runtime,
    limits: Limits,
}

/// Configures an [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    config: RuntimeConfig,
    limits: Limits,
}

impl Engine {
    /// Starts configuring an engine (one shard per CPU by default).
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            config: RuntimeConfig::default(),
            limits: Limits::default(),
        }
    }

    /// The shards.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.runtime.shard_count()
    }

    /// The ring mode in use (see [`TaskRun`]).
    pub fn task_run(&self) -> TaskRun {
        self.runtime.task_run()
    }

    /// The default limits of servers started on this engine.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Stops every shard and joins their threads (servers still running are cut off).
    pub fn shutdown(self) {
        self.runtime.shutdown();
    }
}

impl EngineBuilder {
    /// Number of shard threads.
    pub fn shards(mut self, n: usize) -> Self {
        self.config.shards = n;
        self
    }

    /// CPUs to pin shards to (shard i on `cpus[i % len]`); empty: no pinning. Default: shard i
    /// on the i-th available CPU.
    pub fn cpus(mut self, cpus: Vec<usize>) -> Self {
        self.config.cpus = Some(cpus);
        self
    }

    /// The preferred ring mode (the default comes from `OCTO_TASKRUN`, else DEFER_TASKRUN).
    pub fn task_run(mut self, mode: TaskRun) -> Self {
        self.config.task_run = mode;
        self
    }

    /// Whether shards poll their rings instead of sleeping when idle (see
    /// [`RuntimeConfig::busy_poll`]; default from `OCTO_BUSY_POLL`, else off). Each shard then
    /// keeps its CPU fully busy and counts its idle polling (`ShardCore::idle_polled`).
    pub fn busy_poll(mut self, on: bool) -> Self {
        self.config.busy_poll = on;
        self
    }

    /// Default limits for servers on this engine.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Submission queue entries per shard ring.
    pub fn ring_entries(mut self, n: u32) -> Self {
        self.config.ring_entries = n;
        self
    }

    /// Starts the shards.
    pub fn build(self) -> io::Result<Engine> {
        Ok(Engine {
            runtime: Runtime::start(self.config)?,
            limits: self.limits,
        })
    }
}
