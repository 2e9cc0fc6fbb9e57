//! One call as the caller sees it: the [`Request`] it sends, the [`Response`] or [`CallError`] it
//! gets, and the [`Completion`] that delivers exactly one of them.

use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::future::FutureState;
use crate::runtime::{Shard, ShardCore};

use crate::proto::{
    echo, peek_message, thrift::Reader, ApplicationException, ApplicationExceptionKind, Status,
    ThriftMessageType,
};

/// A call to send: a whole Thrift TBinaryProtocol message (CALL header, then the args struct).
///
/// The client owns the sequence id: the seqid written in the message is replaced, on the wire,
/// by the low 32 bits of the call's 64-bit sequence id (PROTOCOL.md §4-5).
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) body: Bytes,
    /// Offset of the i32 seqid inside `body`.
    pub(crate) seqid_offset: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
}

impl Request {
    /// A call carrying `body`, a whole Thrift message. Fails with ProtocolException if `body` is
    /// not a Thrift CALL or ONEWAY message.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use octo_engine::client::Request;
    /// use octo_engine::proto::echo;
    ///
    /// let mut body = BytesMut::new();
    /// echo::encode_call(&mut body, 0, b"hello");
    /// let request = Request::new(body.freeze()).unwrap();
    /// assert_eq!(request.method(), "echo");
    /// ```
    pub fn new(body: impl Into<Bytes>) -> Result<Request, CallError> {
        let body = body.into();
        let m = peek_message(&body).map_err(|e| {
            CallError::new(
                CallErrorKind::InvalidRequest,
                e.status(),
                format!("the request is not a Thrift message: {e}"),
            )
        })?;
        if !matches!(m.kind, ThriftMessageType::Call | ThriftMessageType::Oneway) {
            return Err(CallError::new(
                CallErrorKind::InvalidRequest,
                Status::ProtocolException,
                format!("the request is a Thrift {:?} message, not a CALL", m.kind),
            ));
        }
        Ok(Request {
            seqid_offset: m.payload_offset - 4,
            body,
            timeout: None,
            deadline: None,
        })
    }

    /// A call of the reference service: `Echo.echo(message)`.
    pub fn echo(message: &[u8]) -> Request {
        let mut body = BytesMut::with_capacity(message.len() + 32);
        echo::encode_call(&mut body, 0, message);
        Request::new(body.freeze()).expect("echo::encode_call writes a CALL message")
    }

    /// Sets this call's timeout (otherwise the client's default): the call fails with
    /// [`CallErrorKind::Timeout`] if no answer arrives within it, counted from the call.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self.deadline = None;
        self
    }

    /// Sets an absolute deadline instead of a timeout.
    pub fn deadline(mut self, deadline: Instant) -> Request {
        self.deadline = Some(deadline);
        self.timeout = None;
        self
    }

    /// The Thrift method name.
    pub fn method(&self) -> &str {
        peek_message(&self.body).map(|m| m.name).unwrap_or("")
    }

    /// The whole Thrift message as given.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The deadline of a call made at `now` with the client's default `timeout`, and the timeout
    /// to announce to the server.
    pub(crate) fn resolve_deadline(&self, now: Instant, default: Duration) -> Instant {
        match (self.deadline, self.timeout) {
            (Some(d), _) => d,
            (None, Some(t)) => now + t,
            (None, None) => now + default,
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The call's 64-bit sequence id (OCTO), or its Thrift seqid (plain Thrift).
    pub sequence_id: i64,
    /// The whole Thrift REPLY message (header, then the result struct): hand it to generated
    /// code, or read it with `proto::echo::decode_reply` for the Echo service.
    pub body: Bytes,
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallErrorKind {
    /// No answer before the call's deadline.
    Timeout,
    /// The connection carrying the call closed (or its heartbeat went unanswered) first.
    ConnectionLost,
    /// No endpoint has a usable connection (all are down and backing off).
    NoEndpoint,
    /// The server's answer (or another frame on the same connection) was malformed; the
    /// connection was closed.
    BadResponse,
    /// The server answered with an error status (its body, if any, is in [`CallError::body`]).
    Remote,
    /// Too many calls are in flight or waiting; the call was not sent.
    Overloaded,
    /// The request itself is not a valid Thrift call.
    InvalidRequest,
    /// The client (or its runtime) shut down.
    Shutdown,
    /// A blocking call was made on a shard thread, where it would wait for itself.
    WouldDeadlock,
    /// An on-shard call ([`Client::call_on`](super::Client::call_on)) was made on a shard the
    /// client does not run on.
    WrongShard,
}

/// A failed call: what happened, and the OCTO status that reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct CallError {
    kind: CallErrorKind,
    status: Status,
    /// Borrowed when it is fixed text: the refusals a client makes under overload (one per call
    /// it cannot take) then cost no allocation.
    message: Cow<'static, str>,
    body: Option<Bytes>,
}

impl CallError {
    pub(crate) fn new(
        kind: CallErrorKind,
        status: Status,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        CallError {
            kind,
            status,
            message: message.into(),
            body: None,
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        CallError::new(
            CallErrorKind::Timeout,
            Status::TransportException,
            format!("no answer within {after:?}"),
        )
    }

    pub(crate) fn connection_lost(why: &str) -> Self {
        CallError::new(
            CallErrorKind::ConnectionLost,
            Status::TransportException,
            format!("connection lost: {why}"),
        )
    }

    pub(crate) fn bad_response(why: impl fmt::Display) -> Self {
        CallError::new(
            CallErrorKind::BadResponse,
            Status::ProtocolException,
            format!("malformed answer on the connection: {why}"),
        )
    }

    /// No open connection can take the call now: each is at its in-flight limit or its output is
    /// at the high water mark.
    pub(crate) fn overloaded() -> Self {
        CallError::new(
            CallErrorKind::Overloaded,
            Status::DegradeException,
            "every connection is at its in-flight limit or its output high water mark",
        )
    }

    pub(crate) fn shutdown() -> Self {
        CallError::new(
            CallErrorKind::Shutdown,
            Status::TransportException,
            "the client shut down",
        )
    }

    pub(crate) fn remote(status: Status, message: Option<&str>, body: Bytes) -> Self {
        CallError {
            kind: CallErrorKind::Remote,
            status,
            message: message.map_or(Cow::Borrowed(""), |m| Cow::Owned(m.to_owned())),
            body: (!body.is_empty()).then_some(body),
        }
    }

    /// A plain-Thrift EXCEPTION answer (a TApplicationException).
    pub(crate) fn thrift_exception(body: Bytes, payload_offset: usize) -> Self {
        let e = ApplicationException::read(&mut Reader::new(&body[payload_offset..]));
        let (status, message) = match e {
            Ok(e) => {
                let status = match e.kind {
                    ApplicationExceptionKind::UnknownMethod
                    | ApplicationExceptionKind::WrongMethodName => Status::ServiceException,
                    ApplicationExceptionKind::ProtocolError
                    | ApplicationExceptionKind::InvalidProtocol
                    | ApplicationExceptionKind::InvalidMessageType => Status::ProtocolException,
                    _ => Status::RemoteException,
                };
                (status, Cow::Owned(e.message))
            }
            Err(_) => (Status::RemoteException, Cow::Borrowed("")),
        };
        CallError {
            kind: CallErrorKind::Remote,
            status,
            message,
            body: Some(body),
        }
    }

    /// What happened.
    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    /// The OCTO status this failure is reported with (TransportException for timeouts and lost
    /// connections, ProtocolException for malformed answers, the server's status for remote
    /// errors).
    pub fn status(&self) -> Status {
        self.status
    }

    /// True for a timeout (as opposed to any other failure).
    pub fn is_timeout(&self) -> bool {
        self.kind == CallErrorKind::Timeout
    }

    /// Human-readable detail (the server's ResponseInfo.message for remote errors).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's answer body for remote errors (a Thrift EXCEPTION or REPLY message).
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }
}

impl fmt::Debug for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallError")
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("message", &self.message)
            .field("body_len", &self.body.as_ref().map(|b| b.len()))
            .finish()
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for CallError {}

/// What a call's caller gets.
pub type CallResult = Result<Response, CallError>;

/// A completion that is given the shard with the result ([`Client::call_on_then`]).
///
/// [`Client::call_on_then`]: super::Client::call_on_then
pub(crate) type ShardDone = Box<dyn FnOnce(&mut Shard, CallResult)>;

enum Done {
    /// Runs where the result is delivered.
    Now(Box<dyn FnOnce(CallResult)>),
    /// Resolves a [`CallFuture`](super::CallFuture) (no closure, no allocation of its own).
    Future(Arc<FutureState>),
    /// Runs later in the same loop turn, with the shard at hand.
    WithShard(ShardDone),
}

/// Delivers one call's result exactly once: run with [`Completion::complete`], or, if dropped
/// unrun (the shard stopped, the client was torn down), with a Shutdown error.
pub struct Completion {
    done: Option<Done>,
}

impl Completion {
    /// A completion that runs `f` (on the shard thread that owns the call).
    pub fn new(f: impl FnOnce(CallResult) + 'static) -> Completion {
        Completion {
            done: Some(Done::Now(Box::new(f))),
        }
    }

    pub(crate) fn future(state: Arc<FutureState>) -> Completion {
        Completion {
            done: Some(Done::Future(state)),
        }
    }

    /// A completion that runs `f` with the shard, after the code that delivers the result has
    /// returned (later in the same loop turn). Dropped unrun (the shard stopped), `f` is dropped
    /// without running: there is no shard to give it.
    pub(crate) fn with_shard(f: ShardDone) -> Completion {
        Completion {
            done: Some(Done::WithShard(f)),
        }
    }

    /// Delivers the result. A panic in the caller's code is contained here, so that it cannot
    /// unwind through (and stop) the shard that delivers it. A completion made for
    /// `call_on_then` is queued on `shard` instead, to run later in this loop turn.
    pub(crate) fn complete_on(mut self, shard: &mut ShardCore, result: CallResult) {
        match self.done.take() {
            Some(Done::WithShard(f)) => ready::push(shard, f, result),
            Some(done) => run_contained(done, result),
            None => {}
        }
    }

    /// Delivers the result. A panic in the caller's code is contained here, so that it cannot
    /// unwind through (and stop) the shard that delivers it.
    pub fn complete(mut self, result: CallResult) {
        if let Some(done) = self.done.take() {
            run_contained(done, result);
        }
    }
}

fn run_contained(done: Done, result: CallResult) {
    match done {
        Done::Now(f) => {
            if catch_unwind(AssertUnwindSafe(move || f(result))).is_err() {
                eprintln!("octo client: a call's completion panicked; the panic was contained");
            }
        }
        Done::Future(state) => state.resolve(result),
        // Only reachable through `complete` (no shard at hand) or a drop: nothing can run it.
        Done::WithShard(_) => {}
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            run_contained(done, Err(CallError::shutdown()));
        }
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Completion")
    }
}

/// The results of `call_on_then` calls waiting for their completions to run, per shard: one
/// deferred task per loop turn runs them all, with the shard at hand.
mod ready {
    use super::{catch_unwind, AssertUnwindSafe, CallResult, ShardDone};
    use crate::runtime::{Shard, ShardCore};

    #[derive(Default)]
    struct Ready {
        items: Vec<(ShardDone, CallResult)>,
        /// A deferred run is queued.
        scheduled: bool,
    }

    pub(super) fn push(shard: &mut ShardCore, f: ShardDone, result: CallResult) {
        let r = shard.local::<Ready>();
        r.items.push((f, result));
        if !r.scheduled {
            r.scheduled = true;
            shard.defer(run);
        }
    }

    /// Runs the completions queued so far; those their calls queue meanwhile (a call that fails
    /// at once) run in a later deferred task, so a chain of calls that keep failing at once
    /// cannot hold the shard in one turn.
    fn run(shard: &mut Shard) {
        let mut batch = {
            let r = shard.local::<Ready>();
            r.scheduled = false;
            std::mem::take(&mut r.items)
        };
        for (f, result) in batch.drain(..) {
            let call = AssertUnwindSafe(|| f(shard, result));
            if catch_unwind(call).is_err() {
                eprintln!("octo client: a call's completion panicked; the panic was contained");
            }
        }
        // Keep the buffer's capacity for the next turn.
        let r = shard.local::<Ready>();
        if r.items.is_empty() {
            r.items = batch;
        }
    }
}
