//! Thrift TBinaryProtocol values: a bounded, borrowing reader (with `skip` for every type) and writers.
//!
//! The reader never allocates: strings and binaries are returned as slices of the input. Every
//! length is checked against the bytes that remain before it is used, container counts are
//! checked at their smallest possible wire size, and nesting is limited to [`MAX_DEPTH`].
//!
//! ```
//! use bytes::BytesMut;
//! use octo_engine::proto::thrift::{self, Reader, TType};
//!
//! let mut out = BytesMut::new();
//! thrift::write_field_begin(&mut out, TType::String, 1);
//! thrift::write_binary(&mut out, b"hello");
//! thrift::write_field_stop(&mut out);
//!
//! let mut r = Reader::new(&out);
//! assert_eq!(r.read_field_begin().unwrap(), Some((TType::String, 1)));
//! assert_eq!(r.read_binary().unwrap(), b"hello");
//! assert_eq!(r.read_field_begin().unwrap(), None);
//! ```

use bytes::BufMut;

use super::error::{err, ErrorKind, ProtoError};

/// The deepest nesting of structs and containers a [`Reader`] accepts.
pub const MAX_DEPTH: usize = 64;

/// A Thrift binary-protocol type byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TType {
    /// bool (1 byte, 1 = true)
    Bool = 2,
    /// i8 / byte
    Byte = 3,
    /// IEEE 754 double
    Double = 4,
    /// i16
    I16 = 6,
    /// i32
    I32 = 8,
    /// i64
    I64 = 10,
    /// string or binary (i32 length + bytes)
    String = 11,
    /// struct (fields until STOP)
    Struct = 12,
    /// map (key type, value type, i32 count)
    Map = 13,
    /// set (element type, i32 count)
    Set = 14,
    /// list (element type, i32 count)
    List = 15,
}

/// The STOP byte that ends a struct's fields.
pub const STOP: u8 = 0;

impl TType {
    /// The type with this wire byte, if it is one.
    #[inline]
    pub const fn from_u8(b: u8) -> Option<TType> {
        Some(match b {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::String,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            _ => return None,
        })
    }

    /// The smallest number of bytes a value of this type takes on the wire.
    #[inline]
    pub const fn min_size(self) -> usize {
        match self {
            TType::Bool | TType::Byte | TType::Struct => 1,
            TType::I16 => 2,
            TType::I32 | TType::String => 4,
            TType::Double | TType::I64 => 8,
            TType::Set | TType::List => 5,
            TType::Map => 6,
        }
    }

    #[inline]
    fn parse(b: u8) -> Result<TType, ProtoError> {
        match TType::from_u8(b) {
            Some(t) => Ok(t),
            None => err(ErrorKind::InvalidType(b)),
        }
    }
}

/// A TBinaryProtocol reader over a borrowed buffer.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Bytes consumed so far.
    #[inline]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    #[inline]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed rest of the buffer.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// How deep in structs and containers the reader is.
    #[inline]
    pub(crate) const fn depth(&self) -> usize {
        self.depth
    }

    /// The whole buffer this reader reads.
    #[inline]
    pub const fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Consumes `n` raw bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.remaining() {
            return err(ErrorKind::UnexpectedEof);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads an i8.
    #[inline]
    pub fn read_i8(&mut self) -> Result<i8, ProtoError> {
        Ok(self.array::<1>()?[0] as i8)
    }

    /// Reads a bool (as Apache Thrift does: true only for the byte 1).
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool, ProtoError> {
        Ok(self.array::<1>()?[0] == 1)
    }

    /// Reads an i16.
    #[inline]
    pub fn read_i16(&mut self) -> Result<i16, ProtoError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// Reads an i32.
    #[inline]
    pub fn read_i32(&mut self) -> Result<i32, ProtoError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads an i64.
    #[inline]
    pub fn read_i64(&mut self) -> Result<i64, ProtoError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Reads a double.
    #[inline]
    pub fn read_double(&mut self) -> Result<f64, ProtoError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.array()?)))
    }

    /// Reads a string or binary as raw bytes (Thrift strings are bytes).
    #[inline]
    pub fn read_binary(&mut self) -> Result<&'a [u8], ProtoError> {
        let len = self.read_i32()?;
        if len < 0 {
            return err(ErrorKind::NegativeLength(len));
        }
        let len = len as usize;
        if len > self.remaining() {
            return err(ErrorKind::LengthOverrun {
                length: len as u64,
                remaining: self.remaining(),
            });
        }
        self.take(len)
    }

    /// Reads a string that must be UTF-8; `what` names it in the error.
    #[inline]
    pub fn read_str(&mut self, what: &'static str) -> Result<&'a str, ProtoError> {
        let b = self.read_binary()?;
        utf8(b, what)
    }

    /// Reads a field header: `None` at STOP, else the field's type and id.
    #[inline]
    pub fn read_field_begin(&mut self) -> Result<Option<(TType, i16)>, ProtoError> {
        let t = self.array::<1>()?[0];
        if t == STOP {
            return Ok(None);
        }
        let ty = TType::parse(t)?;
        let id = self.read_i16()?;
        Ok(Some((ty, id)))
    }

    fn read_count(&mut self, per_element: usize) -> Result<usize, ProtoError> {
        let n = self.read_i32()?;
        if n < 0 {
            return err(ErrorKind::NegativeLength(n));
        }
        let need = n as u64 * per_element as u64;
        if need > self.remaining() as u64 {
            return err(ErrorKind::LengthOverrun {
                length: need,
                remaining: self.remaining(),
            });
        }
        Ok(n as usize)
    }

    /// Reads a map header: key type, value type, count. The count is checked against the
    /// remaining bytes (at the types' smallest sizes) before it is returned.
    #[inline]
    pub fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ProtoError> {
        let [k, v] = self.array::<2>()?;
        let (k, v) = (TType::parse(k)?, TType::parse(v)?);
        let n = self.read_count(k.min_size() + v.min_size())?;
        Ok((k, v, n))
    }

    /// Reads a list header: element type and count (checked like [`read_map_begin`](Self::read_map_begin)).
    #[inline]
    pub fn read_list_begin(&mut self) -> Result<(TType, usize), ProtoError> {
        let e = TType::parse(self.array::<1>()?[0])?;
        let n = self.read_count(e.min_size())?;
        Ok((e, n))
    }

    /// Reads a set header (same wire form as a list).
    #[inline]
    pub fn read_set_begin(&mut self) -> Result<(TType, usize), ProtoError> {
        self.read_list_begin()
    }

    /// Enters a struct or container: fails once nesting passes [`MAX_DEPTH`].
    #[inline]
    pub fn enter(&mut self) -> Result<(), ProtoError> {
        if self.depth >= MAX_DEPTH {
            return err(ErrorKind::DepthExceeded);
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves a struct or container entered with [`enter`](Self::enter).
    #[inline]
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Skips one value of type `ty`, however deeply nested (up to [`MAX_DEPTH`]).
    pub fn skip(&mut self, ty: TType) -> Result<(), ProtoError> {
        match ty {
            TType::Bool | TType::Byte => self.take(1).map(drop),
            TType::I16 => self.take(2).map(drop),
            TType::I32 => self.take(4).map(drop),
            TType::I64 | TType::Double => self.take(8).map(drop),
            TType::String => self.read_binary().map(drop),
            TType::Struct => {
                self.enter()?;
                while let Some((t, _)) = self.read_field_begin()? {
                    self.skip(t)?;
                }
                self.leave();
                Ok(())
            }
            TType::Map => {
                self.enter()?;
                let (k, v, n) = self.read_map_begin()?;
                for _ in 0..n {
                    self.skip(k)?;
                    self.skip(v)?;
                }
                self.leave();
                Ok(())
            }
            TType::Set | TType::List => {
                self.enter()?;
                let (e, n) = self.read_list_begin()?;
                for _ in 0..n {
                    self.skip(e)?;
                }
                self.leave();
                Ok(())
            }
        }
    }
}

/// `b` as text, or [`ErrorKind::InvalidUtf8`] naming `what`. Names and keys on the wire are
/// nearly always ASCII: that is checked inline, a word at a time, before the full validation.
#[inline]
pub(crate) fn utf8<'b>(b: &'b [u8], what: &'static str) -> Result<&'b str, ProtoError> {
    if b.is_ascii() {
        // SAFETY: every byte is below 0x80, and a sequence of ASCII bytes is valid UTF-8.
        return Ok(unsafe { core::str::from_utf8_unchecked(b) });
    }
    match core::str::from_utf8(b) {
        Ok(s) => Ok(s),
        Err(_) => err(ErrorKind::InvalidUtf8 { what }),
    }
}

/// Checks a known field's wire type. Returns `Ok(true)` when it matches; when it does not, a
/// required field is an error and an optional one is skipped (Apache Thrift's rule) with `Ok(false)`.
#[inline]
pub(crate) fn field_matches(
    r: &mut Reader<'_>,
    strukt: &'static str,
    id: i16,
    actual: TType,
    expected: TType,
    required: bool,
) -> Result<bool, ProtoError> {
    if actual == expected {
        return Ok(true);
    }
    if required {
        return err(ErrorKind::WrongFieldType {
            strukt,
            field: id,
            expected: expected as u8,
            actual: actual as u8,
        });
    }
    r.skip(actual)?;
    Ok(false)
}

#[inline]
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("Thrift lengths are limited to i32::MAX")
}

/// Writes a field header.
#[inline]
pub fn write_field_begin<B: BufMut>(out: &mut B, ty: TType, id: i16) {
    out.put_u8(ty as u8);
    out.put_i16(id);
}

/// Writes the STOP byte that ends a struct.
#[inline]
pub fn write_field_stop<B: BufMut>(out: &mut B) {
    out.put_u8(STOP);
}

/// Writes a bool.
#[inline]
pub fn write_bool<B: BufMut>(out: &mut B, v: bool) {
    out.put_u8(v as u8);
}

/// Writes an i8.
#[inline]
pub fn write_i8<B: BufMut>(out: &mut B, v: i8) {
    out.put_i8(v);
}

/// Writes an i16.
#[inline]
pub fn write_i16<B: BufMut>(out: &mut B, v: i16) {
    out.put_i16(v);
}

/// Writes an i32.
#[inline]
pub fn write_i32<B: BufMut>(out: &mut B, v: i32) {
    out.put_i32(v);
}

/// Writes an i64.
#[inline]
pub fn write_i64<B: BufMut>(out: &mut B, v: i64) {
    out.put_i64(v);
}

/// Writes a double.
#[inline]
pub fn write_double<B: BufMut>(out: &mut B, v: f64) {
    out.put_u64(v.to_bits());
}

/// Writes a string or binary (pass `s.as_bytes()` for text).
///
/// # Panics
/// If `v` is longer than `i32::MAX` bytes (a local programming error, not peer input).
#[inline]
pub fn write_binary<B: BufMut>(out: &mut B, v: &[u8]) {
    out.put_i32(len_i32(v.len()));
    out.put_slice(v);
}

/// Writes a map header.
#[inline]
pub fn write_map_begin<B: BufMut>(out: &mut B, key: TType, value: TType, len: usize) {
    out.put_u8(key as u8);
    out.put_u8(value as u8);
    out.put_i32(len_i32(len));
}

/// Writes a list header.
#[inline]
pub fn write_list_begin<B: BufMut>(out: &mut B, elem: TType, len: usize) {
    out.put_u8(elem as u8);
    out.put_i32(len_i32(len));
}

/// Writes a set header (same wire form as a list).
#[inline]
pub fn write_set_begin<B: BufMut>(out: &mut B, elem: TType, len: usize) {
    write_list_begin(out, elem, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_lists(depth: usize) -> Vec<u8> {
        // a struct holding field 1: list<list<...<i32>>> nested `depth` times, empty at the bottom
        let mut v = vec![];
        write_field_begin(&mut v, TType::List, 1);
        for _ in 0..depth - 1 {
            write_list_begin(&mut v, TType::List, 1);
        }
        write_list_begin(&mut v, TType::I32, 0);
        write_field_stop(&mut v);
        v
    }

    #[test]
    fn skip_accepts_nesting_up_to_max_depth() {
        let v = nested_lists(MAX_DEPTH - 1);
        assert_eq!(Reader::new(&v).skip(TType::Struct), Ok(()));
    }

    #[test]
    fn skip_rejects_nesting_beyond_max_depth() {
        let v = nested_lists(MAX_DEPTH);
        let e = Reader::new(&v).skip(TType::Struct).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DepthExceeded);
    }

    #[test]
    fn container_count_is_checked_against_remaining_bytes_before_looping() {
        let mut v = vec![];
        write_list_begin(&mut v, TType::I64, 2);
        v.extend_from_slice(&[0; 15]);
        let e = Reader::new(&v).skip(TType::List).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::LengthOverrun {
                length: 16,
                remaining: 15
            }
        );
    }

    #[test]
    fn skip_walks_every_type() {
        let mut v = vec![];
        write_field_begin(&mut v, TType::Bool, 1);
        write_bool(&mut v, true);
        write_field_begin(&mut v, TType::Byte, 2);
        write_i8(&mut v, -1);
        write_field_begin(&mut v, TType::Double, 3);
        write_double(&mut v, 1.5);
        write_field_begin(&mut v, TType::I16, 4);
        write_i16(&mut v, 7);
        write_field_begin(&mut v, TType::I32, 5);
        write_i32(&mut v, 7);
        write_field_begin(&mut v, TType::I64, 6);
        write_i64(&mut v, 7);
        write_field_begin(&mut v, TType::String, 7);
        write_binary(&mut v, b"abc");
        write_field_begin(&mut v, TType::Struct, 8);
        write_field_stop(&mut v);
        write_field_begin(&mut v, TType::Map, 9);
        write_map_begin(&mut v, TType::String, TType::Set, 1);
        write_binary(&mut v, b"k");
        write_set_begin(&mut v, TType::I16, 2);
        write_i16(&mut v, 1);
        write_i16(&mut v, 2);
        write_field_begin(&mut v, TType::List, 10);
        write_list_begin(&mut v, TType::Struct, 1);
        write_field_stop(&mut v);
        write_field_stop(&mut v);
        v.push(0xEE); // after the struct
        let mut r = Reader::new(&v);
        r.skip(TType::Struct).unwrap();
        assert_eq!(r.rest(), &[0xEE]);
    }

    #[test]
    fn invalid_type_byte_is_rejected() {
        let v = [1u8, 0, 1];
        let e = Reader::new(&v).read_field_begin().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidType(1));
    }

    #[test]
    fn negative_string_length_is_rejected() {
        let v = (-1i32).to_be_bytes();
        let e = Reader::new(&v).read_binary().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NegativeLength(-1));
    }
}
