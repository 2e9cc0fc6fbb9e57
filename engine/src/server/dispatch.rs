//! A server's presence on one shard: the accepted connections, the routing of each request
//! frame to its service, heartbeats, limits and counters.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::conn::{FrameHandler, FramedConn, FramedLimits};
use crate::proto::{
    decode_octo_ref, heartbeat_status, peek_message, CallType, Flags, Frame, FrameRef, Framing,
    Header, HeartbeatInfo, MessageType, OctoFrameWriter, ProtoError, ResponseInfo, Status,
    ThriftMessageType,
};
use crate::runtime::{
    Acceptor, CloseReason, ConnId, ConnIo, ConnOptions, Connection, ListenerId, ShardCore,
    ShardHandle,
};

use super::call::{write_error, AnswerMeta, Handler, Reply, ReplyState, Request};
use super::{Limits, ServerStats};

/// The services of one server: routed by name; native Thrift goes to the default one.
pub(crate) struct Services {
    pub list: Vec<(String, Arc<dyn Handler>)>,
    pub default: Option<usize>,
}

impl Services {
    fn find(&self, name: &str) -> Option<&dyn Handler> {
        self.list
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.as_ref())
    }

    fn default_service(&self) -> Option<(&str, &dyn Handler)> {
        self.default
            .map(|i| (self.list[i].0.as_str(), self.list[i].1.as_ref()))
    }
}

/// One server's counters on one shard. Only that shard's thread writes them, with a plain load
/// and store (no atomic read-modify-write on the per-request path); any thread may read them,
/// so `Server::stats` needs no round trip through the shards and works on a shard thread too.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub open: AtomicU64,
    pub requests: AtomicU64,
    pub expired: AtomicU64,
    pub shed: AtomicU64,
    pub unknown_service: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub heartbeats: AtomicU64,
    pub handler_panics: AtomicU64,
    pub closed_on_bad_input: AtomicU64,
}

impl Counters {
    /// What the counters say now (each read on its own: a snapshot taken while the shard
    /// runs may be a few requests apart between fields).
    pub fn read(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: get(&self.accepted),
            connections_refused: get(&self.refused),
            connections_open: get(&self.open),
            requests: get(&self.requests),
            expired: get(&self.expired),
            shed: get(&self.shed),
            unknown_service: get(&self.unknown_service),
            protocol_errors: get(&self.protocol_errors),
            heartbeats: get(&self.heartbeats),
            handler_panics: get(&self.handler_panics),
            closed_on_bad_input: get(&self.closed_on_bad_input),
        }
    }
}

/// Adds one to a counter written only by the calling shard thread.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Sets the open-connections counter (written only by the shard thread).
fn set(c: &AtomicU64, n: usize) {
    c.store(n as u64, Ordering::Relaxed);
}

/// One server on one shard.
pub(crate) struct ShardServer {
    pub server_id: u64,
    pub services: Arc<Services>,
    pub limits: Limits,
    pub appkey: String,
    pub handle: ShardHandle,
    pub draining: Cell<bool>,
    pub listener: Cell<Option<ListenerId>>,
    pub listener_stopped: Cell<bool>,
    pub conns: RefCell<HashSet<ConnId>>,
    /// Shared with the [`super::Server`] handle, which reads them.
    pub counters: Arc<Counters>,
    pub done: RefCell<Option<Sender<()>>>,
}

impl ShardServer {
    /// After a shutdown began: tells the waiting `Server::shutdown` once this shard is empty.
    pub fn check_done(&self) {
        if self.draining.get() && self.listener_stopped.get() && self.conns.borrow().is_empty() {
            if let Some(tx) = self.done.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    }
}

/// The servers running on one shard (kept in the shard's locals).
#[derive(Default)]
pub(crate) struct ShardServers {
    pub list: Vec<Rc<ShardServer>>,
}

impl ShardServers {
    pub fn get(&self, server_id: u64) -> Option<Rc<ShardServer>> {
        self.list.iter().find(|s| s.server_id == server_id).cloned()
    }
}

pub(crate) struct ServerAcceptor {
    pub server: Rc<ShardServer>,
}

impl Acceptor for ServerAcceptor {
    fn on_accept(
        &mut self,
        _: &mut ShardCore,
        _: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)> {
        let s = &self.server;
        if s.draining.get() || s.conns.borrow().len() >= s.limits.max_connections_per_shard {
            bump(&s.counters.refused);
            return None;
        }
        bump(&s.counters.accepted);
        let limits = FramedLimits {
            max_frame_size: s.limits.max_frame_size,
            idle_timeout: s.limits.idle_timeout,
        };
        let opts = ConnOptions {
            write_high_water: s.limits.write_high_water,
            write_low_water: s.limits.write_low_water.min(s.limits.write_high_water),
            ..ConnOptions::default()
        };
        let conn = ServerConn {
            server: s.clone(),
            id: None,
            in_flight: 0,
        };
        Some((Box::new(FramedConn::new(conn, limits)), opts))
    }

    fn on_stopped(&mut self, _: &mut ShardCore) {
        self.server.listener_stopped.set(true);
        self.server.check_done();
    }
}

/// The server side of one connection: turns request frames into handler calls.
pub struct ServerConn {
    server: Rc<ShardServer>,
    id: Option<ConnId>,
    in_flight: usize,
}

impl ServerConn {
    pub(crate) fn finish_deferred(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    fn on_octo(
        &mut self,
        frame: FrameRef<'_>,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError> {
        let server = self.server.clone();
        let f = decode_octo_ref(frame.bytes(), server.limits.max_frame_size)?;
        let header = f.header_ref()?;
        let request_info = header.request_info;
        let sequence_id = request_info.map_or(0, |r| r.sequence_id);
        let mut meta = AnswerMeta {
            framing: Framing::Octo,
            flags: f.flags,
            version: f.version,
            sequence_id,
            thrift_seqid: sequence_id as i32,
            method: "",
            one_way: request_info.is_some_and(|r| r.call_type == CallType::NoReply),
        };
        match header.message_type {
            MessageType::NormalHeartbeat | MessageType::ScannerHeartbeat => {
                bump(&server.counters.heartbeats);
                write_heartbeat(
                    io,
                    &server,
                    header.message_type,
                    f.version,
                    f.flags,
                    sequence_id,
                );
                return Ok(());
            }
            MessageType::Normal => {}
        }
        let Some(request_info) = request_info else {
            bump(&server.counters.protocol_errors);
            meta.one_way = false;
            write_error(
                io.output(),
                &meta,
                Status::ProtocolException,
                "request without requestInfo",
            );
            return Ok(());
        };
        let body = match f.thrift_body() {
            Ok(b) => b,
            Err(e) => {
                bump(&server.counters.protocol_errors);
                write_error(io.output(), &meta, e.status(), &e.to_string());
                return Ok(());
            }
        };
        let message = match peek_message(body) {
            Ok(m) => m,
            Err(e) => {
                bump(&server.counters.protocol_errors);
                write_error(
                    io.output(),
                    &meta,
                    Status::ProtocolException,
                    &e.to_string(),
                );
                return Ok(());
            }
        };
        meta.method = message.name;
        meta.thrift_seqid = message.seqid;
        let body_bytes = OnceLock::new();
        let request = Request {
            service: request_info.service_name,
            method: message.name,
            sequence_id,
            thrift_seqid: message.seqid,
            timeout_ms: request_info.timeout_ms,
            one_way: meta.one_way,
            framing: Framing::Octo,
            header: Some(&header),
            kind: message.kind,
            body,
            body_source: f.inflated().unwrap_or(frame.source()),
            body_bytes: &body_bytes,
            args_offset: message.payload_offset,
            arrived,
            shard: server.handle.id(),
        };
        let handler = server.services.find(request_info.service_name);
        self.dispatch(&server, handler, &request, meta, io);
        Ok(())
    }

    fn on_thrift(
        &mut self,
        frame: FrameRef<'_>,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError> {
        let server = self.server.clone();
        let body = frame.bytes();
        let message = peek_message(body)?;
        let meta = AnswerMeta {
            framing: Framing::Thrift,
            flags: Flags::default(),
            version: 0,
            sequence_id: message.seqid as i64,
            thrift_seqid: message.seqid,
            method: message.name,
            one_way: message.kind == ThriftMessageType::Oneway,
        };
        let (service, handler) = match server.services.default_service() {
            Some((name, h)) => (name, Some(h)),
            None => ("", None),
        };
        let body_bytes = OnceLock::new();
        let request = Request {
            service,
            method: message.name,
            sequence_id: message.seqid as i64,
            thrift_seqid: message.seqid,
            timeout_ms: 0,
            one_way: meta.one_way,
            framing: Framing::Thrift,
            header: None,
            kind: message.kind,
            body,
            body_source: frame.source(),
            body_bytes: &body_bytes,
            args_offset: message.payload_offset,
            arrived,
            shard: server.handle.id(),
        };
        self.dispatch(&server, handler, &request, meta, io);
        Ok(())
    }

    fn dispatch(
        &mut self,
        server: &ShardServer,
        handler: Option<&dyn Handler>,
        request: &Request<'_>,
        meta: AnswerMeta<&str>,
        io: &mut ConnIo<'_>,
    ) {
        bump(&server.counters.requests);
        if let Some(deadline) = request.deadline() {
            if io.now() > deadline {
                // The caller has given up: answering would only waste its bandwidth.
                bump(&server.counters.expired);
                return;
            }
        }
        let Some(handler) = handler else {
            bump(&server.counters.unknown_service);
            let msg = format!("unknown service: {}", request.service);
            write_error(io.output(), &meta, Status::ServiceException, &msg);
            return;
        };
        if self.in_flight >= server.limits.max_in_flight_per_connection {
            bump(&server.counters.shed);
            write_error(
                io.output(),
                &meta,
                Status::DegradeException,
                "too many calls in flight on this connection",
            );
            return;
        }
        let mut state = ReplyState::Pending;
        let conn = io.id();
        let reply = Reply {
            out: io.output(),
            meta,
            state: &mut state,
            shard: &server.handle,
            conn,
        };
        if catch_unwind(AssertUnwindSafe(|| handler.call(request, reply))).is_err() {
            // The Reply was dropped while unwinding and answered RpcException.
            bump(&server.counters.handler_panics);
        }
        if state == ReplyState::Deferred {
            self.in_flight += 1;
        }
    }
}

fn write_heartbeat(
    io: &mut ConnIo<'_>,
    server: &ShardServer,
    kind: MessageType,
    version: u8,
    flags: Flags,
    sequence_id: i64,
) {
    let heartbeat_info = (kind == MessageType::ScannerHeartbeat).then(|| HeartbeatInfo {
        appkey: Some(server.appkey.clone()),
        send_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64),
        load_info: None,
        status: if server.draining.get() {
            heartbeat_status::STOPPED
        } else {
            heartbeat_status::ALIVE
        },
    });
    let header = Header {
        message_type: kind,
        response_info: Some(ResponseInfo {
            sequence_id,
            status: Status::Success,
            message: None,
        }),
        heartbeat_info,
        ..Header::default()
    };
    let mut w = OctoFrameWriter::begin(io.output(), version, flags);
    header.encode(w.buf());
    let _ = w.finish();
}

impl FrameHandler for ServerConn {
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        self.id = Some(io.id());
        let mut conns = self.server.conns.borrow_mut();
        conns.insert(io.id());
        set(&self.server.counters.open, conns.len());
    }

    fn on_frame(
        &mut self,
        frame: Frame,
        _: Framing,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError> {
        // The owned form (for callers outside FramedConn): lend it as a borrowed frame.
        let (bytes, framing) = match &frame {
            Frame::Octo(b) => (b, Framing::Octo),
            Frame::Thrift(b) => (b, Framing::Thrift),
        };
        self.on_frame_ref(FrameRef::whole(bytes, framing), io, arrived)
    }

    fn on_frame_ref(
        &mut self,
        frame: FrameRef<'_>,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError> {
        let r = match frame.framing() {
            Framing::Octo => self.on_octo(frame, io, arrived),
            Framing::Thrift => self.on_thrift(frame, io, arrived),
        };
        if r.is_err() {
            bump(&self.server.counters.closed_on_bad_input);
        }
        r
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn on_closed(&mut self, _: &mut ShardCore, _: CloseReason) {
        if let Some(id) = self.id.take() {
            let mut conns = self.server.conns.borrow_mut();
            conns.remove(&id);
            set(&self.server.counters.open, conns.len());
        }
        self.server.check_done();
    }
}
