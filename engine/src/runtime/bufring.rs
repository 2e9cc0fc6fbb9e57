//! A shard's pool of receive buffers, provided to the kernel as an io_uring buffer ring, for
//! multishot receives.
//!
//! A multishot receive is armed once per connection and then posts one completion per chunk
//! of data that arrives, written into the buffer at the head of this ring. The ring is
//! registered for incremental consumption (IOU_PBUF_RING_INC, Linux 6.12): a chunk takes only
//! the bytes it needs from the head buffer, and the next chunk (of any connection) follows it
//! there, so small messages pack into a few large buffers. The shard copies each chunk into its
//! connection's input buffer as soon as it reaps the completion, and gives a buffer back once
//! the kernel has filled it (a completion without IORING_CQE_F_BUF_MORE). Compared with a
//! single-shot receive per chunk, this saves per request: preparing and submitting a receive,
//! the receive attempt that finds the socket empty, and arming and disarming a poll on the
//! socket's wait queue (see `Shard::submit_recv`).
//!
//! The pool's size bounds what a shard takes in ahead of handling it: at most the pool's bytes
//! wait in completions. When the ring runs dry, a multishot receive ends with `ENOBUFS`; the
//! connection then takes one single-shot receive into its own buffer and re-arms the multishot
//! one after it.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The buffer group id of a shard's pool (one pool per ring).
pub(crate) const POOL_GROUP: u16 = 0;

/// IOU_PBUF_RING_INC (linux/io_uring.h): buffers of the ring are consumed incrementally.
const PBUF_RING_INC: u16 = 2;

/// Receive buffers lent to the kernel through a registered buffer ring.
pub(crate) struct RecvPool {
    /// The ring of `entries` buffer descriptors (page aligned, shared with the kernel).
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    /// `entries` buffers of `buf_size` bytes each, back to back.
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    entries: u16,
    buf_size: u32,
    /// Our copy of the ring's tail (the kernel reads the one in the ring).
    tail: u16,
    /// Per buffer: how many of its bytes earlier chunks took (where the next chunk starts).
    used: Vec<u32>,
    registered: bool,
}

impl RecvPool {
    /// Allocates `entries` (a power of two, at most 32768) buffers of `buf_size` bytes, fills the
    /// ring with all of them and registers it with `ring` as group [`POOL_GROUP`], for
    /// incremental consumption (an error where the kernel does not offer it).
    pub(crate) fn new(ring: &IoUring, entries: u16, buf_size: u32) -> io::Result<RecvPool> {
        if !entries.is_power_of_two() || entries > 1 << 15 || buf_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad receive pool size",
            ));
        }
        let page = 4096;
        let ring_bytes = (entries as usize * std::mem::size_of::<BufRingEntry>()).max(page);
        let ring_layout = Layout::from_size_align(ring_bytes, page).map_err(io::Error::other)?;
        let bufs_layout = Layout::from_size_align(entries as usize * buf_size as usize, 64)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (checked above).
        let ring_ptr = unsafe { alloc::alloc_zeroed(ring_layout) } as *mut BufRingEntry;
        let Some(ring_nn) = NonNull::new(ring_ptr) else {
            alloc::handle_alloc_error(ring_layout);
        };
        // SAFETY: as above.
        let bufs_ptr = unsafe { alloc::alloc(bufs_layout) };
        let Some(bufs_nn) = NonNull::new(bufs_ptr) else {
            // SAFETY: ring_ptr was allocated above with ring_layout.
            unsafe { alloc::dealloc(ring_ptr as *mut u8, ring_layout) };
            alloc::handle_alloc_error(bufs_layout);
        };
        let mut pool = RecvPool {
            ring: ring_nn,
            ring_layout,
            bufs: bufs_nn,
            bufs_layout,
            entries,
            buf_size,
            tail: 0,
            used: vec![0; entries as usize],
            registered: false,
        };
        for bid in 0..entries {
            pool.push(bid);
        }
        pool.publish();
        // SAFETY: the ring memory is page aligned, holds `entries` descriptors and stays valid
        // and unmoved until the pool is dropped, which unregisters it first (and the pool is
        // dropped only after the shard's ring, see `ShardCore`).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                ring_ptr as u64,
                entries,
                POOL_GROUP,
                PBUF_RING_INC,
            )?
        };
        pool.registered = true;
        Ok(pool)
    }

    /// The `len` bytes of a chunk the kernel wrote into buffer `bid` (after the chunks before it
    /// in that buffer), or `None` for an id or length out of range (never given by the kernel,
    /// but not trusted blindly). Call [`RecvPool::consumed`] for the chunk afterwards.
    pub(crate) fn data(&self, bid: u16, len: usize) -> Option<&[u8]> {
        let used = *self.used.get(bid as usize)? as usize;
        if len > self.buf_size as usize - used {
            return None;
        }
        // SAFETY: bid < entries and used + len <= buf_size, so the bytes lie inside the
        // allocation; the kernel finished writing them before it posted the completion that
        // named them, and writes only after them until the buffer is handed back by `consumed`.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize + used),
                len,
            )
        })
    }

    /// A chunk of `len` bytes in buffer `bid` was copied out. `more` (IORING_CQE_F_BUF_MORE):
    /// the kernel keeps filling the buffer; otherwise it is done with it, and the buffer goes
    /// back to the ring.
    pub(crate) fn consumed(&mut self, bid: u16, len: usize, more: bool) {
        let Some(used) = self.used.get_mut(bid as usize) else {
            return;
        };
        if more {
            *used = (*used as usize + len).min(self.buf_size as usize) as u32;
        } else {
            *used = 0;
            self.push(bid);
            self.publish();
        }
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: idx < entries: inside the ring allocation. The kernel reads only entries
        // between its head and the published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.ring.as_ptr().add(idx) };
        // SAFETY: bid < entries (callers check), so the address is inside the allocation.
        let addr = unsafe {
            self.bufs
                .as_ptr()
                .add(bid as usize * self.buf_size as usize)
        };
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the first ring entry, inside the allocation, and is
        // only ever accessed atomically by the kernel (a u16 at a 2-byte aligned address).
        let tail = unsafe { &*(BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Unregisters the ring (the kernel forgets it); done before the memory is freed.
    pub(crate) fn unregister(&mut self, ring: &IoUring) {
        if self.registered {
            let _ = ring.submitter().unregister_buf_ring(POOL_GROUP);
            self.registered = false;
        }
    }
}

impl Drop for RecvPool {
    fn drop(&mut self) {
        if self.registered {
            // Dropped without `unregister` (the shard is unwinding): a receive may still be in
            // flight, so the memory is leaked rather than freed under the kernel.
            return;
        }
        // SAFETY: both blocks were allocated in `new` with these layouts, and the kernel no
        // longer knows the ring: `unregister` is called only once no receive is in flight (the
        // shard's loop ends only when every connection is closed).
        unsafe {
            alloc::dealloc(self.ring.as_ptr() as *mut u8, self.ring_layout);
            alloc::dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}
