//! One call as a handler sees it: the borrowed [`Request`], the inline [`Reply`] and the
//! [`Responder`] that answers later from any thread; and the encoding of every answer.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::conn::FramedConn;
use crate::proto::{
    write_application_exception, ApplicationExceptionKind, ContextMap, Flags, Framing, Header,
    HeaderRef, MessageType, OctoFrameWriter, ResponseInfo, Status, ThriftFrameWriter,
    ThriftMessageType, TraceInfoRef,
};
use crate::runtime::{ConnId, ShardHandle};

use super::dispatch::ServerConn;

/// A service: answers the calls routed to it. Runs on shard threads, several at once: never
/// block in `call`; answer inline through `reply`, or keep `reply.later()` and answer from
/// anywhere.
pub trait Handler: Send + Sync + 'static {
    /// Handles one call. `reply` must be answered exactly once (dropping it unanswered sends
    /// RpcException, status 3). Answers to one-way calls are discarded.
    fn call(&self, request: &Request<'_>, reply: Reply<'_>);
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, Reply<'_>) + Send + Sync + 'static,
{
    fn call(&self, request: &Request<'_>, reply: Reply<'_>) {
        self(request, reply)
    }
}

/// A call, borrowed from the connection's read buffer for the duration of [`Handler::call`].
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) sequence_id: i64,
    pub(crate) thrift_seqid: i32,
    pub(crate) timeout_ms: i32,
    pub(crate) one_way: bool,
    pub(crate) framing: Framing,
    /// The OCTO header (none for native Thrift), borrowed rather than copied field by field.
    pub(crate) header: Option<&'a HeaderRef<'a>>,
    pub(crate) kind: ThriftMessageType,
    pub(crate) body: &'a [u8],
    /// The buffer `body` lies in, and where [`Request::body`] keeps the `Bytes` it makes from it
    /// on first use: a call whose handler only reads the body takes no reference count.
    pub(crate) body_source: &'a Bytes,
    pub(crate) body_bytes: &'a OnceLock<Bytes>,
    pub(crate) args_offset: usize,
    pub(crate) arrived: Instant,
    pub(crate) shard: usize,
}

impl<'a> Request<'a> {
    /// The service called (RequestInfo.serviceName; the default service for native Thrift).
    pub fn service(&self) -> &'a str {
        self.service
    }
    /// The Thrift method name.
    pub fn method(&self) -> &'a str {
        self.method
    }
    /// The 64-bit sequence id (OCTO), or the Thrift seqid (native Thrift).
    pub fn sequence_id(&self) -> i64 {
        self.sequence_id
    }
    /// The seqid in the Thrift message header (write it back in the reply message).
    pub fn thrift_seqid(&self) -> i32 {
        self.thrift_seqid
    }
    /// The caller's timeout, if it sent one.
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms > 0).then(|| Duration::from_millis(self.timeout_ms as u64))
    }
    /// When the caller gives up on this call (arrival plus timeout), if it sent a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout().map(|t| self.arrived + t)
    }
    /// True for a one-way (NoReply) call: no answer will be sent.
    pub fn is_one_way(&self) -> bool {
        self.one_way
    }
    /// The framing the call came in (OCTO or native Thrift).
    pub fn framing(&self) -> Framing {
        self.framing
    }
    /// Tracing data sent with the call (OCTO only).
    pub fn trace_info(&self) -> Option<&TraceInfoRef<'a>> {
        self.header?.trace_info.as_ref()
    }
    /// The whole-call-chain context (OCTO only).
    pub fn global_context(&self) -> Option<ContextMap<'a>> {
        self.header?.global_context
    }
    /// The single-hop context (OCTO only).
    pub fn local_context(&self) -> Option<ContextMap<'a>> {
        self.header?.local_context
    }
    /// The whole Thrift message (message header, then the args struct). Clone it (cheap, no
    /// copy) to keep it past the call. The `Bytes` is made on first use (it shares the received
    /// buffer: one reference count); to only read the body, [`Request::body_slice`] is cheaper.
    pub fn body(&self) -> &'a Bytes {
        self.body_bytes
            .get_or_init(|| self.body_source.slice_ref(self.body))
    }
    /// The whole Thrift message, borrowed from the received bytes (no reference count).
    pub fn body_slice(&self) -> &'a [u8] {
        self.body
    }
    /// The args struct: the body after the Thrift message header.
    pub fn args(&self) -> &'a [u8] {
        &self.body[self.args_offset..]
    }
    /// The Thrift message type (CALL or ONEWAY for a well-behaved caller).
    pub fn message_type(&self) -> ThriftMessageType {
        self.kind
    }
    /// The shard (thread) running this call.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// The most an answer adds to its body on the wire when it carries no message: the OCTO prefix,
/// the response header and a checksum (a Thrift frame adds only its 4-byte length).
const ANSWER_FRAMING: usize = 10 + 24 + 4;

/// How to answer one call: where it came from and how it was framed.
#[derive(Clone, Debug)]
pub(crate) struct AnswerMeta<M> {
    pub framing: Framing,
    pub flags: Flags,
    pub version: u8,
    pub sequence_id: i64,
    pub thrift_seqid: i32,
    pub method: M,
    pub one_way: bool,
}

impl AnswerMeta<&str> {
    fn to_owned_meta(&self) -> AnswerMeta<Box<str>> {
        AnswerMeta {
            framing: self.framing,
            flags: self.flags,
            version: self.version,
            sequence_id: self.sequence_id,
            thrift_seqid: self.thrift_seqid,
            method: self.method.into(),
            one_way: self.one_way,
        }
    }
}

/// The TApplicationException kind that carries an OCTO status to a native Thrift caller.
pub(crate) fn exception_kind(status: Status) -> ApplicationExceptionKind {
    match status {
        Status::ServiceException => ApplicationExceptionKind::UnknownMethod,
        Status::ProtocolException => ApplicationExceptionKind::ProtocolError,
        _ => ApplicationExceptionKind::InternalError,
    }
}

/// Appends the answer frame: a response header with `status` (and `message`), then the body
/// written by `body` (a whole Thrift message), framed as the request was.
pub(crate) fn write_answer(
    out: &mut BytesMut,
    meta: &AnswerMeta<impl AsRef<str>>,
    status: Status,
    message: Option<&str>,
    body: impl FnOnce(&mut BytesMut),
) {
    if meta.one_way {
        return;
    }
    match meta.framing {
        Framing::Octo if message.is_none() => {
            // The header is the same but for the sequence id and status: written at once.
            let mut w = OctoFrameWriter::begin_response(
                out,
                meta.version,
                meta.flags,
                meta.sequence_id,
                status,
            );
            body(w.buf());
            // An answer too large to frame is removed again by finish(); nothing else to do.
            let _ = w.finish();
        }
        Framing::Octo => {
            let mut w = OctoFrameWriter::begin(out, meta.version, meta.flags);
            Header {
                message_type: MessageType::Normal,
                response_info: Some(ResponseInfo {
                    sequence_id: meta.sequence_id,
                    status,
                    message: message.map(str::to_owned),
                }),
                ..Header::default()
            }
            .encode(w.buf());
            w.end_header();
            body(w.buf());
            // An answer too large to frame is removed again by finish(); nothing else to do.
            let _ = w.finish();
        }
        Framing::Thrift => {
            let mut w = ThriftFrameWriter::begin(out);
            body(w.buf());
            let _ = w.finish();
        }
    }
}

/// Appends an error answer: `status` and a TApplicationException carrying `message`.
pub(crate) fn write_error(
    out: &mut BytesMut,
    meta: &AnswerMeta<impl AsRef<str>>,
    status: Status,
    message: &str,
) {
    let method = meta.method.as_ref();
    let seqid = meta.thrift_seqid;
    write_answer(out, meta, status, Some(message), |b| {
        write_application_exception(b, method, seqid, exception_kind(status), message)
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyState {
    Pending,
    Answered,
    Deferred,
}

/// The inline answer to one call: write it now (straight into the connection's output buffer,
/// no copy and no allocation), or turn it into a [`Responder`] with [`Reply::later`].
pub struct Reply<'a> {
    pub(crate) out: &'a mut BytesMut,
    pub(crate) meta: AnswerMeta<&'a str>,
    pub(crate) state: &'a mut ReplyState,
    pub(crate) shard: &'a ShardHandle,
    pub(crate) conn: ConnId,
}

impl<'a> Reply<'a> {
    /// Answers with success and `body`, a whole Thrift REPLY message.
    pub fn ok(self, body: &[u8]) {
        self.ok_with(|out| out.extend_from_slice(body))
    }

    /// Makes room in the connection's output for an answer whose body (the Thrift message) is
    /// `body_len` bytes, so that writing it in pieces grows the buffer at most once.
    pub fn reserve(&mut self, body_len: usize) {
        if !self.meta.one_way {
            self.out.reserve(body_len.saturating_add(ANSWER_FRAMING));
        }
    }

    /// Answers with success; `write` appends the Thrift REPLY message to the output buffer.
    pub fn ok_with(self, write: impl FnOnce(&mut BytesMut)) {
        self.reply_with(Status::Success, write)
    }

    /// Answers with `status` and a body written by `write` (e.g. a declared exception, status 1,
    /// carried in the result struct).
    pub fn reply_with(self, status: Status, write: impl FnOnce(&mut BytesMut)) {
        *self.state = ReplyState::Answered;
        write_answer(self.out, &self.meta, status, None, write);
    }

    /// Answers with an error `status` and `message` (a TApplicationException body).
    pub fn error(self, status: Status, message: &str) {
        *self.state = ReplyState::Answered;
        write_error(self.out, &self.meta, status, message);
    }

    /// Keeps the call open to be answered later, from any thread, through the returned
    /// [`Responder`]. The connection counts it as in flight until then.
    pub fn later(self) -> Responder {
        *self.state = ReplyState::Deferred;
        Responder {
            target: Some((self.shard.clone(), self.conn, self.meta.to_owned_meta())),
        }
    }

    /// True for a one-way call (whatever is answered is discarded).
    pub fn is_one_way(&self) -> bool {
        self.meta.one_way
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        if *self.state == ReplyState::Pending {
            *self.state = ReplyState::Answered;
            write_error(
                self.out,
                &self.meta,
                Status::RpcException,
                "the handler returned without answering",
            );
        }
    }
}

/// The answer to one call, to be given later from any thread; it travels back to the shard
/// that owns the connection through the shard's mailbox. Answer exactly once; dropping it
/// unanswered sends RpcException (status 3). If the connection closed meanwhile, the answer is
/// discarded.
pub struct Responder {
    target: Option<(ShardHandle, ConnId, AnswerMeta<Box<str>>)>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field(
                "target",
                &self.target.as_ref().map(|t| (t.1, t.2.sequence_id)),
            )
            .finish()
    }
}

enum Late {
    Body(Status, Bytes),
    Error(Status, String),
}

impl Responder {
    /// Answers with success and `body`, a whole Thrift REPLY message.
    pub fn ok(self, body: impl Into<Bytes>) {
        self.send(Late::Body(Status::Success, body.into()))
    }

    /// Answers with `status` and `body` (a whole Thrift message).
    pub fn reply(self, status: Status, body: impl Into<Bytes>) {
        self.send(Late::Body(status, body.into()))
    }

    /// Answers with an error `status` and `message` (a TApplicationException body).
    pub fn error(self, status: Status, message: impl Into<String>) {
        self.send(Late::Error(status, message.into()))
    }

    /// The call's sequence id.
    pub fn sequence_id(&self) -> i64 {
        self.target.as_ref().map_or(0, |t| t.2.sequence_id)
    }

    /// The call's Thrift seqid (to write in the reply message).
    pub fn thrift_seqid(&self) -> i32 {
        self.target.as_ref().map_or(0, |t| t.2.thrift_seqid)
    }

    fn send(mut self, late: Late) {
        if let Some(target) = self.target.take() {
            deliver(target, late);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            deliver(
                target,
                Late::Error(
                    Status::RpcException,
                    "the responder was dropped without answering".into(),
                ),
            );
        }
    }
}

fn deliver((shard, conn, meta): (ShardHandle, ConnId, AnswerMeta<Box<str>>), late: Late) {
    // If the shard has stopped, the connection is gone with it: nobody is left to answer.
    // `post_answer`: a full mailbox must not cost an accepted call its answer.
    let _ = shard.post_answer(move |shard| {
        shard.with_conn::<FramedConn<ServerConn>, _>(conn, |c, io| {
            c.handler_mut().finish_deferred();
            match &late {
                Late::Body(status, body) => write_answer(io.output(), &meta, *status, None, |b| {
                    b.extend_from_slice(body)
                }),
                Late::Error(status, message) => write_error(io.output(), &meta, *status, message),
            }
            c.settle(io);
        });
    });
}
