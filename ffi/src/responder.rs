//! `octo_responder`: the answer to one call, given exactly once, from any thread.
//!
//! Inside the handler callback, on the shard thread, an answer is written straight into the
//! connection's output buffer (the engine's inline `Reply`: no allocation, no mailbox hop). If
//! the callback returns without answering, the responder turns into the engine's `Responder`,
//! which carries a later answer back to the shard through its mailbox. An answer given by
//! another thread while the callback still runs is held and written when the callback returns.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ::octo_engine::{Reply, Responder, Status};
use bytes::{Bytes, BytesMut};

use crate::boundary::{bytes, call, value, Failure, Outcome};
use crate::buf::{self, octo_buf};
use crate::status::octo_status;

/// Answers counted per status: a slot per shard written only by its own shard thread (a plain
/// load and store, no atomic read-modify-write on the per-call path), plus one slot for answers
/// given later from other threads (atomic adds; the rare path).
pub(crate) struct AnswerCounters {
    per_shard: Box<[ShardAnswers]>,
    later: ShardAnswers,
}

#[repr(align(128))]
#[derive(Default)]
struct ShardAnswers([AtomicU64; 10]);

impl AnswerCounters {
    pub fn new(shards: usize) -> AnswerCounters {
        AnswerCounters {
            per_shard: (0..shards.max(1))
                .map(|_| ShardAnswers::default())
                .collect(),
            later: ShardAnswers::default(),
        }
    }

    /// Counts an answer on `shard`'s own thread (the only writer of its slot).
    fn count_on_shard(&self, shard: usize, status: Status) {
        let c = &self.per_shard[shard % self.per_shard.len()].0[status.code() as usize];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Counts an answer given from any thread.
    fn count_later(&self, status: Status) {
        self.later.0[status.code() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Totals per status code.
    pub fn totals(&self) -> [u64; 10] {
        let mut t = [0u64; 10];
        for s in self.per_shard.iter().chain(std::iter::once(&self.later)) {
            for (i, c) in s.0.iter().enumerate() {
                t[i] += c.load(Ordering::Relaxed);
            }
        }
        t
    }
}

/// The answer to one call. The handler callback receives it and OWNS it: answer it at most once
/// (`octo_responder_ok`, `_ok_buf`, `_reply`, `_reply_buf`, `_reply_with`, `_error`), and free it
/// exactly once with `octo_responder_free`, before or after answering, during the callback or
/// long after. Freed without an answer, the call is answered with status 3 (RpcException).
///
/// Threads: any thread, also concurrently with the callback still running; the responder is
/// internally synchronized. After free, the pointer must not be used again (by any thread: a
/// thread that answers must be done before another frees).
#[allow(non_camel_case_types)]
pub struct octo_responder {
    slot: Mutex<Slot>,
    shard: usize,
    /// Holders: `serve` until the callback returns, and C until it frees (2, then 1, then 0).
    refs: AtomicUsize,
}

enum Answer {
    Body(Status, Bytes),
    Error(Status, String),
}

enum Slot {
    /// The callback is running: its inline reply lives in the callback's frame on the shard.
    Inline {
        reply: *mut Option<Reply<'static>>,
        released: bool,
    },
    /// Another thread answered while the callback was running; written (and counted) when it
    /// returns.
    Queued(Answer),
    /// Answered inline during the callback; counted when it returns.
    Answered(Status),
    /// The callback returned unanswered: the engine's Responder carries the answer (and the
    /// counters travel with it; only this rare path shares their reference count).
    Deferred(Responder, Arc<AnswerCounters>),
    /// Answered and counted (or abandoned with RpcException).
    Done,
}

// SAFETY: the only non-Send part is the Inline reply pointer, and it is dereferenced only on
// the thread running the callback that owns the pointee, while it runs (`answer` checks
// SERVING, which `serve` sets for exactly that span on that thread).
unsafe impl Send for Slot {}

/// Responders kept for reuse by one shard thread (no allocation per call). Boxed: each one's
/// address is what C holds, so it must not move with the vector.
#[allow(clippy::vec_box)]
struct Spare(Vec<Box<octo_responder>>);

const SPARE_MAX: usize = 256;

thread_local! {
    /// The responder whose callback this thread is running (null when none).
    static SERVING: Cell<*const octo_responder> = const { Cell::new(std::ptr::null()) };
    /// Set when C frees SERVING's responder on this thread during its callback.
    static FREED_IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    static SPARE: RefCell<Spare> = const { RefCell::new(Spare(Vec::new())) };
}

fn serving(p: *const octo_responder) -> bool {
    std::ptr::eq(SERVING.with(|s| s.get()), p)
}

/// A C function that writes an answer's Thrift message into `out` (room for `capacity`
/// bytes) and returns how many bytes it wrote (at most `capacity`). Called once, before the
/// answering function returns, on the answering thread.
#[allow(non_camel_case_types)]
pub type octo_write_fn =
    Option<unsafe extern "C" fn(context: *mut c_void, out: *mut u8, capacity: usize) -> usize>;

/// What an answer carries, borrowed from C or owned.
enum Given<'a> {
    Slice(Status, &'a [u8]),
    Owned(Status, Bytes),
    Error(Status, &'a str),
    /// Written by C straight into the output: (status, capacity, writer, context, wrote-too-much).
    With(Status, usize, Writer<'a>),
}

struct Writer<'a> {
    write: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize,
    context: *mut c_void,
    overflow: &'a Cell<bool>,
}

impl Writer<'_> {
    /// Lets C write up to `capacity` bytes at the end of `out`.
    fn run(&self, out: &mut BytesMut, capacity: usize) {
        out.reserve(capacity);
        let spare = out.spare_capacity_mut();
        // SAFETY: the host gave a valid write function and context; `spare` has room for
        // `capacity` bytes, which C may write (the memory may be uninitialized: C only writes).
        let n = unsafe { (self.write)(self.context, spare.as_mut_ptr().cast(), capacity) };
        if n > capacity {
            self.overflow.set(true);
            return;
        }
        // SAFETY: C wrote (initialized) the first n <= capacity bytes of the spare capacity.
        unsafe { out.set_len(out.len() + n) };
    }
}

impl Given<'_> {
    fn status(&self) -> Status {
        match self {
            Given::Slice(s, _) | Given::Owned(s, _) | Given::Error(s, _) | Given::With(s, ..) => *s,
        }
    }

    fn into_answer(self) -> Answer {
        match self {
            Given::Slice(s, b) => Answer::Body(s, Bytes::copy_from_slice(b)),
            Given::Owned(s, b) => Answer::Body(s, b),
            Given::Error(s, m) => Answer::Error(s, m.to_owned()),
            Given::With(s, capacity, w) => {
                let mut out = BytesMut::new();
                w.run(&mut out, capacity);
                Answer::Body(s, out.freeze())
            }
        }
    }

    fn write(self, reply: Reply<'_>) {
        match self {
            Given::Slice(s, b) => reply.reply_with(s, |out| out.extend_from_slice(b)),
            Given::Owned(s, b) => reply.reply_with(s, |out| out.extend_from_slice(&b)),
            Given::Error(s, m) => reply.error(s, m),
            Given::With(s, capacity, w) => reply.reply_with(s, |out| w.run(out, capacity)),
        }
    }
}

impl Answer {
    fn status(&self) -> Status {
        match self {
            Answer::Body(s, _) | Answer::Error(s, _) => *s,
        }
    }
}

fn write_answer(answer: Answer, reply: Reply<'_>) {
    match answer {
        Answer::Body(s, b) => reply.reply_with(s, |out| out.extend_from_slice(&b)),
        Answer::Error(s, m) => reply.error(s, &m),
    }
}

/// Settles what the callback left in `slot` once it has returned: writes or counts an answer
/// given during it, or turns an unanswered call into a deferred one (unless C let it go).
/// Runs on `shard`'s own thread (it counts in that shard's slot).
fn settle(
    slot: &mut Slot,
    held: &mut Option<Reply<'_>>,
    shard: usize,
    counters: &Arc<AnswerCounters>,
) {
    match std::mem::replace(slot, Slot::Done) {
        Slot::Inline { released: true, .. } => {
            // Freed unanswered during the callback: dropping the reply answers RpcException.
            drop(held.take());
            counters.count_on_shard(shard, Status::RpcException);
        }
        Slot::Inline {
            released: false, ..
        } => {
            if let Some(reply) = held.take() {
                *slot = Slot::Deferred(reply.later(), counters.clone());
            }
        }
        Slot::Queued(answer) => {
            counters.count_on_shard(shard, answer.status());
            if let Some(reply) = held.take() {
                write_answer(answer, reply);
            }
        }
        Slot::Answered(status) => counters.count_on_shard(shard, status),
        other @ (Slot::Deferred(..) | Slot::Done) => *slot = other,
    }
}

impl octo_responder {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock cannot leave Slot half-updated in a way that matters
        // more than losing the call, so a poisoned lock is used as is.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `callback` with a responder for `reply`; afterwards, writes a held answer inline,
    /// or keeps the call open through the engine's Responder if nothing answered it yet.
    ///
    /// The common case costs no allocation and no atomic operation after the answer is
    /// written: the responder comes from this thread's spares, and a free by C on this thread
    /// during the callback is recorded in a thread-local, after which `serve` owns it alone.
    pub(crate) fn serve(
        reply: Reply<'_>,
        shard: usize,
        counters: &Arc<AnswerCounters>,
        callback: impl FnOnce(*mut octo_responder),
    ) {
        let mut held: Option<Reply<'_>> = Some(reply);
        let inline = Slot::Inline {
            reply: (&mut held as *mut Option<Reply<'_>>).cast(),
            released: false,
        };
        let mut cell = SPARE.with(|s| s.borrow_mut().0.pop()).unwrap_or_else(|| {
            Box::new(octo_responder {
                slot: Mutex::new(Slot::Done),
                shard,
                refs: AtomicUsize::new(0),
            })
        });
        *cell.slot.get_mut().unwrap_or_else(|p| p.into_inner()) = inline;
        cell.shard = shard;
        *cell.refs.get_mut() = 2;
        let ptr = Box::into_raw(cell);
        let previous = SERVING.with(|s| s.replace(ptr));
        let freed_before = FREED_IN_CALLBACK.with(|f| f.replace(false));
        callback(ptr);
        SERVING.with(|s| s.set(previous));
        let freed = FREED_IN_CALLBACK.with(|f| f.replace(freed_before));
        if freed {
            // C gave up its hold on this thread during the callback, and by contract every
            // other thread's use of the responder happened before that: we hold it alone.
            // SAFETY: ptr came from Box::into_raw above and nobody else uses it any more.
            let mut cell = unsafe { Box::from_raw(ptr) };
            let slot = cell.slot.get_mut().unwrap_or_else(|p| p.into_inner());
            if let Slot::Inline { released, .. } = slot {
                *released = true;
            }
            settle(slot, &mut held, shard, counters);
            drop(held);
            recycle(cell);
            return;
        }
        {
            // SAFETY: C still holds ptr (or frees it concurrently, which needs our hold too).
            let cell = unsafe { &*ptr };
            let mut slot = cell.lock();
            settle(&mut slot, &mut held, shard, counters);
        }
        drop(held);
        // SAFETY: as above; this gives up serve's hold.
        if unsafe { &*ptr }.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the last hold is gone: nobody else can reach ptr.
            recycle(unsafe { Box::from_raw(ptr) });
        }
    }

    fn answer(&self, given: Given<'_>) -> Outcome {
        let already = || {
            Err(Failure::new(
                octo_status::AlreadyAnswered,
                "the call was answered already",
            ))
        };
        let status = given.status();
        if serving(self) {
            let mut slot = self.lock();
            let Slot::Inline { reply, .. } = &mut *slot else {
                // While its callback runs a call is Inline until answered.
                return already();
            };
            // SAFETY: on the thread running the callback whose frame holds the reply (the slot
            // is still Inline, which `serve` changes only after the callback returns), so the
            // pointer is live; we hold the lock.
            let reply = unsafe { &mut **reply }.take();
            *slot = Slot::Answered(status);
            // Unlock before writing, so the lock's atomic does not wait for the write, and no
            // C code (a write function) runs under the lock.
            drop(slot);
            if let Some(r) = reply {
                given.write(r);
            }
            return Ok(());
        }
        // Any other thread, or after the callback: the answer is owned first, outside the lock.
        let answer = given.into_answer();
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Inline { .. } => *slot = Slot::Queued(answer),
            Slot::Deferred(..) => {
                let Slot::Deferred(r, counters) = std::mem::replace(&mut *slot, Slot::Done) else {
                    unreachable!("matched above")
                };
                drop(slot);
                match answer {
                    Answer::Body(s, b) => r.reply(s, b),
                    Answer::Error(s, m) => r.error(s, m),
                }
                counters.count_later(status);
            }
            Slot::Queued(_) | Slot::Answered(_) | Slot::Done => return already(),
        }
        Ok(())
    }
}

/// Keeps a responder no one holds for reuse on a shard thread, or frees it.
fn recycle(cell: Box<octo_responder>) {
    if ::octo_engine::runtime::on_shard_thread() {
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.0.len() < SPARE_MAX {
                s.0.push(cell);
            }
        });
    }
}

/// # Safety
/// `p` must be NULL or a live responder handed to a handler callback and not yet freed.
unsafe fn live_responder<'a>(p: *mut octo_responder) -> Outcome<&'a octo_responder> {
    // SAFETY: per the contract, a non-NULL p came from `serve` and is not freed yet.
    unsafe { p.cast_const().as_ref() }.ok_or_else(|| Failure::invalid("responder is NULL"))
}

fn wire_status(code: u32, allow_success: bool) -> Outcome<Status> {
    let status = octo_status::from_code(code)
        .and_then(octo_status::wire)
        .ok_or_else(|| Failure::invalid(format!("status {code} is not an OCTO status (0..9)")))?;
    if status == Status::Success && !allow_success {
        return Err(Failure::invalid(
            "an error answer needs a status other than 0",
        ));
    }
    Ok(status)
}

/// Answers with success and `body` (`len` bytes), a whole Thrift REPLY message (header with
/// the call's method and thrift_seqid, then the result struct). `body` is copied before this
/// returns and stays the caller's. ALREADY_ANSWERED on a second answer. Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_ok(
    responder: *mut octo_responder,
    body: *const u8,
    len: usize,
) -> octo_status {
    octo_responder_reply(responder, 0, body, len)
}

/// Answers with `status` (0..9; e.g. 1, ApplicationException, for a declared exception carried
/// in the result struct) and `body`, a whole Thrift message. `body` is copied before this
/// returns. ALREADY_ANSWERED on a second answer; INVALID_ARGUMENT for another status. Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_reply(
    responder: *mut octo_responder,
    status: u32,
    body: *const u8,
    len: usize,
) -> octo_status {
    call("octo_responder_reply", || {
        // SAFETY: a non-NULL responder is live, per the contract.
        let r = unsafe { live_responder(responder) }?;
        let status = wire_status(status, true)?;
        // SAFETY: body points to len readable bytes (or len is 0), per the contract.
        let body = unsafe { bytes(body, len, "body") }?;
        r.answer(Given::Slice(status, body))
    })
}

/// Answers with success and the contents of `body`, handed over without a copy: `body` is
/// CONSUMED by this call whatever it returns (do not free it or use it again). Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_ok_buf(
    responder: *mut octo_responder,
    body: *mut octo_buf,
) -> octo_status {
    octo_responder_reply_buf(responder, 0, body)
}

/// Answers with `status` (0..9) and the contents of `body`, a whole Thrift message, handed over
/// without a copy: `body` is CONSUMED by this call whatever it returns. Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_reply_buf(
    responder: *mut octo_responder,
    status: u32,
    body: *mut octo_buf,
) -> octo_status {
    call("octo_responder_reply_buf", || {
        // SAFETY: body is NULL or a live buffer the caller hands over.
        let body = unsafe { buf::take(body) };
        // SAFETY: a non-NULL responder is live, per the contract.
        let r = unsafe { live_responder(responder) }?;
        let status = wire_status(status, true)?;
        let body = body.ok_or_else(|| Failure::invalid("body is NULL"))?;
        r.answer(Given::Owned(status, body.into_bytes()))
    })
}

/// Answers with `status` (0..9) and a whole Thrift message that `write(context, out,
/// capacity)` writes straight into octo's output, with no copy: inside the callback on its
/// thread, `out` points into the connection's output buffer; elsewhere into a new engine
/// buffer. `write` runs once, before this returns, and returns how many bytes it wrote.
/// INVALID_ARGUMENT if `capacity` exceeds 2^31 - 1 or `write` is NULL (nothing is sent), or if
/// `write` returns more than `capacity` (the call is then answered with an empty body).
/// ALREADY_ANSWERED on a second answer (`write` may have run: answered from another thread than
/// the callback's, the message is written before the answer is claimed). `write` must not call
/// octo functions on this responder. Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_reply_with(
    responder: *mut octo_responder,
    status: u32,
    capacity: usize,
    write: octo_write_fn,
    context: *mut c_void,
) -> octo_status {
    call("octo_responder_reply_with", || {
        // SAFETY: a non-NULL responder is live, per the contract.
        let r = unsafe { live_responder(responder) }?;
        let status = wire_status(status, true)?;
        let write = write.ok_or_else(|| Failure::invalid("write is NULL"))?;
        if capacity > crate::buf::OCTO_BUF_MAX_CAPACITY {
            return Err(Failure::invalid(format!(
                "capacity {capacity} exceeds 2^31 - 1"
            )));
        }
        let overflow = Cell::new(false);
        let writer = Writer {
            write,
            context,
            overflow: &overflow,
        };
        r.answer(Given::With(status, capacity, writer))?;
        if overflow.get() {
            return Err(Failure::invalid(format!(
                "write returned more than the capacity of {capacity} bytes; the answer has an empty body"
            )));
        }
        Ok(())
    })
}

/// Answers with an error: `status` (1..9) and `message` (NUL-terminated UTF-8, or NULL for
/// none), sent as ResponseInfo.message and in a TApplicationException body (what a native
/// Thrift caller sees). ALREADY_ANSWERED on a second answer. Any thread.
#[no_mangle]
pub extern "C" fn octo_responder_error(
    responder: *mut octo_responder,
    status: u32,
    message: *const c_char,
) -> octo_status {
    call("octo_responder_error", || {
        // SAFETY: a non-NULL responder is live, per the contract.
        let r = unsafe { live_responder(responder) }?;
        let status = wire_status(status, false)?;
        let message = if message.is_null() {
            ""
        } else {
            // SAFETY: a non-NULL message is a NUL-terminated string, per the contract.
            unsafe { crate::boundary::text(message, "message") }?
        };
        r.answer(Given::Error(status, message))
    })
}

/// Frees the responder (NULL is ignored). If it was never answered, the call is answered with
/// status 3 (RpcException) now (or when the callback returns, if it is still running). Any
/// thread; exactly once per responder.
#[no_mangle]
pub extern "C" fn octo_responder_free(responder: *mut octo_responder) {
    value("octo_responder_free", (), || {
        if responder.is_null() {
            return;
        }
        if serving(responder) {
            // Inside its own callback, on its thread: `serve` settles it when the callback
            // returns (no atomic operation here).
            FREED_IN_CALLBACK.with(|f| f.set(true));
            return;
        }
        // SAFETY: responder came from `serve` and the caller gives up its hold now.
        let cell = unsafe { &*responder };
        {
            let mut slot = cell.lock();
            match &mut *slot {
                Slot::Inline { released, .. } => *released = true,
                Slot::Deferred(..) => {
                    let Slot::Deferred(abandoned, counters) =
                        std::mem::replace(&mut *slot, Slot::Done)
                    else {
                        unreachable!("matched above")
                    };
                    drop(slot);
                    // Dropping the engine's Responder unanswered sends RpcException.
                    drop(abandoned);
                    counters.count_later(Status::RpcException);
                }
                Slot::Queued(_) | Slot::Answered(_) | Slot::Done => {}
            }
        }
        if cell.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the last hold is gone: nobody else can reach the responder.
            recycle(unsafe { Box::from_raw(responder) });
        }
    })
}
