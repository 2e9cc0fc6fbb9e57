//! `octo_buf`: engine-owned bytes that cross the boundary without copies.

use bytes::{Bytes, BytesMut};

use crate::boundary::{arg, arg_mut, bytes, call, checked_out, value, write_out, Failure, Outcome};
use crate::status::octo_status;

/// The largest buffer octo makes (a frame's length is an i32 on the wire).
pub const OCTO_BUF_MAX_CAPACITY: usize = i32::MAX as usize;

/// A byte buffer owned by octo: either writable (made by `octo_buf_new`, not shared yet), or a
/// read-only view of reference-counted bytes (a retained request body, a response, or any
/// buffer after `octo_buf_clone`). Views share memory: cloning or retaining never copies.
///
/// Threads: a handle may move between threads, but one handle must not be used by two threads
/// at once; clones are independent handles and may be used concurrently.
#[allow(non_camel_case_types)]
pub struct octo_buf {
    state: BufState,
}

enum BufState {
    /// Writable; bytes `[0, init)` of the allocation are initialized (`init >= len`).
    Writable { bytes: BytesMut, init: usize },
    /// Shared, read-only.
    Shared(Bytes),
}

impl octo_buf {
    pub(crate) fn shared(bytes: Bytes) -> octo_buf {
        octo_buf {
            state: BufState::Shared(bytes),
        }
    }

    pub(crate) fn into_raw(self) -> *mut octo_buf {
        Box::into_raw(Box::new(self))
    }

    /// The contents, frozen (no copy).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.state {
            BufState::Writable { bytes, .. } => bytes.freeze(),
            BufState::Shared(b) => b,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.state {
            BufState::Writable { bytes, .. } => bytes,
            BufState::Shared(b) => b,
        }
    }

    fn writable(&mut self, what: &str) -> Outcome<(&mut BytesMut, &mut usize)> {
        match &mut self.state {
            BufState::Writable { bytes, init } => Ok((bytes, init)),
            BufState::Shared(_) => Err(Failure::new(
                octo_status::Busy,
                format!("{what}: the buffer is shared (a clone or a retained body) and read-only"),
            )),
        }
    }
}

/// Takes back ownership of a buffer handed over by C (for functions that consume one).
///
/// # Safety
/// `buf` must be NULL or a live handle from this library that the caller gives up.
pub(crate) unsafe fn take(buf: *mut octo_buf) -> Option<octo_buf> {
    // SAFETY: the caller hands over a live handle made by Box::into_raw in this module.
    (!buf.is_null()).then(|| *unsafe { Box::from_raw(buf) })
}

/// Makes an empty writable buffer with room for at least `capacity` bytes.
///
/// Fill it with `octo_buf_write`, or write into the memory `octo_buf_data_mut` gives and then
/// `octo_buf_set_len`. Ownership: `*out` belongs to the caller until it is freed with
/// `octo_buf_free` or handed to a function that consumes it (e.g. `octo_responder_ok_buf`).
/// Any thread. INVALID_ARGUMENT if `out` is NULL or `capacity` exceeds 2^31 - 1.
#[no_mangle]
pub extern "C" fn octo_buf_new(capacity: usize, out: *mut *mut octo_buf) -> octo_status {
    call("octo_buf_new", || {
        let out = checked_out(out, "out")?;
        if capacity > OCTO_BUF_MAX_CAPACITY {
            return Err(Failure::invalid(format!(
                "capacity {capacity} exceeds {OCTO_BUF_MAX_CAPACITY}"
            )));
        }
        let buf = octo_buf {
            state: BufState::Writable {
                bytes: BytesMut::with_capacity(capacity),
                init: 0,
            },
        };
        // SAFETY: out is non-NULL and, per the contract, valid for a write.
        unsafe { write_out(out, buf.into_raw()) };
        Ok(())
    })
}

/// Gives the writable memory of `buf`: `*out_data` points at its first byte and
/// `*out_capacity` bytes may be written there (the current contents are the first
/// `octo_buf_len` of them). Then call `octo_buf_set_len` to say how many are valid.
///
/// Ownership: the memory belongs to `buf`; the pointer is valid until the next call that
/// changes `buf` (write, set_len, clone, free, or handing it over). Threads: the thread using
/// `buf`. BUSY if `buf` is shared (read-only).
#[no_mangle]
pub extern "C" fn octo_buf_data_mut(
    buf: *mut octo_buf,
    out_data: *mut *mut u8,
    out_capacity: *mut usize,
) -> octo_status {
    call("octo_buf_data_mut", || {
        // SAFETY: a non-NULL buf is a live handle lent to us for this call.
        let buf = unsafe { arg_mut(buf, "buf") }?;
        let (out_data, out_capacity) = (
            checked_out(out_data, "out_data")?,
            checked_out(out_capacity, "out_capacity")?,
        );
        let (bytes, init) = buf.writable("octo_buf_data_mut")?;
        let capacity = bytes.capacity();
        if *init < capacity {
            // Give C only initialized memory, so whatever it claims with set_len is defined.
            let len = bytes.len();
            let spare = bytes.spare_capacity_mut();
            let from = init.saturating_sub(len);
            for b in &mut spare[from..] {
                b.write(0);
            }
            *init = capacity;
        }
        let ptr = bytes.as_mut_ptr();
        // SAFETY: both outputs are non-NULL and valid for writes per the contract.
        unsafe {
            write_out(out_data, ptr);
            write_out(out_capacity, capacity);
        }
        Ok(())
    })
}

/// Sets how many bytes of `buf` are valid, after writing them through `octo_buf_data_mut`.
/// INVALID_ARGUMENT if `len` exceeds the capacity `octo_buf_data_mut` reported; BUSY if `buf`
/// is shared. Threads: the thread using `buf`.
#[no_mangle]
pub extern "C" fn octo_buf_set_len(buf: *mut octo_buf, len: usize) -> octo_status {
    call("octo_buf_set_len", || {
        // SAFETY: a non-NULL buf is a live handle lent to us for this call.
        let buf = unsafe { arg_mut(buf, "buf") }?;
        let (bytes, init) = buf.writable("octo_buf_set_len")?;
        if len > *init {
            return Err(Failure::invalid(format!(
                "length {len} exceeds the {} bytes octo_buf_data_mut made writable",
                *init
            )));
        }
        // SAFETY: len <= init <= capacity, and bytes [0, init) are initialized.
        unsafe { bytes.set_len(len) };
        Ok(())
    })
}

/// Appends `len` bytes from `data` to `buf`, growing it if needed (a copy of `data`; `data`
/// stays the caller's). INVALID_ARGUMENT if `data` is NULL with `len > 0` or the result would
/// exceed 2^31 - 1 bytes; BUSY if `buf` is shared. Threads: the thread using `buf`.
#[no_mangle]
pub extern "C" fn octo_buf_write(buf: *mut octo_buf, data: *const u8, len: usize) -> octo_status {
    call("octo_buf_write", || {
        // SAFETY: a non-NULL buf is a live handle lent to us for this call.
        let buf = unsafe { arg_mut(buf, "buf") }?;
        // SAFETY: data points to len readable bytes (or len is 0), per the contract.
        let data = unsafe { bytes(data, len, "data") }?;
        let (bytes, init) = buf.writable("octo_buf_write")?;
        if bytes.len().saturating_add(data.len()) > OCTO_BUF_MAX_CAPACITY {
            return Err(Failure::invalid(format!(
                "the buffer would exceed {OCTO_BUF_MAX_CAPACITY} bytes"
            )));
        }
        let before = bytes.as_ptr();
        bytes.extend_from_slice(data);
        *init = if bytes.as_ptr() == before {
            (*init).max(bytes.len())
        } else {
            bytes.len()
        };
        Ok(())
    })
}

/// Gives the valid bytes of `buf`: `*out_data` (NULL when empty) and `*out_len`.
///
/// Ownership: the memory belongs to `buf` and stays valid, unchanged, until `buf` is changed,
/// freed or handed over (for a shared buffer: until this handle is freed). Threads: the thread
/// using `buf`.
#[no_mangle]
pub extern "C" fn octo_buf_data(
    buf: *const octo_buf,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> octo_status {
    call("octo_buf_data", || {
        // SAFETY: a non-NULL buf is a live handle lent to us for this call.
        let buf = unsafe { arg(buf, "buf") }?;
        let (out_data, out_len) = (
            checked_out(out_data, "out_data")?,
            checked_out(out_len, "out_len")?,
        );
        let s = buf.as_slice();
        let ptr = if s.is_empty() {
            std::ptr::null()
        } else {
            s.as_ptr()
        };
        // SAFETY: both outputs are non-NULL and valid for writes per the contract.
        unsafe {
            write_out(out_data, ptr);
            write_out(out_len, s.len());
        }
        Ok(())
    })
}

/// The number of valid bytes in `buf` (0 if `buf` is NULL). Threads: the thread using `buf`.
#[no_mangle]
pub extern "C" fn octo_buf_len(buf: *const octo_buf) -> usize {
    // SAFETY: a non-NULL buf is a live handle lent to us for this call.
    value("octo_buf_len", 0, || {
        unsafe { buf.as_ref() }.map_or(0, |b| b.as_slice().len())
    })
}

/// Makes `*out` a second handle on the same bytes, without copying them. From then on both
/// handles are read-only (a writable buffer is frozen by its first clone). Each handle is freed
/// on its own with `octo_buf_free`; the memory goes when the last one does. Threads: the thread
/// using `buf`; the clone may then move to another thread.
#[no_mangle]
pub extern "C" fn octo_buf_clone(buf: *mut octo_buf, out: *mut *mut octo_buf) -> octo_status {
    call("octo_buf_clone", || {
        // SAFETY: a non-NULL buf is a live handle lent to us for this call.
        let buf = unsafe { arg_mut(buf, "buf") }?;
        let out = checked_out(out, "out")?;
        let state = std::mem::replace(&mut buf.state, BufState::Shared(Bytes::new()));
        let shared = match state {
            BufState::Writable { bytes, .. } => bytes.freeze(),
            BufState::Shared(b) => b,
        };
        buf.state = BufState::Shared(shared.clone());
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, octo_buf::shared(shared).into_raw()) };
        Ok(())
    })
}

/// Frees a buffer handle (NULL is ignored). The bytes go when their last handle does. Never
/// free a buffer that was handed over to a consuming function. Any thread.
#[no_mangle]
pub extern "C" fn octo_buf_free(buf: *mut octo_buf) {
    // SAFETY: buf is NULL or a live handle the caller gives up.
    value("octo_buf_free", (), || drop(unsafe { take(buf) }))
}
