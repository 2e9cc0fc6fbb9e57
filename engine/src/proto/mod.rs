//! The sans-IO OCTO and Thrift wire codec: bytes in, frames and headers out, and back.
//!
//! No sockets, no runtime, no clocks: every function is pure over buffers, so it can be fuzzed,
//! property-tested and benchmarked alone (the quinn-proto / rustls shape). PROTOCOL.md is the law.
//!
//! The hot path of a server, without heap allocation or reference counting per uncompressed
//! frame: [`FrameDecoder::whole_frames`] (every whole frame received, taken off at once) →
//! [`FrameRef::front`] → [`decode_octo_ref`] → [`HeaderRef::decode`] → [`peek_message`] →
//! handler (e.g. [`echo::check_call`], [`echo::decode_args`]) →
//! [`OctoFrameWriter::begin_response`] into the connection's write buffer. The owned forms
//! ([`FrameDecoder::decode`], [`decode_octo`]) give each frame its own `Bytes` instead.
//!
//! Submodules, one concern each: [`status`] (OCTO status codes), [`error`] (errors and the status
//! they map to), [`thrift`] (TBinaryProtocol values), [`frame`] (stream splitting), [`octo`] (OCTO
//! frame codec), [`header`] (the Header structs), [`message`] (Thrift message envelope), [`echo`]
//! (the reference service).

pub mod echo;
pub mod error;
pub mod frame;
pub mod header;
pub mod message;
pub mod octo;
pub mod status;
pub mod thrift;

pub use error::{ErrorKind, ProtoError};
pub use frame::{
    Frame, FrameDecoder, FrameRef, Framing, ThriftFrameWriter, DEFAULT_MAX_FRAME_SIZE,
    MAX_RESERVE_AHEAD,
};
pub use header::{
    heartbeat_status, CallType, ContextIter, ContextMap, Header, HeaderRef, HeartbeatInfo,
    HeartbeatInfoRef, LoadInfo, LoadInfoRef, MessageType, QpsMap, RequestInfo, RequestInfoRef,
    ResponseInfo, ResponseInfoRef, TraceInfo, TraceInfoRef, MAX_GLOBAL_CONTEXT_BYTES,
    MAX_LOCAL_CONTEXT_BYTES,
};
pub use message::{
    peek_message, write_application_exception, write_message_begin, ApplicationException,
    ApplicationExceptionKind, MessageHeader, ThriftMessageType,
};
pub use octo::{
    decode_octo, decode_octo_ref, encode_octo, Compression, Flags, OctoFrame, OctoFrameRef,
    OctoFrameWriter,
};
pub use status::Status;
