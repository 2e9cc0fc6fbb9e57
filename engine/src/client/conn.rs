//! One client connection on a shard: writes requests, matches answers to calls by sequence id,
//! fires each call's deadline on the shard's timer, and proves the peer alive with heartbeats.
//!
//! (A per-connection FIFO of deadlines watched by one timer was tried in place of a timer per
//! call, and measured no cheaper: with one timeout per client the deadlines come in order, and
//! the shard's timer heap takes an in-order deadline in O(1).)

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::{
    decode_octo, peek_message, CallType, Frame, FrameDecoder, Framing, ProtoError, Status,
    ThriftMessageType,
};
use crate::runtime::{CloseReason, ConnIo, Connection, ShardCore, TimerId};

use super::call::{CallError, Completion, Request, Response};
use super::shard::ShardClient;
use super::wire;
use super::{ClientConfig, ClientEvent};

/// Timer token: check whether the connection has been idle long enough for a heartbeat.
const HEARTBEAT_IDLE: u64 = u64::MAX;
/// Timer token: the outstanding heartbeat's deadline.
const HEARTBEAT_DEADLINE: u64 = u64::MAX - 1;

/// A call handed to a connection (or waiting for one).
pub(crate) struct Outgoing {
    pub request: Request,
    pub deadline: Instant,
    /// `None` for one-way calls.
    pub done: Option<Completion>,
}

impl Outgoing {
    /// Fails the call (one-way calls have nobody to tell).
    pub fn fail(self, shard: &mut ShardCore, error: CallError) {
        if let Some(done) = self.done {
            done.complete_on(shard, Err(error));
        }
    }
}

struct Pending {
    done: Completion,
    timer: TimerId,
    /// When the call was sent, for the timeout's message.
    sent: Instant,
}

/// Sequence ids are our own consecutive numbers: hash them by multiplication (no SipHash).
#[derive(Default)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

/// The client side of one connection to one endpoint (slot `slot` of its pool).
pub(crate) struct ClientConn {
    shared: Rc<RefCell<ShardClient>>,
    config: Arc<ClientConfig>,
    endpoint: usize,
    slot: usize,
    framing: Framing,
    decoder: FrameDecoder,
    /// Request frame templates for calls and one-way calls (OCTO without compression/checksum).
    templates: [Option<wire::RequestTemplate>; 2],
    pending: SeqMap<Pending>,
    heartbeat: Option<(u64, TimerId)>,
    idle_timer: Option<TimerId>,
    last_recv: Instant,
    /// Why this side is closing the connection: what its calls fail with.
    failure: Option<CallError>,
    open: bool,
}

impl ClientConn {
    pub fn new(
        shared: Rc<RefCell<ShardClient>>,
        config: Arc<ClientConfig>,
        endpoint: usize,
        slot: usize,
    ) -> ClientConn {
        let framing = config.endpoints[endpoint].framing;
        let max = config.max_frame_size;
        let templates = match framing {
            Framing::Octo => [
                wire::RequestTemplate::new(&config.caller, CallType::Reply),
                wire::RequestTemplate::new(&config.caller, CallType::NoReply),
            ],
            Framing::Thrift => [None, None],
        };
        ClientConn {
            shared,
            config,
            endpoint,
            slot,
            framing,
            decoder: FrameDecoder::new(max),
            templates,
            pending: SeqMap::default(),
            heartbeat: None,
            idle_timer: None,
            last_recv: Instant::now(),
            failure: None,
            open: false,
        }
    }

    /// The key a sequence id is matched by on this connection: the whole 64-bit id on OCTO, the
    /// 32-bit Thrift seqid on plain Thrift.
    fn key(&self, sequence_id: i64) -> u64 {
        match self.framing {
            Framing::Octo => sequence_id as u64,
            Framing::Thrift => sequence_id as u32 as u64,
        }
    }

    /// Writes `call` with sequence id `sequence_id`; hands it back if this connection cannot take
    /// it (closing, or at its in-flight limit).
    pub fn send(
        &mut self,
        io: &mut ConnIo<'_>,
        call: Outgoing,
        sequence_id: i64,
    ) -> Result<(), Outgoing> {
        if !self.open || io.is_closing() || self.failure.is_some() {
            return Err(call);
        }
        // Full: at the in-flight limit, or the peer is not reading what was already written.
        if call.done.is_some() && self.pending.len() >= self.config.max_in_flight_per_conn
            || io.is_write_blocked()
        {
            return Err(call);
        }
        // The turn's time: on-shard callers read the clock into it when they made the call.
        let now = io.now();
        if call.deadline <= now {
            call.fail(
                io.shard(),
                CallError::new(
                    super::CallErrorKind::Timeout,
                    Status::TransportException,
                    "the call's deadline passed before it could be sent",
                ),
            );
            return Ok(());
        }
        let remaining = call.deadline - now;
        let timeout_ms = remaining.as_millis().clamp(1, i32::MAX as u128) as i32;
        let call_type = if call.done.is_some() {
            CallType::Reply
        } else {
            CallType::NoReply
        };
        let template = match call_type {
            CallType::Reply => self.templates[0].as_ref(),
            _ => self.templates[1].as_ref(),
        };
        let written = match (self.framing, template) {
            (Framing::Octo, Some(t)) => {
                t.write(io.output(), &call.request, sequence_id, timeout_ms)
            }
            (Framing::Octo, None) => wire::write_octo_request(
                io.output(),
                &self.config.caller,
                &call.request,
                sequence_id,
                call_type,
                timeout_ms,
            ),
            (Framing::Thrift, _) => {
                wire::write_thrift_request(io.output(), &call.request, sequence_id as i32)
            }
        };
        if let Err(e) = written {
            call.fail(
                io.shard(),
                CallError::new(
                    super::CallErrorKind::InvalidRequest,
                    e.status(),
                    format!("cannot frame the request: {e}"),
                ),
            );
            return Ok(());
        }
        if let Some(done) = call.done {
            let key = self.key(sequence_id);
            let timer = io.set_timer(call.deadline, key);
            let pending = Pending {
                done,
                timer,
                sent: now,
            };
            if let Some(old) = self.pending.insert(key, pending) {
                // Only after 2^32 calls on one plain-Thrift connection while one stays in flight.
                io.cancel_timer(old.timer);
                old.done.complete_on(
                    io.shard(),
                    Err(CallError::new(
                        super::CallErrorKind::ConnectionLost,
                        Status::TransportException,
                        "sequence id reused while the call was still in flight",
                    )),
                );
            }
        }
        Ok(())
    }

    fn arm_idle(&mut self, io: &mut ConnIo<'_>, at: Instant) {
        if self.heartbeat_interval().is_some() {
            self.idle_timer = Some(io.set_timer(at, HEARTBEAT_IDLE));
        }
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        let hb = self.config.heartbeat?;
        match self.framing {
            Framing::Octo => Some(hb.interval),
            Framing::Thrift => self
                .config
                .thrift_heartbeat_method
                .as_ref()
                .map(|_| hb.interval),
        }
    }

    fn on_idle_check(&mut self, io: &mut ConnIo<'_>) {
        self.idle_timer = None;
        let (Some(interval), Some(hb)) = (self.heartbeat_interval(), self.config.heartbeat) else {
            return;
        };
        let now = io.now();
        if self.heartbeat.is_some() {
            self.arm_idle(io, now + interval);
            return;
        }
        let due = self.last_recv + interval;
        if now < due {
            self.arm_idle(io, due);
            return;
        }
        let sequence_id = self.shared.borrow_mut().next_sequence_id();
        let timeout_ms = hb.timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        let written = match self.framing {
            Framing::Octo => wire::write_octo_heartbeat(
                io.output(),
                &self.config.caller,
                sequence_id,
                timeout_ms,
            ),
            Framing::Thrift => {
                let method = self.config.thrift_heartbeat_method.as_deref().unwrap_or("");
                wire::write_thrift_heartbeat(io.output(), method, sequence_id as i32)
            }
        };
        if written.is_ok() {
            let timer = io.set_timer(now + hb.timeout, HEARTBEAT_DEADLINE);
            self.heartbeat = Some((self.key(sequence_id), timer));
            self.emit(ClientEvent::HeartbeatSent {
                endpoint: self.config.endpoints[self.endpoint].addr,
            });
        }
        self.arm_idle(io, now + interval);
    }

    fn emit(&self, event: ClientEvent) {
        self.config.emit(&event);
    }

    /// Handles one whole frame; an error means the stream cannot be trusted any more.
    fn on_frame(&mut self, io: &mut ConnIo<'_>, frame: Frame) -> Result<(), ProtoError> {
        let (key, result) = match frame {
            Frame::Octo(bytes) => {
                let f = decode_octo(bytes, self.config.max_frame_size)?;
                let h = f.header_ref()?;
                let Some(info) = h.response_info else {
                    return Err(ProtoError::new(
                        crate::proto::ErrorKind::MissingRequiredField {
                            strukt: "Header.responseInfo",
                            field: 3,
                        },
                    ));
                };
                let seq = info.sequence_id;
                let key = self.key(seq);
                if self.take_heartbeat(io, key) {
                    return Ok(());
                }
                let result = match (info.status, f.thrift_body()) {
                    // The body moves into the answer (no reference count taken and dropped).
                    (Status::Success, Ok(_)) => Ok(seq),
                    (Status::Success, Err(e)) => Err(CallError::bad_response(e)),
                    (status, _) => Err(CallError::remote(status, info.message, f.body.clone())),
                };
                let result = result.map(|sequence_id| Response {
                    sequence_id,
                    body: f.body,
                });
                (key, result)
            }
            Frame::Thrift(body) => {
                let m = peek_message(&body)?;
                let key = self.key(m.seqid as i64);
                if self.take_heartbeat(io, key) {
                    return Ok(());
                }
                let result = match m.kind {
                    ThriftMessageType::Reply => Ok(Response {
                        sequence_id: m.seqid as i64,
                        body: body.clone(),
                    }),
                    ThriftMessageType::Exception => {
                        let offset = m.payload_offset;
                        Err(CallError::thrift_exception(Bytes::clone(&body), offset))
                    }
                    other => {
                        return Err(ProtoError::new(
                            crate::proto::ErrorKind::UnexpectedMessageType(other as u8),
                        ))
                    }
                };
                (key, result)
            }
        };
        // An answer nobody waits for any more (its call timed out) is dropped.
        if let Some(p) = self.pending.remove(&key) {
            io.cancel_timer(p.timer);
            p.done.complete_on(io.shard(), result);
        }
        Ok(())
    }

    /// True if `key` answers the outstanding heartbeat (whatever its status: Dorado answers
    /// NormalHeartbeat with status 3, and any answer proves the peer alive).
    fn take_heartbeat(&mut self, io: &mut ConnIo<'_>, key: u64) -> bool {
        match self.heartbeat {
            Some((k, timer)) if k == key => {
                io.cancel_timer(timer);
                self.heartbeat = None;
                true
            }
            _ => false,
        }
    }

    fn fail_and_abort(&mut self, io: &mut ConnIo<'_>, error: CallError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
        io.abort();
    }
}

impl Connection for ClientConn {
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        self.open = true;
        let now = io.now();
        self.last_recv = now;
        if let Some(interval) = self.heartbeat_interval() {
            self.arm_idle(io, now + interval);
        }
        self.emit(ClientEvent::Connected {
            endpoint: self.config.endpoints[self.endpoint].addr,
        });
        // Calls that waited for a connection go out on this one.
        let id = io.id();
        let waiting = self
            .shared
            .borrow_mut()
            .on_open(io.shard(), self.endpoint, self.slot, id);
        // The calls waited: their deadlines are checked against the clock, not the turn's start.
        io.shard().refresh_now();
        for call in waiting {
            let seq = self.shared.borrow_mut().next_sequence_id();
            if let Err(call) = self.send(io, call, seq) {
                // This connection is full already (in-flight limit, or output at its high water
                // mark). Wait for another one only if one is still coming; else the call fails
                // as one made now would (a queued call is only handed out when a connection opens).
                if self.shared.borrow().any_connecting() {
                    ShardClient::enqueue(io.shard(), &self.shared, call);
                } else {
                    call.fail(io.shard(), CallError::overloaded());
                }
            }
        }
    }

    fn on_data(&mut self, io: &mut ConnIo<'_>) {
        self.last_recv = io.now();
        loop {
            match self.decoder.decode(io.input()) {
                Ok(Some(frame)) => {
                    if let Err(e) = self.on_frame(io, frame) {
                        self.fail_and_abort(io, CallError::bad_response(e));
                        return;
                    }
                }
                Ok(None) => {
                    let needed = self.decoder.bytes_needed(io.input().len());
                    io.set_read_hint(needed);
                    return;
                }
                Err(e) => {
                    self.fail_and_abort(io, CallError::bad_response(e));
                    return;
                }
            }
        }
    }

    fn on_timer(&mut self, io: &mut ConnIo<'_>, token: u64) {
        match token {
            HEARTBEAT_IDLE => self.on_idle_check(io),
            HEARTBEAT_DEADLINE => {
                self.heartbeat = None;
                let timeout = self.config.heartbeat.map(|h| h.timeout).unwrap_or_default();
                self.emit(ClientEvent::HeartbeatTimedOut {
                    endpoint: self.config.endpoints[self.endpoint].addr,
                });
                self.fail_and_abort(
                    io,
                    CallError::connection_lost(&format!("heartbeat unanswered within {timeout:?}")),
                );
            }
            key => {
                if let Some(p) = self.pending.remove(&key) {
                    let waited = io.now().saturating_duration_since(p.sent);
                    p.done
                        .complete_on(io.shard(), Err(CallError::timeout(waited)));
                }
            }
        }
    }

    fn on_read_closed(&mut self, io: &mut ConnIo<'_>) {
        self.fail_and_abort(
            io,
            CallError::connection_lost("the server closed the connection"),
        );
    }

    fn on_closed(&mut self, shard: &mut ShardCore, reason: CloseReason) {
        if let Some(t) = self.idle_timer.take() {
            shard.cancel_timer(t);
        }
        if let Some((_, t)) = self.heartbeat.take() {
            shard.cancel_timer(t);
        }
        let closed_by_client = self.shared.borrow().is_closed();
        let error = if closed_by_client {
            CallError::shutdown()
        } else {
            match self.failure.take() {
                Some(e) => e,
                None => CallError::connection_lost(&describe(reason)),
            }
        };
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in &pending {
            shard.cancel_timer(p.timer);
        }
        let was_open = self.open;
        self.open = false;
        if was_open {
            self.emit(ClientEvent::Disconnected {
                endpoint: self.config.endpoints[self.endpoint].addr,
                reason: error.message().to_owned(),
            });
        } else {
            self.emit(ClientEvent::ConnectFailed {
                endpoint: self.config.endpoints[self.endpoint].addr,
                reason: describe(reason),
            });
        }
        ShardClient::on_closed(
            &self.shared,
            shard,
            self.endpoint,
            self.slot,
            was_open,
            reason,
        );
        for p in pending {
            p.done.complete_on(shard, Err(error.clone()));
        }
    }
}

fn describe(reason: CloseReason) -> String {
    match reason {
        CloseReason::Local => "closed by the client".to_owned(),
        CloseReason::PeerClosed => "the server closed the connection".to_owned(),
        CloseReason::Error(e) => format!("socket error: {}", std::io::Error::from_raw_os_error(e)),
        CloseReason::ConnectFailed(e) => {
            format!("connect failed: {}", std::io::Error::from_raw_os_error(e))
        }
        CloseReason::ConnectTimedOut => "connect timed out".to_owned(),
        CloseReason::ShardStopped => "the shard stopped".to_owned(),
    }
}
