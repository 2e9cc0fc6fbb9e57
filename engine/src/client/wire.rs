//! The frames the client writes: requests and heartbeats as Dorado's client writes them
//! (PROTOCOL.md §5), in OCTO or plain Thrift framing, built in place in a connection's output.

use bytes::{BufMut, BytesMut};

use crate::proto::{
    write_message_begin, CallType, Compression, ErrorKind, Flags, HeaderRef, MessageType,
    OctoFrameWriter, ProtoError, RequestInfoRef, ThriftFrameWriter, ThriftMessageType,
    TraceInfoRef,
};

use super::call::Request;

/// Who is calling: the values every OCTO request header carries.
#[derive(Clone, Debug)]
pub(crate) struct CallerInfo {
    /// RequestInfo.serviceName.
    pub service_name: String,
    /// TraceInfo.clientAppkey.
    pub appkey: String,
    /// TraceInfo.clientIp.
    pub client_ip: Option<String>,
    /// The OCTO protocol byte (checksum, compression; serialization 1).
    pub flags: Flags,
}

/// Appends an OCTO request frame: messageType Normal, RequestInfo, TraceInfo, then the request's
/// Thrift message with its seqid set to the low 32 bits of `sequence_id`.
pub(crate) fn write_octo_request(
    out: &mut BytesMut,
    caller: &CallerInfo,
    request: &Request,
    sequence_id: i64,
    call_type: CallType,
    timeout_ms: i32,
) -> Result<usize, ProtoError> {
    let mut w = OctoFrameWriter::begin(out, 0, caller.flags);
    request_header(
        caller,
        MessageType::Normal,
        sequence_id,
        call_type,
        timeout_ms,
    )
    .encode(w.buf());
    w.end_header();
    put_body(w.buf(), request, sequence_id as i32);
    w.finish()
}

/// An OCTO request frame's prefix and header, encoded once per connection and call type: a
/// request then costs a copy and three patches (sequence id, timeout, lengths) instead of encoding
/// the header's strings and structs again. Only for frames without compression or checksum
/// (theirs cover the whole frame); [`write_octo_request`] does those.
pub(crate) struct RequestTemplate {
    /// Frame prefix (lengths zero) and header.
    bytes: Vec<u8>,
    /// Offsets of RequestInfo.sequenceId (i64) and RequestInfo.timeout (i32) in `bytes`.
    seq_at: usize,
    timeout_at: usize,
}

/// The frame prefix: magic, version, flags, total length (i32), header length (i16).
const PREFIX_LEN: usize = 10;

impl RequestTemplate {
    /// The template for `caller`'s requests of `call_type`; `None` if its frames are compressed or
    /// checksummed, or the header does not encode as expected.
    pub(crate) fn new(caller: &CallerInfo, call_type: CallType) -> Option<RequestTemplate> {
        if caller.flags.checksum || caller.flags.compression != Compression::None {
            return None;
        }
        // Encode twice, with every bit of the two variable fields flipped: the bytes that differ
        // are where they sit.
        let encode = |seq: i64, timeout: i32| {
            let mut out = BytesMut::new();
            let mut w = OctoFrameWriter::begin(&mut out, 0, caller.flags);
            request_header(caller, MessageType::Normal, seq, call_type, timeout).encode(w.buf());
            w.end_header();
            w.finish().ok()?;
            Some(out)
        };
        let (a, b) = (encode(0, 0)?, encode(-1, -1)?);
        if a.len() != b.len() || a.len() <= PREFIX_LEN {
            return None;
        }
        let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        let (seq_at, timeout_at) = (*differ.first()?, *differ.get(8)?);
        let expected: Vec<usize> = (seq_at..seq_at + 8)
            .chain(timeout_at..timeout_at + 4)
            .collect();
        if differ != expected || seq_at < PREFIX_LEN {
            return None;
        }
        let mut bytes = a.to_vec();
        bytes[4..8].fill(0);
        Some(RequestTemplate {
            bytes,
            seq_at,
            timeout_at,
        })
    }

    /// Appends the request frame, byte for byte what [`write_octo_request`] writes.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        request: &Request,
        sequence_id: i64,
        timeout_ms: i32,
    ) -> Result<usize, ProtoError> {
        let payload_len = self.bytes.len() - PREFIX_LEN + request.body.len();
        let Ok(total) = i32::try_from(2 + payload_len) else {
            return Err(ProtoError::new(ErrorKind::FrameTooLarge {
                length: (2 + payload_len) as u64,
                max: i32::MAX as usize,
            }));
        };
        let start = out.len();
        out.reserve(self.bytes.len() + request.body.len());
        out.extend_from_slice(&self.bytes);
        let frame = &mut out[start..];
        frame[4..8].copy_from_slice(&total.to_be_bytes());
        frame[self.seq_at..self.seq_at + 8].copy_from_slice(&sequence_id.to_be_bytes());
        frame[self.timeout_at..self.timeout_at + 4].copy_from_slice(&timeout_ms.to_be_bytes());
        put_body(out, request, sequence_id as i32);
        Ok(out.len() - start)
    }
}

/// Appends a plain-Thrift request frame: the request's message with seqid `seqid`.
pub(crate) fn write_thrift_request(
    out: &mut BytesMut,
    request: &Request,
    seqid: i32,
) -> Result<usize, ProtoError> {
    let mut w = ThriftFrameWriter::begin(out);
    put_body(w.buf(), request, seqid);
    w.finish()
}

/// Appends an OCTO NormalHeartbeat request: the request header alone, with an empty body.
pub(crate) fn write_octo_heartbeat(
    out: &mut BytesMut,
    caller: &CallerInfo,
    sequence_id: i64,
    timeout_ms: i32,
) -> Result<usize, ProtoError> {
    let mut w = OctoFrameWriter::begin(out, 0, caller.flags);
    request_header(
        caller,
        MessageType::NormalHeartbeat,
        sequence_id,
        CallType::Reply,
        timeout_ms,
    )
    .encode(w.buf());
    w.end_header();
    w.finish()
}

/// Appends a plain-Thrift heartbeat: a CALL of `method` with no arguments. Plain Thrift has no
/// heartbeat frame; any answer to this call (a REPLY, or the EXCEPTION "unknown method" that
/// Apache Thrift servers send) proves that the server reads and answers on this connection.
pub(crate) fn write_thrift_heartbeat(
    out: &mut BytesMut,
    method: &str,
    seqid: i32,
) -> Result<usize, ProtoError> {
    let mut w = ThriftFrameWriter::begin(out);
    write_message_begin(w.buf(), method, ThriftMessageType::Call, seqid);
    w.buf().put_u8(0); // empty args struct: STOP
    w.finish()
}

fn request_header<'a>(
    caller: &'a CallerInfo,
    message_type: MessageType,
    sequence_id: i64,
    call_type: CallType,
    timeout_ms: i32,
) -> HeaderRef<'a> {
    HeaderRef {
        message_type,
        request_info: Some(RequestInfoRef {
            service_name: &caller.service_name,
            sequence_id,
            call_type,
            timeout_ms,
        }),
        trace_info: Some(TraceInfoRef {
            client_appkey: &caller.appkey,
            client_ip: caller.client_ip.as_deref(),
            ..TraceInfoRef::default()
        }),
        ..HeaderRef::default()
    }
}

/// The request's Thrift message with its seqid replaced.
fn put_body(out: &mut BytesMut, request: &Request, seqid: i32) {
    let body = &request.body;
    let at = request.seqid_offset;
    out.reserve(body.len());
    out.extend_from_slice(&body[..at]);
    out.put_i32(seqid);
    out.extend_from_slice(&body[at + 4..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode_octo, peek_message, Header, DEFAULT_MAX_FRAME_SIZE};

    fn caller() -> CallerInfo {
        CallerInfo {
            service_name: "com.meituan.dorado.test.thrift.api.Echo".into(),
            appkey: "com.meituan.octo.dorado.client".into(),
            client_ip: Some("10.4.5.6".into()),
            flags: Flags::default(),
        }
    }

    fn golden(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../shared/vectors/dorado/{name}.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    #[test]
    fn an_octo_request_is_byte_identical_to_dorados_request_plain_1k() {
        let want = golden("request_plain_1k");
        let frame = decode_octo(want.clone().into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        // The same Thrift message with another seqid: the client must put its own back.
        let mut body = BytesMut::from(&frame.body[..]);
        let at = peek_message(&body).unwrap().payload_offset - 4;
        body[at..at + 4].copy_from_slice(&999i32.to_be_bytes());
        let request = Request::new(body.freeze()).unwrap();
        let mut out = BytesMut::new();
        write_octo_request(&mut out, &caller(), &request, 1, CallType::Reply, 1000).unwrap();
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn an_octo_request_above_2_32_carries_the_low_32_bits_as_its_thrift_seqid() {
        let want = golden("request_seq_above_2_32");
        let frame = decode_octo(want.clone().into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        let header = Header::decode(&frame.header).unwrap();
        let info = header.request_info.unwrap();
        let request = Request::new(frame.body.clone()).unwrap();
        let mut out = BytesMut::new();
        write_octo_request(
            &mut out,
            &caller(),
            &request,
            info.sequence_id,
            info.call_type,
            info.timeout_ms,
        )
        .unwrap();
        assert_eq!(info.sequence_id, (1 << 32) + 77);
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn a_heartbeat_is_byte_identical_to_dorados_heartbeat_request() {
        let want = golden("heartbeat_request");
        let mut out = BytesMut::new();
        write_octo_heartbeat(&mut out, &caller(), 6, 3000).unwrap();
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn a_thrift_request_is_byte_identical_to_dorados_native_thrift_request() {
        let want = golden("native_thrift_request_1k");
        let request = Request::new(bytes::Bytes::copy_from_slice(&want[4..])).unwrap();
        let seqid = peek_message(&want[4..]).unwrap().seqid;
        let mut out = BytesMut::new();
        write_thrift_request(&mut out, &request, seqid).unwrap();
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn a_thrift_heartbeat_is_an_argumentless_call() {
        let mut out = BytesMut::new();
        write_thrift_heartbeat(&mut out, "ping", -5).unwrap();
        let m = peek_message(&out[4..]).unwrap();
        assert_eq!(
            (m.name, m.kind, m.seqid),
            ("ping", ThriftMessageType::Call, -5)
        );
        assert_eq!(&out[4 + m.payload_offset..], &[0]);
    }

    #[test]
    fn a_templated_request_is_byte_identical_to_an_encoded_one() {
        let mut body = BytesMut::new();
        crate::proto::echo::encode_call(&mut body, 0, &[7u8; 300]);
        let request = Request::new(body.freeze()).unwrap();
        for call_type in [CallType::Reply, CallType::NoReply] {
            for mut c in [
                caller(),
                CallerInfo {
                    client_ip: None,
                    ..caller()
                },
            ] {
                c.flags.serialization = 2;
                let t = RequestTemplate::new(&c, call_type).expect("a template");
                for (seq, timeout) in [
                    (1, 1000),
                    ((1 << 32) + 77, 1),
                    (i64::MAX, i32::MAX),
                    (0, -1),
                ] {
                    let (mut want, mut got) = (BytesMut::new(), BytesMut::from(&b"xy"[..]));
                    let n = write_octo_request(&mut want, &c, &request, seq, call_type, timeout)
                        .unwrap();
                    assert_eq!(t.write(&mut got, &request, seq, timeout).unwrap(), n);
                    assert_eq!(&got[2..], &want[..], "seq {seq} timeout {timeout}");
                }
            }
        }
    }

    #[test]
    fn compressed_or_checksummed_frames_get_no_template() {
        let mut c = caller();
        c.flags.checksum = true;
        assert!(RequestTemplate::new(&c, CallType::Reply).is_none());
        let mut c = caller();
        c.flags.compression = Compression::Gzip;
        assert!(RequestTemplate::new(&c, CallType::Reply).is_none());
    }
}
