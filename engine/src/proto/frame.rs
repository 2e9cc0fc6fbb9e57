//! Splitting a byte stream into whole frames: framing detection (PROTOCOL.md §1) and length checks.
//!
//! [`FrameDecoder::decode`] takes whole frames off the front of a connection's read buffer as
//! zero-copy [`Bytes`] (`split_to` + `freeze`: no byte is copied). A frame's length is checked
//! against the maximum frame size as soon as its length field is readable, before the buffer is
//! grown for it.
//!
//! The "frame size" limited by `max_frame_size` is the value of the length field: the bytes that
//! follow it (Thrift: the message; OCTO: `total_length`, from header_length to the checksum).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{err, ErrorKind, ProtoError};
use super::octo::{CHECKSUM_FLAG, MAGIC, PREFIX_LEN};

/// The default maximum frame size: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;

/// The most [`FrameDecoder::decode`] reserves ahead of the bytes that have arrived.
///
/// A peer may announce a frame as large as the limit and then send nothing: reserving the whole
/// announced length at once would let every connection pin `max_frame_size` bytes. Larger frames
/// grow the buffer as their bytes arrive instead.
pub const MAX_RESERVE_AHEAD: usize = 256 << 10;

/// A connection's framing, fixed by its first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// OCTO frames (start with 0xABBA).
    Octo,
    /// Apache Thrift framed transport (i32 length, then a message).
    Thrift,
}

/// One whole message taken off the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole OCTO frame, from the magic to the checksum (decode it with
    /// [`decode_octo`](super::decode_octo)).
    Octo(Bytes),
    /// A Thrift message, without its 4-byte length prefix.
    Thrift(Bytes),
}

/// One whole frame borrowed from the buffer it arrived in: no reference count is taken until a
/// part of it is kept ([`FrameRef::to_frame`], or [`Bytes::slice_ref`] on
/// [`FrameRef::source`]). [`FrameDecoder::whole_frames`] finds a run of them.
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    source: &'a Bytes,
    frame: &'a [u8],
    framing: Framing,
}

impl<'a> FrameRef<'a> {
    /// The frame at the front of `buf`, which must start with whole frames of this `framing`
    /// (as [`FrameDecoder::whole_frames`] found them); `None` if it does not start with one.
    /// Returns the frame and its whole wire length (with the length prefix).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use octo_engine::proto::{FrameRef, Framing};
    ///
    /// let buf = Bytes::from_static(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 1]);
    /// let (f, len) = FrameRef::front(&buf, Framing::Thrift).unwrap();
    /// assert_eq!((f.bytes(), len), (&b"hi"[..], 6));
    /// ```
    #[inline]
    pub fn front(buf: &'a Bytes, framing: Framing) -> Option<(FrameRef<'a>, usize)> {
        let (len, skip) = match framing {
            Framing::Octo => {
                let p = buf.first_chunk::<8>()?;
                let total = i32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                (8 + usize::try_from(total).ok()?, 0)
            }
            Framing::Thrift => {
                let n = i32::from_be_bytes(*buf.first_chunk::<4>()?);
                (4 + usize::try_from(n).ok()?, 4)
            }
        };
        let frame = buf.get(skip..len)?;
        Some((
            FrameRef {
                source: buf,
                frame,
                framing,
            },
            len,
        ))
    }

    /// All of `frame` as one frame, as [`Frame`] holds it (a whole OCTO frame, or a Thrift
    /// message without its length prefix).
    #[inline]
    pub fn whole(frame: &'a Bytes, framing: Framing) -> FrameRef<'a> {
        FrameRef {
            source: frame,
            frame,
            framing,
        }
    }

    /// The frame as [`Frame`] gives it: a whole OCTO frame, or a Thrift message without its
    /// length prefix.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.frame
    }

    /// The frame's framing.
    #[inline]
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The buffer the frame lies in: `source().slice_ref(part)` keeps a part of the frame without
    /// copying it.
    #[inline]
    pub fn source(&self) -> &'a Bytes {
        self.source
    }

    /// The owned frame (shares the buffer: one reference count, no copy).
    pub fn to_frame(&self) -> Frame {
        let b = self.source.slice_ref(self.frame);
        match self.framing {
            Framing::Octo => Frame::Octo(b),
            Framing::Thrift => Frame::Thrift(b),
        }
    }
}

/// The incremental frame splitter of one connection.
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::{Frame, FrameDecoder, Framing, DEFAULT_MAX_FRAME_SIZE};
///
/// let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
/// let mut buf = BytesMut::from(&[0u8, 0, 0, 3, b'a'][..]);
/// assert_eq!(dec.decode(&mut buf).unwrap(), None); // need more
/// assert_eq!(dec.framing(), Some(Framing::Thrift));
/// assert_eq!(dec.bytes_needed(buf.len()), 2);
/// buf.extend_from_slice(b"bc");
/// assert_eq!(dec.decode(&mut buf).unwrap(), Some(Frame::Thrift("abc".into())));
/// assert!(buf.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame_size: usize,
    framing: Option<Framing>,
    /// The whole wire length of the frame at the front of the buffer, once known.
    pending: Option<usize>,
}

impl FrameDecoder {
    /// A decoder for a new connection, accepting frames up to `max_frame_size` bytes (see the module doc).
    pub const fn new(max_frame_size: usize) -> Self {
        FrameDecoder {
            max_frame_size,
            framing: None,
            pending: None,
        }
    }

    /// The configured maximum frame size.
    pub const fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The connection's framing, once its first frame has been seen.
    pub const fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// The whole wire length of the frame being collected, once its length field has been read.
    pub const fn pending_frame_len(&self) -> Option<usize> {
        self.pending
    }

    /// How many more bytes the buffer (now holding `buffered` bytes) needs before the next
    /// `decode` can make progress: the rest of the pending frame, or of its length prefix.
    pub fn bytes_needed(&self, buffered: usize) -> usize {
        let target = match (self.pending, self.framing) {
            (Some(len), _) => len,
            (None, Some(Framing::Thrift)) => 4,
            (None, _) => PREFIX_LEN - 2,
        };
        target.saturating_sub(buffered).max(1)
    }

    /// Takes the next whole frame off the front of `buf`.
    ///
    /// `Ok(None)` means "need more bytes"; when the frame's length is known, `buf` has been given
    /// room for it (at most [`MAX_RESERVE_AHEAD`] bytes beyond what it holds). An error means the stream is unusable and the connection should be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtoError> {
        let len = match self.pending {
            Some(len) => len,
            None => match self.read_length(buf)? {
                Some(len) => {
                    self.pending = Some(len);
                    len
                }
                None => return Ok(None),
            },
        };
        if buf.len() < len {
            buf.reserve((len - buf.len()).min(MAX_RESERVE_AHEAD));
            return Ok(None);
        }
        self.pending = None;
        let mut frame = buf.split_to(len);
        Ok(Some(match self.framing {
            Some(Framing::Thrift) => {
                frame.advance(4);
                Frame::Thrift(frame.freeze())
            }
            _ => Frame::Octo(frame.freeze()),
        }))
    }

    /// How many bytes at the front of `buf` are whole frames: take them off at once (one
    /// `split_to`) and walk them with [`FrameRef::front`], instead of one `decode` (and one
    /// reference count) per frame.
    ///
    /// `Ok(0)` means the first frame is not all there yet (as `decode`'s `Ok(None)`: `buf` has
    /// been given room for it). An error is the first frame's (the stream is unusable); a bad
    /// frame after whole ones ends the run and is reported by the next call.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use octo_engine::proto::{FrameDecoder, FrameRef, Framing, DEFAULT_MAX_FRAME_SIZE};
    ///
    /// let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    /// let mut buf = BytesMut::from(&[0u8, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c', 0, 0][..]);
    /// let n = dec.whole_frames(&mut buf).unwrap();
    /// assert_eq!(n, 11);
    /// let run = buf.split_to(n).freeze();
    /// let (first, len) = FrameRef::front(&run, Framing::Thrift).unwrap();
    /// assert_eq!((first.bytes(), len), (&b"a"[..], 5));
    /// assert_eq!(dec.whole_frames(&mut buf).unwrap(), 0); // 2 bytes of the next length
    /// ```
    pub fn whole_frames(&mut self, buf: &mut BytesMut) -> Result<usize, ProtoError> {
        let first = match self.pending {
            Some(len) => len,
            None => match self.read_length(buf)? {
                Some(len) => len,
                None => return Ok(0),
            },
        };
        if buf.len() < first {
            self.pending = Some(first);
            buf.reserve((first - buf.len()).min(MAX_RESERVE_AHEAD));
            return Ok(0);
        }
        self.pending = None;
        let mut end = first;
        while let Ok(Some(len)) = self.read_length(&buf[end..]) {
            if buf.len() - end < len {
                break;
            }
            end += len;
        }
        Ok(end)
    }

    /// Reads the front frame's length field, fixing the framing on the first frame.
    /// Returns the whole wire length, or `None` if the length field is not all there yet.
    fn read_length(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtoError> {
        let framing = match self.framing {
            Some(f) => f,
            None => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if buf[..2] == MAGIC.to_be_bytes() {
                    Framing::Octo
                } else {
                    Framing::Thrift
                }
            }
        };
        let len = match framing {
            Framing::Thrift => {
                let Some(prefix) = buf.first_chunk::<4>() else {
                    return Ok(None);
                };
                let n = i32::from_be_bytes(*prefix);
                if n <= 0 {
                    return err(ErrorKind::InvalidThriftLength(n));
                }
                self.check_max(n as usize)?;
                4 + n as usize
            }
            Framing::Octo => {
                if buf.len() >= 2 && buf[..2] != MAGIC.to_be_bytes() {
                    return err(ErrorKind::BadMagic(u16::from_be_bytes([buf[0], buf[1]])));
                }
                let Some(prefix) = buf.first_chunk::<8>() else {
                    return Ok(None);
                };
                let total = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
                let min = if prefix[3] & CHECKSUM_FLAG != 0 { 6 } else { 2 };
                if total < min {
                    return err(ErrorKind::OctoTotalLengthTooSmall {
                        total_length: total,
                        min,
                    });
                }
                self.check_max(total as usize)?;
                8 + total as usize
            }
        };
        self.framing = Some(framing);
        Ok(Some(len))
    }

    #[inline]
    fn check_max(&self, len: usize) -> Result<(), ProtoError> {
        if len > self.max_frame_size {
            return err(ErrorKind::FrameTooLarge {
                length: len as u64,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }
}

/// Builds a Thrift-framed message in place: reserves the 4-byte length, lets the caller append
/// the message, then patches the length.
///
/// ```
/// use bytes::BytesMut;
/// use octo_engine::proto::{echo, ThriftFrameWriter};
///
/// let mut out = BytesMut::new();
/// let mut w = ThriftFrameWriter::begin(&mut out);
/// echo::encode_reply(w.buf(), 1, b"hi");
/// let n = w.finish().unwrap();
/// assert_eq!(n, out.len());
/// assert_eq!(&out[..4], &((n - 4) as i32).to_be_bytes());
/// ```
pub struct ThriftFrameWriter<'a> {
    out: &'a mut BytesMut,
    start: usize,
}

impl<'a> ThriftFrameWriter<'a> {
    /// Starts a frame at the end of `out`.
    pub fn begin(out: &'a mut BytesMut) -> Self {
        let start = out.len();
        out.put_i32(0);
        ThriftFrameWriter { out, start }
    }

    /// The buffer to append the message to.
    #[inline]
    pub fn buf(&mut self) -> &mut BytesMut {
        self.out
    }

    /// Patches the length; returns the whole frame's length. An empty message, or one longer than
    /// `i32::MAX`, is an error (and the partial frame is removed from the buffer).
    pub fn finish(self) -> Result<usize, ProtoError> {
        let len = self.out.len() - self.start - 4;
        let n = match i32::try_from(len) {
            Ok(n) if n > 0 => n,
            _ => {
                self.out.truncate(self.start);
                return err(ErrorKind::InvalidThriftLength(
                    i32::try_from(len).unwrap_or(i32::MAX),
                ));
            }
        };
        self.out[self.start..self.start + 4].copy_from_slice(&n.to_be_bytes());
        Ok(len + 4)
    }
}
