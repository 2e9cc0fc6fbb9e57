//! The OCTO frame codec (PROTOCOL.md §2): prefix, flags, checksum and compression of header+body.
//!
//! Decoding an uncompressed frame only slices it: the header and body are views of the frame's
//! bytes. Compressed payloads are inflated into one new buffer, never past the maximum frame size
//! (gzip is read with a cap; Snappy's declared length is checked before anything is allocated).

use std::io::{ErrorKind as IoErrorKind, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{err, ErrorKind, ProtoError};
use super::header::{Header, HeaderRef, MessageType};
use super::status::Status;
use super::thrift::TType;

/// The OCTO magic, the first two bytes of every OCTO frame.
pub const MAGIC: u16 = 0xABBA;
/// Magic, version, protocol byte, total_length, header_length.
pub const PREFIX_LEN: usize = 10;
/// Protocol-byte bit: a 4-byte Adler-32 checksum follows the payload.
pub const CHECKSUM_FLAG: u8 = 0x80;
/// Protocol-byte bit: header+body are gzip-compressed.
pub const GZIP_FLAG: u8 = 0x40;
/// Protocol-byte bit: header+body are raw-Snappy-compressed.
pub const SNAPPY_FLAG: u8 = 0x20;
const SERIALIZATION_MASK: u8 = 0x03;
/// The length of a response header holding only messageType and a ResponseInfo without message.
const RESPONSE_HEADER_LEN: usize = 24;

/// How header+body are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// One gzip member (deflate, as `GZIPOutputStream`).
    Gzip,
    /// Raw Snappy block format (as snappy-java's `Snappy.compress`).
    Snappy,
}

/// The protocol byte (offset 3) of an OCTO frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flags {
    /// An Adler-32 checksum trails the frame.
    pub checksum: bool,
    /// The compression of header+body.
    pub compression: Compression,
    /// The body serialization code (low 2 bits): 1 or 2 Thrift, 3 protostuff.
    pub serialization: u8,
}

impl Default for Flags {
    /// What Dorado sends by default: Thrift (1), no checksum, no compression (byte 0x01).
    fn default() -> Self {
        Flags {
            checksum: false,
            compression: Compression::None,
            serialization: 1,
        }
    }
}

impl Flags {
    /// Parses a protocol byte. Both compression bits at once is an error; other unused bits are ignored.
    ///
    /// ```
    /// use octo_engine::proto::{Compression, Flags};
    /// let f = Flags::from_byte(0xC1).unwrap();
    /// assert!(f.checksum);
    /// assert_eq!(f.compression, Compression::Gzip);
    /// assert_eq!(f.to_byte(), 0xC1);
    /// ```
    pub const fn from_byte(b: u8) -> Result<Flags, ProtoError> {
        let compression = match (b & GZIP_FLAG != 0, b & SNAPPY_FLAG != 0) {
            (false, false) => Compression::None,
            (true, false) => Compression::Gzip,
            (false, true) => Compression::Snappy,
            (true, true) => return Err(ProtoError::new(ErrorKind::ConflictingCompression)),
        };
        Ok(Flags {
            checksum: b & CHECKSUM_FLAG != 0,
            compression,
            serialization: b & SERIALIZATION_MASK,
        })
    }

    /// The protocol byte.
    pub const fn to_byte(self) -> u8 {
        let c = match self.compression {
            Compression::None => 0,
            Compression::Gzip => GZIP_FLAG,
            Compression::Snappy => SNAPPY_FLAG,
        };
        (if self.checksum { CHECKSUM_FLAG } else { 0 })
            | c
            | (self.serialization & SERIALIZATION_MASK)
    }

    /// Whether the body is Thrift (serialization 1 or 2).
    pub const fn is_thrift(self) -> bool {
        matches!(self.serialization, 1 | 2)
    }
}

/// A decoded OCTO frame: header and body bytes, after checksum and decompression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OctoFrame {
    /// Byte 2 (0 today; not interpreted).
    pub version: u8,
    /// Byte 3.
    pub flags: Flags,
    /// The Thrift-encoded [`Header`] (a slice of the frame when uncompressed).
    pub header: Bytes,
    /// The body: a Thrift message, or empty on heartbeats.
    pub body: Bytes,
}

impl OctoFrame {
    /// Decodes the header, borrowing from this frame.
    #[inline]
    pub fn header_ref(&self) -> Result<HeaderRef<'_>, ProtoError> {
        HeaderRef::decode(&self.header)
    }

    /// The body, if its serialization is Thrift; protostuff (3) and 0 are
    /// [`ErrorKind::UnsupportedSerialization`] (answer with ProtocolException: the header is still
    /// readable, so the reply can carry the sequence id).
    #[inline]
    pub fn thrift_body(&self) -> Result<&Bytes, ProtoError> {
        if self.flags.is_thrift() {
            Ok(&self.body)
        } else {
            err(ErrorKind::UnsupportedSerialization(
                self.flags.serialization,
            ))
        }
    }
}

/// Decodes one whole OCTO frame (as returned by [`FrameDecoder`](super::FrameDecoder)): checks the
/// magic, lengths and checksum, decompresses (bounded by `max_frame_size`) and splits header from body.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use octo_engine::proto::*;
///
/// let header = Header { message_type: MessageType::NormalHeartbeat, ..Header::default() };
/// let flags = Flags { checksum: true, compression: Compression::Snappy, serialization: 1 };
/// let mut out = BytesMut::new();
/// encode_octo(&mut out, flags, &header, b"").unwrap();
/// let f = decode_octo(out.freeze(), DEFAULT_MAX_FRAME_SIZE).unwrap();
/// assert_eq!(f.flags, flags);
/// assert_eq!(Header::decode(&f.header).unwrap(), header);
/// assert!(f.body.is_empty());
/// ```
pub fn decode_octo(frame: Bytes, max_frame_size: usize) -> Result<OctoFrame, ProtoError> {
    let p = check_octo(&frame, max_frame_size)?;
    let (payload, start, end) = match p.flags.compression {
        // Uncompressed: header and body are views of the frame itself.
        Compression::None => (frame, PREFIX_LEN, p.end),
        _ => {
            let payload = inflate(&frame[PREFIX_LEN..p.end], p.flags, max_frame_size)?;
            let n = payload.len();
            (payload, 0, n)
        }
    };
    let split = split_payload(p.header_length, start, end)?;
    Ok(OctoFrame {
        version: p.version,
        flags: p.flags,
        header: payload.slice(start..split),
        body: payload.slice(split..end),
    })
}

/// A decoded OCTO frame borrowed from the bytes it was decoded from (see [`decode_octo_ref`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OctoFrameRef<'a> {
    /// Byte 2 (0 today; not interpreted).
    pub version: u8,
    /// Byte 3.
    pub flags: Flags,
    payload: Payload<'a>,
    split: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Inflated(Bytes),
}

impl OctoFrameRef<'_> {
    #[inline]
    fn payload(&self) -> &[u8] {
        match &self.payload {
            Payload::Borrowed(p) => p,
            Payload::Inflated(p) => p,
        }
    }

    /// The Thrift-encoded [`Header`].
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.payload()[..self.split]
    }

    /// The body: a Thrift message, or empty on heartbeats.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.payload()[self.split..]
    }

    /// Decodes the header, borrowing from this frame.
    #[inline]
    pub fn header_ref(&self) -> Result<HeaderRef<'_>, ProtoError> {
        HeaderRef::decode(self.header())
    }

    /// The body if its serialization is Thrift (as [`OctoFrame::thrift_body`]).
    #[inline]
    pub fn thrift_body(&self) -> Result<&[u8], ProtoError> {
        if self.flags.is_thrift() {
            Ok(self.body())
        } else {
            err(ErrorKind::UnsupportedSerialization(
                self.flags.serialization,
            ))
        }
    }

    /// The decompressed header+body of a compressed frame (`None`: header and body are slices of
    /// the frame given to [`decode_octo_ref`]). Keep a part zero-copy with
    /// [`Bytes::slice_ref`] on this or on the frame's own `Bytes`.
    #[inline]
    pub fn inflated(&self) -> Option<&Bytes> {
        match &self.payload {
            Payload::Borrowed(_) => None,
            Payload::Inflated(p) => Some(p),
        }
    }
}

/// [`decode_octo`] on borrowed bytes: the same checks and errors, but an uncompressed frame's
/// header and body stay slices of `frame` (no reference count is taken: the server's per-request
/// path). A compressed frame is inflated into one new buffer, bounded by `max_frame_size`.
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::*;
///
/// let header = Header { message_type: MessageType::NormalHeartbeat, ..Header::default() };
/// let mut out = BytesMut::new();
/// encode_octo(&mut out, Flags::default(), &header, b"body").unwrap();
/// let f = decode_octo_ref(&out, DEFAULT_MAX_FRAME_SIZE).unwrap();
/// assert_eq!(f.header_ref().unwrap().message_type, MessageType::NormalHeartbeat);
/// assert_eq!(f.body(), b"body");
/// assert!(f.inflated().is_none());
/// ```
#[inline]
pub fn decode_octo_ref(
    frame: &[u8],
    max_frame_size: usize,
) -> Result<OctoFrameRef<'_>, ProtoError> {
    let p = check_octo(frame, max_frame_size)?;
    let payload = match p.flags.compression {
        Compression::None => Payload::Borrowed(&frame[PREFIX_LEN..p.end]),
        _ => Payload::Inflated(inflate(&frame[PREFIX_LEN..p.end], p.flags, max_frame_size)?),
    };
    let len = match &payload {
        Payload::Borrowed(b) => b.len(),
        Payload::Inflated(b) => b.len(),
    };
    let split = split_payload(p.header_length, 0, len)?;
    Ok(OctoFrameRef {
        version: p.version,
        flags: p.flags,
        payload,
        split,
    })
}

/// What [`check_octo`] read from a frame's prefix.
struct Prefix {
    version: u8,
    flags: Flags,
    header_length: usize,
    /// Where the (possibly compressed) payload ends: before the checksum.
    end: usize,
}

/// Checks one whole OCTO frame's prefix, lengths and checksum.
#[inline]
fn check_octo(frame: &[u8], max_frame_size: usize) -> Result<Prefix, ProtoError> {
    let Some(prefix) = frame.first_chunk::<PREFIX_LEN>() else {
        return err(ErrorKind::UnexpectedEof);
    };
    let magic = u16::from_be_bytes([prefix[0], prefix[1]]);
    if magic != MAGIC {
        return err(ErrorKind::BadMagic(magic));
    }
    let version = prefix[2];
    let flags = Flags::from_byte(prefix[3])?;
    let total = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let header_length = i16::from_be_bytes([prefix[8], prefix[9]]);
    let trailer = if flags.checksum { 4 } else { 0 };
    let min = 2 + trailer as i32;
    if total < min {
        return err(ErrorKind::OctoTotalLengthTooSmall {
            total_length: total,
            min,
        });
    }
    if total as usize > max_frame_size {
        return err(ErrorKind::FrameTooLarge {
            length: total as u64,
            max: max_frame_size,
        });
    }
    if 8 + total as usize != frame.len() {
        return err(ErrorKind::OctoFrameLengthMismatch {
            announced: 8 + total as u64,
            actual: frame.len(),
        });
    }
    let end = frame.len() - trailer;
    if flags.checksum {
        let carried =
            u32::from_be_bytes([frame[end], frame[end + 1], frame[end + 2], frame[end + 3]]);
        let computed = adler2::adler32_slice(&frame[..end]);
        if carried != computed {
            return err(ErrorKind::ChecksumMismatch { carried, computed });
        }
    }
    if header_length < 0 {
        return err(ErrorKind::NegativeHeaderLength(header_length));
    }
    Ok(Prefix {
        version,
        flags,
        header_length: header_length as usize,
        end,
    })
}

/// Where the header ends in a payload spanning `start..end`.
#[inline]
fn split_payload(header_length: usize, start: usize, end: usize) -> Result<usize, ProtoError> {
    if header_length > end - start {
        return err(ErrorKind::HeaderLengthExceedsPayload {
            header_length,
            payload_length: end - start,
        });
    }
    Ok(start + header_length)
}

/// Decompresses a compressed payload (never past `max`).
#[cold]
fn inflate(payload: &[u8], flags: Flags, max: usize) -> Result<Bytes, ProtoError> {
    let p = match flags.compression {
        Compression::None => payload.to_vec(),
        Compression::Gzip => gunzip(payload, max)?,
        Compression::Snappy => unsnappy(payload, max)?,
    };
    Ok(Bytes::from(p))
}

/// Inflates one or more gzip members, never holding more than `max` bytes of output.
fn gunzip(input: &[u8], max: usize) -> Result<Vec<u8>, ProtoError> {
    let mut d = flate2::read::MultiGzDecoder::new(input);
    let mut out = vec![
        0u8;
        input
            .len()
            .saturating_mul(4)
            .clamp(64, max.max(64))
            .min(max)
    ];
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if out.len() >= max {
                // Full: one more byte of output means the limit is exceeded.
                let mut probe = [0u8; 1];
                return match read_some(&mut d, &mut probe)? {
                    0 => {
                        out.truncate(filled);
                        Ok(out)
                    }
                    _ => err(ErrorKind::DecompressedTooLarge { max }),
                };
            }
            let grown = out.len().saturating_mul(2).min(max);
            out.reserve_exact(grown - out.len()); // never past `max`, unlike amortized growth
            out.resize(grown, 0);
        }
        match read_some(&mut d, &mut out[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    out.truncate(filled);
    Ok(out)
}

fn read_some(d: &mut impl Read, buf: &mut [u8]) -> Result<usize, ProtoError> {
    loop {
        match d.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
            Err(_) => return err(ErrorKind::CorruptGzip),
        }
    }
}

/// Decompresses a raw Snappy block after checking its declared length against `max`.
fn unsnappy(input: &[u8], max: usize) -> Result<Vec<u8>, ProtoError> {
    let n =
        snap::raw::decompress_len(input).map_err(|_| ProtoError::new(ErrorKind::CorruptSnappy))?;
    if n > max {
        return err(ErrorKind::DecompressedTooLarge { max });
    }
    let mut out = vec![0u8; n];
    match snap::raw::Decoder::new().decompress(input, &mut out) {
        Ok(written) if written == n => Ok(out),
        _ => err(ErrorKind::CorruptSnappy),
    }
}

/// Builds an OCTO frame in place at the end of a write buffer.
///
/// `begin` writes the 10-byte prefix; the caller appends the header (through [`buf`](Self::buf)),
/// calls [`end_header`](Self::end_header), appends the body, and [`finish`](Self::finish) patches
/// the lengths, compresses header+body if flagged (through one scratch buffer the size of the
/// payload) and appends the checksum. Uncompressed frames are written with no intermediate copy.
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::*;
///
/// let mut out = BytesMut::with_capacity(256);
/// let mut w = OctoFrameWriter::begin(&mut out, 0, Flags::default());
/// Header {
///     response_info: Some(ResponseInfo { sequence_id: 1, status: Status::Success, message: None }),
///     ..Header::default()
/// }
/// .encode(w.buf());
/// w.end_header();
/// echo::encode_reply(w.buf(), 1, b"hi");
/// let len = w.finish().unwrap();
/// assert_eq!(len, out.len());
/// let f = decode_octo(out.freeze(), DEFAULT_MAX_FRAME_SIZE).unwrap();
/// assert_eq!(echo::decode_reply(&f.body).unwrap().1, echo::EchoReply::Success(b"hi"));
/// ```
pub struct OctoFrameWriter<'a> {
    out: &'a mut BytesMut,
    start: usize,
    flags: Flags,
    header_end: Option<usize>,
}

impl<'a> OctoFrameWriter<'a> {
    /// Starts a frame at the end of `out`. The version byte is written as given; the protocol byte
    /// is `flags.to_byte()`.
    #[inline]
    pub fn begin(out: &'a mut BytesMut, version: u8, flags: Flags) -> Self {
        let start = out.len();
        out.reserve(PREFIX_LEN);
        out.put_u16(MAGIC);
        out.put_u8(version);
        out.put_u8(flags.to_byte());
        out.put_i32(0);
        out.put_i16(0);
        OctoFrameWriter {
            out,
            start,
            flags,
            header_end: None,
        }
    }

    /// Starts a response frame whose header is only `messageType` Normal and a `ResponseInfo`
    /// with `sequence_id` and `status` (no message): the prefix and the header are written at
    /// once, the same bytes as [`Header::encode`] of that header followed by
    /// [`end_header`](Self::end_header). Append the body, then [`finish`](Self::finish).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use octo_engine::proto::*;
    ///
    /// let mut fast = BytesMut::new();
    /// let w = OctoFrameWriter::begin_response(&mut fast, 0, Flags::default(), 7, Status::Success);
    /// w.finish().unwrap();
    /// let header = Header {
    ///     response_info: Some(ResponseInfo { sequence_id: 7, status: Status::Success, message: None }),
    ///     ..Header::default()
    /// };
    /// let mut general = BytesMut::new();
    /// encode_octo(&mut general, Flags::default(), &header, b"").unwrap();
    /// assert_eq!(fast, general);
    /// ```
    #[inline]
    pub fn begin_response(
        out: &'a mut BytesMut,
        version: u8,
        flags: Flags,
        sequence_id: i64,
        status: Status,
    ) -> Self {
        const HEADER_LEN: usize = RESPONSE_HEADER_LEN;
        let start = out.len();
        let mut h = [0u8; PREFIX_LEN + HEADER_LEN];
        h[..2].copy_from_slice(&MAGIC.to_be_bytes());
        h[2] = version;
        h[3] = flags.to_byte();
        // total_length (4..8) is patched by finish(); header_length is known now.
        h[8..10].copy_from_slice(&(HEADER_LEN as i16).to_be_bytes());
        // Header.messageType (field 1, byte) = Normal
        h[10..14].copy_from_slice(&[TType::Byte as u8, 0, 1, MessageType::Normal as u8]);
        // Header.responseInfo (field 3, struct)
        h[14..17].copy_from_slice(&[TType::Struct as u8, 0, 3]);
        // ResponseInfo.sequenceId (field 1, i64)
        h[17..20].copy_from_slice(&[TType::I64 as u8, 0, 1]);
        h[20..28].copy_from_slice(&sequence_id.to_be_bytes());
        // ResponseInfo.status (field 2, byte); then STOP of ResponseInfo and STOP of Header
        h[28..32].copy_from_slice(&[TType::Byte as u8, 0, 2, status.code()]);
        out.extend_from_slice(&h);
        OctoFrameWriter {
            out,
            start,
            flags,
            header_end: Some(start + PREFIX_LEN + HEADER_LEN),
        }
    }

    /// The buffer to append the header, then the body, to.
    #[inline]
    pub fn buf(&mut self) -> &mut BytesMut {
        self.out
    }

    /// Marks the end of the header: what is appended next is the body.
    #[inline]
    pub fn end_header(&mut self) {
        self.header_end = Some(self.out.len());
    }

    /// Completes the frame and returns its whole length. Without `end_header`, everything appended
    /// is the header (a heartbeat). On error the partial frame is removed from the buffer.
    #[inline]
    pub fn finish(self) -> Result<usize, ProtoError> {
        if self.flags.compression == Compression::None && !self.flags.checksum {
            // The common case, inline: patch the two lengths.
            let start = self.start;
            let payload_start = start + PREFIX_LEN;
            let end = self.out.len();
            let header_len = self.header_end.unwrap_or(end).saturating_sub(payload_start);
            if let (Ok(h), Ok(total)) = (
                i16::try_from(header_len),
                i32::try_from(2 + (end - payload_start)),
            ) {
                self.out[start + 4..start + 8].copy_from_slice(&total.to_be_bytes());
                self.out[start + 8..start + 10].copy_from_slice(&h.to_be_bytes());
                return Ok(end - start);
            }
        }
        self.finish_slow()
    }

    #[cold]
    fn finish_slow(self) -> Result<usize, ProtoError> {
        let OctoFrameWriter {
            out,
            start,
            flags,
            header_end,
        } = self;
        let payload_start = start + PREFIX_LEN;
        let header_len = header_end
            .unwrap_or(out.len())
            .saturating_sub(payload_start);
        let Ok(header_len_i16) = i16::try_from(header_len) else {
            out.truncate(start);
            return err(ErrorKind::HeaderTooLarge(header_len));
        };
        match flags.compression {
            Compression::None => {}
            Compression::Gzip => {
                let payload = &out[payload_start..];
                let mut enc = flate2::GzBuilder::new()
                    .operating_system(255) // as JDK >= 16 writes
                    .write(
                        Vec::with_capacity(payload.len() / 2 + 64),
                        flate2::Compression::default(),
                    );
                let compressed = enc.write_all(payload).and_then(|()| enc.finish());
                let compressed = compressed.expect("gzip into a Vec cannot fail");
                out.truncate(payload_start);
                out.extend_from_slice(&compressed);
            }
            Compression::Snappy => {
                let payload = &out[payload_start..];
                let compressed = snap::raw::Encoder::new().compress_vec(payload);
                let Ok(compressed) = compressed else {
                    // Only inputs above snap's ~4 GiB block limit fail.
                    let len = payload.len();
                    out.truncate(start);
                    return err(ErrorKind::FrameTooLarge {
                        length: len as u64,
                        max: u32::MAX as usize,
                    });
                };
                out.truncate(payload_start);
                out.extend_from_slice(&compressed);
            }
        }
        let payload_len = out.len() - payload_start;
        let trailer = if flags.checksum { 4 } else { 0 };
        let Ok(total) = i32::try_from(2 + payload_len + trailer) else {
            out.truncate(start);
            return err(ErrorKind::FrameTooLarge {
                length: (2 + payload_len + trailer) as u64,
                max: i32::MAX as usize,
            });
        };
        out[start + 4..start + 8].copy_from_slice(&total.to_be_bytes());
        out[start + 8..start + 10].copy_from_slice(&header_len_i16.to_be_bytes());
        if flags.checksum {
            let sum = adler2::adler32_slice(&out[start..]);
            out.put_u32(sum);
        }
        Ok(out.len() - start)
    }
}

/// Appends a whole OCTO frame (version 0) with this header and body to `out`; returns its length.
pub fn encode_octo(
    out: &mut BytesMut,
    flags: Flags,
    header: &Header,
    body: &[u8],
) -> Result<usize, ProtoError> {
    let mut w = OctoFrameWriter::begin(out, 0, flags);
    header.encode(w.buf());
    w.end_header();
    w.buf().extend_from_slice(body);
    w.finish()
}
