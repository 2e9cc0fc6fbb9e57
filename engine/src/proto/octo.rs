//! The OCTO frame codec (PROTOCOL.md §2): prefix, flags, checksum and compression of header+body.
//!
//! Decoding an uncompressed frame only slices it: the header and body are views of the frame's
//! bytes. Compressed payloads are inflated into one new buffer, never past the maximum frame size
//! (gzip is read with a cap; Snappy's declared length is checked before anything is allocated).

use std::io::{ErrorKind as IoErrorKind, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{err, ErrorKind, ProtoError};
use super::header::{Header, HeaderRef};

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
    let header_length = header_length as usize;
    let (payload, start, end) = match flags.compression {
        // Uncompressed: header and body are views of the frame itself.
        Compression::None => (frame, PREFIX_LEN, end),
        Compression::Gzip => {
            let p = gunzip(&frame[PREFIX_LEN..end], max_frame_size)?;
            let n = p.len();
            (Bytes::from(p), 0, n)
        }
        Compression::Snappy => {
            let p = unsnappy(&frame[PREFIX_LEN..end], max_frame_size)?;
            let n = p.len();
            (Bytes::from(p), 0, n)
        }
    };
    if header_length > end - start {
        return err(ErrorKind::HeaderLengthExceedsPayload {
            header_length,
            payload_length: end - start,
        });
    }
    let split = start + header_length;
    Ok(OctoFrame {
        version,
        flags,
        header: payload.slice(start..split),
        body: payload.slice(split..end),
    })
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
    pub fn finish(self) -> Result<usize, ProtoError> {
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
