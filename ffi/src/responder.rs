//! `octo_responder`: the answer to one call, given exactly once, from any thread.
//!
//! Inside the handler callback, on the shard thread, an answer is written straight into the
//! connection's output buffer (the engine's inline `Reply`: no allocation, no mailbox hop). If
//! the callback returns without answering, the responder turns into the engine's `Responder`,
//! which carries a later answer back to the shard through its mailbox. An answer given by
//! another thread while the callback still runs is held and written when the callback returns.

use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ::octo_engine::{Reply, Responder, Status};
use bytes::Bytes;

use crate::boundary::{bytes, call, value, Failure, Outcome};
use crate::buf::{self, octo_buf};
use crate::status::octo_status;

/// Answers counted per shard and per status (a slot per shard, so shards do not share lines).
pub(crate) struct AnswerCounters {
    per_shard: Box<[ShardAnswers]>,
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
        }
    }

    fn count(&self, shard: usize, status: Status) {
        let slot = &self.per_shard[shard % self.per_shard.len()];
        slot.0[status.code() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Totals per status code.
    pub fn totals(&self) -> [u64; 10] {
        let mut t = [0u64; 10];
        for s in self.per_shard.iter() {
            for (i, c) in s.0.iter().enumerate() {
                t[i] += c.load(Ordering::Relaxed);
            }
        }
        t
    }
}

/// The answer to one call. The handler callback receives it and OWNS it: answer it at most once
/// (`octo_responder_ok`, `_ok_buf`, `_reply`, `_reply_buf`, `_error`), and free it exactly once
/// with `octo_responder_free`, before or after answering, during the callback or long after.
/// Freed without an answer, the call is answered with status 3 (RpcException).
///
/// Threads: any thread, also concurrently with the callback still running; the responder is
/// internally synchronized. After free, the pointer must not be used again.
#[allow(non_camel_case_types)]
pub struct octo_responder {
    slot: Mutex<Slot>,
    shard: usize,
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

thread_local! {
    /// Responders whose last reference came back to `serve`, reused to spare an allocation.
    static SPARE: RefCell<Vec<Arc<octo_responder>>> = const { RefCell::new(Vec::new()) };
}

/// Spare responders kept per shard thread.
const SPARE_MAX: usize = 256;

// SAFETY: the only non-Send part is the Inline reply pointer, and it is dereferenced only on
// the thread running the callback that owns the pointee, while it runs (`answer` checks
// SERVING, which `serve` sets for exactly that span on that thread).
unsafe impl Send for Slot {}

thread_local! {
    /// The responder whose callback this thread is running (null when none).
    static SERVING: Cell<*const octo_responder> = const { Cell::new(std::ptr::null()) };
}

/// What an answer carries, borrowed from C or owned.
enum Given<'a> {
    Slice(Status, &'a [u8]),
    Owned(Status, Bytes),
    Error(Status, &'a str),
}

impl Given<'_> {
    fn status(&self) -> Status {
        match self {
            Given::Slice(s, _) | Given::Owned(s, _) | Given::Error(s, _) => *s,
        }
    }

    fn into_answer(self) -> Answer {
        match self {
            Given::Slice(s, b) => Answer::Body(s, Bytes::copy_from_slice(b)),
            Given::Owned(s, b) => Answer::Body(s, b),
            Given::Error(s, m) => Answer::Error(s, m.to_owned()),
        }
    }

    fn write(self, reply: Reply<'_>) {
        match self {
            Given::Slice(s, b) => reply.reply_with(s, |out| out.extend_from_slice(b)),
            Given::Owned(s, b) => reply.reply_with(s, |out| out.extend_from_slice(&b)),
            Given::Error(s, m) => reply.error(s, m),
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

impl octo_responder {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock cannot leave Slot half-updated in a way that matters
        // more than losing the call, so a poisoned lock is used as is.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `callback` with a responder for `reply`; afterwards, writes a held answer inline,
    /// or keeps the call open through the engine's Responder if nothing answered it yet.
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
        let spare = SPARE.with(|s| s.borrow_mut().pop());
        let cell = match spare {
            Some(mut cell) => {
                // Only unshared responders are kept spare, so this cannot fail.
                if let Some(r) = Arc::get_mut(&mut cell) {
                    *r.slot.get_mut().unwrap_or_else(|p| p.into_inner()) = inline;
                    r.shard = shard;
                    cell
                } else {
                    Arc::new(octo_responder {
                        slot: Mutex::new(inline),
                        shard,
                    })
                }
            }
            None => Arc::new(octo_responder {
                slot: Mutex::new(inline),
                shard,
            }),
        };
        let previous = SERVING.with(|s| s.replace(Arc::as_ptr(&cell)));
        callback(Arc::into_raw(cell.clone()).cast_mut());
        SERVING.with(|s| s.set(previous));
        let mut slot = cell.lock();
        match std::mem::replace(&mut *slot, Slot::Done) {
            Slot::Inline { released: true, .. } => {
                // Freed unanswered during the callback: dropping the reply answers RpcException.
                counters.count(shard, Status::RpcException);
            }
            Slot::Inline {
                released: false, ..
            } => {
                if let Some(reply) = held.take() {
                    *slot = Slot::Deferred(reply.later(), counters.clone());
                }
            }
            Slot::Queued(answer) => {
                counters.count(shard, answer.status());
                if let Some(reply) = held.take() {
                    write_answer(answer, reply);
                }
            }
            Slot::Answered(status) => counters.count(shard, status),
            other @ (Slot::Deferred(..) | Slot::Done) => *slot = other,
        }
        drop(slot);
        drop(held);
        if Arc::strong_count(&cell) == 1 {
            SPARE.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < SPARE_MAX {
                    s.push(cell);
                }
            });
        }
    }

    fn answer(&self, given: Given<'_>) -> Outcome {
        let status = given.status();
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Inline { reply, .. } => {
                if std::ptr::eq(SERVING.with(|s| s.get()), self) {
                    // SAFETY: on the recorded thread while its callback runs (the slot is still
                    // Inline, which `serve` changes before the pointee's frame ends), so the
                    // pointer is live and nothing else uses it while we hold the mutex.
                    let held = unsafe { &mut **reply };
                    if let Some(r) = held.take() {
                        given.write(r);
                    }
                    *slot = Slot::Answered(status);
                } else {
                    *slot = Slot::Queued(given.into_answer());
                }
            }
            Slot::Deferred(..) => {
                let Slot::Deferred(r, counters) = std::mem::replace(&mut *slot, Slot::Done) else {
                    unreachable!("matched above")
                };
                drop(slot);
                match given.into_answer() {
                    Answer::Body(s, b) => r.reply(s, b),
                    Answer::Error(s, m) => r.error(s, m),
                }
                counters.count(self.shard, status);
            }
            Slot::Queued(_) | Slot::Answered(_) | Slot::Done => {
                return Err(Failure::new(
                    octo_status::AlreadyAnswered,
                    "the call was answered already",
                ));
            }
        }
        Ok(())
    }
}

/// # Safety
/// `p` must be NULL or a live responder handed to a handler callback and not yet freed.
unsafe fn live_responder<'a>(p: *mut octo_responder) -> Outcome<&'a octo_responder> {
    // SAFETY: per the contract, a non-NULL p came from Arc::into_raw in `serve` and is alive.
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
        // SAFETY: responder came from Arc::into_raw in `serve` and the caller gives it up.
        let cell = unsafe { Arc::from_raw(responder.cast_const()) };
        let mut slot = cell.lock();
        match &mut *slot {
            Slot::Inline { released, .. } => *released = true,
            Slot::Deferred(..) => {
                let Slot::Deferred(abandoned, counters) = std::mem::replace(&mut *slot, Slot::Done)
                else {
                    unreachable!("matched above")
                };
                drop(slot);
                // Dropping the engine's Responder unanswered sends RpcException.
                drop(abandoned);
                counters.count(cell.shard, Status::RpcException);
            }
            Slot::Queued(_) | Slot::Answered(_) | Slot::Done => {}
        }
    })
}
