//! The codec's error type: what went wrong on the wire, and which OCTO status reports it.

use core::fmt;

use super::Status;

/// What exactly was wrong. Cheap to build and copy: no heap data, only numbers and static names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    // ---- framing (PROTOCOL.md §1, §2) ----
    /// A Thrift-framed length prefix was zero or negative.
    InvalidThriftLength(i32),
    /// A length field announced more than the configured maximum frame size.
    FrameTooLarge {
        /// The announced length (bytes after the length field).
        length: u64,
        /// The configured maximum.
        max: usize,
    },
    /// An OCTO `total_length` below 2, or below 6 when the checksum flag is set.
    OctoTotalLengthTooSmall {
        /// The announced total_length.
        total_length: i32,
        /// The smallest legal value for these flags.
        min: i32,
    },
    /// A stream that started with OCTO frames sent something without the 0xABBA magic,
    /// or [`decode_octo`](super::decode_octo) was given bytes that are not an OCTO frame.
    BadMagic(u16),
    /// The bytes handed to [`decode_octo`](super::decode_octo) are not exactly one frame.
    OctoFrameLengthMismatch {
        /// `8 + total_length`.
        announced: u64,
        /// The bytes actually given.
        actual: usize,
    },
    /// `header_length` was negative (Dorado reads it as a signed i16).
    NegativeHeaderLength(i16),
    /// `header_length` is larger than the (decompressed) header+body.
    HeaderLengthExceedsPayload {
        /// The announced header_length.
        header_length: usize,
        /// The header+body bytes available.
        payload_length: usize,
    },
    /// The Adler-32 trailer does not match the frame.
    ChecksumMismatch {
        /// The checksum carried by the frame.
        carried: u32,
        /// The checksum computed over the frame.
        computed: u32,
    },
    /// Both the gzip (0x40) and Snappy (0x20) flags are set.
    ConflictingCompression,
    /// The body serialization code is not Thrift (1 or 2); 3 is protostuff, which octo does not speak.
    UnsupportedSerialization(u8),
    /// The gzip stream is corrupt or truncated.
    CorruptGzip,
    /// The Snappy block is corrupt or truncated.
    CorruptSnappy,
    /// Decompression would exceed the maximum frame size.
    DecompressedTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// An encoded header is longer than an i16 `header_length` can express.
    HeaderTooLarge(usize),

    // ---- Thrift binary (PROTOCOL.md §3, §4) ----
    /// The input ended in the middle of a value.
    UnexpectedEof,
    /// A string, binary or container length was negative.
    NegativeLength(i32),
    /// A string, binary or container announced more bytes than remain in its buffer.
    LengthOverrun {
        /// The announced length (elements are counted at their smallest wire size).
        length: u64,
        /// The bytes remaining.
        remaining: usize,
    },
    /// A field or element type byte is not a Thrift binary type.
    InvalidType(u8),
    /// Structs and containers nest deeper than [`MAX_DEPTH`](super::thrift::MAX_DEPTH).
    DepthExceeded,
    /// A required field is absent.
    MissingRequiredField {
        /// The struct being decoded.
        strukt: &'static str,
        /// The field id.
        field: i16,
    },
    /// A known required field (or a container element) arrived with a different type.
    WrongFieldType {
        /// The struct being decoded.
        strukt: &'static str,
        /// The field id.
        field: i16,
        /// The expected type byte.
        expected: u8,
        /// The type byte on the wire.
        actual: u8,
    },
    /// A string that must be text (service names, context entries, method names) is not UTF-8.
    InvalidUtf8 {
        /// Which value.
        what: &'static str,
    },
    /// A value is outside its enumeration (e.g. header messageType 7, callType 9, status 12).
    InvalidEnumValue {
        /// Which value.
        what: &'static str,
        /// The value on the wire.
        value: i32,
    },
    /// A context map is over its size limit (512 bytes global, 2 KiB local).
    ContextTooLarge {
        /// Which context.
        what: &'static str,
        /// The sum of key and value lengths.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The Thrift message header's version word is not TBinaryProtocol's.
    InvalidMessageVersion(i32),
    /// The Thrift message type is not CALL, REPLY, EXCEPTION or ONEWAY.
    UnknownMessageType(u8),
    /// The Thrift message is of a kind this decoder does not accept here (e.g. a REPLY given to decode_call).
    UnexpectedMessageType(u8),
    /// The method named in the message is not one this decoder serves.
    UnknownMethod,
}

/// A codec error. `status()` is the OCTO status it is reported as.
///
/// ```
/// use octo_engine::proto::{ErrorKind, ProtoError, Status};
/// let e = ProtoError::new(ErrorKind::CorruptGzip);
/// assert_eq!(e.status(), Status::ProtocolException);
/// assert_eq!(e.to_string(), "corrupt gzip payload");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoError {
    kind: ErrorKind,
}

impl ProtoError {
    /// An error of this kind.
    #[inline]
    pub const fn new(kind: ErrorKind) -> Self {
        ProtoError { kind }
    }

    /// What went wrong.
    #[inline]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The OCTO status this error is reported as: [`Status::ServiceException`] for an unknown
    /// method, [`Status::ProtocolException`] for everything malformed.
    pub const fn status(&self) -> Status {
        match self.kind {
            ErrorKind::UnknownMethod => Status::ServiceException,
            _ => Status::ProtocolException,
        }
    }
}

impl From<ErrorKind> for ProtoError {
    #[inline]
    fn from(kind: ErrorKind) -> Self {
        ProtoError { kind }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self.kind {
            InvalidThriftLength(n) => write!(f, "thrift frame length {n} is not positive"),
            FrameTooLarge { length, max } => {
                write!(f, "frame of {length} bytes exceeds the maximum of {max}")
            }
            OctoTotalLengthTooSmall { total_length, min } => {
                write!(f, "OCTO total_length {total_length} is below {min}")
            }
            BadMagic(m) => write!(f, "expected OCTO magic 0xABBA, found {m:#06x}"),
            OctoFrameLengthMismatch { announced, actual } => write!(
                f,
                "OCTO frame announces {announced} bytes but {actual} were given"
            ),
            NegativeHeaderLength(n) => write!(f, "OCTO header_length {n} is negative"),
            HeaderLengthExceedsPayload {
                header_length,
                payload_length,
            } => write!(
                f,
                "OCTO header_length {header_length} exceeds the {payload_length}-byte header+body"
            ),
            ChecksumMismatch { carried, computed } => write!(
                f,
                "Adler-32 mismatch: frame carries {carried:#010x}, computed {computed:#010x}"
            ),
            ConflictingCompression => f.write_str("both gzip and snappy flags are set"),
            UnsupportedSerialization(c) => {
                write!(f, "body serialization code {c} is not Thrift (1 or 2)")
            }
            CorruptGzip => f.write_str("corrupt gzip payload"),
            CorruptSnappy => f.write_str("corrupt snappy payload"),
            DecompressedTooLarge { max } => {
                write!(f, "decompressed payload exceeds the maximum of {max} bytes")
            }
            HeaderTooLarge(n) => write!(f, "encoded header of {n} bytes exceeds i16 header_length"),
            UnexpectedEof => f.write_str("truncated Thrift value"),
            NegativeLength(n) => write!(f, "negative Thrift length {n}"),
            LengthOverrun { length, remaining } => write!(
                f,
                "Thrift length {length} overruns the {remaining} remaining bytes"
            ),
            InvalidType(t) => write!(f, "invalid Thrift type {t}"),
            DepthExceeded => f.write_str("Thrift nesting too deep"),
            MissingRequiredField { strukt, field } => {
                write!(f, "{strukt}: required field {field} is missing")
            }
            WrongFieldType {
                strukt,
                field,
                expected,
                actual,
            } => write!(
                f,
                "{strukt}: field {field} has type {actual}, expected {expected}"
            ),
            InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            InvalidEnumValue { what, value } => write!(f, "{what} has invalid value {value}"),
            ContextTooLarge { what, bytes, max } => {
                write!(f, "{what} holds {bytes} bytes, more than {max}")
            }
            InvalidMessageVersion(v) => {
                write!(f, "invalid Thrift message header version word {v:#010x}")
            }
            UnknownMessageType(t) => write!(f, "unknown Thrift message type {t}"),
            UnexpectedMessageType(t) => write!(f, "unexpected Thrift message type {t}"),
            UnknownMethod => f.write_str("unknown method"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Shorthand for building an `Err` of a kind.
#[inline]
pub(crate) fn err<T>(kind: ErrorKind) -> Result<T, ProtoError> {
    Err(ProtoError { kind })
}
