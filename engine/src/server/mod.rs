//! The OCTO/Thrift server: one port on every shard, services routed by name, answers inline or
//! later, with limits and a graceful shutdown.
//!
//! - OCTO and native Thrift on one port, detected per connection (PROTOCOL.md §1). OCTO
//!   requests are routed by `RequestInfo.serviceName`; native Thrift goes to the default service.
//!   An unknown service is answered with status 8 (ServiceException) and a TApplicationException
//!   (UNKNOWN_METHOD, which is what a native Thrift caller sees).
//! - Heartbeats: NormalHeartbeat is answered with status 0; ScannerHeartbeat with HeartbeatInfo
//!   (ALIVE, or STOPPED once shutdown began). Answers mirror the request's checksum and
//!   compression flags. One-way calls get no answer.
//! - Limits ([`Limits`]): frame size, connections per shard (beyond: closed at once), calls in
//!   flight per connection (beyond: status 6), idle time (closed), write high-water mark (the
//!   connection stops reading until its output drains). A call whose caller's timeout has
//!   already passed when its handler would start is dropped and counted.
//! - The per-request path borrows: the frames a receive brought are handled in place in the read
//!   buffer ([`Request::body_slice`], [`Request::args`]); [`Request::body`] makes a `Bytes`
//!   (shared, not copied) only for a handler that asks for one. Success answers get their
//!   response header written in one piece.
//! - Bad input closes only the offending connection; a frame whose boundary is intact but whose
//!   body is malformed is answered with status 5.
//!
//! ```
//! use octo_engine::{Engine, Server, Status};
//! use octo_engine::server::EchoService;
//! use std::time::Duration;
//!
//! let engine = Engine::builder().shards(1).build().unwrap();
//! let server = Server::builder(&engine)
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .service("Echo", EchoService)
//!     .service("Hello", |_req: &octo_engine::Request<'_>, reply: octo_engine::Reply<'_>| {
//!         reply.error(Status::ServiceException, "not here")
//!     })
//!     .default_service("Echo")
//!     .start()
//!     .unwrap();
//! println!("listening on {}", server.local_addr());
//! server.shutdown(Duration::from_secs(1));
//! ```

mod call;
mod dispatch;
mod echo;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub use call::{Handler, Reply, Request, Responder};
pub use dispatch::ServerConn;
pub use echo::EchoService;

use crate::proto::DEFAULT_MAX_FRAME_SIZE;
use crate::runtime::{bind_reuseport_group, ShardHandle};

use dispatch::{Counters, ServerAcceptor, Services, ShardServer, ShardServers};

/// What a server allows each peer; every limit refuses before allocating.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest frame (length field value) accepted; a larger claim closes the connection at once.
    pub max_frame_size: usize,
    /// Connections per shard; more are closed as soon as they are accepted.
    pub max_connections_per_shard: usize,
    /// Calls answered later (through a Responder) that one connection may have open; more are
    /// answered with status 6 (DegradeException).
    pub max_in_flight_per_connection: usize,
    /// A connection that receives nothing for this long with nothing in flight is closed.
    pub idle_timeout: Option<Duration>,
    /// A connection with this many output bytes unsent stops reading.
    pub write_high_water: usize,
    /// ... and resumes once its unsent output falls to this many bytes.
    pub write_low_water: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_connections_per_shard: 16 * 1024,
            max_in_flight_per_connection: 4096,
            idle_timeout: Some(Duration::from_secs(180)),
            write_high_water: 1 << 20,
            write_low_water: 256 << 10,
        }
    }
}

/// Counters of a server, summed over its shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections closed at once (over the per-shard limit, or while shutting down).
    pub connections_refused: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Request frames routed (heartbeats excluded).
    pub requests: u64,
    /// Requests dropped because their caller's timeout had passed.
    pub expired: u64,
    /// Requests refused with status 6 (too many in flight).
    pub shed: u64,
    /// Requests for a service this server does not have (status 8).
    pub unknown_service: u64,
    /// Requests answered with status 5 (malformed but framed).
    pub protocol_errors: u64,
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Handler calls that panicked (answered with status 3).
    pub handler_panics: u64,
    /// Connections closed because of input that could not be framed or decoded.
    pub closed_on_bad_input: u64,
}

impl std::ops::AddAssign for ServerStats {
    fn add_assign(&mut self, o: ServerStats) {
        self.connections_accepted += o.connections_accepted;
        self.connections_refused += o.connections_refused;
        self.connections_open += o.connections_open;
        self.requests += o.requests;
        self.expired += o.expired;
        self.shed += o.shed;
        self.unknown_service += o.unknown_service;
        self.protocol_errors += o.protocol_errors;
        self.heartbeats += o.heartbeats;
        self.handler_panics += o.handler_panics;
        self.closed_on_bad_input += o.closed_on_bad_input;
    }
}

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

const SETUP_WAIT: Duration = Duration::from_secs(10);

/// Configures a [`Server`]; see the module example.
pub struct ServerBuilder {
    shards: Vec<ShardHandle>,
    addr: SocketAddr,
    services: Vec<(String, Arc<dyn Handler>)>,
    default: Option<String>,
    limits: Limits,
    appkey: String,
    drain_grace: Duration,
    backlog: i32,
}

impl ServerBuilder {
    pub(crate) fn new(shards: Vec<ShardHandle>, limits: Limits) -> ServerBuilder {
        ServerBuilder {
            shards,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            services: Vec::new(),
            default: None,
            limits,
            appkey: "octo".to_string(),
            drain_grace: Duration::ZERO,
            backlog: 1024,
        }
    }

    /// The address to listen on (port 0: any free port; see [`Server::local_addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Adds a service under `name` (RequestInfo.serviceName). The first one added is the default
    /// for native Thrift unless [`ServerBuilder::default_service`] says otherwise.
    pub fn service(mut self, name: &str, handler: impl Handler) -> Self {
        self.services.retain(|(n, _)| n != name);
        self.services.push((name.to_string(), Arc::new(handler)));
        self
    }

    /// Adds a service from a shared handler.
    pub fn service_arc(mut self, name: &str, handler: Arc<dyn Handler>) -> Self {
        self.services.retain(|(n, _)| n != name);
        self.services.push((name.to_string(), handler));
        self
    }

    /// The service that native Thrift calls go to.
    pub fn default_service(mut self, name: &str) -> Self {
        self.default = Some(name.to_string());
        self
    }

    /// Replaces the limits (default: the engine's).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The appkey reported in ScannerHeartbeat answers.
    pub fn appkey(mut self, appkey: &str) -> Self {
        self.appkey = appkey.to_string();
        self
    }

    /// How long a shutdown keeps serving (while reporting STOPPED to scanners) before it stops
    /// reading and drains. Default 0.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// Binds the port on every shard and starts serving. Not on a shard thread (inside a
    /// handler or a posted task): it waits for every shard, its own included, so there it fails
    /// at once with `ErrorKind::WouldBlock` instead.
    pub fn start(self) -> io::Result<Server> {
        if crate::runtime::on_shard_thread() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "a server cannot be started on a shard thread (it waits for every shard, this \
                 one included); start it from another thread",
            ));
        }
        let default = match &self.default {
            Some(name) => Some(
                self.services
                    .iter()
                    .position(|(n, _)| n == name)
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("no service named {name}"),
                        )
                    })?,
            ),
            None => (!self.services.is_empty()).then_some(0),
        };
        let services = Arc::new(Services {
            list: self.services,
            default,
        });
        let listeners = bind_reuseport_group(self.addr, self.shards.len(), self.backlog)?;
        let local_addr = listeners[0].local_addr();
        let server_id = NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let counters: Vec<Arc<Counters>> = self.shards.iter().map(|_| Arc::default()).collect();
        for ((handle, listener), counters) in self.shards.iter().zip(listeners).zip(&counters) {
            let counters = counters.clone();
            let services = services.clone();
            let limits = self.limits;
            let appkey = self.appkey.clone();
            let tx = tx.clone();
            handle
                .post(move |shard| {
                    let server = Rc::new(ShardServer {
                        server_id,
                        services,
                        limits,
                        appkey,
                        handle: shard.handle().clone(),
                        draining: Default::default(),
                        listener: Default::default(),
                        listener_stopped: Default::default(),
                        conns: Default::default(),
                        counters,
                        done: Default::default(),
                    });
                    shard.local::<ShardServers>().list.push(server.clone());
                    let id = shard.listen(
                        listener,
                        Box::new(ServerAcceptor {
                            server: server.clone(),
                        }),
                    );
                    server.listener.set(Some(id));
                    let _ = tx.send(());
                })
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        for _ in 0..self.shards.len() {
            rx.recv_timeout(SETUP_WAIT)
                .map_err(|_| io::Error::other("a shard did not start the server"))?;
        }
        Ok(Server {
            shards: self.shards,
            counters,
            server_id,
            local_addr,
            drain_grace: self.drain_grace,
            stopped: false,
        })
    }
}

/// A running server. Dropping it shuts it down with no grace (in-flight calls are abandoned).
pub struct Server {
    shards: Vec<ShardHandle>,
    /// Each shard's counters for this server (written by that shard, read here).
    counters: Vec<Arc<Counters>>,
    server_id: u64,
    local_addr: SocketAddr,
    drain_grace: Duration,
    stopped: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Server {
    /// Starts configuring a server on `engine`'s shards.
    pub fn builder(engine: &crate::api::Engine) -> ServerBuilder {
        ServerBuilder::new(engine.runtime().shards().to_vec(), engine.limits())
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters, summed over its shards. Any thread, a shard thread (a handler)
    /// included: each shard publishes its counters as it goes, so nothing waits on a shard.
    pub fn stats(&self) -> ServerStats {
        let mut total = ServerStats::default();
        for c in &self.counters {
            total += c.read();
        }
        total
    }

    /// Shuts down gracefully: stops accepting; reports STOPPED to scanners; after the drain grace
    /// stops reading, lets in-flight calls finish and flushes their answers; closes each
    /// connection once it owes nothing; at `deadline` closes whatever is left. Returns when every
    /// connection is closed. On a shard thread (inside a handler), where waiting for the shards
    /// would stall this one, it starts all that and returns at once; each shard then forgets the
    /// server by itself at the deadline. The same holds for dropping a `Server`.
    pub fn shutdown(mut self, deadline: Duration) {
        self.stop(deadline);
    }

    fn stop(&mut self, deadline: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // This shard's part of the stop can only run after this returns: wait for nothing.
        let wait = !crate::runtime::on_shard_thread();
        let (tx, rx) = mpsc::channel();
        let mut asked = 0;
        let grace = self.drain_grace.min(deadline);
        for h in &self.shards {
            let tx = tx.clone();
            let id = self.server_id;
            let posted = h.post(move |shard| {
                let Some(server) = shard.local::<ShardServers>().get(id) else {
                    let _ = tx.send(());
                    return;
                };
                server.draining.set(true);
                *server.done.borrow_mut() = Some(tx);
                if let Some(l) = server.listener.take() {
                    shard.stop_listening(l);
                }
                let now = shard.now();
                shard.set_timer(now + grace, move |shard| {
                    for_each_conn(shard, id, |c, io| c.drain(io))
                });
                shard.set_timer(now + deadline, move |shard| {
                    for_each_conn(shard, id, |_, io| io.abort());
                    if !wait {
                        // Nobody waits to do it after the drain.
                        forget(shard, id);
                    }
                });
                server.check_done();
            });
            if posted.is_ok() {
                asked += 1;
            }
        }
        if !wait {
            return;
        }
        for _ in 0..asked {
            let _ = rx.recv_timeout(deadline + SETUP_WAIT);
        }
        for h in &self.shards {
            let id = self.server_id;
            let _ = h.post(move |shard| forget(shard, id));
        }
    }
}

/// Drops a stopped server from its shard's list (its connections hold what they still need).
fn forget(shard: &mut crate::runtime::Shard, server_id: u64) {
    shard
        .local::<ShardServers>()
        .list
        .retain(|s| s.server_id != server_id)
}

fn for_each_conn(
    shard: &mut crate::runtime::Shard,
    server_id: u64,
    mut f: impl FnMut(&mut crate::conn::FramedConn<ServerConn>, &mut crate::runtime::ConnIo<'_>),
) {
    let Some(server) = shard.local::<ShardServers>().get(server_id) else {
        return;
    };
    let ids: Vec<_> = server.conns.borrow().iter().copied().collect();
    for id in ids {
        shard.with_conn::<crate::conn::FramedConn<ServerConn>, _>(id, &mut f);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}
