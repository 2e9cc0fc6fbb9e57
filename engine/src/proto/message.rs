//! The Thrift message envelope of a body: a peek at its header, and TApplicationException replies.

use bytes::BufMut;

use super::error::{err, ErrorKind, ProtoError};
use super::thrift::{self, Reader, TType};

/// TBinaryProtocol's version word (`VERSION_1`), OR-ed with the message type.
pub const VERSION_1: u32 = 0x8001_0000;
const VERSION_MASK: u32 = 0xffff_0000;

/// The Thrift message type (not to be confused with the OCTO header's [`MessageType`](super::MessageType)).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThriftMessageType {
    /// A request that wants a reply.
    Call = 1,
    /// A normal reply.
    Reply = 2,
    /// A TApplicationException reply.
    Exception = 3,
    /// A one-way request.
    Oneway = 4,
}

impl ThriftMessageType {
    /// The type with this wire value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Call),
            2 => Some(Self::Reply),
            3 => Some(Self::Exception),
            4 => Some(Self::Oneway),
            _ => None,
        }
    }
}

/// A Thrift message header, borrowed from the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader<'a> {
    /// The method name.
    pub name: &'a str,
    /// CALL, REPLY, EXCEPTION or ONEWAY.
    pub kind: ThriftMessageType,
    /// The Thrift seqid (on OCTO frames: the low 32 bits of the 64-bit sequenceId).
    pub seqid: i32,
    /// Where the args/result struct starts in the body.
    pub payload_offset: usize,
}

/// Reads a body's Thrift message header without decoding the arguments.
///
/// Accepts the strict header (`0x8001_00tt`, name, seqid) that every current Thrift writes, and
/// the old non-strict one (name, type byte, seqid) that Apache Thrift still reads by default.
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::{peek_message, write_message_begin, ThriftMessageType};
///
/// let mut body = BytesMut::new();
/// write_message_begin(&mut body, "echo", ThriftMessageType::Call, 7);
/// let m = peek_message(&body).unwrap();
/// assert_eq!((m.name, m.kind, m.seqid, m.payload_offset), ("echo", ThriftMessageType::Call, 7, 16));
/// ```
#[inline]
pub fn peek_message(body: &[u8]) -> Result<MessageHeader<'_>, ProtoError> {
    let mut r = Reader::new(body);
    let word = r.read_i32()?;
    let (name, kind) = if word < 0 {
        if (word as u32) & VERSION_MASK != VERSION_1 {
            return err(ErrorKind::InvalidMessageVersion(word));
        }
        let name = r.read_str("Thrift method name")?;
        (name, word as u8)
    } else {
        // Non-strict: the word is the name's length.
        let len = word as usize;
        if len > r.remaining() {
            return err(ErrorKind::LengthOverrun {
                length: len as u64,
                remaining: r.remaining(),
            });
        }
        let name = match core::str::from_utf8(r.take(len)?) {
            Ok(s) => s,
            Err(_) => {
                return err(ErrorKind::InvalidUtf8 {
                    what: "Thrift method name",
                })
            }
        };
        (name, r.read_i8()? as u8)
    };
    let Some(kind) = ThriftMessageType::from_u8(kind) else {
        return err(ErrorKind::UnknownMessageType(kind));
    };
    let seqid = r.read_i32()?;
    Ok(MessageHeader {
        name,
        kind,
        seqid,
        payload_offset: r.position(),
    })
}

/// Writes a strict TBinaryProtocol message header.
#[inline]
pub fn write_message_begin<B: BufMut>(
    out: &mut B,
    name: &str,
    kind: ThriftMessageType,
    seqid: i32,
) {
    out.put_u32(VERSION_1 | kind as u32);
    thrift::write_binary(out, name.as_bytes());
    out.put_i32(seqid);
}

/// `TApplicationException.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplicationExceptionKind {
    /// 0
    Unknown,
    /// 1
    UnknownMethod,
    /// 2
    InvalidMessageType,
    /// 3
    WrongMethodName,
    /// 4
    BadSequenceId,
    /// 5
    MissingResult,
    /// 6
    InternalError,
    /// 7
    ProtocolError,
    /// 8
    InvalidTransform,
    /// 9
    InvalidProtocol,
    /// 10
    UnsupportedClientType,
    /// Any other value, kept as sent.
    Other(i32),
}

impl ApplicationExceptionKind {
    /// The kind with this wire value.
    pub const fn from_i32(v: i32) -> Self {
        use ApplicationExceptionKind::*;
        match v {
            0 => Unknown,
            1 => UnknownMethod,
            2 => InvalidMessageType,
            3 => WrongMethodName,
            4 => BadSequenceId,
            5 => MissingResult,
            6 => InternalError,
            7 => ProtocolError,
            8 => InvalidTransform,
            9 => InvalidProtocol,
            10 => UnsupportedClientType,
            v => Other(v),
        }
    }

    /// The wire value.
    pub const fn code(self) -> i32 {
        use ApplicationExceptionKind::*;
        match self {
            Unknown => 0,
            UnknownMethod => 1,
            InvalidMessageType => 2,
            WrongMethodName => 3,
            BadSequenceId => 4,
            MissingResult => 5,
            InternalError => 6,
            ProtocolError => 7,
            InvalidTransform => 8,
            InvalidProtocol => 9,
            UnsupportedClientType => 10,
            Other(v) => v,
        }
    }
}

/// A Thrift `TApplicationException` (the payload of an EXCEPTION message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationException {
    /// Field 1: the error text. Decoded lossily: it is diagnostic text, and a reply should not be
    /// lost because its error text is not UTF-8.
    pub message: String,
    /// Field 2: the type.
    pub kind: ApplicationExceptionKind,
}

impl ApplicationException {
    /// Reads the struct at the reader's position (both fields are optional, as in Apache Thrift).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        r.enter()?;
        let mut e = ApplicationException {
            message: String::new(),
            kind: ApplicationExceptionKind::Unknown,
        };
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::String) => {
                    e.message = String::from_utf8_lossy(r.read_binary()?).into_owned()
                }
                (2, TType::I32) => e.kind = ApplicationExceptionKind::from_i32(r.read_i32()?),
                _ => r.skip(ty)?,
            }
        }
        r.leave();
        Ok(e)
    }

    /// Writes the struct (message, then type, then STOP: Apache Thrift's order).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        encode_application_exception(out, self.kind, &self.message)
    }
}

fn encode_application_exception<B: BufMut>(
    out: &mut B,
    kind: ApplicationExceptionKind,
    message: &str,
) {
    thrift::write_field_begin(out, TType::String, 1);
    thrift::write_binary(out, message.as_bytes());
    thrift::write_field_begin(out, TType::I32, 2);
    thrift::write_i32(out, kind.code());
    thrift::write_field_stop(out);
}

/// Writes a whole EXCEPTION message carrying a TApplicationException (a body, ready to frame).
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::{peek_message, thrift::Reader, write_application_exception,
///     ApplicationException, ApplicationExceptionKind, ThriftMessageType};
///
/// let mut body = BytesMut::new();
/// write_application_exception(&mut body, "echo", 9, ApplicationExceptionKind::UnknownMethod, "no such method");
/// let m = peek_message(&body).unwrap();
/// assert_eq!(m.kind, ThriftMessageType::Exception);
/// let e = ApplicationException::read(&mut Reader::new(&body[m.payload_offset..])).unwrap();
/// assert_eq!(e.kind, ApplicationExceptionKind::UnknownMethod);
/// assert_eq!(e.message, "no such method");
/// ```
pub fn write_application_exception<B: BufMut>(
    out: &mut B,
    method: &str,
    seqid: i32,
    kind: ApplicationExceptionKind,
    message: &str,
) {
    write_message_begin(out, method, ThriftMessageType::Exception, seqid);
    encode_application_exception(out, kind, message);
}
