//! The crossing from C into Rust: panics caught, failures turned into a status plus the calling
//! thread's last-error message, and pointer arguments checked before use.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::octo_status;

/// Why a C call failed: the status it returns and the message `octo_last_error` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: octo_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: octo_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(octo_status::InvalidArgument, message)
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error (interior NULs are replaced).
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // At thread exit the slot may be gone already; nobody can read it then anyway.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = c);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// Runs the body of C function `name`: OK, its failure's status, or PANIC if it panicked;
/// every failure leaves its message as the thread's last error.
pub(crate) fn call(name: &str, body: impl FnOnce() -> Outcome) -> octo_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => octo_status::Ok,
        Ok(Err(f)) => {
            set_last_error(&format!("{name}: {}", f.message));
            f.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{name}: panicked: {}",
                panic_message(payload.as_ref())
            ));
            octo_status::Panic
        }
    }
}

/// Runs the body of a C function that returns a plain value, giving `fallback` on a panic.
pub(crate) fn value<T>(name: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(&format!(
                "{name}: panicked: {}",
                panic_message(payload.as_ref())
            ));
            fallback
        }
    }
}

/// `p` as a shared reference, or INVALID_ARGUMENT naming `what` if it is NULL.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` for `'a`, not mutated elsewhere meanwhile.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Outcome<&'a T> {
    // SAFETY: the caller guarantees a non-NULL p points to a live T.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// `p` as an exclusive reference, or INVALID_ARGUMENT naming `what` if it is NULL.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` for `'a`, used by no one else meanwhile.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, what: &str) -> Outcome<&'a mut T> {
    // SAFETY: the caller guarantees a non-NULL p points to a live T it lends us exclusively.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// Checks that an output pointer is not NULL (before any work is done).
pub(crate) fn checked_out<T>(p: *mut T, what: &str) -> Outcome<*mut T> {
    if p.is_null() {
        Err(Failure::invalid(format!("{what} is NULL")))
    } else {
        Ok(p)
    }
}

/// Writes `v` through the output pointer `p` (checked non-NULL by [`checked_out`]).
///
/// # Safety
/// `p` must be valid for a write of `T` (and properly aligned).
pub(crate) unsafe fn write_out<T>(p: *mut T, v: T) {
    // SAFETY: the caller guarantees p is valid for writes; it was checked non-NULL.
    unsafe { p.write(v) }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Outcome<&'a str> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, NUL-terminated and alive, as the caller guarantees.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// A (pointer, length) byte argument; NULL is allowed only with length 0.
///
/// # Safety
/// A non-NULL `p` must point to `len` readable bytes that live for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Outcome<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL with length {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "{what} length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, len readable bytes alive for 'a, as the caller guarantees; len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The calling thread's last error message: set by the most recent octo function that failed
/// on this thread (successful calls leave it unchanged); "" if none failed yet.
///
/// Ownership: the string belongs to octo; it stays valid until the next failing octo call on
/// this thread (or the thread's exit). Copy it to keep it. Any thread; each has its own.
#[no_mangle]
pub extern "C" fn octo_last_error() -> *const c_char {
    value("octo_last_error", c"".as_ptr(), || {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ptr())
            .unwrap_or(c"".as_ptr())
    })
}

/// True on a shard thread (where octo runs callbacks), where blocking calls are refused.
pub(crate) fn in_callback() -> bool {
    ::octo_engine::runtime::on_shard_thread()
}

/// BUSY if this thread is inside a callback, where `what` would block its own shard.
pub(crate) fn not_in_callback(what: &str) -> Outcome {
    if in_callback() {
        Err(Failure::new(
            octo_status::Busy,
            format!("{what} blocks, and this thread is running an octo callback (never block inside a callback)"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: octo_last_error returns a valid NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(octo_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_the_panic_status_with_its_message() {
        let status = call("octo_test_fn", || panic!("boom {}", 42));
        assert_eq!(status, octo_status::Panic);
        assert_eq!(last_error(), "octo_test_fn: panicked: boom 42");
    }

    #[test]
    fn a_panic_in_a_value_function_gives_the_fallback() {
        assert_eq!(value("octo_test_len", 7usize, || panic!("no")), 7);
        assert_eq!(last_error(), "octo_test_len: panicked: no");
    }

    #[test]
    fn a_failure_returns_its_status_and_message() {
        let status = call("octo_x", || Err(Failure::new(octo_status::Closed, "gone")));
        assert_eq!(status, octo_status::Closed);
        assert_eq!(last_error(), "octo_x: gone");
        assert_eq!(call("octo_y", || Ok(())), octo_status::Ok);
        assert_eq!(
            last_error(),
            "octo_x: gone",
            "success leaves the last error alone"
        );
    }

    #[test]
    fn messages_with_nul_bytes_are_kept_readable() {
        call("octo_z", || Err(Failure::invalid("a\0b")));
        assert_eq!(last_error(), "octo_z: a b");
    }
}
