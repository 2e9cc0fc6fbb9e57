//! Futures on a shard: a minimal single-threaded executor, so that async code (e.g. the
//! client's `call_async`) can run on shard threads next to the callback-driven connections.
//!
//! A task is polled from the shard loop with the `&mut Shard` at hand; while it is polled,
//! [`with_current_shard`] lends that shard to the code inside the future (how an async call
//! reaches its connection without a mailbox hop). Waking a task from another thread posts one
//! "poll again" closure to its shard (the usual mailbox hop, at most one queued per task). Waking
//! it on its own shard (an answer completed a call in the same loop turn) only appends it to the
//! shard's ready list; one posted closure polls the whole list, however many tasks woke.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::Shard;
use super::{ShardCore, ShardHandle};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskEntry {
    generation: u32,
    /// Taken out while the task is being polled.
    future: Option<LocalFuture>,
    waker: Option<Arc<TaskWaker>>,
}

#[derive(Default)]
struct Tasks {
    entries: Vec<TaskEntry>,
    free: Vec<usize>,
}

thread_local! {
    static TASKS: RefCell<Tasks> = RefCell::new(Tasks::default());
    /// The shard whose task is being polled on this thread (null otherwise).
    static CURRENT: Cell<*mut Shard> = const { Cell::new(ptr::null_mut()) };
    /// Tasks of this thread woken on this thread, waiting for the posted drain to poll them.
    static READY: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
    /// True while a drain of READY is posted and has not run yet.
    static DRAIN_POSTED: Cell<bool> = const { Cell::new(false) };
    /// This thread's executor id (0 until first used).
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

fn thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    THREAD_ID.with(|c| {
        if c.get() == 0 {
            c.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        c.get()
    })
}

struct TaskWaker {
    slot: usize,
    generation: u32,
    /// The executor id of the shard thread that owns the task.
    owner: u64,
    shard: ShardHandle,
    /// True while a poll of this task is queued on its shard.
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let (slot, generation) = (self.slot, self.generation);
        let posted = if thread_id() == self.owner {
            READY.with(|r| r.borrow_mut().push((slot, generation)));
            if DRAIN_POSTED.with(|d| d.replace(true)) {
                Ok(())
            } else {
                let r = self.shard.post(drain_ready);
                if r.is_err() {
                    DRAIN_POSTED.with(|d| d.set(false));
                    READY.with(|r| r.borrow_mut().retain(|t| *t != (slot, generation)));
                }
                r
            }
        } else {
            self.shard
                .post(move |shard| poll_task(shard, slot, generation))
        };
        if posted.is_err() {
            // The shard stopped (its tasks are dropped with it), or its mailbox is full on the
            // shard's own thread: allow a later wake to try again.
            self.queued.store(false, Ordering::Release);
        }
    }
}

/// Runs `future` on this shard: first polled later in the current loop turn, then whenever its
/// waker is woken. It must not block; it may use [`with_current_shard`] while it is polled.
pub fn spawn_local(shard: &mut ShardCore, future: impl Future<Output = ()> + 'static) {
    let handle = shard.handle().clone();
    let (slot, generation) = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        let slot = match t.free.pop() {
            Some(s) => s,
            None => {
                t.entries.push(TaskEntry {
                    generation: 0,
                    future: None,
                    waker: None,
                });
                t.entries.len() - 1
            }
        };
        let e = &mut t.entries[slot];
        let waker = Arc::new(TaskWaker {
            slot,
            generation: e.generation,
            owner: thread_id(),
            shard: handle,
            queued: AtomicBool::new(true),
        });
        e.future = Some(Box::pin(future));
        e.waker = Some(waker);
        (slot, e.generation)
    });
    shard.defer(move |shard| poll_task(shard, slot, generation));
}

/// Polls every task woken on this shard since the last drain (and those they wake meanwhile).
fn drain_ready(shard: &mut Shard) {
    DRAIN_POSTED.with(|d| d.set(false));
    let mut batch = READY.with(|r| std::mem::take(&mut *r.borrow_mut()));
    for &(slot, generation) in &batch {
        poll_task(shard, slot, generation);
    }
    // Keep the buffer's capacity for the next drain.
    batch.clear();
    READY.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_empty() {
            *r = batch;
        }
    });
}

fn poll_task(shard: &mut Shard, slot: usize, generation: u32) {
    let taken = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        let e = t.entries.get_mut(slot)?;
        if e.generation != generation {
            return None;
        }
        let future = e.future.take()?;
        let waker = e.waker.clone()?;
        Some((future, waker))
    });
    let Some((mut future, waker_arc)) = taken else {
        return;
    };
    waker_arc.queued.store(false, Ordering::Release);
    let waker = Waker::from(waker_arc);
    let mut cx = Context::from_waker(&waker);
    let previous = CURRENT.with(|c| c.replace(shard as *mut Shard));
    let result = future.as_mut().poll(&mut cx);
    CURRENT.with(|c| c.set(previous));
    TASKS.with(|t| {
        let mut t = t.borrow_mut();
        let e = &mut t.entries[slot];
        match result {
            Poll::Ready(()) => {
                e.generation = e.generation.wrapping_add(1);
                e.waker = None;
                t.free.push(slot);
            }
            Poll::Pending => e.future = Some(future),
        }
    });
}

/// Runs `f` with the shard whose task is being polled on this thread; `None` outside a task
/// poll (or inside another `with_current_shard`).
pub fn with_current_shard<R>(f: impl FnOnce(&mut Shard) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.replace(ptr::null_mut()));
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` was made by `poll_task` from the `&mut Shard` it was given, and `poll_task`
    // does not touch that shard until the poll returns; the pointer is taken out of CURRENT while
    // `f` runs, so no second `&mut Shard` can be made from it meanwhile (a nested call sees null).
    let r = f(unsafe { &mut *p });
    CURRENT.with(|c| c.set(p));
    Some(r)
}

/// Tasks alive on this thread (spawned and not finished).
pub fn local_task_count() -> usize {
    TASKS.with(|t| {
        let t = t.borrow();
        t.entries.len() - t.free.len()
    })
}

/// True on a shard thread (where blocking waits would stall the shard).
pub fn on_shard_thread() -> bool {
    super::mailbox::on_shard_thread()
}
