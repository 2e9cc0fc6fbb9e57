//! octo's C ABI (libocto.so, libocto.a, include/octo.h): opaque handles, status codes and
//! callbacks over `octo-engine`, in the rustls-ffi / wasmtime manner.
//!
//! Every `extern "C"` function here checks its pointers, catches panics (they become
//! `OCTO_STATUS_PANIC` and a last-error message), returns an `octo_status` when it can fail,
//! writes its outputs only on success, and says in its doc comment (copied into octo.h by
//! cbindgen) who owns what and on which threads it may be called.
//!
//! Modules, one concern each: [`status`] (the status enum), [`boundary`] (panic catching,
//! last error, argument checks), [`buf`] (engine buffers), [`client`] (calls to servers), [`engine`] (shards and their
//! configuration), [`server`] (servers and services), [`request`] (a call as a C handler sees
//! it), [`responder`] (answering a call exactly once).
#![deny(unsafe_op_in_unsafe_fn)]
// The extern "C" functions are called from C, where `unsafe` means nothing: each one checks
// what it can (NULL, lengths, lent requests) and states the rest of its contract in its doc.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod boundary;
pub mod buf;
pub mod client;
pub mod engine;
pub mod request;
pub mod responder;
pub mod server;
pub mod status;

pub use buf::octo_buf;
pub use engine::{octo_engine, octo_engine_config};
pub use status::octo_status;

/// The version of the library, "MAJOR.MINOR.PATCH", as a static NUL-terminated string (never
/// freed). Compare it with OCTO_VERSION_STRING to detect a header/library mismatch. Any thread.
#[no_mangle]
pub extern "C" fn octo_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
