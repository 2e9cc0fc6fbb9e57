//! The OCTO `Header` struct and its parts (PROTOCOL.md §3), in owned and borrowed forms.
//!
//! [`HeaderRef::decode`] is the hot-path decoder: it validates the whole header in one pass and
//! borrows every string from the frame, so it does not allocate. [`Header`] is the owned form for
//! code that keeps headers around; [`HeaderRef::to_owned`] converts. Both encode to the exact bytes
//! Dorado writes (fields in id order, `messageType` always present).
//!
//! Decoding follows Apache Thrift: unknown field ids are skipped whatever their type, a known
//! optional field with an unexpected type is skipped too, and a missing required field is an
//! error. octo is stricter in three places: a required field with the wrong type is reported as
//! [`ErrorKind::WrongFieldType`] at once; text (service names, appkeys, context entries) must be
//! UTF-8; enumerations (messageType, callType, status) must hold a defined value.

use bytes::BufMut;

use super::error::{err, ErrorKind, ProtoError};
use super::status::Status;
use super::thrift::{self, field_matches, Reader, TType};

/// The most bytes (keys plus values) a `globalContext` may hold.
pub const MAX_GLOBAL_CONTEXT_BYTES: usize = 512;
/// The most bytes (keys plus values) a `localContext` may hold.
pub const MAX_LOCAL_CONTEXT_BYTES: usize = 2048;

/// `Header.messageType`: what kind of frame this is.
#[repr(i8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    /// An RPC request or response.
    #[default]
    Normal = 0,
    /// An end-to-end heartbeat.
    NormalHeartbeat = 1,
    /// A health scanner probe.
    ScannerHeartbeat = 2,
}

impl MessageType {
    /// The type with this wire value.
    pub const fn from_i8(v: i8) -> Option<MessageType> {
        match v {
            0 => Some(MessageType::Normal),
            1 => Some(MessageType::NormalHeartbeat),
            2 => Some(MessageType::ScannerHeartbeat),
            _ => None,
        }
    }
}

/// `RequestInfo.callType`.
#[repr(i8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CallType {
    /// The caller wants an answer.
    #[default]
    Reply = 0,
    /// One-way: no response frame is sent.
    NoReply = 1,
}

impl CallType {
    /// The call type with this wire value.
    pub const fn from_i8(v: i8) -> Option<CallType> {
        match v {
            0 => Some(CallType::Reply),
            1 => Some(CallType::NoReply),
            _ => None,
        }
    }
}

/// `HeartbeatInfo.status` values.
pub mod heartbeat_status {
    /// The server is dead.
    pub const DEAD: i32 = 0;
    /// The server is alive.
    pub const ALIVE: i32 = 2;
    /// The server is draining.
    pub const STOPPED: i32 = 4;
}

fn missing(strukt: &'static str, field: i16) -> ProtoError {
    ProtoError::new(ErrorKind::MissingRequiredField { strukt, field })
}

/// Skips a field whose (id, type) the struct decoder did not match: unknown ids and mistyped
/// optional fields are skipped, a mistyped required field is an error.
#[inline]
fn skip_field(
    r: &mut Reader<'_>,
    strukt: &'static str,
    id: i16,
    ty: TType,
    required: &[(i16, TType)],
) -> Result<(), ProtoError> {
    match required.iter().find(|(rid, _)| *rid == id) {
        Some(&(_, expected)) => field_matches(r, strukt, id, ty, expected, true).map(drop),
        None => r.skip(ty),
    }
}

fn read_enum_i8<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    f: fn(i8) -> Option<T>,
) -> Result<T, ProtoError> {
    let v = r.read_i8()?;
    match f(v) {
        Some(t) => Ok(t),
        None => err(ErrorKind::InvalidEnumValue {
            what,
            value: v as i32,
        }),
    }
}

fn status_from_i8(v: i8) -> Option<Status> {
    u8::try_from(v).ok().and_then(Status::from_code)
}

// ------------------------------------------------------------------------------------------------
// RequestInfo

/// `RequestInfo`, set on requests (owned).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// The service called (routes the request on a multi-service port).
    pub service_name: String,
    /// The 64-bit sequence id that matches the response to this request.
    pub sequence_id: i64,
    /// Whether an answer is expected.
    pub call_type: CallType,
    /// Timeout in milliseconds.
    pub timeout_ms: i32,
}

/// `RequestInfo`, borrowed from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfoRef<'a> {
    /// The service called.
    pub service_name: &'a str,
    /// The 64-bit sequence id.
    pub sequence_id: i64,
    /// Whether an answer is expected.
    pub call_type: CallType,
    /// Timeout in milliseconds.
    pub timeout_ms: i32,
}

impl<'a> RequestInfoRef<'a> {
    const NAME: &'static str = "RequestInfo";
    const REQUIRED: [(i16, TType); 4] = [
        (1, TType::String),
        (2, TType::I64),
        (3, TType::Byte),
        (4, TType::I32),
    ];

    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.enter()?;
        let (mut name, mut seq, mut call, mut timeout) = (None, None, None, None);
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::String) => name = Some(r.read_str("RequestInfo.serviceName")?),
                (2, TType::I64) => seq = Some(r.read_i64()?),
                (3, TType::Byte) => {
                    call = Some(read_enum_i8(r, "RequestInfo.callType", CallType::from_i8)?)
                }
                (4, TType::I32) => timeout = Some(r.read_i32()?),
                _ => skip_field(r, Self::NAME, id, ty, &Self::REQUIRED)?,
            }
        }
        r.leave();
        Ok(RequestInfoRef {
            service_name: name.ok_or_else(|| missing(Self::NAME, 1))?,
            sequence_id: seq.ok_or_else(|| missing(Self::NAME, 2))?,
            call_type: call.ok_or_else(|| missing(Self::NAME, 3))?,
            timeout_ms: timeout.ok_or_else(|| missing(Self::NAME, 4))?,
        })
    }

    /// Writes the struct (fields and STOP).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_field_begin(out, TType::String, 1);
        thrift::write_binary(out, self.service_name.as_bytes());
        thrift::write_field_begin(out, TType::I64, 2);
        thrift::write_i64(out, self.sequence_id);
        thrift::write_field_begin(out, TType::Byte, 3);
        thrift::write_i8(out, self.call_type as i8);
        thrift::write_field_begin(out, TType::I32, 4);
        thrift::write_i32(out, self.timeout_ms);
        thrift::write_field_stop(out);
    }

    /// The owned copy.
    pub fn to_owned(&self) -> RequestInfo {
        RequestInfo {
            service_name: self.service_name.to_owned(),
            sequence_id: self.sequence_id,
            call_type: self.call_type,
            timeout_ms: self.timeout_ms,
        }
    }
}

impl RequestInfo {
    /// Borrows this struct.
    pub fn as_ref(&self) -> RequestInfoRef<'_> {
        RequestInfoRef {
            service_name: &self.service_name,
            sequence_id: self.sequence_id,
            call_type: self.call_type,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Writes the struct as TBinaryProtocol.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        self.as_ref().encode(out)
    }

    /// Decodes a struct serialized alone (as `TSerializer` writes it).
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(RequestInfoRef::read(&mut Reader::new(buf))?.to_owned())
    }
}

// ------------------------------------------------------------------------------------------------
// ResponseInfo

/// `ResponseInfo`, set on responses (owned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The request's 64-bit sequence id.
    pub sequence_id: i64,
    /// The outcome.
    pub status: Status,
    /// Error text, if any.
    pub message: Option<String>,
}

/// `ResponseInfo`, borrowed from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseInfoRef<'a> {
    /// The request's 64-bit sequence id.
    pub sequence_id: i64,
    /// The outcome.
    pub status: Status,
    /// Error text, if any.
    pub message: Option<&'a str>,
}

impl<'a> ResponseInfoRef<'a> {
    const NAME: &'static str = "ResponseInfo";
    const REQUIRED: [(i16, TType); 2] = [(1, TType::I64), (2, TType::Byte)];

    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.enter()?;
        let (mut seq, mut status, mut message) = (None, None, None);
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::I64) => seq = Some(r.read_i64()?),
                (2, TType::Byte) => {
                    status = Some(read_enum_i8(r, "ResponseInfo.status", status_from_i8)?)
                }
                (3, TType::String) => message = Some(r.read_str("ResponseInfo.message")?),
                _ => skip_field(r, Self::NAME, id, ty, &Self::REQUIRED)?,
            }
        }
        r.leave();
        Ok(ResponseInfoRef {
            sequence_id: seq.ok_or_else(|| missing(Self::NAME, 1))?,
            status: status.ok_or_else(|| missing(Self::NAME, 2))?,
            message,
        })
    }

    /// Writes the struct (fields and STOP).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_field_begin(out, TType::I64, 1);
        thrift::write_i64(out, self.sequence_id);
        thrift::write_field_begin(out, TType::Byte, 2);
        thrift::write_i8(out, self.status.code() as i8);
        if let Some(m) = self.message {
            thrift::write_field_begin(out, TType::String, 3);
            thrift::write_binary(out, m.as_bytes());
        }
        thrift::write_field_stop(out);
    }

    /// The owned copy.
    pub fn to_owned(&self) -> ResponseInfo {
        ResponseInfo {
            sequence_id: self.sequence_id,
            status: self.status,
            message: self.message.map(str::to_owned),
        }
    }
}

impl ResponseInfo {
    /// Borrows this struct.
    pub fn as_ref(&self) -> ResponseInfoRef<'_> {
        ResponseInfoRef {
            sequence_id: self.sequence_id,
            status: self.status,
            message: self.message.as_deref(),
        }
    }

    /// Writes the struct as TBinaryProtocol.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        self.as_ref().encode(out)
    }

    /// Decodes a struct serialized alone.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(ResponseInfoRef::read(&mut Reader::new(buf))?.to_owned())
    }
}

// ------------------------------------------------------------------------------------------------
// TraceInfo

/// `TraceInfo`, tracing data passed through (owned).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TraceInfo {
    /// The caller's appkey (required).
    pub client_appkey: String,
    /// Field 2.
    pub trace_id: Option<String>,
    /// Field 3.
    pub span_id: Option<String>,
    /// Field 4.
    pub root_message_id: Option<String>,
    /// Field 5.
    pub current_message_id: Option<String>,
    /// Field 6.
    pub server_message_id: Option<String>,
    /// Field 7.
    pub debug: Option<bool>,
    /// Field 8.
    pub sample: Option<bool>,
    /// Field 9.
    pub client_ip: Option<String>,
}

/// `TraceInfo`, borrowed from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TraceInfoRef<'a> {
    /// The caller's appkey (required).
    pub client_appkey: &'a str,
    /// Field 2.
    pub trace_id: Option<&'a str>,
    /// Field 3.
    pub span_id: Option<&'a str>,
    /// Field 4.
    pub root_message_id: Option<&'a str>,
    /// Field 5.
    pub current_message_id: Option<&'a str>,
    /// Field 6.
    pub server_message_id: Option<&'a str>,
    /// Field 7.
    pub debug: Option<bool>,
    /// Field 8.
    pub sample: Option<bool>,
    /// Field 9.
    pub client_ip: Option<&'a str>,
}

impl<'a> TraceInfoRef<'a> {
    const NAME: &'static str = "TraceInfo";
    const REQUIRED: [(i16, TType); 1] = [(1, TType::String)];

    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.enter()?;
        let mut appkey = None;
        let mut t = TraceInfoRef::default();
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::String) => appkey = Some(r.read_str("TraceInfo.clientAppkey")?),
                (2, TType::String) => t.trace_id = Some(r.read_str("TraceInfo.traceId")?),
                (3, TType::String) => t.span_id = Some(r.read_str("TraceInfo.spanId")?),
                (4, TType::String) => {
                    t.root_message_id = Some(r.read_str("TraceInfo.rootMessageId")?)
                }
                (5, TType::String) => {
                    t.current_message_id = Some(r.read_str("TraceInfo.currentMessageId")?)
                }
                (6, TType::String) => {
                    t.server_message_id = Some(r.read_str("TraceInfo.serverMessageId")?)
                }
                (7, TType::Bool) => t.debug = Some(r.read_bool()?),
                (8, TType::Bool) => t.sample = Some(r.read_bool()?),
                (9, TType::String) => t.client_ip = Some(r.read_str("TraceInfo.clientIp")?),
                _ => skip_field(r, Self::NAME, id, ty, &Self::REQUIRED)?,
            }
        }
        r.leave();
        t.client_appkey = appkey.ok_or_else(|| missing(Self::NAME, 1))?;
        Ok(t)
    }

    /// Writes the struct (fields and STOP).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_field_begin(out, TType::String, 1);
        thrift::write_binary(out, self.client_appkey.as_bytes());
        let strings = [
            (2, self.trace_id),
            (3, self.span_id),
            (4, self.root_message_id),
            (5, self.current_message_id),
            (6, self.server_message_id),
        ];
        for (id, s) in strings {
            if let Some(s) = s {
                thrift::write_field_begin(out, TType::String, id);
                thrift::write_binary(out, s.as_bytes());
            }
        }
        for (id, b) in [(7, self.debug), (8, self.sample)] {
            if let Some(b) = b {
                thrift::write_field_begin(out, TType::Bool, id);
                thrift::write_bool(out, b);
            }
        }
        if let Some(ip) = self.client_ip {
            thrift::write_field_begin(out, TType::String, 9);
            thrift::write_binary(out, ip.as_bytes());
        }
        thrift::write_field_stop(out);
    }

    /// The owned copy.
    pub fn to_owned(&self) -> TraceInfo {
        let s = |v: Option<&str>| v.map(str::to_owned);
        TraceInfo {
            client_appkey: self.client_appkey.to_owned(),
            trace_id: s(self.trace_id),
            span_id: s(self.span_id),
            root_message_id: s(self.root_message_id),
            current_message_id: s(self.current_message_id),
            server_message_id: s(self.server_message_id),
            debug: self.debug,
            sample: self.sample,
            client_ip: s(self.client_ip),
        }
    }
}

impl TraceInfo {
    /// Borrows this struct.
    pub fn as_ref(&self) -> TraceInfoRef<'_> {
        TraceInfoRef {
            client_appkey: &self.client_appkey,
            trace_id: self.trace_id.as_deref(),
            span_id: self.span_id.as_deref(),
            root_message_id: self.root_message_id.as_deref(),
            current_message_id: self.current_message_id.as_deref(),
            server_message_id: self.server_message_id.as_deref(),
            debug: self.debug,
            sample: self.sample,
            client_ip: self.client_ip.as_deref(),
        }
    }

    /// Writes the struct as TBinaryProtocol.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        self.as_ref().encode(out)
    }

    /// Decodes a struct serialized alone.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(TraceInfoRef::read(&mut Reader::new(buf))?.to_owned())
    }
}

// ------------------------------------------------------------------------------------------------
// Maps kept in wire form

/// Reads the entries of a map whose header was read; returns the raw entry bytes.
fn read_map_entries<'a>(
    r: &mut Reader<'a>,
    n: usize,
    what: &'static str,
    mut entry: impl FnMut(&mut Reader<'a>) -> Result<usize, ProtoError>,
    max_bytes: usize,
) -> Result<&'a [u8], ProtoError> {
    let start = r.position();
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += entry(r)?;
    }
    if bytes > max_bytes {
        return err(ErrorKind::ContextTooLarge {
            what,
            bytes,
            max: max_bytes,
        });
    }
    Ok(&r.buffer()[start..r.position()])
}

/// Reads a map header that must be `map<key, value>` (element types are not checked when empty).
fn read_typed_map_begin(
    r: &mut Reader<'_>,
    strukt: &'static str,
    field: i16,
    key: TType,
    value: TType,
) -> Result<usize, ProtoError> {
    let (k, v, n) = r.read_map_begin()?;
    if n > 0 {
        for (actual, expected) in [(k, key), (v, value)] {
            if actual != expected {
                return err(ErrorKind::WrongFieldType {
                    strukt,
                    field,
                    expected: expected as u8,
                    actual: actual as u8,
                });
            }
        }
    }
    Ok(n)
}

/// A `map<string,string>` context (globalContext or localContext) borrowed from a frame in its
/// wire form: validated once when the header is decoded (UTF-8, size limit), then iterated in wire
/// order without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextMap<'a> {
    entries: &'a [u8],
    len: usize,
}

impl<'a> ContextMap<'a> {
    #[inline]
    fn read(
        r: &mut Reader<'a>,
        field: i16,
        what: &'static str,
        max_bytes: usize,
    ) -> Result<Self, ProtoError> {
        r.enter()?;
        let len = read_typed_map_begin(r, "Header", field, TType::String, TType::String)?;
        let entries = read_map_entries(
            r,
            len,
            what,
            |r| Ok(r.read_str(what)?.len() + r.read_str(what)?.len()),
            max_bytes,
        )?;
        r.leave();
        Ok(ContextMap { entries, len })
    }

    /// The number of entries.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in wire order.
    pub fn iter(&self) -> ContextIter<'a> {
        ContextIter {
            rest: self.entries,
            left: self.len,
        }
    }

    /// The value of the first entry with this key.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Owned entries in wire order.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_map_begin(out, TType::String, TType::String, self.len);
        out.put_slice(self.entries);
    }
}

impl<'a> IntoIterator for ContextMap<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = ContextIter<'a>;
    fn into_iter(self) -> ContextIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`ContextMap`]'s entries.
#[derive(Clone, Debug)]
pub struct ContextIter<'a> {
    rest: &'a [u8],
    left: usize,
}

/// Splits a length-prefixed string off `rest`. Used only on bytes validated when their map was read.
fn split_validated_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let (s, tail) = tail.split_at_checked(len)?;
    *rest = tail;
    // SAFETY: ContextMap and QpsMap are only built by their `read`, which checked with
    // `Reader::read_str` that every key and value in `entries` is UTF-8; the slice is immutable.
    Some(unsafe { core::str::from_utf8_unchecked(s) })
}

impl<'a> Iterator for ContextIter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let k = split_validated_str(&mut self.rest)?;
        let v = split_validated_str(&mut self.rest)?;
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for ContextIter<'_> {}

/// `LoadInfo.methodQpsMap` (`map<string,double>`) borrowed in wire form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QpsMap<'a> {
    entries: &'a [u8],
    len: usize,
}

impl<'a> QpsMap<'a> {
    /// The number of entries.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        let mut rest = self.entries;
        (0..self.len).map_while(move |_| {
            let k = split_validated_str(&mut rest)?;
            let (v, tail) = rest.split_first_chunk::<8>()?;
            rest = tail;
            Some((k, f64::from_bits(u64::from_be_bytes(*v))))
        })
    }
}

// ------------------------------------------------------------------------------------------------
// LoadInfo and HeartbeatInfo

/// `LoadInfo`: load figures a scanner heartbeat may report (owned; all optional).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LoadInfo {
    /// Field 1.
    pub average_load: Option<f64>,
    /// Field 2.
    pub old_gc: Option<i32>,
    /// Field 3.
    pub thread_num: Option<i32>,
    /// Field 4.
    pub queue_size: Option<i32>,
    /// Field 5, in wire order.
    pub method_qps_map: Option<Vec<(String, f64)>>,
}

/// `LoadInfo`, borrowed from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct LoadInfoRef<'a> {
    /// Field 1.
    pub average_load: Option<f64>,
    /// Field 2.
    pub old_gc: Option<i32>,
    /// Field 3.
    pub thread_num: Option<i32>,
    /// Field 4.
    pub queue_size: Option<i32>,
    /// Field 5.
    pub method_qps_map: Option<QpsMap<'a>>,
}

impl<'a> LoadInfoRef<'a> {
    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.enter()?;
        let mut l = LoadInfoRef::default();
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::Double) => l.average_load = Some(r.read_double()?),
                (2, TType::I32) => l.old_gc = Some(r.read_i32()?),
                (3, TType::I32) => l.thread_num = Some(r.read_i32()?),
                (4, TType::I32) => l.queue_size = Some(r.read_i32()?),
                (5, TType::Map) => {
                    r.enter()?;
                    let len = read_typed_map_begin(r, "LoadInfo", 5, TType::String, TType::Double)?;
                    let what = "LoadInfo.methodQpsMap";
                    let entries = read_map_entries(
                        r,
                        len,
                        what,
                        |r| {
                            r.read_str(what)?;
                            r.read_double()?;
                            Ok(0)
                        },
                        usize::MAX,
                    )?;
                    r.leave();
                    l.method_qps_map = Some(QpsMap { entries, len });
                }
                _ => skip_field(r, "LoadInfo", id, ty, &[])?,
            }
        }
        r.leave();
        Ok(l)
    }

    /// The owned copy.
    pub fn to_owned(&self) -> LoadInfo {
        LoadInfo {
            average_load: self.average_load,
            old_gc: self.old_gc,
            thread_num: self.thread_num,
            queue_size: self.queue_size,
            method_qps_map: self
                .method_qps_map
                .map(|m| m.iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        }
    }
}

impl LoadInfo {
    /// Writes the struct as TBinaryProtocol.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        if let Some(v) = self.average_load {
            thrift::write_field_begin(out, TType::Double, 1);
            thrift::write_double(out, v);
        }
        for (id, v) in [(2, self.old_gc), (3, self.thread_num), (4, self.queue_size)] {
            if let Some(v) = v {
                thrift::write_field_begin(out, TType::I32, id);
                thrift::write_i32(out, v);
            }
        }
        if let Some(m) = &self.method_qps_map {
            thrift::write_field_begin(out, TType::Map, 5);
            thrift::write_map_begin(out, TType::String, TType::Double, m.len());
            for (k, v) in m {
                thrift::write_binary(out, k.as_bytes());
                thrift::write_double(out, *v);
            }
        }
        thrift::write_field_stop(out);
    }

    /// Decodes a struct serialized alone.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(LoadInfoRef::read(&mut Reader::new(buf))?.to_owned())
    }
}

/// `HeartbeatInfo`, set on ScannerHeartbeat responses (owned).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct HeartbeatInfo {
    /// The server's appkey.
    pub appkey: Option<String>,
    /// Send time in milliseconds.
    pub send_time: Option<i64>,
    /// Load figures.
    pub load_info: Option<LoadInfo>,
    /// One of [`heartbeat_status`] (required).
    pub status: i32,
}

/// `HeartbeatInfo`, borrowed from a frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeartbeatInfoRef<'a> {
    /// The server's appkey.
    pub appkey: Option<&'a str>,
    /// Send time in milliseconds.
    pub send_time: Option<i64>,
    /// Load figures.
    pub load_info: Option<LoadInfoRef<'a>>,
    /// One of [`heartbeat_status`] (required).
    pub status: i32,
    raw: &'a [u8],
}

impl<'a> HeartbeatInfoRef<'a> {
    const NAME: &'static str = "HeartbeatInfo";
    const REQUIRED: [(i16, TType); 1] = [(4, TType::I32)];

    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        let start = r.position();
        r.enter()?;
        let (mut appkey, mut send_time, mut load_info, mut status) = (None, None, None, None);
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::String) => appkey = Some(r.read_str("HeartbeatInfo.appkey")?),
                (2, TType::I64) => send_time = Some(r.read_i64()?),
                (3, TType::Struct) => load_info = Some(LoadInfoRef::read(r)?),
                (4, TType::I32) => status = Some(r.read_i32()?),
                _ => skip_field(r, Self::NAME, id, ty, &Self::REQUIRED)?,
            }
        }
        r.leave();
        Ok(HeartbeatInfoRef {
            appkey,
            send_time,
            load_info,
            status: status.ok_or_else(|| missing(Self::NAME, 4))?,
            raw: &r.buffer()[start..r.position()],
        })
    }

    /// The owned copy.
    pub fn to_owned(&self) -> HeartbeatInfo {
        HeartbeatInfo {
            appkey: self.appkey.map(str::to_owned),
            send_time: self.send_time,
            load_info: self.load_info.map(|l| l.to_owned()),
            status: self.status,
        }
    }
}

impl HeartbeatInfo {
    /// Writes the struct as TBinaryProtocol.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        if let Some(a) = &self.appkey {
            thrift::write_field_begin(out, TType::String, 1);
            thrift::write_binary(out, a.as_bytes());
        }
        if let Some(t) = self.send_time {
            thrift::write_field_begin(out, TType::I64, 2);
            thrift::write_i64(out, t);
        }
        if let Some(l) = &self.load_info {
            thrift::write_field_begin(out, TType::Struct, 3);
            l.encode(out);
        }
        thrift::write_field_begin(out, TType::I32, 4);
        thrift::write_i32(out, self.status);
        thrift::write_field_stop(out);
    }

    /// Decodes a struct serialized alone.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(HeartbeatInfoRef::read(&mut Reader::new(buf))?.to_owned())
    }
}

// ------------------------------------------------------------------------------------------------
// Header

/// The OCTO header (owned). Contexts keep their wire order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Header {
    /// Field 1 (always written).
    pub message_type: MessageType,
    /// Field 2, set on requests.
    pub request_info: Option<RequestInfo>,
    /// Field 3, set on responses.
    pub response_info: Option<ResponseInfo>,
    /// Field 4.
    pub trace_info: Option<TraceInfo>,
    /// Field 5: whole-call-chain context (at most [`MAX_GLOBAL_CONTEXT_BYTES`]).
    pub global_context: Option<Vec<(String, String)>>,
    /// Field 6: single-hop context (at most [`MAX_LOCAL_CONTEXT_BYTES`]).
    pub local_context: Option<Vec<(String, String)>>,
    /// Field 7, set on ScannerHeartbeat responses.
    pub heartbeat_info: Option<HeartbeatInfo>,
}

/// The OCTO header borrowed from a frame: decoding it does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct HeaderRef<'a> {
    /// Field 1.
    pub message_type: MessageType,
    /// Field 2.
    pub request_info: Option<RequestInfoRef<'a>>,
    /// Field 3.
    pub response_info: Option<ResponseInfoRef<'a>>,
    /// Field 4.
    pub trace_info: Option<TraceInfoRef<'a>>,
    /// Field 5.
    pub global_context: Option<ContextMap<'a>>,
    /// Field 6.
    pub local_context: Option<ContextMap<'a>>,
    /// Field 7.
    pub heartbeat_info: Option<HeartbeatInfoRef<'a>>,
}

impl<'a> HeaderRef<'a> {
    /// Decodes the header bytes of an OCTO frame, borrowing every string from them.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use octo_engine::proto::{Header, HeaderRef, MessageType, ResponseInfo, Status};
    ///
    /// let header = Header {
    ///     response_info: Some(ResponseInfo { sequence_id: 42, status: Status::Success, message: None }),
    ///     ..Header::default()
    /// };
    /// let mut out = BytesMut::new();
    /// header.encode(&mut out);
    /// let h = HeaderRef::decode(&out).unwrap();
    /// assert_eq!(h.message_type, MessageType::Normal);
    /// assert_eq!(h.response_info.unwrap().sequence_id, 42);
    /// assert_eq!(h.to_owned(), header);
    /// ```
    pub fn decode(buf: &'a [u8]) -> Result<Self, ProtoError> {
        Self::read(&mut Reader::new(buf))
    }

    /// Reads the struct at the reader's position.
    #[inline]
    pub fn read(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        if let Some((h, len)) = canonical::header(r) {
            r.take(len)?;
            return Ok(h);
        }
        Self::read_general(r)
    }

    fn read_general(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.enter()?;
        let mut h = HeaderRef::default();
        while let Some((ty, id)) = r.read_field_begin()? {
            match (id, ty) {
                (1, TType::Byte) => {
                    h.message_type = read_enum_i8(r, "Header.messageType", MessageType::from_i8)?
                }
                (2, TType::Struct) => h.request_info = Some(RequestInfoRef::read(r)?),
                (3, TType::Struct) => h.response_info = Some(ResponseInfoRef::read(r)?),
                (4, TType::Struct) => h.trace_info = Some(TraceInfoRef::read(r)?),
                (5, TType::Map) => {
                    h.global_context = Some(ContextMap::read(
                        r,
                        5,
                        "Header.globalContext",
                        MAX_GLOBAL_CONTEXT_BYTES,
                    )?)
                }
                (6, TType::Map) => {
                    h.local_context = Some(ContextMap::read(
                        r,
                        6,
                        "Header.localContext",
                        MAX_LOCAL_CONTEXT_BYTES,
                    )?)
                }
                (7, TType::Struct) => h.heartbeat_info = Some(HeartbeatInfoRef::read(r)?),
                _ => skip_field(r, "Header", id, ty, &[])?,
            }
        }
        r.leave();
        Ok(h)
    }

    /// Writes the header as TBinaryProtocol (fields in id order, messageType always).
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_field_begin(out, TType::Byte, 1);
        thrift::write_i8(out, self.message_type as i8);
        if let Some(ri) = &self.request_info {
            thrift::write_field_begin(out, TType::Struct, 2);
            ri.encode(out);
        }
        if let Some(ri) = &self.response_info {
            thrift::write_field_begin(out, TType::Struct, 3);
            ri.encode(out);
        }
        if let Some(t) = &self.trace_info {
            thrift::write_field_begin(out, TType::Struct, 4);
            t.encode(out);
        }
        if let Some(c) = &self.global_context {
            thrift::write_field_begin(out, TType::Map, 5);
            c.encode(out);
        }
        if let Some(c) = &self.local_context {
            thrift::write_field_begin(out, TType::Map, 6);
            c.encode(out);
        }
        if let Some(hb) = &self.heartbeat_info {
            thrift::write_field_begin(out, TType::Struct, 7);
            out.put_slice(hb.raw);
        }
        thrift::write_field_stop(out);
    }

    /// The owned copy.
    pub fn to_owned(&self) -> Header {
        Header {
            message_type: self.message_type,
            request_info: self.request_info.map(|x| x.to_owned()),
            response_info: self.response_info.map(|x| x.to_owned()),
            trace_info: self.trace_info.map(|x| x.to_owned()),
            global_context: self.global_context.map(|c| c.to_vec()),
            local_context: self.local_context.map(|c| c.to_vec()),
            heartbeat_info: self.heartbeat_info.map(|x| x.to_owned()),
        }
    }
}

fn encode_context<B: BufMut>(out: &mut B, id: i16, entries: &[(String, String)]) {
    thrift::write_field_begin(out, TType::Map, id);
    thrift::write_map_begin(out, TType::String, TType::String, entries.len());
    for (k, v) in entries {
        thrift::write_binary(out, k.as_bytes());
        thrift::write_binary(out, v.as_bytes());
    }
}

impl Header {
    /// Writes the header as TBinaryProtocol (fields in id order, messageType always), the bytes
    /// Dorado writes. Context sizes are not checked here: keep them within the limits.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        thrift::write_field_begin(out, TType::Byte, 1);
        thrift::write_i8(out, self.message_type as i8);
        if let Some(ri) = &self.request_info {
            thrift::write_field_begin(out, TType::Struct, 2);
            ri.encode(out);
        }
        if let Some(ri) = &self.response_info {
            thrift::write_field_begin(out, TType::Struct, 3);
            ri.encode(out);
        }
        if let Some(t) = &self.trace_info {
            thrift::write_field_begin(out, TType::Struct, 4);
            t.encode(out);
        }
        if let Some(c) = &self.global_context {
            encode_context(out, 5, c);
        }
        if let Some(c) = &self.local_context {
            encode_context(out, 6, c);
        }
        if let Some(hb) = &self.heartbeat_info {
            thrift::write_field_begin(out, TType::Struct, 7);
            hb.encode(out);
        }
        thrift::write_field_stop(out);
    }

    /// Decodes header bytes into the owned form.
    pub fn decode(buf: &[u8]) -> Result<Self, ProtoError> {
        Ok(HeaderRef::decode(buf)?.to_owned())
    }
}

/// The header as every OCTO writer lays it out (fields in id order, no unknown field, ASCII
/// text), read in one straight pass. Anything else (and anything wrong) makes it give up without
/// consuming input, and the general decoder reads the header as before: this only ever returns
/// what the general decoder would return for the same bytes.
mod canonical {
    use super::{
        CallType, ContextMap, HeaderRef, MessageType, RequestInfoRef, ResponseInfoRef,
        TraceInfoRef, MAX_GLOBAL_CONTEXT_BYTES, MAX_LOCAL_CONTEXT_BYTES,
    };
    use crate::proto::thrift::{Reader, TType, MAX_DEPTH, STOP};

    struct Cursor<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        #[inline]
        fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
            let a = *self.buf.get(self.pos..)?.first_chunk::<N>()?;
            self.pos += N;
            Some(a)
        }

        #[inline]
        fn u8(&mut self) -> Option<u8> {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            Some(b)
        }

        #[inline]
        fn peek(&self) -> Option<u8> {
            self.buf.get(self.pos).copied()
        }

        /// The next field header, if it is exactly this one.
        #[inline]
        fn field(&mut self, ty: TType, id: u8) -> Option<()> {
            (self.array::<3>()? == [ty as u8, 0, id]).then_some(())
        }

        /// The next field header: `None` at STOP or if it is not a small id.
        #[inline]
        fn next_field(&mut self) -> Option<(u8, u8)> {
            let [ty, hi, id] = self.array::<3>()?;
            (hi == 0).then_some((ty, id))
        }

        #[inline]
        fn stop(&mut self) -> Option<()> {
            (self.u8()? == STOP).then_some(())
        }

        #[inline]
        fn i64(&mut self) -> Option<i64> {
            Some(i64::from_be_bytes(self.array()?))
        }

        #[inline]
        fn i32(&mut self) -> Option<i32> {
            Some(i32::from_be_bytes(self.array()?))
        }

        /// An ASCII string (other text goes to the general decoder, which validates it).
        #[inline]
        fn str(&mut self) -> Option<&'a str> {
            let len = usize::try_from(self.i32()?).ok()?;
            let b = self.buf.get(self.pos..)?.get(..len)?;
            self.pos += len;
            if !b.is_ascii() {
                return None;
            }
            // SAFETY: every byte is below 0x80, and a sequence of ASCII bytes is valid UTF-8.
            Some(unsafe { core::str::from_utf8_unchecked(b) })
        }
    }

    /// The header at the reader's position and its length, if it has the canonical layout.
    #[inline]
    pub(super) fn header<'a>(r: &Reader<'a>) -> Option<(HeaderRef<'a>, usize)> {
        // Header, a nested struct and a map inside: the general decoder's depth checks pass.
        if r.depth() + 2 >= MAX_DEPTH {
            return None;
        }
        let mut c = Cursor {
            buf: r.rest(),
            pos: 0,
        };
        c.field(TType::Byte, 1)?;
        let mut h = HeaderRef {
            message_type: MessageType::from_i8(c.u8()? as i8)?,
            ..HeaderRef::default()
        };
        let mut last = 1;
        loop {
            if c.peek()? == STOP {
                c.pos += 1;
                return Some((h, c.pos));
            }
            let (ty, id) = c.next_field()?;
            if id <= last {
                return None;
            }
            last = id;
            match (id, ty) {
                (2, t) if t == TType::Struct as u8 => h.request_info = Some(request_info(&mut c)?),
                (3, t) if t == TType::Struct as u8 => {
                    h.response_info = Some(response_info(&mut c)?)
                }
                (4, t) if t == TType::Struct as u8 => h.trace_info = Some(trace_info(&mut c)?),
                (5, t) if t == TType::Map as u8 => {
                    h.global_context = Some(context(&mut c, 5, MAX_GLOBAL_CONTEXT_BYTES)?)
                }
                (6, t) if t == TType::Map as u8 => {
                    h.local_context = Some(context(&mut c, 6, MAX_LOCAL_CONTEXT_BYTES)?)
                }
                _ => return None,
            }
        }
    }

    #[inline]
    fn request_info<'a>(c: &mut Cursor<'a>) -> Option<RequestInfoRef<'a>> {
        c.field(TType::String, 1)?;
        let service_name = c.str()?;
        c.field(TType::I64, 2)?;
        let sequence_id = c.i64()?;
        c.field(TType::Byte, 3)?;
        let call_type = CallType::from_i8(c.u8()? as i8)?;
        c.field(TType::I32, 4)?;
        let timeout_ms = c.i32()?;
        c.stop()?;
        Some(RequestInfoRef {
            service_name,
            sequence_id,
            call_type,
            timeout_ms,
        })
    }

    #[inline]
    fn response_info<'a>(c: &mut Cursor<'a>) -> Option<ResponseInfoRef<'a>> {
        c.field(TType::I64, 1)?;
        let sequence_id = c.i64()?;
        c.field(TType::Byte, 2)?;
        let status = super::status_from_i8(c.u8()? as i8)?;
        let mut message = None;
        if c.peek()? != STOP {
            c.field(TType::String, 3)?;
            message = Some(c.str()?);
        }
        c.stop()?;
        Some(ResponseInfoRef {
            sequence_id,
            status,
            message,
        })
    }

    #[inline]
    fn trace_info<'a>(c: &mut Cursor<'a>) -> Option<TraceInfoRef<'a>> {
        c.field(TType::String, 1)?;
        let mut t = TraceInfoRef {
            client_appkey: c.str()?,
            ..TraceInfoRef::default()
        };
        let mut last = 1;
        loop {
            if c.peek()? == STOP {
                c.pos += 1;
                return Some(t);
            }
            let (ty, id) = c.next_field()?;
            if id <= last {
                return None;
            }
            last = id;
            let string = ty == TType::String as u8;
            let boolean = ty == TType::Bool as u8;
            match id {
                2 if string => t.trace_id = Some(c.str()?),
                3 if string => t.span_id = Some(c.str()?),
                4 if string => t.root_message_id = Some(c.str()?),
                5 if string => t.current_message_id = Some(c.str()?),
                6 if string => t.server_message_id = Some(c.str()?),
                7 if boolean => t.debug = Some(c.u8()? == 1),
                8 if boolean => t.sample = Some(c.u8()? == 1),
                9 if string => t.client_ip = Some(c.str()?),
                _ => return None,
            }
        }
    }

    /// A context map, read by the general code (its checks and limits) on a reader one level
    /// down, as the general header decoder would be.
    #[inline]
    fn context<'a>(c: &mut Cursor<'a>, field: i16, max: usize) -> Option<ContextMap<'a>> {
        let mut r = Reader::new(c.buf.get(c.pos..)?);
        r.enter().ok()?;
        let what = if field == 5 {
            "Header.globalContext"
        } else {
            "Header.localContext"
        };
        let m = ContextMap::read(&mut r, field, what, max).ok()?;
        c.pos += r.position();
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<Header> {
        let request = RequestInfo {
            service_name: "com.meituan.Echo".into(),
            sequence_id: 0x0102_0304_0506_0708,
            call_type: CallType::NoReply,
            timeout_ms: 1000,
        };
        let trace = TraceInfo {
            client_appkey: "app".into(),
            trace_id: Some("t".into()),
            span_id: Some("0.1".into()),
            root_message_id: Some("r".into()),
            current_message_id: Some("c".into()),
            server_message_id: Some("s".into()),
            debug: Some(true),
            sample: Some(false),
            client_ip: Some("10.0.0.1".into()),
        };
        vec![
            Header::default(),
            Header {
                request_info: Some(request.clone()),
                ..Header::default()
            },
            Header {
                request_info: Some(request.clone()),
                trace_info: Some(trace),
                global_context: Some(vec![("k".into(), "v".into())]),
                local_context: Some(vec![("ключ".into(), "v".into()), ("".into(), "".into())]),
                ..Header::default()
            },
            Header {
                request_info: Some(RequestInfo {
                    service_name: "сервис".into(),
                    ..request.clone()
                }),
                ..Header::default()
            },
            Header {
                response_info: Some(ResponseInfo {
                    sequence_id: -1,
                    status: Status::ServiceException,
                    message: Some("no".into()),
                }),
                ..Header::default()
            },
            Header {
                message_type: MessageType::ScannerHeartbeat,
                heartbeat_info: Some(HeartbeatInfo::default()),
                ..Header::default()
            },
        ]
    }

    /// Reads `buf` with both decoders, checks they agree (value, position or error) and
    /// returns the result.
    fn both(buf: &[u8]) -> Result<HeaderRef<'_>, ProtoError> {
        let mut fast = Reader::new(buf);
        let a = HeaderRef::read(&mut fast).map(|h| (h, fast.position()));
        let mut general = Reader::new(buf);
        let b = HeaderRef::read_general(&mut general).map(|h| (h, general.position()));
        assert_eq!(a, b, "{buf:02x?}");
        a.map(|x| x.0)
    }

    #[test]
    fn the_canonical_reader_takes_what_writers_write() {
        for h in headers() {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            let taken = canonical::header(&Reader::new(&buf)).is_some();
            let ascii = h
                .request_info
                .as_ref()
                .map_or(true, |r| r.service_name.is_ascii());
            let expected = h.heartbeat_info.is_none() && ascii;
            assert_eq!(taken, expected, "{h:?}");
            assert_eq!(both(&buf).unwrap().to_owned(), h);
        }
    }

    #[test]
    fn the_canonical_reader_agrees_with_the_general_one_on_damaged_headers() {
        // Every header, truncated anywhere and with every byte changed in a few ways: the fast
        // path returns exactly what the general decoder returns (value, position or error).
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for h in headers() {
            let mut buf = Vec::new();
            h.encode(&mut buf);
            for n in 0..buf.len() {
                let _ = both(&buf[..n]);
            }
            for i in 0..buf.len() {
                for v in [
                    0u8,
                    1,
                    2,
                    0x7f,
                    0x80,
                    0xff,
                    buf[i] ^ 1,
                    buf[i].wrapping_add(1),
                ] {
                    let mut m = buf.clone();
                    m[i] = v;
                    let _ = both(&m);
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut m = buf.clone();
                m[i] = seed as u8;
                m[(i + (seed >> 8) as usize) % buf.len()] = (seed >> 16) as u8;
                let _ = both(&m);
            }
        }
    }
}
