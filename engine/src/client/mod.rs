//! The client: calls to OCTO and plain Thrift servers over multiplexed connections on the
//! runtime's shards.
//!
//! Per shard and endpoint a small pool of connections carries many calls at once, matched to
//! their answers by sequence id (the 64-bit `RequestInfo.sequenceId` on OCTO, the Thrift seqid on
//! plain Thrift). Every call's deadline is a timer on the shard that owns its connection, so a
//! timeout is delivered when it falls due, not when some shared timer thread gets round to it.
//! A connection that dies fails its calls at once with TransportException; its slot reconnects
//! after an exponential backoff with full jitter ([`Backoff`]), so a fleet of clients does not
//! storm a restarting server. Idle connections send heartbeats, and a heartbeat left unanswered
//! past its deadline closes its connection (half-open connections do not linger). Calls are
//! spread round-robin over the endpoints that are up; an endpoint that is down is skipped until it
//! reconnects.
//!
//! Four ways to call, all ending in the same per-shard code:
//! - [`Client::call`] from any thread with a callback (run on the shard thread): one mailbox hop;
//! - [`Client::call_blocking`] from any thread but a shard thread;
//! - [`Client::call_async`], a future, from shard tasks ([`crate::runtime::spawn_local`]: no
//!   hop) or anywhere else (one hop);
//! - [`Client::call_on`] from code that already holds the `&mut Shard`;
//! - [`Client::call_on_then`] likewise, its callback given the shard back (later in the same loop
//!   turn) so that it can make the next call at once: the cheapest way to keep calls flowing;
//!
//! and one-way calls ([`Client::send_one_way`], [`Client::send_one_way_on`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use octo_engine::client::{Client, Request};
//! use octo_engine::proto::{echo, Framing};
//! use octo_engine::runtime::{Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::start(RuntimeConfig { shards: 1, ..RuntimeConfig::default() }).unwrap();
//! let client = Client::builder("com.example.Echo")
//!     .endpoint("127.0.0.1:9001".parse().unwrap(), Framing::Octo)
//!     .timeout(Duration::from_millis(500))
//!     .build(&runtime)
//!     .unwrap();
//! let response = client.call_blocking(Request::echo(b"hello")).unwrap();
//! let (_, reply) = echo::decode_reply(&response.body).unwrap();
//! assert_eq!(reply, echo::EchoReply::Success(b"hello"));
//! ```
//!
//! A runnable version is `cargo run --example echo_client` (engine/examples/echo_client.rs).

mod backoff;
mod call;
mod conn;
mod future;
mod shard;
mod wire;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub use backoff::{Backoff, Jitter};
pub use call::{CallError, CallErrorKind, CallResult, Completion, Request, Response};
pub use future::CallFuture;

use crate::proto::{Flags, Framing, DEFAULT_MAX_FRAME_SIZE};
use crate::runtime::{ConnOptions, Runtime, Shard, ShardHandle};

use conn::Outgoing;
use shard::ShardClient;
use wire::CallerInfo;

/// One server the client calls, and the framing it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// OCTO frames, or plain Thrift framed transport (Whale, Apache Thrift servers).
    pub framing: Framing,
}

/// Heartbeats on idle connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Send a heartbeat when nothing was received for this long.
    pub interval: Duration,
    /// Close the connection (failing its calls) if the heartbeat gets no answer within this.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// What happens to a client's connections; reported to the hook set with
/// [`ClientBuilder::on_event`], on the shard thread where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A connect to `endpoint` starts (`attempt` failed attempts since the last success).
    ConnectAttempt {
        /// The endpoint.
        endpoint: SocketAddr,
        /// Failed attempts before this one.
        attempt: u32,
        /// When.
        at: Instant,
    },
    /// A connection opened.
    Connected {
        /// The endpoint.
        endpoint: SocketAddr,
    },
    /// A connect attempt failed.
    ConnectFailed {
        /// The endpoint.
        endpoint: SocketAddr,
        /// Why.
        reason: String,
    },
    /// An open connection closed.
    Disconnected {
        /// The endpoint.
        endpoint: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A heartbeat was sent on an idle connection.
    HeartbeatSent {
        /// The endpoint.
        endpoint: SocketAddr,
    },
    /// A heartbeat went unanswered: its connection is being closed.
    HeartbeatTimedOut {
        /// The endpoint.
        endpoint: SocketAddr,
    },
}

type EventHook = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

/// Everything a client was built with (shared by its shards, read-only).
pub(crate) struct ClientConfig {
    pub endpoints: Vec<Endpoint>,
    pub caller: CallerInfo,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_size: usize,
    pub max_in_flight_per_conn: usize,
    pub max_waiting: usize,
    pub heartbeat: Option<Heartbeat>,
    pub thrift_heartbeat_method: Option<String>,
    pub backoff: Backoff,
    pub max_frame_size: usize,
    pub first_sequence_id: i64,
    pub conn_options: ConnOptions,
    pub events: Option<EventHook>,
}

impl ClientConfig {
    /// Tells the event hook (a panic in it is contained: it must not stop the shard).
    pub(crate) fn emit(&self, event: &ClientEvent) {
        if let Some(hook) = &self.events {
            let call = std::panic::AssertUnwindSafe(|| hook(event));
            if std::panic::catch_unwind(call).is_err() {
                eprintln!("octo client: the event hook panicked; the panic was contained");
            }
        }
    }
}

/// Builds a [`Client`]. Every setting has a default except the endpoints.
pub struct ClientBuilder {
    config: ClientConfig,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.config.endpoints)
            .field("service_name", &self.config.caller.service_name)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A client of the service named `service_name` (sent as RequestInfo.serviceName on OCTO).
    pub fn new(service_name: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig {
                endpoints: Vec::new(),
                caller: CallerInfo {
                    service_name: service_name.into(),
                    appkey: "octo.client".to_owned(),
                    client_ip: local_ip(),
                    flags: Flags::default(),
                },
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                pool_size: 2,
                max_in_flight_per_conn: 65_536,
                max_waiting: 65_536,
                heartbeat: Some(Heartbeat::default()),
                thrift_heartbeat_method: None,
                backoff: Backoff::default(),
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                first_sequence_id: 1,
                // A client's output is its requests: let a burst queue up to 8 MiB per
                // connection before calls are refused as Overloaded (their deadlines still apply).
                // It keeps reading answers meanwhile (they free calls and add no output).
                conn_options: ConnOptions {
                    write_high_water: 8 << 20,
                    write_low_water: 2 << 20,
                    ..ConnOptions::default()
                },
                events: None,
            },
        }
    }

    /// Adds an endpoint speaking `framing`.
    pub fn endpoint(mut self, addr: SocketAddr, framing: Framing) -> Self {
        self.config.endpoints.push(Endpoint { addr, framing });
        self
    }

    /// TraceInfo.clientAppkey (default `octo.client`).
    pub fn appkey(mut self, appkey: impl Into<String>) -> Self {
        self.config.caller.appkey = appkey.into();
        self
    }

    /// TraceInfo.clientIp (default: the address of this host's default route, if any).
    pub fn client_ip(mut self, ip: Option<String>) -> Self {
        self.config.caller.client_ip = ip;
        self
    }

    /// The OCTO protocol byte: checksum and compression (default 0x01, as Dorado).
    pub fn flags(mut self, flags: Flags) -> Self {
        self.config.caller.flags = flags;
        self
    }

    /// The default call timeout (1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// How long a connect may take (1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Connections per endpoint on each shard (2).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.config.pool_size = n;
        self
    }

    /// Calls in flight on one connection before it counts as full (65536).
    pub fn max_in_flight_per_connection(mut self, n: usize) -> Self {
        self.config.max_in_flight_per_conn = n;
        self
    }

    /// Calls that may wait, per shard, for a first connection (65536).
    pub fn max_waiting(mut self, n: usize) -> Self {
        self.config.max_waiting = n;
        self
    }

    /// Heartbeats on idle connections (default: every 30 s of silence, answered within 5 s), or
    /// `None` for none.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.config.heartbeat = heartbeat;
        self
    }

    /// Plain Thrift has no heartbeat frame: with a method name, heartbeats on plain-Thrift
    /// connections are CALLs of that method with no arguments, and any answer (a REPLY, or the
    /// EXCEPTION an Apache Thrift server sends for an unknown method) counts. Default: none.
    pub fn thrift_heartbeat_method(mut self, method: Option<String>) -> Self {
        self.config.thrift_heartbeat_method = method;
        self
    }

    /// Reconnect backoff (100 ms doubling up to 5 s, full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Largest answer frame accepted (16 MiB); a larger one closes its connection.
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.config.max_frame_size = n;
        self
    }

    /// The first sequence id used on each shard (1); ids then count up.
    pub fn first_sequence_id(mut self, id: i64) -> Self {
        self.config.first_sequence_id = id;
        self
    }

    /// Read sizes and write water marks of the connections (default: high water 8 MiB, low 2 MiB).
    /// A connection whose unsent output is at the high water mark takes no new calls; when every
    /// connection is in that state, calls fail at once with Overloaded (DegradeException).
    /// Answers are read all the while: the client sets `read_while_write_blocked` itself.
    pub fn conn_options(mut self, opts: ConnOptions) -> Self {
        self.config.conn_options = opts;
        self
    }

    /// A hook told about connects, disconnects and heartbeats (runs on shard threads: keep it short).
    pub fn on_event(mut self, hook: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.config.events = Some(Arc::new(hook));
        self
    }

    /// Starts the client on every shard of `runtime`.
    pub fn build(self, runtime: &Runtime) -> io::Result<Client> {
        self.build_on(runtime.shards().to_vec())
    }

    /// Starts the client on these shards.
    pub fn build_on(self, shards: Vec<ShardHandle>) -> io::Result<Client> {
        let invalid = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, m.to_owned()));
        let c = &self.config;
        if c.endpoints.is_empty() {
            return invalid("a client needs at least one endpoint");
        }
        if shards.is_empty() {
            return invalid("a client needs at least one shard");
        }
        if c.pool_size == 0 || c.max_in_flight_per_conn == 0 {
            return invalid("pool size and in-flight limit must be at least 1");
        }
        if !(0..=i64::MAX / 2).contains(&c.first_sequence_id) {
            return invalid("the first sequence id must be in 0..=i64::MAX/2");
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::new(ClientInner {
            id,
            config: Arc::new(self.config),
            shards,
            next_shard: AtomicUsize::new(0),
        });
        // Start the pools now rather than on the first call. If a shard refuses, `inner` is
        // dropped on return, which closes the client on the shards that did start it.
        for h in &inner.shards {
            let config = inner.config.clone();
            h.post(move |shard| {
                ShardClient::get_or_start(shard, id, &config);
            })
            .map_err(|e| io::Error::other(format!("shard {}: {e}", h.id())))?;
        }
        Ok(Client { inner })
    }
}

struct ClientInner {
    id: u64,
    config: Arc<ClientConfig>,
    shards: Vec<ShardHandle>,
    next_shard: AtomicUsize,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let id = self.id;
        for h in &self.shards {
            let _ = h.post(move |shard| ShardClient::close(shard, id));
        }
    }
}

/// A client of one service over a set of endpoints. Cheap to clone; `Send + Sync`. When the last
/// clone is dropped, its connections close and its calls still in flight fail with Shutdown.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.inner.id)
            .field("endpoints", &self.inner.config.endpoints)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

/// A completion that may be created on one thread and run on a shard: if it never reaches the
/// shard (the shard stopped), dropping it reports Shutdown to the caller.
struct SendCompletion {
    done: Option<Box<dyn FnOnce(CallResult) + Send>>,
}

impl SendCompletion {
    fn into_local(mut self) -> Completion {
        let f = self.done.take().expect("taken once");
        Completion::new(f)
    }
}

impl Drop for SendCompletion {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            f(Err(CallError::shutdown()))
        }
    }
}

impl Client {
    /// A builder for a client of the service named `service_name`.
    pub fn builder(service_name: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(service_name)
    }

    /// The endpoints this client calls.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.config.endpoints
    }

    fn pick_shard(&self) -> &ShardHandle {
        let n = self.inner.next_shard.fetch_add(1, Ordering::Relaxed);
        &self.inner.shards[n % self.inner.shards.len()]
    }

    fn deadline_of(&self, request: &Request) -> Instant {
        request.resolve_deadline(Instant::now(), self.inner.config.timeout)
    }

    /// The deadline of a call made on `shard`: the clock is read into the shard's time (once per
    /// call, and only if the request has no deadline of its own), which its connection then uses.
    fn deadline_on(&self, shard: &mut Shard, request: &Request) -> Instant {
        match request.deadline {
            Some(d) => d,
            None => request.resolve_deadline(shard.refresh_now(), self.inner.config.timeout),
        }
    }

    /// Calls from any thread; `done` runs once, on the shard thread that carried the call (never
    /// block in it). The call reaches its shard through one mailbox post. If the shard has
    /// stopped, `done` runs at once on this thread with a Shutdown error.
    pub fn call(&self, request: Request, done: impl FnOnce(CallResult) + Send + 'static) {
        let deadline = self.deadline_of(&request);
        let done = SendCompletion {
            done: Some(Box::new(done)),
        };
        let id = self.inner.id;
        let config = self.inner.config.clone();
        // If the post fails, the closure (and with it `done`) is dropped: Shutdown is reported.
        let _ = self.pick_shard().post(move |shard| {
            let sc = ShardClient::get_or_start(shard, id, &config);
            let call = Outgoing {
                request,
                deadline,
                done: Some(done.into_local()),
            };
            ShardClient::submit(shard, &sc, call);
        });
    }

    /// Calls and waits for the answer. Not on a shard thread: the shard would wait for itself
    /// ([`CallErrorKind::WouldDeadlock`]).
    pub fn call_blocking(&self, request: Request) -> CallResult {
        if crate::runtime::on_shard_thread() {
            return Err(CallError::new(
                CallErrorKind::WouldDeadlock,
                crate::proto::Status::RpcException,
                "call_blocking on a shard thread would block the shard that must answer it",
            ));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.call(request, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| Err(CallError::shutdown()))
    }

    /// Calls and returns a future of the answer. Inside a shard task ([`crate::runtime::spawn_local`])
    /// on a shard of this client the call goes out at once on that shard; from anywhere else it
    /// takes one mailbox hop, as [`Client::call`].
    pub fn call_async(&self, request: Request) -> CallFuture {
        let (future, state) = future::pair();
        let id = self.inner.id;
        let config = &self.inner.config;
        let mut call = Some((request, state));
        let started = crate::runtime::with_current_shard(|shard| {
            if !self.runs_on(shard) {
                return false;
            }
            let (request, state) = call.take().expect("taken once");
            let deadline = self.deadline_on(shard, &request);
            let sc = ShardClient::get_or_start(shard, id, config);
            ShardClient::submit(
                shard,
                &sc,
                Outgoing {
                    request,
                    deadline,
                    done: Some(Completion::future(state)),
                },
            );
            true
        });
        if started != Some(true) {
            let (request, state) = call.take().expect("not taken");
            self.call(request, move |r| state.resolve(r));
        }
        future
    }

    /// Calls from code running on a shard of this client (a posted closure, a timer task): no
    /// hop. `done` runs on this shard.
    pub fn call_on(
        &self,
        shard: &mut Shard,
        request: Request,
        done: impl FnOnce(CallResult) + 'static,
    ) {
        self.submit_on(shard, request, Completion::new(done));
    }

    /// Calls from code running on a shard of this client, as [`Client::call_on`], but `done` gets
    /// the shard back with the result: it runs on this shard after the code that received the
    /// answer (or the timeout) has returned, later in the same loop turn, so it may make the next
    /// call at once. This is the cheapest way to keep calls flowing: no future, no waker, no
    /// mailbox hop, and the new call goes out in the same flush. If the shard stops first, `done`
    /// is dropped without running.
    pub fn call_on_then(
        &self,
        shard: &mut Shard,
        request: Request,
        done: impl FnOnce(&mut Shard, CallResult) + 'static,
    ) {
        self.submit_on(shard, request, Completion::with_shard(Box::new(done)));
    }

    fn submit_on(&self, shard: &mut Shard, request: Request, done: Completion) {
        if !self.runs_on(shard) {
            done.complete_on(
                shard,
                Err(CallError::new(
                    CallErrorKind::WrongShard,
                    crate::proto::Status::RpcException,
                    "call_on was given a shard this client does not run on",
                )),
            );
            return;
        }
        let deadline = self.deadline_on(shard, &request);
        let sc = ShardClient::get_or_start(shard, self.inner.id, &self.inner.config);
        let call = Outgoing {
            request,
            deadline,
            done: Some(done),
        };
        ShardClient::submit(shard, &sc, call);
    }

    /// Sends a one-way call (RequestInfo.callType NoReply; no answer comes back) from any thread.
    /// Fails only if the client's shards have stopped; whether the call reached the server is
    /// not known.
    pub fn send_one_way(&self, request: Request) -> Result<(), CallError> {
        let deadline = self.deadline_of(&request);
        let id = self.inner.id;
        let config = self.inner.config.clone();
        self.pick_shard()
            .post(move |shard| {
                let sc = ShardClient::get_or_start(shard, id, &config);
                let call = Outgoing {
                    request,
                    deadline,
                    done: None,
                };
                ShardClient::submit(shard, &sc, call);
            })
            .map_err(|_| CallError::shutdown())
    }

    /// Sends a one-way call from code running on a shard of this client (on another shard it is
    /// dropped: returns false).
    pub fn send_one_way_on(&self, shard: &mut Shard, request: Request) -> bool {
        if !self.runs_on(shard) {
            return false;
        }
        let deadline = self.deadline_on(shard, &request);
        let sc = ShardClient::get_or_start(shard, self.inner.id, &self.inner.config);
        let call = Outgoing {
            request,
            deadline,
            done: None,
        };
        ShardClient::submit(shard, &sc, call);
        true
    }

    /// True if this client runs on `shard`.
    fn runs_on(&self, shard: &Shard) -> bool {
        self.inner
            .shards
            .iter()
            .any(|h| h.same_shard(shard.handle()))
    }

    /// Open connections per endpoint, summed over the shards (asks every shard and waits: for
    /// diagnostics and tests, not for the call path). Not on a shard thread.
    pub fn open_connections(&self) -> Vec<usize> {
        let mut total = vec![0; self.inner.config.endpoints.len()];
        let (tx, rx) = mpsc::channel();
        let mut asked = 0;
        for h in &self.inner.shards {
            let tx = tx.clone();
            let id = self.inner.id;
            if h.post(move |_| {
                let counts = ShardClient::find(id)
                    .map(|sc| sc.borrow().open_connections())
                    .unwrap_or_default();
                let _ = tx.send(counts);
            })
            .is_ok()
            {
                asked += 1;
            }
        }
        for _ in 0..asked {
            if let Ok(counts) = rx.recv_timeout(Duration::from_secs(10)) {
                for (t, c) in total.iter_mut().zip(counts) {
                    *t += c;
                }
            }
        }
        total
    }
}

/// This host's address on its default route, without sending anything (a UDP "connect" only
/// picks a source address); `None` if there is no route.
fn local_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| ip.to_string())
}
