//! Connections on shards: what a connection does with the bytes it receives.
//!
//! - [`RawFrameEcho`]: whole frames sent back unchanged (the runtime's own cost, a baseline).

mod raw_echo;

pub use raw_echo::RawFrameEcho;
