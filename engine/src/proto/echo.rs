//! Calls and replies of the reference service `service Echo { string echo(1: string message) }`.
//!
//! The message is Thrift `string`, which on the wire is bytes: it is passed and returned as
//! `&[u8]` without a UTF-8 check, borrowed from the body.
//!
//! ```
//! use bytes::BytesMut;
//! use octo_engine::proto::echo::{self, EchoReply};
//!
//! let mut call = BytesMut::new();
//! echo::encode_call(&mut call, 5, b"hi");
//! let (seqid, msg) = echo::decode_call(&call).unwrap();
//! let mut reply = BytesMut::new();
//! echo::encode_reply(&mut reply, seqid, msg);
//! assert_eq!(echo::decode_reply(&reply).unwrap(), (5, EchoReply::Success(&b"hi"[..])));
//! ```

use bytes::BufMut;

use super::error::{err, ErrorKind, ProtoError};
use super::message::{peek_message, write_message_begin, ApplicationException, ThriftMessageType};
use super::thrift::{self, field_matches, Reader, TType};

/// The method name.
pub const METHOD: &str = "echo";

/// Writes an `echo` CALL message (header and args struct).
#[inline]
pub fn encode_call<B: BufMut>(out: &mut B, seqid: i32, message: &[u8]) {
    write_message_begin(out, METHOD, ThriftMessageType::Call, seqid);
    thrift::write_field_begin(out, TType::String, 1);
    thrift::write_binary(out, message);
    thrift::write_field_stop(out);
}

/// Reads an `echo` CALL (or ONEWAY) message in one pass, skipping unknown argument fields.
/// Returns the Thrift seqid and the message, borrowed from `body`.
///
/// A different method name is [`ErrorKind::UnknownMethod`] (reported as ServiceException).
#[inline]
pub fn decode_call(body: &[u8]) -> Result<(i32, &[u8]), ProtoError> {
    let m = peek_message(body)?;
    if m.name != METHOD {
        return err(ErrorKind::UnknownMethod);
    }
    if !matches!(m.kind, ThriftMessageType::Call | ThriftMessageType::Oneway) {
        return err(ErrorKind::UnexpectedMessageType(m.kind as u8));
    }
    let mut r = Reader::new(&body[m.payload_offset..]);
    r.enter()?;
    let mut message = None;
    while let Some((ty, id)) = r.read_field_begin()? {
        if id == 1 && field_matches(&mut r, "echo_args", 1, ty, TType::String, true)? {
            message = Some(r.read_binary()?);
        } else if id != 1 {
            r.skip(ty)?;
        }
    }
    match message {
        Some(msg) => Ok((m.seqid, msg)),
        None => err(ErrorKind::MissingRequiredField {
            strukt: "echo_args",
            field: 1,
        }),
    }
}

/// Writes an `echo` REPLY message carrying `message` as the result.
#[inline]
pub fn encode_reply<B: BufMut>(out: &mut B, seqid: i32, message: &[u8]) {
    write_message_begin(out, METHOD, ThriftMessageType::Reply, seqid);
    thrift::write_field_begin(out, TType::String, 0);
    thrift::write_binary(out, message);
    thrift::write_field_stop(out);
}

/// What an `echo` reply carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchoReply<'a> {
    /// The echoed message (result field 0).
    Success(&'a [u8]),
    /// A TApplicationException (an EXCEPTION message).
    Exception(ApplicationException),
}

/// Reads an `echo` REPLY or EXCEPTION message; returns its seqid and outcome.
/// A REPLY without a result is [`ErrorKind::MissingRequiredField`] (Thrift's MISSING_RESULT).
pub fn decode_reply(body: &[u8]) -> Result<(i32, EchoReply<'_>), ProtoError> {
    let m = peek_message(body)?;
    let mut r = Reader::new(&body[m.payload_offset..]);
    match m.kind {
        ThriftMessageType::Reply => {
            r.enter()?;
            let mut success = None;
            while let Some((ty, id)) = r.read_field_begin()? {
                if id == 0 && field_matches(&mut r, "echo_result", 0, ty, TType::String, true)? {
                    success = Some(r.read_binary()?);
                } else if id != 0 {
                    r.skip(ty)?;
                }
            }
            match success {
                Some(s) => Ok((m.seqid, EchoReply::Success(s))),
                None => err(ErrorKind::MissingRequiredField {
                    strukt: "echo_result",
                    field: 0,
                }),
            }
        }
        ThriftMessageType::Exception => Ok((
            m.seqid,
            EchoReply::Exception(ApplicationException::read(&mut r)?),
        )),
        other => err(ErrorKind::UnexpectedMessageType(other as u8)),
    }
}
