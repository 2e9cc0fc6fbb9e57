//! Thread-per-core shards that own sockets, connections, buffers and timers.
//!
//! One pinned thread per CPU runs one [`Shard`]: its own io_uring ring (set up with
//! SINGLE_ISSUER | DEFER_TASKRUN, falling back to COOP_TASKRUN, see [`TaskRun`]), its listeners
//! (a SO_REUSEPORT group: the kernel spreads connections over the shards), its connections and
//! its timers. Each loop turn reaps completions, fires due timers, runs mailbox work, queues one
//! send per connection with output, and then makes ONE submit-and-wait call, bounded by the next
//! timer deadline (or, with [`RuntimeConfig::busy_poll`], one that never sleeps). Each
//! connection keeps one multishot receive armed: the kernel writes what
//! arrives into the shard's pool of provided buffers (`bufring.rs`) and the shard copies it into
//! the connection's input, so a request costs no receive submission, no failed receive attempt
//! and no poll re-arm (at 8x1 this cut the server's CPU per request by about 1-5%, see
//! bench/README.md). A connection that takes in more than `read_size` bytes in one turn that way
//! is a stream, not requests: its multishot receive is cancelled and it goes back to single-shot
//! receives (straight into the frame's buffer, no copy, at most `read_size` per turn) until a
//! receive brings little again; it also takes one single-shot receive when the pool runs dry.
//! Nothing outside this module knows how the loop is driven: the rest of the
//! engine sees only the event interface below, so the driver can be swapped and compared.
//!
//! The interface:
//! - [`Connection`]: what the conn layer implements (`on_open`, `on_data`, `on_writable`,
//!   `on_timer`, `on_read_closed`, `on_closed`), each called with a [`ConnIo`] giving the
//!   connection's input and output buffers, its timers and the shard's services.
//! - [`Acceptor`]: decides what runs each accepted socket (or refuses it).
//! - [`Shard`] (given to posted closures and timer tasks): listen, connect with a timeout, reach
//!   a connection by [`ConnId`] ([`Shard::with_conn`]), close it; [`ShardCore`] (its deref
//!   target, also given to callbacks): cached clock, timers with cancel, deferred work.
//! - [`ShardHandle`]: `Clone + Send + Sync`; `post` a closure to the shard from any thread (a
//!   bounded crossbeam channel; an eventfd read kept armed in the ring wakes the shard, written
//!   at most once per wake-up).
//!
//! The loop itself drives callbacks (posted closures, timer tasks, connection events), not
//! futures: nothing is polled and nothing is allocated on the per-request path. For async
//! callers, [`spawn_local`] runs a future on a shard (a minimal executor woken through the
//! mailbox; see `task.rs`).
//!
//! Port ownership: listeners form a SO_REUSEPORT group, so [`bind_reuseport_group`] first binds
//! a probe socket without SO_REUSEPORT and fails with `AddrInUse` if anyone holds the port; a
//! process that joins the group later with the same user id would still share it (the kernel
//! cannot seal a group).
//!
//! Measured (`octo-bench runtimes --secs 3 --rounds 3 --perf --nice -15`: 1 KiB OCTO Echo, each
//! server in its own process pinned to CPU 0, the generator on CPU 1, servers interleaved; on a
//! 2-vCPU VM shared with other builds, so throughput figures are from the least disturbed round):
//! at 8 connections x depth 1, octo 133K req/s against tokio current_thread 137K (174K against
//! 169K requests per server-CPU-second), 0.28-0.33 syscalls per request against tokio's 2.3, and
//! no rescheduling IPIs (0.34 per request without the task-run flags); at 8 x 16, 0.02 syscalls
//! per request against 0.26 and 1.0M against 0.75-0.88M requests per server-CPU-second; at 64 x 1,
//! 0.10 against 2.1. The server's Echo path makes no heap allocation per call, and an idle
//! connection holds about 4.5 KiB of heap (`cargo bench -p octo-engine --bench server_footprint`).
//!
//! ```
//! use octo_engine::runtime::{Runtime, RuntimeConfig};
//! use std::sync::mpsc;
//!
//! let runtime = Runtime::start(RuntimeConfig { shards: 1, ..RuntimeConfig::default() }).unwrap();
//! let (tx, rx) = mpsc::channel();
//! runtime.shard(0).post(move |shard| tx.send(shard.id()).unwrap()).unwrap();
//! assert_eq!(rx.recv().unwrap(), 0);
//! runtime.shutdown();
//! ```

mod bufring;
mod mailbox;
mod shard;
mod socket;
mod task;
mod timer;

use std::fmt;
use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;

pub use mailbox::{PostError, ShardHandle};
pub use shard::{
    Acceptor, CloseReason, ConnId, ConnIo, ConnOptions, Connection, ListenerId, LocalTask, Shard,
    ShardCore,
};
pub use socket::{bind_reuseport_group, Listener};
pub use task::{local_task_count, on_shard_thread, spawn_local, with_current_shard};
pub use timer::TimerId;

/// How the ring runs completion work ("task work"); the fastest the kernel accepts is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRun {
    /// SINGLE_ISSUER | DEFER_TASKRUN: completions run only when the shard waits (no interrupts).
    Defer,
    /// SINGLE_ISSUER | COOP_TASKRUN: completions run at the shard's next kernel entry.
    Coop,
    /// Neither flag: every completion may interrupt the shard (the slow baseline, for comparison).
    Plain,
}

impl TaskRun {
    /// Reads `defer`, `coop` or `plain`.
    pub fn parse(s: &str) -> Option<TaskRun> {
        match s.to_ascii_lowercase().as_str() {
            "defer" => Some(TaskRun::Defer),
            "coop" => Some(TaskRun::Coop),
            "plain" | "none" => Some(TaskRun::Plain),
            _ => None,
        }
    }

    /// The mode asked for by the `OCTO_TASKRUN` environment variable, else [`TaskRun::Defer`].
    pub fn from_env() -> TaskRun {
        std::env::var("OCTO_TASKRUN")
            .ok()
            .and_then(|v| TaskRun::parse(&v))
            .unwrap_or(TaskRun::Defer)
    }
}

impl fmt::Display for TaskRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskRun::Defer => "defer_taskrun",
            TaskRun::Coop => "coop_taskrun",
            TaskRun::Plain => "plain",
        })
    }
}

/// How many shards to run and how.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Number of shard threads (default: one per available CPU).
    pub shards: usize,
    /// CPUs to pin shard i to (`cpus[i % len]`); `None` pins shard i to the i-th available CPU.
    /// An empty list disables pinning.
    pub cpus: Option<Vec<usize>>,
    /// Submission queue entries per ring (the completion queue gets 8 times as many).
    pub ring_entries: u32,
    /// The preferred task-run mode (default from `OCTO_TASKRUN`, else `Defer`); the shard falls
    /// back to the next one if the kernel refuses it.
    pub task_run: TaskRun,
    /// Capacity of each shard's mailbox (closures posted from other threads).
    pub mailbox_capacity: usize,
    /// After a receive that emptied the socket, arm the next one with IORING_RECVSEND_POLL_FIRST
    /// (wait for data, skip the receive attempt that would likely fail). Default from
    /// `OCTO_RECV_POLL_FIRST` (`1` on), else off: measured with `octo-bench runtimes` it gave
    /// no gain (slightly more enters per request at 8x1), so it stays a switch to compare.
    pub recv_poll_first: bool,
    /// Wait for one more event per send whose completion needs no prompt handling, so that
    /// sends completing during the submit do not cost a second enter (see `Shard::flush`).
    /// Default from `OCTO_WAIT_SENDS` (`0` off), else on.
    pub wait_for_sends: bool,
    /// Receive with one multishot receive per connection into a per-shard pool of buffers
    /// provided to the kernel (see `bufring.rs`), instead of one receive per chunk of data.
    /// Default from `OCTO_RECV_MULTISHOT` (`0` off), else on; off where the kernel refuses an
    /// incrementally consumed buffer ring (before Linux 6.12).
    pub recv_multishot: bool,
    /// Buffers in each shard's receive pool (a power of two; default from
    /// `OCTO_RECV_POOL_BUFFERS`, else 8) and the size of each (`OCTO_RECV_POOL_BUFFER_SIZE`,
    /// else 64 KiB): what multishot receives may hold between the kernel writing them and the
    /// shard copying them out, so a bound on the bytes a shard takes in per loop turn.
    pub recv_pool_buffers: u16,
    /// See `recv_pool_buffers`.
    pub recv_pool_buffer_size: u32,
    /// Never sleep: a shard with nothing to do polls its ring (an enter that submits, runs the
    /// ring's deferred work and asks for no completion) until something arrives, instead of
    /// waiting in the kernel. It keeps its CPU 100% busy,
    /// and in return never waits to be woken: a due timer or an arriving completion is handled
    /// at once (on a virtual machine a halted vCPU is slow to wake). The time spent polling
    /// with nothing to do is counted (`ShardCore::idle_polled`), so the CPU the work took can
    /// still be told apart. For a shard that owns its CPU and must react promptly at a rate
    /// below its capacity, such as the bench's open-loop generator. Default from
    /// `OCTO_BUSY_POLL` (`1` on), else off.
    pub busy_poll: bool,
    /// Thread name prefix.
    pub name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpus: None,
            ring_entries: 1024,
            task_run: TaskRun::from_env(),
            mailbox_capacity: 64 * 1024,
            recv_poll_first: std::env::var("OCTO_RECV_POLL_FIRST")
                .map(|v| v == "1")
                .unwrap_or(false),
            wait_for_sends: std::env::var("OCTO_WAIT_SENDS")
                .map(|v| v != "0")
                .unwrap_or(true),
            recv_multishot: std::env::var("OCTO_RECV_MULTISHOT")
                .map(|v| v != "0")
                .unwrap_or(true),
            recv_pool_buffers: env_num("OCTO_RECV_POOL_BUFFERS").unwrap_or(8),
            recv_pool_buffer_size: env_num("OCTO_RECV_POOL_BUFFER_SIZE").unwrap_or(64 << 10),
            busy_poll: std::env::var("OCTO_BUSY_POLL")
                .map(|v| v == "1")
                .unwrap_or(false),
            name: "octo-shard".to_string(),
        }
    }
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Running shards; dropping it (or [`Runtime::shutdown`]) stops them and joins their threads.
pub struct Runtime {
    handles: Vec<ShardHandle>,
    threads: Vec<JoinHandle<()>>,
    task_run: TaskRun,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.handles.len())
            .field("task_run", &self.task_run)
            .finish()
    }
}

impl Runtime {
    /// Starts the shards; returns once every ring is set up (or the first error).
    pub fn start(config: RuntimeConfig) -> io::Result<Runtime> {
        if config.shards == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one shard",
            ));
        }
        if config.recv_multishot
            && (!config.recv_pool_buffers.is_power_of_two()
                || config.recv_pool_buffers > 1 << 15
                || config.recv_pool_buffer_size == 0)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_pool_buffers must be a power of two up to 32768, recv_pool_buffer_size > 0",
            ));
        }
        let available = core_affinity::get_core_ids().unwrap_or_default();
        let mut handles = Vec::with_capacity(config.shards);
        let mut threads = Vec::with_capacity(config.shards);
        let mut modes = Vec::with_capacity(config.shards);
        let mut failure = None;
        for id in 0..config.shards {
            let core = match &config.cpus {
                Some(list) if list.is_empty() => None,
                Some(list) => Some(core_affinity::CoreId {
                    id: list[id % list.len()],
                }),
                None => available.get(id % available.len().max(1)).copied(),
            };
            let (handle, rx) = ShardHandle::new(id, config.mailbox_capacity.max(1))?;
            let (ready_tx, ready_rx) = mpsc::channel::<io::Result<TaskRun>>();
            let entries = config.ring_entries;
            let want = config.task_run;
            let opts = shard::ShardOptions {
                recv_poll_first: config.recv_poll_first,
                wait_for_sends: config.wait_for_sends,
                recv_multishot: config.recv_multishot,
                pool_buffers: config.recv_pool_buffers,
                pool_buffer_size: config.recv_pool_buffer_size,
                busy_poll: config.busy_poll,
            };
            let shard_handle = handle.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{}-{}", config.name, id))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    mailbox::mark_shard_thread();
                    match shard::build_ring(entries, want) {
                        Ok((ring, mode)) => {
                            let _ = ready_tx.send(Ok(mode));
                            Shard::new(id, ring, mode, opts, shard_handle, rx).run();
                        }
                        Err(e) => {
                            shard_handle.mark_stopped();
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })?;
            handles.push(handle);
            threads.push(thread);
            match ready_rx.recv() {
                Ok(Ok(mode)) => modes.push(mode),
                Ok(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Err(_) => {
                    failure = Some(io::Error::other("shard thread died during setup"));
                    break;
                }
            }
        }
        let task_run = modes
            .iter()
            .copied()
            .max_by_key(|m| *m as u8)
            .unwrap_or(TaskRun::Plain);
        let runtime = Runtime {
            handles,
            threads,
            task_run,
        };
        match failure {
            Some(e) => {
                drop(runtime);
                Err(e)
            }
            None => Ok(runtime),
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.handles.len()
    }

    /// The handle of shard `i`. Panics if `i >= shard_count()`.
    pub fn shard(&self, i: usize) -> &ShardHandle {
        &self.handles[i]
    }

    /// Handles of all shards, in order.
    pub fn shards(&self) -> &[ShardHandle] {
        &self.handles
    }

    /// The task-run mode the rings use (the weakest if shards differ).
    pub fn task_run(&self) -> TaskRun {
        self.task_run
    }

    /// Stops every shard (listeners stop, connections are aborted) and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        for h in &self.handles {
            let _ = h.post(|shard| shard.request_stop());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
