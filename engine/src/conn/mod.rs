//! Connections on shards: what a connection does with the bytes it receives.
//!
//! - [`FramedConn`]: splits the stream into OCTO/Thrift frames for a [`FrameHandler`] (the
//!   server's dispatch, later the client's), with backpressure, idle timeout and graceful close.
//! - [`RawFrameEcho`]: whole frames sent back unchanged (the runtime's own cost, a baseline).

mod framed;
mod raw_echo;

pub use framed::{FrameHandler, FramedConn, FramedLimits};
pub use raw_echo::RawFrameEcho;
