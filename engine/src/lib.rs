//! octo-engine: the native core of octo.
//!
//! Layers, bottom up (each module imports only the ones below it; see ../shared/ARCHITECTURE.md):
//! - [`proto`]: the sans-IO OCTO and Thrift wire codec (no sockets, no runtime).
//! - [`runtime`]: thread-per-core io_uring shards that own sockets, buffers and timers.
//! - [`conn`]: connections on shards: frames in, answers out, backpressure and idle limits.
//! - [`client`]: the OCTO/Thrift client: multiplexed pools, deadlines, reconnects, heartbeats.
//! - [`server`]: the OCTO/Thrift server: routing, heartbeats, limits, graceful shutdown.
//! - [`api`]: the Rust face: [`Engine`], [`Server`], [`Request`], [`Reply`], [`Responder`], [`Status`].
#![deny(unsafe_op_in_unsafe_fn)]

pub mod api;
pub mod client;
pub mod conn;
pub mod proto;
pub mod runtime;
pub mod server;

pub use api::{Engine, EngineBuilder};
pub use proto::Status;
pub use server::{Handler, Limits, Reply, Request, Responder, Server, ServerStats};
