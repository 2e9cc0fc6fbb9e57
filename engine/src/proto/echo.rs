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
use super::message::{
    peek_message, write_message_begin, ApplicationException, ThriftMessageType, VERSION_1,
};
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
    check_call(m.name, m.kind)?;
    Ok((m.seqid, decode_args(&body[m.payload_offset..])?))
}

/// The checks [`decode_call`] makes of a message header already read: the method is `echo`,
/// the message a CALL or ONEWAY.
#[inline]
pub fn check_call(method: &str, kind: ThriftMessageType) -> Result<(), ProtoError> {
    if method != METHOD {
        return err(ErrorKind::UnknownMethod);
    }
    if !matches!(kind, ThriftMessageType::Call | ThriftMessageType::Oneway) {
        return err(ErrorKind::UnexpectedMessageType(kind as u8));
    }
    Ok(())
}

/// Reads `echo_args` (the body after the message header), skipping unknown fields; returns the
/// message, borrowed.
#[inline]
pub fn decode_args(args: &[u8]) -> Result<&[u8], ProtoError> {
    // The shape every caller sends: field 1 (string), then STOP.
    if let Some((head, rest)) = args.split_first_chunk::<7>() {
        if head[..3] == [TType::String as u8, 0, 1] {
            let n = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            if rest.get(n) == Some(&thrift::STOP) {
                return Ok(&rest[..n]);
            }
        }
    }
    let mut r = Reader::new(args);
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
        Some(msg) => Ok(msg),
        None => err(ErrorKind::MissingRequiredField {
            strukt: "echo_args",
            field: 1,
        }),
    }
}

/// The length of the REPLY message [`encode_reply`] writes for a message of `message_len` bytes.
#[inline]
pub const fn reply_len(message_len: usize) -> usize {
    REPLY_HEAD + message_len + 1
}

/// The message header, the result's field header and its length.
const REPLY_HEAD: usize = 23;

/// Writes an `echo` REPLY message carrying `message` as the result.
#[inline]
pub fn encode_reply<B: BufMut>(out: &mut B, seqid: i32, message: &[u8]) {
    // The message header, the result's field header and length at once.
    let mut h = [0u8; REPLY_HEAD];
    h[..4].copy_from_slice(&(VERSION_1 | ThriftMessageType::Reply as u32).to_be_bytes());
    h[4..8].copy_from_slice(&(METHOD.len() as i32).to_be_bytes());
    h[8..12].copy_from_slice(METHOD.as_bytes());
    h[12..16].copy_from_slice(&seqid.to_be_bytes());
    h[16..19].copy_from_slice(&[TType::String as u8, 0, 0]);
    h[19..23].copy_from_slice(&len_i32(message.len()).to_be_bytes());
    out.put_slice(&h);
    out.put_slice(message);
    out.put_u8(thrift::STOP);
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("Thrift lengths are limited to i32::MAX")
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
