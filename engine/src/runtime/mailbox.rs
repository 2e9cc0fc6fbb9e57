//! The door into a shard from other threads: a bounded channel of closures plus an eventfd that
//! wakes the shard's ring, written at most once per wake-up.
//!
//! Answers to calls the shard has already accepted ([`ShardHandle::post_answer`]) are never
//! refused for space: when the bounded channel is full they wait in a second channel. That one
//! needs no bound of its own, because what it can hold is bounded by the calls the shard accepted
//! (its connection and in-flight limits).

use std::cell::Cell;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::Shard;

/// Work posted to a shard from anywhere; it runs on the shard thread with the shard at hand.
pub(crate) type Task = Box<dyn FnOnce(&mut Shard) + Send>;

thread_local! {
    static ON_SHARD_THREAD: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn mark_shard_thread() {
    ON_SHARD_THREAD.with(|c| c.set(true));
}

pub(crate) fn on_shard_thread() -> bool {
    ON_SHARD_THREAD.with(|c| c.get())
}

/// Why a post was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The shard has stopped (or is stopping); the closure was dropped without running.
    Stopped,
    /// The mailbox is full and the caller is a shard thread, which must never block.
    Full,
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Stopped => f.write_str("shard stopped"),
            PostError::Full => f.write_str("shard mailbox full"),
        }
    }
}

impl std::error::Error for PostError {}

pub(crate) struct Mailbox {
    id: usize,
    tx: Sender<Task>,
    /// Answers that found `tx` full (see the module doc).
    overflow_tx: Sender<Task>,
    overflow_rx: Receiver<Task>,
    eventfd: OwnedFd,
    /// True from the moment a poster writes the eventfd until the shard has consumed that wake-up.
    notified: AtomicBool,
    stopped: AtomicBool,
}

/// A cloneable, thread-safe address of one shard: post closures to it from any thread.
#[derive(Clone)]
pub struct ShardHandle {
    inner: Arc<Mailbox>,
}

impl fmt::Debug for ShardHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardHandle")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl ShardHandle {
    pub(crate) fn new(
        id: usize,
        capacity: usize,
    ) -> std::io::Result<(ShardHandle, Receiver<Task>)> {
        // SAFETY: plain eventfd(2) call; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nobody else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (overflow_tx, overflow_rx) = crossbeam_channel::unbounded();
        let inner = Arc::new(Mailbox {
            id,
            tx,
            overflow_tx,
            overflow_rx,
            eventfd,
            notified: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        Ok((ShardHandle { inner }, rx))
    }

    /// The shard's index in its runtime (0-based).
    pub fn id(&self) -> usize {
        self.inner.id
    }

    /// Runs `task` on the shard thread, soon. From a foreign thread this blocks while the mailbox
    /// is full (backpressure); from a shard thread it never blocks and fails with
    /// [`PostError::Full`] instead. Fails with [`PostError::Stopped`] once the shard stops.
    pub fn post<F>(&self, task: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Shard) + Send + 'static,
    {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(PostError::Stopped);
        }
        let task: Task = Box::new(task);
        if on_shard_thread() {
            self.inner.tx.try_send(task).map_err(|e| match e {
                TrySendError::Full(_) => PostError::Full,
                TrySendError::Disconnected(_) => PostError::Stopped,
            })?;
        } else {
            self.inner.tx.send(task).map_err(|_| PostError::Stopped)?;
        }
        self.wake();
        Ok(())
    }

    /// Runs `task`, the answer to a call this shard accepted, on the shard thread, soon. Unlike
    /// [`post`](Self::post) it never blocks and is never refused for space, from any thread:
    /// an accepted call must not lose its answer because the mailbox is busy. Fails only with
    /// [`PostError::Stopped`] once the shard stops.
    pub fn post_answer<F>(&self, task: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Shard) + Send + 'static,
    {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(PostError::Stopped);
        }
        let task: Task = Box::new(task);
        match self.inner.tx.try_send(task) {
            Ok(()) => {}
            Err(TrySendError::Full(task)) => self
                .inner
                .overflow_tx
                .send(task)
                .map_err(|_| PostError::Stopped)?,
            Err(TrySendError::Disconnected(_)) => return Err(PostError::Stopped),
        }
        self.wake();
        Ok(())
    }

    /// Answers that found the mailbox full, for the shard to drain after the mailbox.
    pub(crate) fn overflow(&self) -> &Receiver<Task> {
        &self.inner.overflow_rx
    }

    /// True once the shard has stopped taking work.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    fn wake(&self) {
        if !self.inner.notified.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd. A failure can only be EAGAIN on
            // counter overflow, which still leaves the eventfd readable, so it is ignored.
            unsafe {
                libc::write(
                    self.inner.eventfd.as_raw_fd(),
                    &one as *const u64 as *const libc::c_void,
                    8,
                );
            }
        }
    }

    pub(crate) fn eventfd(&self) -> i32 {
        self.inner.eventfd.as_raw_fd()
    }

    /// Called by the shard after consuming an eventfd wake-up, before draining the channel.
    pub(crate) fn rearm(&self) {
        self.inner.notified.store(false, Ordering::SeqCst);
    }

    pub(crate) fn mark_stopped(&self) {
        self.inner.stopped.store(true, Ordering::Release);
    }

    /// True if both handles address the same shard.
    pub fn same_shard(&self, other: &ShardHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
