//! octo-engine: the native core of octo.
//!
//! Layers, bottom up (each module imports only the ones below it; see ../shared/ARCHITECTURE.md):
//! - [`proto`]: the sans-IO OCTO and Thrift wire codec (no sockets, no runtime).
//! - [`runtime`]: thread-per-core io_uring shards that own sockets, buffers and timers.
//! - [`conn`]: connections on shards: frames in, answers out, backpressure and idle limits.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod conn;
pub mod proto;
pub mod runtime;
