//! One shard: a thread that owns an io_uring ring and every connection, listener and timer on it,
//! driven by a loop that submits all pending work and waits once per turn.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::Receiver;
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::bufring::RecvPool;
use super::mailbox::{ShardHandle, Task};
use super::socket::{self, Listener};
use super::timer::{TimerHeap, TimerId};
use super::TaskRun;

/// A closure that runs later on this shard (timers, deferred work); not `Send`.
pub type LocalTask = Box<dyn FnOnce(&mut Shard)>;

/// Names one connection on one shard. Ids of closed connections go stale and are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

/// Names one listener on one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(usize);

/// Why a connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// This side asked for it ([`ConnIo::close`] or [`ConnIo::abort`]).
    Local,
    /// The peer closed its side and everything owed to it was flushed.
    PeerClosed,
    /// A socket error (errno).
    Error(i32),
    /// An outbound connect failed (errno).
    ConnectFailed(i32),
    /// An outbound connect did not finish within its timeout.
    ConnectTimedOut,
    /// The shard stopped.
    ShardStopped,
}

impl CloseReason {
    /// The socket error behind this close, if there was one.
    pub fn io_error(&self) -> Option<io::Error> {
        match self {
            CloseReason::Error(e) | CloseReason::ConnectFailed(e) => {
                Some(io::Error::from_raw_os_error(*e))
            }
            CloseReason::ConnectTimedOut => Some(io::Error::from(io::ErrorKind::TimedOut)),
            _ => None,
        }
    }
}

/// Buffer sizes and write water marks of one connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnOptions {
    /// Stop reading while this many output bytes are waiting to be sent (unless
    /// `read_while_write_blocked`): [`ConnIo::is_write_blocked`] turns true at this mark.
    pub write_high_water: usize,
    /// Resume reading (and call [`Connection::on_writable`]) once output falls to this many bytes.
    pub write_low_water: usize,
    /// Smallest free space offered to a receive; doubles up to `max_read` while receives fill it.
    pub min_read: usize,
    /// Largest free space offered to one receive (unless the pending frame needs more).
    pub max_read: usize,
    /// Keep receiving while output is at the high water mark (default false: a blocked writer
    /// stops reading, which is a server's backpressure). A client sets it: what it reads are
    /// answers, which free calls and add no output, and a client that stopped reading while its
    /// requests wait for a server that waits for it to read would deadlock both.
    pub read_while_write_blocked: bool,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            write_high_water: 1 << 20,
            write_low_water: 256 << 10,
            min_read: 4096,
            max_read: 64 << 10,
            read_while_write_blocked: false,
        }
    }
}

/// What a connection does with the events of its socket. Implemented by the conn layer (server
/// and client connections); every method runs on the shard thread that owns the connection.
pub trait Connection: Any {
    /// The connection is open (accepted, or an outbound connect finished). Reading starts after.
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        let _ = io;
    }
    /// New bytes were appended to `io.input()`: consume what can be, write answers to `io.output()`.
    fn on_data(&mut self, io: &mut ConnIo<'_>);
    /// Output fell to the low water mark after having reached the high one (reading resumes).
    fn on_writable(&mut self, io: &mut ConnIo<'_>) {
        let _ = io;
    }
    /// A timer set with [`ConnIo::set_timer`] fired.
    fn on_timer(&mut self, io: &mut ConnIo<'_>, token: u64) {
        let _ = (io, token);
    }
    /// The peer will send no more. The default closes once the output is flushed.
    fn on_read_closed(&mut self, io: &mut ConnIo<'_>) {
        io.close();
    }
    /// The connection is gone (socket closed); the last call this connection gets.
    fn on_closed(&mut self, shard: &mut ShardCore, reason: CloseReason) {
        let _ = (shard, reason);
    }
}

/// Decides what to do with a connection a listener accepted.
pub trait Acceptor: 'static {
    /// Returns the connection to run, or `None` to close the socket at once (e.g. over a limit).
    fn on_accept(
        &mut self,
        shard: &mut ShardCore,
        peer: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)>;
    /// The listener was stopped and its socket closed.
    fn on_stopped(&mut self, shard: &mut ShardCore) {
        let _ = shard;
    }
}

// --- user_data packing: op kind (8 bits) | generation (32 bits) | slot (24 bits) ---

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CONNECT: u64 = 3;
const OP_ACCEPT: u64 = 4;
const OP_EVENTFD: u64 = 5;
const OP_CANCEL: u64 = 6;
const OP_RECV_MULTI: u64 = 7;

const MAX_SLOTS: usize = 1 << 24;

/// io_uring_enter's flag asking it to reap completions (and run deferred task work).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// The longest a wait that also counts quiet sends may last (see `Shard::flush`).
const QUIET_SEND_WAIT_MAX: Duration = Duration::from_micros(250);

/// The most a receive reserves for a pending frame beyond what has arrived.
const READ_AHEAD_MAX: usize = 256 << 10;

/// IORING_RECVSEND_POLL_FIRST (linux/io_uring.h), in the SQE's ioprio field of a recv.
const RECVSEND_POLL_FIRST: u16 = 1;

/// A single-shot receive that drains the socket with fewer bytes than this switches its
/// connection back to a multishot receive.
const MULTISHOT_BELOW: usize = 16 << 10;

/// How long a gracefully closing connection may wait for its socket to send what it holds, and
/// how often it looks.
const LINGER_MAX: Duration = Duration::from_secs(1);
const LINGER_POLL: Duration = Duration::from_millis(1);

/// Whether closing `fd` now would lose answers: closing a socket with unread input makes the
/// kernel reset the connection and drop what it has not sent yet. A graceful close therefore
/// waits (up to `LINGER_MAX`) while the socket holds both unsent output and unread input.
fn must_linger(fd: RawFd) -> bool {
    let (mut outq, mut inq): (libc::c_int, libc::c_int) = (0, 0);
    // SAFETY: TIOCOUTQ (SIOCOUTQ) and FIONREAD (SIOCINQ) write one int through the pointer,
    // which points at a live local.
    let ok = unsafe {
        libc::ioctl(fd, libc::TIOCOUTQ, &mut outq) == 0
            && libc::ioctl(fd, libc::FIONREAD, &mut inq) == 0
    };
    ok && outq > 0 && inq > 0
}

fn pack(op: u64, slot: u32, generation: u32) -> u64 {
    (op << 56) | ((generation as u64) << 24) | slot as u64
}

fn unpack(user_data: u64) -> (u64, u32, u32) {
    (
        user_data >> 56,
        (user_data & 0xFF_FFFF) as u32,
        (user_data >> 24) as u32,
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Connecting,
    Open,
    /// Flushing output before closing (graceful).
    Draining,
    /// Waiting for in-flight operations to finish before closing the socket.
    Closing,
}

/// The per-connection state the runtime keeps next to the connection's handler.
pub(crate) struct ConnState {
    /// The socket; taken (closed) when the connection finishes closing.
    fd: Option<OwnedFd>,
    raw_fd: RawFd,
    phase: Phase,
    /// The input buffer the connection reads from; empty while a single-shot receive owns the
    /// bytes (a multishot receive's bytes are copied in from the shard's pool).
    input: BytesMut,
    /// The input buffer lent to the kernel by an in-flight receive (never touched meanwhile).
    receiving: BytesMut,
    /// Output being accumulated during this loop turn.
    output: BytesMut,
    /// Output lent to the kernel by an in-flight send.
    sending: BytesMut,
    recv_inflight: bool,
    /// The receive in flight is a multishot one (bytes arrive in the shard's pool buffers, and
    /// it stays in flight until a completion without IORING_CQE_F_MORE).
    recv_multi: bool,
    /// The next receive is a single-shot one into the connection's own buffer: the pool ran dry
    /// under its multishot receive, or the connection streams (more than `read_size` per turn)
    /// until a receive brings less than `MULTISHOT_BELOW` again.
    multi_off: bool,
    send_inflight: bool,
    connect_inflight: bool,
    recv_cancelled: bool,
    send_cancelled: bool,
    connect_cancelled: bool,
    read_paused: bool,
    write_blocked: bool,
    read_closed: bool,
    queued_for_flush: bool,
    close_request: Option<(CloseReason, bool)>,
    reason: Option<CloseReason>,
    read_hint: usize,
    /// What one receive offers (single-shot), or what a multishot receive may take in per loop
    /// turn before it is cancelled and re-armed; doubles up to `max_read` each time it is used up.
    read_size: usize,
    /// Bytes a multishot receive brought in the loop turn `turn_mark`.
    turn_bytes: usize,
    turn_mark: u64,
    /// The last receive left the socket empty (it returned less than offered).
    drained: bool,
    opts: ConnOptions,
    connect_addr: Option<Box<(libc::sockaddr_storage, libc::socklen_t)>>,
    connect_timer: Option<TimerId>,
    /// Closing after a graceful drain: everything owed was handed to the socket.
    flushed_close: bool,
    /// Until when a flushed close waits for the socket to send what it holds (see `linger`).
    linger_until: Option<Instant>,
}

impl ConnState {
    fn new(fd: OwnedFd, phase: Phase, opts: ConnOptions) -> ConnState {
        ConnState {
            raw_fd: fd.as_raw_fd(),
            fd: Some(fd),
            phase,
            input: BytesMut::new(),
            receiving: BytesMut::new(),
            output: BytesMut::new(),
            sending: BytesMut::new(),
            recv_inflight: false,
            recv_multi: false,
            multi_off: false,
            send_inflight: false,
            connect_inflight: false,
            recv_cancelled: false,
            send_cancelled: false,
            connect_cancelled: false,
            read_paused: false,
            write_blocked: false,
            read_closed: false,
            queued_for_flush: false,
            close_request: None,
            reason: None,
            read_hint: 0,
            read_size: opts.min_read.max(64),
            turn_bytes: 0,
            turn_mark: 0,
            drained: false,
            opts,
            connect_addr: None,
            connect_timer: None,
            flushed_close: false,
            linger_until: None,
        }
    }

    fn pending_output(&self) -> usize {
        self.output.len() + self.sending.len()
    }
}

struct ConnSlot {
    handler: Box<dyn Connection>,
    state: ConnState,
}

struct SlotEntry {
    generation: u32,
    conn: Option<ConnSlot>,
}

struct ListenerSlot {
    fd: OwnedFd,
    acceptor: Box<dyn Acceptor>,
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
    accept_inflight: bool,
    stopping: bool,
}

enum TimerTarget {
    Conn { id: ConnId, token: u64 },
    Task(LocalTask),
    ConnectTimeout(ConnId),
    RearmAccept(usize),
    Linger(ConnId),
}

/// What a connection may use of its shard: the clock, timers, deferred work and the shard's
/// handle. Reached as `&mut ShardCore` from callbacks, and by deref from [`Shard`].
pub struct ShardCore {
    ring: IoUring,
    id: usize,
    handle: ShardHandle,
    now: Instant,
    timers: TimerHeap<TimerTarget>,
    deferred: VecDeque<LocalTask>,
    stopping: bool,
    task_run: TaskRun,
    recv_poll_first: bool,
    wait_for_sends: bool,
    conn_count: usize,
    /// With busy polling: time spent in loop turns that found nothing to do.
    idle_polled: Duration,
    locals: Vec<Box<dyn Any>>,
    /// Buffers for multishot receives; `None` when off or refused by the kernel. Declared after
    /// `ring` so that it is dropped after the ring is closed.
    pool: Option<RecvPool>,
}

impl ShardCore {
    /// The shard's index in its runtime.
    pub fn id(&self) -> usize {
        self.id
    }

    /// A handle to post work to this shard (clone it to hand it to other threads).
    pub fn handle(&self) -> &ShardHandle {
        &self.handle
    }

    /// The time at the start of the current loop turn (cheap; no clock read).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Reads the clock again (for work that must not be late by one turn).
    pub fn refresh_now(&mut self) -> Instant {
        self.now = Instant::now();
        self.now
    }

    /// Runs `task` on this shard at or after `deadline` (checked every loop turn).
    pub fn set_timer(
        &mut self,
        deadline: Instant,
        task: impl FnOnce(&mut Shard) + 'static,
    ) -> TimerId {
        self.timers
            .insert(deadline, TimerTarget::Task(Box::new(task)))
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id).is_some()
    }

    /// Runs `task` on this shard later in the current loop turn, after the current callback.
    pub fn defer(&mut self, task: impl FnOnce(&mut Shard) + 'static) {
        self.deferred.push_back(Box::new(task));
    }

    /// Live connections on this shard (accepted and outbound).
    pub fn conn_count(&self) -> usize {
        self.conn_count
    }

    /// Pending timers on this shard.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// With [`super::RuntimeConfig::busy_poll`], how long this shard has spent in loop turns
    /// that found nothing to do (no completion, timer, post or deferred task), each counted
    /// from its start to the next turn's: its CPU time minus this is the time it worked.
    /// Always zero for a shard that sleeps when idle.
    pub fn idle_polled(&self) -> Duration {
        self.idle_polled
    }

    /// Whether the shard is stopping (connections are being aborted).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The ring's task-run mode in use on this shard.
    pub fn task_run(&self) -> TaskRun {
        self.task_run
    }

    /// This shard's instance of `T` (created with `T::default()` on first use): state that layers
    /// above the runtime keep per shard (e.g. the servers running on it), without locks.
    pub fn local<T: Default + 'static>(&mut self) -> &mut T {
        let pos = self.locals.iter().position(|b| b.is::<T>());
        let idx = match pos {
            Some(i) => i,
            None => {
                self.locals.push(Box::new(T::default()));
                self.locals.len() - 1
            }
        };
        self.locals[idx]
            .downcast_mut::<T>()
            .expect("type checked above")
    }

    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry pushed here points only at memory that stays valid and unmoved
            // until its completion is reaped: buffers held in a connection's `receiving`/`sending`
            // (never touched while the op is in flight), boxed socket addresses and the boxed
            // eventfd counter, all kept alive by the slot that owns the op.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return;
            }
            // The submission queue is full: hand what is queued to the kernel and retry.
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    panic!("io_uring submit failed: {e}");
                }
            }
        }
    }
}

/// The view of one connection given to its callbacks: its input and output buffers, its timers,
/// and the shard's services.
pub struct ConnIo<'a> {
    core: &'a mut ShardCore,
    id: ConnId,
    state: &'a mut ConnState,
}

impl ConnIo<'_> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The bytes received and not yet consumed. Consume with `split_to`/`advance`.
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.state.input
    }

    /// The buffer to write answers into; flushed at the end of the loop turn in one send.
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.state.output
    }

    /// The input buffer and the output buffer at once.
    pub fn buffers(&mut self) -> (&mut BytesMut, &mut BytesMut) {
        (&mut self.state.input, &mut self.state.output)
    }

    /// Output bytes not yet acknowledged by the socket (queued plus in flight).
    pub fn pending_output(&self) -> usize {
        self.state.pending_output()
    }

    /// True while pending output is at or above the high water mark: stop producing output.
    pub fn is_write_blocked(&self) -> bool {
        self.state.write_blocked || self.state.pending_output() >= self.state.opts.write_high_water
    }

    /// Tells how many more bytes the frame being received needs, so the next receive offers at
    /// least that much room (0: no frame pending).
    pub fn set_read_hint(&mut self, bytes: usize) {
        self.state.read_hint = bytes;
    }

    /// Stops receiving until [`ConnIo::resume_reading`].
    pub fn pause_reading(&mut self) {
        self.state.read_paused = true;
    }

    /// Resumes receiving after [`ConnIo::pause_reading`].
    pub fn resume_reading(&mut self) {
        self.state.read_paused = false;
    }

    /// True once the peer has closed its sending side.
    pub fn is_read_closed(&self) -> bool {
        self.state.read_closed
    }

    /// Closes the connection once all output is flushed; nothing more is read.
    pub fn close(&mut self) {
        self.request_close(CloseReason::Local, true);
    }

    /// Closes the connection now, dropping unsent output.
    pub fn abort(&mut self) {
        self.request_close(CloseReason::Local, false);
    }

    /// True once a close was asked for or is under way.
    pub fn is_closing(&self) -> bool {
        self.state.close_request.is_some() || self.state.phase != Phase::Open
    }

    fn request_close(&mut self, reason: CloseReason, graceful: bool) {
        if self.state.close_request.is_none() {
            self.state.close_request = Some((reason, graceful));
        } else if !graceful {
            if let Some((_, g)) = self.state.close_request.as_mut() {
                *g = false;
            }
        }
    }

    /// Calls [`Connection::on_timer`] with `token` at or after `deadline`.
    pub fn set_timer(&mut self, deadline: Instant, token: u64) -> TimerId {
        self.core
            .timers
            .insert(deadline, TimerTarget::Conn { id: self.id, token })
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.core.timers.cancel(id).is_some()
    }

    /// The time at the start of the current loop turn.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// The shard's services (handle, deferred work, shard-wide timers).
    pub fn shard(&mut self) -> &mut ShardCore {
        self.core
    }
}

/// A shard with everything it owns; posted closures and timer tasks get `&mut Shard`.
pub struct Shard {
    core: ShardCore,
    slots: Vec<SlotEntry>,
    free: Vec<u32>,
    listeners: Vec<Option<ListenerSlot>>,
    mailbox: Receiver<Task>,
    flush_queue: Vec<u32>,
    /// Sends submitted this turn whose completion needs no prompt handling (see `flush`).
    quiet_sends: usize,
    /// Poll instead of sleeping (`RuntimeConfig::busy_poll`).
    busy_poll: bool,
    /// Loop turns so far.
    turn: u64,
    completions: Vec<(u64, i32, u32)>,
    eventfd_buf: Box<u64>,
    eventfd_inflight: bool,
}

impl std::ops::Deref for Shard {
    type Target = ShardCore;
    fn deref(&self) -> &ShardCore {
        &self.core
    }
}

impl std::ops::DerefMut for Shard {
    fn deref_mut(&mut self) -> &mut ShardCore {
        &mut self.core
    }
}

/// How a shard receives and waits (from [`super::RuntimeConfig`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShardOptions {
    pub(crate) recv_poll_first: bool,
    pub(crate) wait_for_sends: bool,
    pub(crate) recv_multishot: bool,
    pub(crate) pool_buffers: u16,
    pub(crate) pool_buffer_size: u32,
    pub(crate) busy_poll: bool,
}

pub(crate) fn build_ring(entries: u32, want: TaskRun) -> io::Result<(IoUring, TaskRun)> {
    let cq = entries.saturating_mul(8).max(256);
    let mut mode = want;
    loop {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq);
        match mode {
            TaskRun::Defer => {
                builder.setup_single_issuer().setup_defer_taskrun();
            }
            TaskRun::Coop => {
                builder.setup_single_issuer().setup_coop_taskrun();
            }
            TaskRun::Plain => {}
        }
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, mode)),
            Err(e) => {
                mode = match mode {
                    TaskRun::Defer => TaskRun::Coop,
                    TaskRun::Coop => TaskRun::Plain,
                    TaskRun::Plain => return Err(e),
                }
            }
        }
    }
}

impl Shard {
    pub(crate) fn new(
        id: usize,
        ring: IoUring,
        task_run: TaskRun,
        opts: ShardOptions,
        handle: ShardHandle,
        mailbox: Receiver<Task>,
    ) -> Shard {
        let ShardOptions {
            recv_poll_first,
            wait_for_sends,
            recv_multishot,
            pool_buffers,
            pool_buffer_size,
            busy_poll,
        } = opts;
        let pool = if recv_multishot {
            RecvPool::new(&ring, pool_buffers, pool_buffer_size).ok()
        } else {
            None
        };
        Shard {
            core: ShardCore {
                ring,
                id,
                handle,
                now: Instant::now(),
                timers: TimerHeap::new(),
                deferred: VecDeque::new(),
                stopping: false,
                task_run,
                recv_poll_first,
                wait_for_sends,
                conn_count: 0,
                idle_polled: Duration::ZERO,
                locals: Vec::new(),
                pool,
            },
            slots: Vec::new(),
            free: Vec::new(),
            listeners: Vec::new(),
            mailbox,
            flush_queue: Vec::new(),
            quiet_sends: 0,
            busy_poll,
            turn: 0,
            completions: Vec::with_capacity(1024),
            eventfd_buf: Box::new(0),
            eventfd_inflight: false,
        }
    }

    /// Starts accepting on `listener`; each accepted socket goes to `acceptor`.
    pub fn listen(&mut self, listener: Listener, acceptor: Box<dyn Acceptor>) -> ListenerId {
        // SAFETY: sockaddr_storage is plain old data; zeroed is a valid value.
        let storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let slot = ListenerSlot {
            fd: listener.into_fd(),
            acceptor,
            addr: Box::new((storage, 0)),
            accept_inflight: false,
            stopping: false,
        };
        let idx = match self.listeners.iter().position(|l| l.is_none()) {
            Some(i) => {
                self.listeners[i] = Some(slot);
                i
            }
            None => {
                self.listeners.push(Some(slot));
                self.listeners.len() - 1
            }
        };
        self.arm_accept(idx);
        ListenerId(idx)
    }

    /// Stops accepting on a listener and closes its socket (asynchronously; the acceptor's
    /// `on_stopped` is called when done). Connections it accepted stay open.
    pub fn stop_listening(&mut self, id: ListenerId) {
        let Some(Some(l)) = self.listeners.get_mut(id.0) else {
            return;
        };
        if l.stopping {
            return;
        }
        l.stopping = true;
        if l.accept_inflight {
            let entry = opcode::AsyncCancel::new(pack(OP_ACCEPT, id.0 as u32, 0))
                .build()
                .user_data(pack(OP_CANCEL, 0, 0));
            self.core.push(entry);
        } else {
            self.finish_listener(id.0);
        }
    }

    /// Listeners currently accepting (or stopping) on this shard.
    pub fn listener_count(&self) -> usize {
        self.listeners.iter().filter(|l| l.is_some()).count()
    }

    /// Opens an outbound connection to `addr` run by `conn`; `on_open` is called when connected,
    /// `on_closed` with [`CloseReason::ConnectFailed`]/[`CloseReason::ConnectTimedOut`] if not.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        conn: Box<dyn Connection>,
        opts: ConnOptions,
    ) -> io::Result<ConnId> {
        let fd = socket::new_socket(&addr)?;
        socket::set_nodelay(fd.as_raw_fd())?;
        let mut state = ConnState::new(fd, Phase::Connecting, opts);
        let (storage, len) = socket::to_sockaddr(&addr);
        state.connect_addr = Some(Box::new((storage, len)));
        let id = self.insert(conn, state)?;
        let deadline = self.core.now + timeout;
        let timer = self
            .core
            .timers
            .insert(deadline, TimerTarget::ConnectTimeout(id));
        let st = &mut self.slots[id.slot as usize]
            .conn
            .as_mut()
            .expect("just inserted")
            .state;
        st.connect_timer = Some(timer);
        st.connect_inflight = true;
        let (ptr, len) = {
            let a = st.connect_addr.as_ref().expect("set above");
            (
                &a.0 as *const libc::sockaddr_storage as *const libc::sockaddr,
                a.1,
            )
        };
        let entry = opcode::Connect::new(types::Fd(st.raw_fd), ptr, len)
            .build()
            .user_data(pack(OP_CONNECT, id.slot, id.generation));
        self.core.push(entry);
        Ok(id)
    }

    /// Runs `f` on the live connection `id` if it is of type `T`; `None` if it is gone (or of
    /// another type).
    pub fn with_conn<T: Connection, R>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut T, &mut ConnIo<'_>) -> R,
    ) -> Option<R> {
        let entry = self.slots.get_mut(id.slot as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        let slot = entry.conn.as_mut()?;
        if slot.state.phase == Phase::Closing {
            return None;
        }
        let any: &mut dyn Any = slot.handler.as_mut();
        let conn = any.downcast_mut::<T>()?;
        let mut io = ConnIo {
            core: &mut self.core,
            id,
            state: &mut slot.state,
        };
        let r = f(conn, &mut io);
        self.settle(id.slot);
        Some(r)
    }

    /// Closes connection `id`: after flushing its output if `graceful`, at once otherwise.
    pub fn close_conn(&mut self, id: ConnId, graceful: bool) {
        if let Some(st) = self.state_mut(id) {
            if st.close_request.is_none() {
                st.close_request = Some((CloseReason::Local, graceful));
            }
            self.settle(id.slot);
        }
    }

    /// True if `id` names a connection that is still open (not yet closed).
    pub fn is_conn_open(&self, id: ConnId) -> bool {
        self.slots.get(id.slot as usize).is_some_and(|e| {
            e.generation == id.generation
                && e.conn
                    .as_ref()
                    .is_some_and(|c| c.state.phase != Phase::Closing)
        })
    }

    /// Ids of every live connection on this shard.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, e)| e.conn.is_some())
            .map(|(i, e)| ConnId {
                slot: i as u32,
                generation: e.generation,
            })
            .collect()
    }

    fn state_mut(&mut self, id: ConnId) -> Option<&mut ConnState> {
        let entry = self.slots.get_mut(id.slot as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.conn.as_mut().map(|c| &mut c.state)
    }

    fn insert(&mut self, handler: Box<dyn Connection>, state: ConnState) -> io::Result<ConnId> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                if self.slots.len() >= MAX_SLOTS {
                    return Err(io::Error::other("too many connections on one shard"));
                }
                self.slots.push(SlotEntry {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.conn = Some(ConnSlot { handler, state });
        self.core.conn_count += 1;
        Ok(ConnId {
            slot,
            generation: entry.generation,
        })
    }

    // --- the loop ---

    pub(crate) fn run(mut self) {
        self.arm_eventfd();
        // The previous turn's start, if it found nothing to do (busy polling only).
        let mut idle_since: Option<Instant> = None;
        loop {
            self.turn = self.turn.wrapping_add(1);
            let now = Instant::now();
            self.core.now = now;
            if let Some(since) = idle_since.take() {
                self.core.idle_polled += now.saturating_duration_since(since);
            }
            self.reap_completions();
            let fired = self.fire_timers();
            let posted = self.drain_mailbox();
            let deferred = self.run_deferred();
            if self.busy_poll && self.completions.is_empty() && !fired && !posted && !deferred {
                idle_since = Some(now);
            }
            if self.core.stopping {
                self.stop_everything();
                if self.core.conn_count == 0 && self.listener_count() == 0 {
                    break;
                }
            }
            self.flush();
            // A busy-polling shard never sleeps: every turn polls the ring (`poll_ring`).
            let busy = self.busy_poll
                || !self.core.deferred.is_empty()
                || !self.mailbox.is_empty()
                || !self.core.handle.overflow().is_empty();
            // With DEFER_TASKRUN, completions are only produced by an enter that asks for
            // events: even when there is no time to wait, poll the ring (`poll_ring`) rather
            // than make a plain submit, or a busy mailbox could starve the sockets.
            let wait = if busy {
                Some(Duration::ZERO)
            } else {
                self.core
                    .timers
                    .next_deadline()
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            };
            let want = if self.core.wait_for_sends && !busy {
                1 + self.quiet_sends
            } else {
                1
            };
            // Waiting for more than one event risks sleeping through a single one that matters
            // (a mailbox wake-up while a quiet send is stuck behind a full socket buffer): such
            // a wait is cut short after QUIET_SEND_WAIT_MAX, so that case costs at most that
            // much latency; normally the events arrive long before.
            let wait = if want > 1 {
                Some(wait.map_or(QUIET_SEND_WAIT_MAX, |w| w.min(QUIET_SEND_WAIT_MAX)))
            } else {
                wait
            };
            let result = match wait {
                // Nothing to wait for: submit and reap, asking for no completion.
                Some(timeout) if timeout.is_zero() => self.poll_ring(),
                Some(timeout) => {
                    let ts = types::Timespec::from(timeout);
                    let args = types::SubmitArgs::new().timespec(&ts);
                    self.core.ring.submitter().submit_with_args(want, &args)
                }
                None => self.core.ring.submit_and_wait(want),
            };
            if let Err(e) = result {
                match e.raw_os_error() {
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                    | Some(libc::EAGAIN) => {}
                    _ => panic!("io_uring wait failed: {e}"),
                }
            }
        }
        // Every connection is closed, so no receive is in flight: the kernel may forget the pool.
        if let Some(pool) = self.core.pool.as_mut() {
            pool.unregister(&self.core.ring);
        }
        self.core.handle.mark_stopped();
        // Remaining mailbox closures (and whatever they own) are dropped on this thread.
        while self.mailbox.try_recv().is_ok() {}
        while self.core.handle.overflow().try_recv().is_ok() {}
    }

    /// Submits what is queued and runs the ring's deferred work (with DEFER_TASKRUN,
    /// completions are only produced by an enter that asks for events) without waiting.
    ///
    /// Not `submit_with_args(want, zero timeout)`: an enter that wants a completion it does not
    /// have yet arms a kernel timer even for a zero timeout (io_cqring_wait), and under this
    /// machine's hypervisor that costs about 10 us a turn (31% of a busy-polling generator's
    /// profile sat in that wait). Asking for zero completions returns as soon as the deferred
    /// work has run.
    fn poll_ring(&mut self) -> io::Result<usize> {
        let queued = self.core.ring.submission().len() as u32;
        // SAFETY: no argument is passed (a null pointer, which the kernel ignores without
        // IORING_ENTER_EXT_ARG), and `queued` entries are in the submission queue, filled
        // and published by `submission()`.
        unsafe {
            self.core.ring.submitter().enter::<libc::sigset_t>(
                queued,
                0,
                IORING_ENTER_GETEVENTS,
                None,
            )
        }
    }

    fn reap_completions(&mut self) {
        let mut batch = mem::take(&mut self.completions);
        batch.clear();
        batch.extend(
            self.core
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(user_data, result, flags) in &batch {
            let (op, slot, generation) = unpack(user_data);
            match op {
                OP_RECV => self.on_recv(slot, generation, result),
                OP_RECV_MULTI => self.on_recv_multi(slot, generation, result, flags),
                OP_SEND => self.on_send(slot, generation, result),
                OP_CONNECT => self.on_connect(slot, generation, result),
                OP_ACCEPT => self.on_accept(slot as usize, result),
                OP_EVENTFD => {
                    self.eventfd_inflight = false;
                    self.core.handle.rearm();
                    self.arm_eventfd();
                }
                _ => {}
            }
        }
        self.completions = batch;
    }

    /// Runs every due timer; whether there was one.
    fn fire_timers(&mut self) -> bool {
        let now = self.core.now;
        let mut fired = false;
        while let Some(target) = self.core.timers.pop_expired(now) {
            fired = true;
            match target {
                TimerTarget::Task(task) => task(self),
                TimerTarget::Conn { id, token } => {
                    self.call(id, |h, io| h.on_timer(io, token));
                }
                TimerTarget::ConnectTimeout(id) => {
                    if let Some(st) = self.state_mut(id) {
                        st.connect_timer = None;
                        if st.phase == Phase::Connecting {
                            st.close_request = Some((CloseReason::ConnectTimedOut, false));
                            self.settle(id.slot);
                        }
                    }
                }
                TimerTarget::RearmAccept(idx) => self.arm_accept(idx),
                TimerTarget::Linger(id) => {
                    if self
                        .state_mut(id)
                        .is_some_and(|st| st.phase == Phase::Closing)
                    {
                        self.progress_close(id.slot, id.generation);
                    }
                }
            }
        }
        fired
    }

    /// Runs posted tasks (bounded per turn so that a flood of posts cannot starve the
    /// sockets); whether there was one.
    fn drain_mailbox(&mut self) -> bool {
        let mut ran = false;
        for _ in 0..4096 {
            match self.mailbox.try_recv() {
                Ok(task) => {
                    ran = true;
                    task(self)
                }
                Err(_) => break,
            }
        }
        for _ in 0..4096 {
            match self.core.handle.overflow().try_recv() {
                Ok(task) => {
                    ran = true;
                    task(self)
                }
                Err(_) => break,
            }
        }
        ran
    }

    /// Runs the tasks deferred so far; whether there was one.
    fn run_deferred(&mut self) -> bool {
        let n = self.core.deferred.len();
        for _ in 0..n {
            match self.core.deferred.pop_front() {
                Some(task) => task(self),
                None => break,
            }
        }
        n > 0
    }

    /// Calls a handler method on a live connection, then settles the connection's state.
    fn call(&mut self, id: ConnId, f: impl FnOnce(&mut dyn Connection, &mut ConnIo<'_>)) {
        let Some(entry) = self.slots.get_mut(id.slot as usize) else {
            return;
        };
        if entry.generation != id.generation {
            return;
        }
        let Some(slot) = entry.conn.as_mut() else {
            return;
        };
        if slot.state.phase == Phase::Closing {
            return;
        }
        let mut io = ConnIo {
            core: &mut self.core,
            id,
            state: &mut slot.state,
        };
        f(slot.handler.as_mut(), &mut io);
        self.settle(id.slot);
    }

    fn on_recv(&mut self, slot: u32, generation: u32, result: i32) {
        let id = ConnId { slot, generation };
        let Some(st) = self.state_mut(id) else { return };
        st.recv_inflight = false;
        let mut buf = mem::take(&mut st.receiving);
        if result > 0 {
            let n = result as usize;
            let offered = buf.capacity() - buf.len();
            // SAFETY: the kernel wrote `n` bytes (n <= offered) into the spare capacity that
            // starts at buf.len(); those bytes are now initialised.
            unsafe { buf.set_len(buf.len() + n) };
            if n == offered && st.read_size < st.opts.max_read {
                st.read_size = (st.read_size * 2).min(st.opts.max_read);
            }
            st.drained = n < offered;
            // Back to multishot once the peer sends small chunks again (request/response
            // traffic); a stream (full or large receives) stays on single-shot receives, which
            // land in the frame's buffer without a copy.
            st.multi_off = !(st.drained && n < MULTISHOT_BELOW);
            if !st.input.is_empty() {
                // Cannot happen (input is lent whole to the kernel); keep the order regardless.
                let tail = buf.split();
                buf = mem::take(&mut st.input);
                buf.unsplit(tail);
            }
            st.input = buf;
            if st.phase == Phase::Open && st.close_request.is_none() {
                self.call(id, |h, io| h.on_data(io));
            } else {
                self.settle(slot);
            }
        } else {
            st.input = buf;
            if result == 0 {
                self.on_peer_closed(id);
            } else if result == -libc::ECANCELED
                || result == -libc::EINTR
                || result == -libc::EAGAIN
            {
                st.recv_cancelled = false;
                self.settle(slot);
            } else {
                st.close_request = Some((CloseReason::Error(-result), false));
                st.reason.get_or_insert(CloseReason::Error(-result));
                self.settle(slot);
            }
        }
    }

    /// A receive (single-shot or multishot) found the peer's side closed: the handler hears of
    /// it while the connection is open and no close was asked for; otherwise the close goes on.
    fn on_peer_closed(&mut self, id: ConnId) {
        let Some(st) = self.state_mut(id) else { return };
        st.read_closed = true;
        st.reason.get_or_insert(CloseReason::PeerClosed);
        if st.phase == Phase::Open && st.close_request.is_none() {
            self.call(id, |h, io| h.on_read_closed(io));
        } else {
            self.settle(id.slot);
        }
    }

    /// A completion of a multishot receive: bytes in one of the pool's buffers (copied into the
    /// connection's input at once, the buffer given back), or the receive's end (no
    /// IORING_CQE_F_MORE: end of stream, an error, a cancel, or the pool ran dry).
    fn on_recv_multi(&mut self, slot: u32, generation: u32, result: i32, flags: u32) {
        let id = ConnId { slot, generation };
        let bid = cqueue::buffer_select(flags);
        let more = cqueue::more(flags);
        let st = match self.slots.get_mut(slot as usize) {
            Some(e) if e.generation == generation => e.conn.as_mut().map(|c| &mut c.state),
            _ => None,
        };
        let buf_more = cqueue::buffer_more(flags);
        let Some(st) = st else {
            if let (Some(b), Some(pool)) = (bid, self.core.pool.as_mut()) {
                pool.consumed(b, result.max(0) as usize, buf_more);
            }
            return;
        };
        if !more {
            st.recv_inflight = false;
            st.recv_multi = false;
        }
        if let (Some(b), Some(pool)) = (bid, self.core.pool.as_mut()) {
            let n = result.max(0) as usize;
            if let Some(data) = pool.data(b, n) {
                let want = n.max(st.read_hint.min(READ_AHEAD_MAX));
                if st.input.capacity() - st.input.len() < want {
                    st.input.reserve(want.max(st.read_size));
                }
                st.input.extend_from_slice(data);
            }
            pool.consumed(b, n, buf_more);
        }
        if result > 0 && more {
            // Take in no more per turn than a single-shot receive would: past `read_size` bytes
            // this turn, cancel and re-arm (the next receive's bytes come in the next turn), so
            // that one busy connection cannot fill the shard's turn (and the pool) alone.
            if st.turn_mark != self.turn {
                st.turn_mark = self.turn;
                st.turn_bytes = 0;
            }
            st.turn_bytes += result as usize;
            if st.turn_bytes >= st.read_size && !st.recv_cancelled {
                // A stream rather than requests: single-shot receives from here on (no copy, and
                // at most read_size per turn), until receives get small again.
                st.read_size = (st.read_size * 2).min(st.opts.max_read.max(st.read_size));
                st.multi_off = true;
                st.recv_cancelled = true;
                self.core.push(
                    opcode::AsyncCancel::new(pack(OP_RECV_MULTI, slot, generation))
                        .build()
                        .user_data(pack(OP_CANCEL, slot, generation)),
                );
            }
        }
        if result > 0 {
            if st.phase == Phase::Open && st.close_request.is_none() {
                self.call(id, |h, io| h.on_data(io));
            } else {
                self.settle(slot);
            }
        } else if result == 0 {
            self.on_peer_closed(id);
        } else if result == -libc::ENOBUFS {
            // Every pool buffer was taken at once: one single-shot receive, then multishot again.
            st.multi_off = true;
            st.recv_cancelled = false;
            self.settle(slot);
        } else if result == -libc::ECANCELED || result == -libc::EINTR || result == -libc::EAGAIN {
            st.recv_cancelled = false;
            self.settle(slot);
        } else {
            st.recv_cancelled = false;
            st.close_request = Some((CloseReason::Error(-result), false));
            st.reason.get_or_insert(CloseReason::Error(-result));
            self.settle(slot);
        }
    }

    fn on_send(&mut self, slot: u32, generation: u32, result: i32) {
        let id = ConnId { slot, generation };
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let Some(c) = entry.conn.as_mut() else { return };
        let st = &mut c.state;
        st.send_inflight = false;
        if result < 0 {
            if result != -libc::ECANCELED && st.close_request.is_none() {
                st.close_request = Some((CloseReason::Error(-result), false));
            }
            st.sending.clear();
            st.send_cancelled = false;
            self.settle(slot);
            return;
        }
        let n = (result as usize).min(st.sending.len());
        bytes::Buf::advance(&mut st.sending, n);
        if !st.sending.is_empty() {
            if st.phase != Phase::Closing {
                self.submit_send(slot);
            }
            self.settle(slot);
            return;
        }
        // Everything sent: keep the (now empty) buffer for reuse.
        st.sending.clear();
        if !st.output.is_empty() && !st.queued_for_flush {
            st.queued_for_flush = true;
            self.flush_queue.push(slot);
        }
        let writable = st.write_blocked && st.pending_output() <= st.opts.write_low_water;
        if writable {
            st.write_blocked = false;
            if st.phase == Phase::Open && st.close_request.is_none() {
                self.call(id, |h, io| h.on_writable(io));
                return;
            }
        }
        self.settle(slot);
    }

    fn on_connect(&mut self, slot: u32, generation: u32, result: i32) {
        let id = ConnId { slot, generation };
        let Some(st) = self.state_mut(id) else { return };
        st.connect_inflight = false;
        st.connect_cancelled = false;
        if let Some(t) = st.connect_timer.take() {
            self.core.timers.cancel(t);
        }
        let Some(st) = self.state_mut(id) else { return };
        if result == 0 && st.close_request.is_none() {
            st.phase = Phase::Open;
            st.connect_addr = None;
            self.call(id, |h, io| h.on_open(io));
        } else {
            let reason = if result < 0 && result != -libc::ECANCELED {
                CloseReason::ConnectFailed(-result)
            } else {
                st.close_request
                    .map(|(r, _)| r)
                    .unwrap_or(CloseReason::Local)
            };
            // A connect that never opened reports why it failed rather than a generic close.
            st.reason = Some(reason);
            st.close_request = Some((reason, false));
            self.settle(slot);
        }
    }

    fn on_accept(&mut self, idx: usize, result: i32) {
        let Some(Some(l)) = self.listeners.get_mut(idx) else {
            if result >= 0 {
                // SAFETY: the kernel gave us this new descriptor and nobody else holds it.
                unsafe { libc::close(result) };
            }
            return;
        };
        l.accept_inflight = false;
        if result >= 0 {
            let fd = result as RawFd;
            if l.stopping || self.core.stopping {
                // SAFETY: as above: a fresh descriptor owned by nobody else.
                unsafe { libc::close(fd) };
            } else {
                let peer = socket::from_sockaddr(&l.addr.0, l.addr.1);
                // SAFETY: the kernel gave us this new descriptor and nobody else holds it.
                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                let _ = socket::set_nodelay(fd);
                let decision = l.acceptor.on_accept(&mut self.core, peer);
                match decision {
                    Some((handler, opts)) => {
                        let state = ConnState::new(owned, Phase::Open, opts);
                        // If the slab is full, handler and socket are dropped: closed at once.
                        if let Ok(id) = self.insert(handler, state) {
                            self.call(id, |h, io| h.on_open(io));
                        }
                    }
                    None => drop(owned),
                }
            }
        }
        let Some(Some(l)) = self.listeners.get_mut(idx) else {
            return;
        };
        if l.stopping {
            self.finish_listener(idx);
        } else if result == -libc::EMFILE
            || result == -libc::ENFILE
            || result == -libc::ENOBUFS
            || result == -libc::ENOMEM
        {
            // Out of descriptors or memory: retry a little later instead of spinning.
            let at = self.core.now + Duration::from_millis(10);
            self.core.timers.insert(at, TimerTarget::RearmAccept(idx));
        } else {
            self.arm_accept(idx);
        }
    }

    fn finish_listener(&mut self, idx: usize) {
        let Some(Some(l)) = self.listeners.get(idx) else {
            return;
        };
        if l.accept_inflight {
            return;
        }
        if let Some(mut l) = self.listeners[idx].take() {
            drop(l.fd);
            l.acceptor.on_stopped(&mut self.core);
        }
    }

    fn arm_accept(&mut self, idx: usize) {
        let Some(Some(l)) = self.listeners.get_mut(idx) else {
            return;
        };
        if l.accept_inflight || l.stopping {
            return;
        }
        l.addr.1 = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let addr = &mut l.addr.0 as *mut libc::sockaddr_storage as *mut libc::sockaddr;
        let len = &mut l.addr.1 as *mut libc::socklen_t;
        let entry = opcode::Accept::new(types::Fd(l.fd.as_raw_fd()), addr, len)
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(pack(OP_ACCEPT, idx as u32, 0));
        l.accept_inflight = true;
        self.core.push(entry);
    }

    fn arm_eventfd(&mut self) {
        if self.eventfd_inflight {
            return;
        }
        let buf = &mut *self.eventfd_buf as *mut u64 as *mut u8;
        let entry = opcode::Read::new(types::Fd(self.core.handle.eventfd()), buf, 8)
            .build()
            .user_data(pack(OP_EVENTFD, 0, 0));
        self.eventfd_inflight = true;
        self.core.push(entry);
    }

    /// Brings a connection's operations in line with its state after any event: starts closing,
    /// queues output for the end-of-turn flush, applies the write water marks, arms a receive.
    fn settle(&mut self, slot: u32) {
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let generation = entry.generation;
        let Some(c) = entry.conn.as_mut() else { return };
        let st = &mut c.state;
        if let Some((reason, graceful)) = st.close_request {
            st.reason.get_or_insert(reason);
            match (st.phase, graceful) {
                (Phase::Open, true) => st.phase = Phase::Draining,
                (Phase::Connecting, _) | (Phase::Open, false) | (Phase::Draining, false) => {
                    st.phase = Phase::Closing
                }
                _ => {}
            }
        }
        if st.phase == Phase::Draining && st.pending_output() == 0 {
            st.phase = Phase::Closing;
            st.flushed_close = true;
        }
        if st.phase == Phase::Closing {
            self.progress_close(slot, generation);
            return;
        }
        if !st.output.is_empty() && !st.queued_for_flush && !st.send_inflight {
            st.queued_for_flush = true;
            self.flush_queue.push(slot);
        }
        if st.pending_output() >= st.opts.write_high_water {
            st.write_blocked = true;
        }
        let wants_read = st.phase == Phase::Open
            && !st.read_paused
            && (!st.write_blocked || st.opts.read_while_write_blocked)
            && !st.read_closed;
        if wants_read && !st.recv_inflight {
            self.submit_recv(slot, generation);
        } else if st.recv_inflight
            && !st.recv_cancelled
            && (st.phase == Phase::Draining || (st.recv_multi && !wants_read))
        {
            // A multishot receive would keep filling the input of a connection that stopped
            // reading: cancel it (a single-shot one in flight is bounded and may finish).
            st.recv_cancelled = true;
            let op = if st.recv_multi {
                OP_RECV_MULTI
            } else {
                OP_RECV
            };
            self.core.push(
                opcode::AsyncCancel::new(pack(op, slot, generation))
                    .build()
                    .user_data(pack(OP_CANCEL, slot, generation)),
            );
        }
    }

    fn progress_close(&mut self, slot: u32, generation: u32) {
        let entry = &mut self.slots[slot as usize];
        let c = entry.conn.as_mut().expect("live slot");
        let st = &mut c.state;
        let mut cancels = [None; 3];
        if st.recv_inflight && !st.recv_cancelled {
            st.recv_cancelled = true;
            cancels[0] = Some(if st.recv_multi {
                OP_RECV_MULTI
            } else {
                OP_RECV
            });
        }
        if st.send_inflight && !st.send_cancelled {
            st.send_cancelled = true;
            cancels[1] = Some(OP_SEND);
        }
        if st.connect_inflight && !st.connect_cancelled {
            st.connect_cancelled = true;
            cancels[2] = Some(OP_CONNECT);
        }
        let idle = !st.recv_inflight && !st.send_inflight && !st.connect_inflight;
        for op in cancels.into_iter().flatten() {
            self.core.push(
                opcode::AsyncCancel::new(pack(op, slot, generation))
                    .build()
                    .user_data(pack(OP_CANCEL, slot, generation)),
            );
        }
        if !idle {
            return;
        }
        if st.flushed_close && !self.core.stopping && must_linger(st.raw_fd) {
            let now = self.core.now;
            let until = *st.linger_until.get_or_insert(now + LINGER_MAX);
            if now < until {
                let id = ConnId { slot, generation };
                self.core
                    .timers
                    .insert(now + LINGER_POLL, TimerTarget::Linger(id));
                return;
            }
        }
        // Nothing in flight: the kernel holds no pointer into this slot any more.
        let entry = &mut self.slots[slot as usize];
        let mut c = entry.conn.take().expect("live slot");
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.core.conn_count -= 1;
        if let Some(t) = c.state.connect_timer.take() {
            self.core.timers.cancel(t);
        }
        let reason = c.state.reason.unwrap_or(CloseReason::Local);
        drop(c.state.fd.take());
        c.handler.on_closed(&mut self.core, reason);
    }

    fn submit_recv(&mut self, slot: u32, generation: u32) {
        let c = self.slots[slot as usize].conn.as_mut().expect("live slot");
        let st = &mut c.state;
        if self.core.pool.is_some() && !st.multi_off {
            // Armed once; the input buffer stays with the connection (bytes are copied in).
            st.recv_inflight = true;
            st.recv_multi = true;
            st.recv_cancelled = false;
            let entry = opcode::RecvMulti::new(types::Fd(st.raw_fd), super::bufring::POOL_GROUP)
                .build()
                .user_data(pack(OP_RECV_MULTI, slot, generation));
            self.core.push(entry);
            return;
        }
        st.recv_multi = false;
        // Room for the pending frame, but never more than READ_AHEAD_MAX ahead of the bytes that
        // arrived: a peer announcing a large (allowed) frame and sending it slowly cannot make
        // every connection reserve the whole frame up front.
        let want = st.read_size.max(st.read_hint.min(READ_AHEAD_MAX)).max(64);
        st.input.reserve(want);
        let mut buf = mem::take(&mut st.input);
        let spare = buf.capacity() - buf.len();
        let len = spare.min(u32::MAX as usize) as u32;
        let ptr = buf.spare_capacity_mut().as_mut_ptr() as *mut u8;
        st.receiving = mem::take(&mut buf);
        st.recv_inflight = true;
        st.recv_cancelled = false;
        // After a receive that emptied the socket, the next one would almost surely find nothing:
        // ask the kernel to wait for data first instead of trying (and failing) a receive.
        let ioprio = if st.drained && self.core.recv_poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        let entry = opcode::Recv::new(types::Fd(st.raw_fd), ptr, len)
            .ioprio(ioprio)
            .build()
            .user_data(pack(OP_RECV, slot, generation));
        self.core.push(entry);
    }

    fn submit_send(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        let generation = entry.generation;
        let st = &mut entry.conn.as_mut().expect("live slot").state;
        let len = st.sending.len().min(u32::MAX as usize) as u32;
        let e = opcode::Send::new(types::Fd(st.raw_fd), st.sending.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(pack(OP_SEND, slot, generation));
        st.send_inflight = true;
        self.core.push(e);
    }

    /// Submits one send per connection with output queued this turn; the output buffer and the
    /// in-flight buffer swap roles so that new answers accumulate while the kernel sends.
    ///
    /// A send on a connection that is open, not write-blocked and has a receive in flight is
    /// "quiet": its completion only releases the buffer, and that connection's receive (or
    /// any other event) will wake the shard anyway. The loop then waits for one event more per
    /// quiet send, so that sends completing during the submit do not cost a second enter.
    fn flush(&mut self) {
        self.quiet_sends = 0;
        let mut queue = mem::take(&mut self.flush_queue);
        for &slot in &queue {
            let Some(c) = self
                .slots
                .get_mut(slot as usize)
                .and_then(|e| e.conn.as_mut())
            else {
                continue;
            };
            let st = &mut c.state;
            st.queued_for_flush = false;
            if st.send_inflight || st.output.is_empty() || st.phase == Phase::Closing {
                continue;
            }
            debug_assert!(st.sending.is_empty());
            mem::swap(&mut st.output, &mut st.sending);
            if st.phase == Phase::Open
                && st.close_request.is_none()
                && st.recv_inflight
                && !st.write_blocked
            {
                self.quiet_sends += 1;
            }
            self.submit_send(slot);
        }
        queue.clear();
        if self.flush_queue.is_empty() {
            self.flush_queue = queue;
        }
    }

    fn stop_everything(&mut self) {
        for idx in 0..self.listeners.len() {
            if self.listeners[idx].is_some() {
                self.stop_listening(ListenerId(idx));
            }
        }
        for slot in 0..self.slots.len() as u32 {
            let entry = &mut self.slots[slot as usize];
            if let Some(c) = entry.conn.as_mut() {
                if c.state.phase != Phase::Closing {
                    c.state.close_request = Some((CloseReason::ShardStopped, false));
                    c.state.reason = Some(CloseReason::ShardStopped);
                    self.settle(slot);
                }
            }
        }
    }

    pub(crate) fn request_stop(&mut self) {
        self.core.stopping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips_op_slot_and_generation() {
        for (op, slot, generation) in [
            (OP_RECV, 0, 0),
            (OP_SEND, 0xFF_FFFF, u32::MAX),
            (OP_ACCEPT, 12345, 7),
        ] {
            assert_eq!(unpack(pack(op, slot, generation)), (op, slot, generation));
        }
    }
}
