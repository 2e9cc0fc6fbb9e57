//! One test per error case PROTOCOL.md (and the codec's limits) name: each malformed input is
//! rejected with the right ErrorKind, reported as the right OCTO status, and never panics.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use octo_engine::proto::echo;
use octo_engine::proto::thrift::{self, TType};
use octo_engine::proto::*;

fn kind<T: std::fmt::Debug>(r: Result<T, ProtoError>) -> ErrorKind {
    let e = r.expect_err("must be rejected");
    assert_eq!(e.status(), Status::ProtocolException, "{e}");
    e.kind()
}

fn response_header(seq: i64) -> Header {
    Header {
        response_info: Some(ResponseInfo {
            sequence_id: seq,
            status: Status::Success,
            message: None,
        }),
        ..Header::default()
    }
}

fn request_header() -> Header {
    Header {
        request_info: Some(RequestInfo {
            service_name: "com.example.Echo".into(),
            sequence_id: 1,
            call_type: CallType::Reply,
            timeout_ms: 1000,
        }),
        trace_info: Some(TraceInfo {
            client_appkey: "com.example.client".into(),
            ..TraceInfo::default()
        }),
        ..Header::default()
    }
}

fn frame(flags: Flags, header: &Header, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_octo(&mut out, flags, header, body).unwrap();
    out
}

fn split(bytes: &[u8], max: usize) -> Result<Option<Frame>, ProtoError> {
    FrameDecoder::new(max).decode(&mut BytesMut::from(bytes))
}

/// A raw OCTO frame with these prefix fields around `payload` (checksum appended if flagged).
fn raw_octo(protocol: u8, header_length: i16, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u16(0xABBA);
    out.put_u8(0);
    out.put_u8(protocol);
    let trailer = if protocol & 0x80 != 0 { 4 } else { 0 };
    out.put_i32((2 + payload.len() + trailer) as i32);
    out.put_i16(header_length);
    out.put_slice(payload);
    if trailer != 0 {
        let sum = adler(&out);
        out.put_u32(sum);
    }
    out.freeze()
}

fn adler(b: &[u8]) -> u32 {
    // Reference Adler-32, independent of the codec's.
    let (mut a, mut s) = (1u32, 0u32);
    for &x in b {
        a = (a + x as u32) % 65521;
        s = (s + a) % 65521;
    }
    (s << 16) | a
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---- framing ---------------------------------------------------------------------------------

#[test]
fn thrift_length_zero_is_rejected() {
    assert_eq!(
        kind(split(&[0, 0, 0, 0], 1024)),
        ErrorKind::InvalidThriftLength(0)
    );
}

#[test]
fn thrift_length_negative_is_rejected() {
    assert_eq!(
        kind(split(&[0x80, 0, 0, 1], 1024)),
        ErrorKind::InvalidThriftLength(i32::MIN + 1)
    );
}

#[test]
fn thrift_length_above_max_is_rejected_before_the_body_arrives() {
    let mut buf = BytesMut::from(&1025i32.to_be_bytes()[..]);
    let cap = buf.capacity();
    let e = FrameDecoder::new(1024).decode(&mut buf).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::FrameTooLarge {
            length: 1025,
            max: 1024
        }
    );
    assert_eq!(buf.capacity(), cap, "the buffer did not grow");
}

#[test]
fn a_large_announced_frame_reserves_only_a_bounded_step_ahead() {
    // A peer announces a frame just under the 16 MiB limit and sends nothing more: the buffer
    // must not grow to the announced size before the bytes arrive.
    let mut buf = BytesMut::from(&(15i32 << 20).to_be_bytes()[..]);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    assert!(
        buf.capacity() <= 4 + MAX_RESERVE_AHEAD,
        "reserved {} bytes for 4 that arrived",
        buf.capacity()
    );
}

#[test]
fn octo_total_length_above_max_is_rejected_from_the_prefix() {
    let mut buf = BytesMut::from(&[0xAB, 0xBA, 0, 1, 0x10, 0, 0, 0][..]);
    let e = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
        .decode(&mut buf)
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::FrameTooLarge {
            length: 0x1000_0000,
            ..
        }
    ));
    let big = frame(Flags::default(), &response_header(1), &[0; 100]).freeze();
    assert!(matches!(
        kind(decode_octo(big, 64)),
        ErrorKind::FrameTooLarge { .. }
    ));
}

#[test]
fn octo_total_length_below_2_is_rejected() {
    let e = kind(split(&[0xAB, 0xBA, 0, 1, 0, 0, 0, 1], 1024));
    assert_eq!(
        e,
        ErrorKind::OctoTotalLengthTooSmall {
            total_length: 1,
            min: 2
        }
    );
    let e = kind(decode_octo(
        Bytes::from_static(&[0xAB, 0xBA, 0, 1, 0, 0, 0, 1, 0, 0]),
        1024,
    ));
    assert_eq!(
        e,
        ErrorKind::OctoTotalLengthTooSmall {
            total_length: 1,
            min: 2
        }
    );
}

#[test]
fn octo_total_length_below_6_with_checksum_is_rejected() {
    let e = kind(split(&[0xAB, 0xBA, 0, 0x81, 0, 0, 0, 5], 1024));
    assert_eq!(
        e,
        ErrorKind::OctoTotalLengthTooSmall {
            total_length: 5,
            min: 6
        }
    );
    let f = Bytes::from_static(&[0xAB, 0xBA, 0, 0x81, 0, 0, 0, 5, 0, 0, 0, 0, 0]);
    assert_eq!(
        kind(decode_octo(f, 1024)),
        ErrorKind::OctoTotalLengthTooSmall {
            total_length: 5,
            min: 6
        }
    );
}

#[test]
fn negative_header_length_is_rejected() {
    let f = raw_octo(0x01, -1, &[0; 8]);
    assert_eq!(
        kind(decode_octo(f, 1024)),
        ErrorKind::NegativeHeaderLength(-1)
    );
}

#[test]
fn header_length_above_payload_is_rejected() {
    let f = raw_octo(0x01, 9, &[0; 8]);
    assert_eq!(
        kind(decode_octo(f, 1024)),
        ErrorKind::HeaderLengthExceedsPayload {
            header_length: 9,
            payload_length: 8
        }
    );
}

#[test]
fn header_length_above_decompressed_payload_is_rejected() {
    let f = raw_octo(0x41, 100, &gzip(&[0; 50]));
    assert_eq!(
        kind(decode_octo(f, 1024)),
        ErrorKind::HeaderLengthExceedsPayload {
            header_length: 100,
            payload_length: 50
        }
    );
}

#[test]
fn checksum_mismatch_is_rejected() {
    let flags = Flags {
        checksum: true,
        ..Flags::default()
    };
    let mut f = frame(flags, &response_header(3), b"body");
    let n = f.len();
    f[n - 6] ^= 1; // a body byte
    assert!(matches!(
        kind(decode_octo(f.freeze(), 1024)),
        ErrorKind::ChecksumMismatch { .. }
    ));
}

#[test]
fn checksum_covers_the_prefix() {
    let flags = Flags {
        checksum: true,
        ..Flags::default()
    };
    let mut f = frame(flags, &response_header(3), b"body");
    f[2] = 1; // the version byte
    assert!(matches!(
        kind(decode_octo(f.freeze(), 1024)),
        ErrorKind::ChecksumMismatch { .. }
    ));
}

#[test]
fn frame_given_to_decode_octo_must_be_exactly_one_frame() {
    let mut f = frame(Flags::default(), &response_header(3), b"body");
    f.put_u8(0);
    assert!(matches!(
        kind(decode_octo(f.freeze(), 1024)),
        ErrorKind::OctoFrameLengthMismatch { .. }
    ));
}

#[test]
fn octo_stream_rejects_a_frame_without_magic() {
    let mut buf = frame(Flags::default(), &response_header(1), b"");
    buf.extend_from_slice(&[0, 0, 0, 4, 1, 2, 3, 4]);
    let mut dec = FrameDecoder::new(1024);
    assert!(matches!(dec.decode(&mut buf), Ok(Some(Frame::Octo(_)))));
    assert_eq!(kind(dec.decode(&mut buf)), ErrorKind::BadMagic(0));
}

#[test]
fn thrift_stream_reads_octo_magic_as_a_negative_length() {
    let mut buf = BytesMut::from(&[0, 0, 0, 1, 7][..]);
    buf.extend_from_slice(&frame(Flags::default(), &response_header(1), b""));
    let mut dec = FrameDecoder::new(1024);
    assert!(matches!(dec.decode(&mut buf), Ok(Some(Frame::Thrift(_)))));
    assert!(matches!(kind(dec.decode(&mut buf)), ErrorKind::InvalidThriftLength(n) if n < 0));
}

#[test]
fn bad_magic_given_to_decode_octo_is_rejected() {
    let f = Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0]);
    assert_eq!(kind(decode_octo(f, 1024)), ErrorKind::BadMagic(0));
}

#[test]
fn both_compression_flags_are_rejected() {
    assert_eq!(
        kind(decode_octo(raw_octo(0x61, 0, &[1, 2]), 1024)),
        ErrorKind::ConflictingCompression
    );
}

#[test]
fn protostuff_serialization_is_rejected_but_the_header_stays_readable() {
    let flags = Flags {
        serialization: 3,
        ..Flags::default()
    };
    let f = decode_octo(frame(flags, &request_header(), b"x").freeze(), 1024).unwrap();
    assert_eq!(
        kind(f.thrift_body()),
        ErrorKind::UnsupportedSerialization(3)
    );
    assert_eq!(f.header_ref().unwrap().request_info.unwrap().sequence_id, 1);
}

#[test]
fn corrupt_gzip_is_rejected() {
    let mut z = gzip(b"some header and body bytes");
    z[12] ^= 0xFF;
    assert_eq!(
        kind(decode_octo(raw_octo(0x41, 0, &z), 1024)),
        ErrorKind::CorruptGzip
    );
    assert_eq!(
        kind(decode_octo(raw_octo(0x41, 0, b"not gzip"), 1024)),
        ErrorKind::CorruptGzip
    );
}

#[test]
fn truncated_gzip_is_rejected() {
    let z = gzip(b"some header and body bytes");
    let f = raw_octo(0x41, 0, &z[..z.len() - 3]);
    assert_eq!(kind(decode_octo(f, 1024)), ErrorKind::CorruptGzip);
}

#[test]
fn gzip_bomb_stops_at_the_frame_limit() {
    let z = gzip(&vec![0u8; 4 << 20]);
    assert!(z.len() < 8 << 10, "a small bomb: {} bytes", z.len());
    let e = kind(decode_octo(raw_octo(0x41, 0, &z), 64 << 10));
    assert_eq!(e, ErrorKind::DecompressedTooLarge { max: 64 << 10 });
}

#[test]
fn gzip_exactly_at_the_limit_is_accepted() {
    let z = gzip(&[7u8; 1000]);
    let f = decode_octo(raw_octo(0x41, 0, &z), 1000).unwrap();
    assert_eq!(f.body.len(), 1000);
}

#[test]
fn corrupt_snappy_is_rejected() {
    let mut s = snap::raw::Encoder::new()
        .compress_vec(&[b'a'; 300])
        .unwrap();
    let n = s.len();
    s.truncate(n - 2);
    assert_eq!(
        kind(decode_octo(raw_octo(0x21, 0, &s), 1024)),
        ErrorKind::CorruptSnappy
    );
    assert_eq!(
        kind(decode_octo(raw_octo(0x21, 0, &[0xFF; 6]), 1024)),
        ErrorKind::CorruptSnappy
    );
}

#[test]
fn snappy_declared_length_above_limit_is_rejected_before_decompressing() {
    // varint 1_000_000 and no data: only the declared length is read.
    let f = raw_octo(0x21, 0, &[0xC0, 0x84, 0x3D]);
    assert_eq!(
        kind(decode_octo(f, 64 << 10)),
        ErrorKind::DecompressedTooLarge { max: 64 << 10 }
    );
}

// ---- header struct ---------------------------------------------------------------------------

/// A header whose field 2 (RequestInfo) is written by `ri`.
fn header_with_request_info(ri: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::Byte, 1);
    thrift::write_i8(&mut v, 0);
    thrift::write_field_begin(&mut v, TType::Struct, 2);
    ri(&mut v);
    thrift::write_field_stop(&mut v);
    v
}

#[test]
fn missing_required_field_is_rejected() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::String, 1);
        thrift::write_binary(v, b"svc");
        thrift::write_field_begin(v, TType::I64, 2);
        thrift::write_i64(v, 1);
        thrift::write_field_begin(v, TType::Byte, 3);
        thrift::write_i8(v, 0);
        thrift::write_field_stop(v); // no timeout (4)
    });
    assert_eq!(
        kind(HeaderRef::decode(&h)),
        ErrorKind::MissingRequiredField {
            strukt: "RequestInfo",
            field: 4
        }
    );
}

#[test]
fn missing_required_field_of_every_struct_is_rejected() {
    let empty = [0u8];
    assert!(matches!(
        kind(RequestInfo::decode(&empty)),
        ErrorKind::MissingRequiredField { field: 1, .. }
    ));
    assert!(matches!(
        kind(ResponseInfo::decode(&empty)),
        ErrorKind::MissingRequiredField { field: 1, .. }
    ));
    assert!(matches!(
        kind(TraceInfo::decode(&empty)),
        ErrorKind::MissingRequiredField { field: 1, .. }
    ));
    assert!(matches!(
        kind(HeartbeatInfo::decode(&empty)),
        ErrorKind::MissingRequiredField { field: 4, .. }
    ));
    assert_eq!(LoadInfo::decode(&empty).unwrap(), LoadInfo::default());
}

#[test]
fn required_field_with_wrong_type_is_rejected() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::String, 1);
        thrift::write_binary(v, b"svc");
        thrift::write_field_begin(v, TType::I32, 2); // sequenceId must be i64
        thrift::write_i32(v, 1);
        thrift::write_field_stop(v);
    });
    assert_eq!(
        kind(HeaderRef::decode(&h)),
        ErrorKind::WrongFieldType {
            strukt: "RequestInfo",
            field: 2,
            expected: 10,
            actual: 8
        }
    );
}

#[test]
fn optional_field_with_wrong_type_is_skipped_like_apache_thrift() {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::I64, 1);
    thrift::write_i64(&mut v, 5);
    thrift::write_field_begin(&mut v, TType::Byte, 2);
    thrift::write_i8(&mut v, 0);
    thrift::write_field_begin(&mut v, TType::I32, 3); // message should be a string
    thrift::write_i32(&mut v, 77);
    thrift::write_field_stop(&mut v);
    let r = ResponseInfo::decode(&v).unwrap();
    assert_eq!(
        (r.sequence_id, r.status, r.message),
        (5, Status::Success, None)
    );
}

#[test]
fn context_map_with_wrong_element_types_is_rejected() {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::Map, 5);
    thrift::write_map_begin(&mut v, TType::String, TType::I32, 1);
    thrift::write_binary(&mut v, b"k");
    thrift::write_i32(&mut v, 1);
    thrift::write_field_stop(&mut v);
    assert!(matches!(
        kind(HeaderRef::decode(&v)),
        ErrorKind::WrongFieldType { field: 5, .. }
    ));
}

#[test]
fn truncated_header_is_rejected_at_every_length() {
    let mut h = BytesMut::new();
    let mut header = request_header();
    header.global_context = Some(vec![("a".into(), "b".into())]);
    header.encode(&mut h);
    for cut in 0..h.len() {
        let e = kind(HeaderRef::decode(&h[..cut]));
        assert!(
            matches!(
                e,
                ErrorKind::UnexpectedEof | ErrorKind::LengthOverrun { .. }
            ),
            "cut {cut}: {e:?}"
        );
    }
}

#[test]
fn string_length_overrun_is_rejected() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::String, 1);
        thrift::write_i32(v, 1000);
        v.extend_from_slice(b"svc");
    });
    assert!(matches!(
        kind(HeaderRef::decode(&h)),
        ErrorKind::LengthOverrun { length: 1000, .. }
    ));
}

#[test]
fn negative_string_length_is_rejected() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::String, 1);
        thrift::write_i32(v, -5);
    });
    assert_eq!(kind(HeaderRef::decode(&h)), ErrorKind::NegativeLength(-5));
}

#[test]
fn container_length_overrun_is_rejected() {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::Map, 6);
    thrift::write_map_begin(&mut v, TType::String, TType::String, i32::MAX as usize);
    thrift::write_field_stop(&mut v);
    assert!(matches!(
        kind(HeaderRef::decode(&v)),
        ErrorKind::LengthOverrun { .. }
    ));
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::List, 99); // unknown field
    thrift::write_list_begin(&mut v, TType::I64, 1_000_000);
    assert!(matches!(
        kind(HeaderRef::decode(&v)),
        ErrorKind::LengthOverrun { .. }
    ));
}

#[test]
fn nesting_beyond_the_depth_limit_is_rejected() {
    let mut v = vec![];
    for _ in 0..100 {
        thrift::write_field_begin(&mut v, TType::Struct, 50);
    }
    v.extend(std::iter::repeat_n(0u8, 101));
    assert_eq!(kind(HeaderRef::decode(&v)), ErrorKind::DepthExceeded);
}

#[test]
fn invalid_type_byte_is_rejected() {
    assert_eq!(
        kind(HeaderRef::decode(&[5, 0, 1, 0])),
        ErrorKind::InvalidType(5)
    );
}

#[test]
fn non_utf8_service_name_is_rejected() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::String, 1);
        thrift::write_binary(v, &[0xC3, 0x28]);
    });
    assert_eq!(
        kind(HeaderRef::decode(&h)),
        ErrorKind::InvalidUtf8 {
            what: "RequestInfo.serviceName"
        }
    );
}

#[test]
fn non_utf8_context_entry_is_rejected() {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::Map, 5);
    thrift::write_map_begin(&mut v, TType::String, TType::String, 1);
    thrift::write_binary(&mut v, b"k");
    thrift::write_binary(&mut v, &[0xFF]);
    thrift::write_field_stop(&mut v);
    assert_eq!(
        kind(HeaderRef::decode(&v)),
        ErrorKind::InvalidUtf8 {
            what: "Header.globalContext"
        }
    );
}

#[test]
fn non_utf8_echo_message_is_accepted_as_bytes() {
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, 1, &[0xFF, 0xFE]);
    assert_eq!(echo::decode_call(&body).unwrap(), (1, &[0xFF, 0xFE][..]));
}

#[test]
fn unknown_header_message_type_is_rejected() {
    let v = [3, 0, 1, 7, 0];
    assert_eq!(
        kind(HeaderRef::decode(&v)),
        ErrorKind::InvalidEnumValue {
            what: "Header.messageType",
            value: 7
        }
    );
}

#[test]
fn unknown_call_type_is_rejected() {
    let mut v = vec![];
    thrift::write_field_begin(&mut v, TType::Byte, 3);
    thrift::write_i8(&mut v, 9);
    assert!(matches!(
        kind(RequestInfo::decode(&v)),
        ErrorKind::InvalidEnumValue { value: 9, .. }
    ));
}

#[test]
fn unknown_response_status_is_rejected() {
    for code in [10i8, -1] {
        let mut v = vec![];
        thrift::write_field_begin(&mut v, TType::Byte, 2);
        thrift::write_i8(&mut v, code);
        assert!(
            matches!(kind(ResponseInfo::decode(&v)), ErrorKind::InvalidEnumValue { value, .. } if value == code as i32)
        );
    }
}

#[test]
fn global_context_over_512_bytes_is_rejected() {
    let mut h = BytesMut::new();
    Header {
        global_context: Some(vec![("k".into(), "v".repeat(512))]),
        ..Header::default()
    }
    .encode(&mut h);
    assert_eq!(
        kind(HeaderRef::decode(&h)),
        ErrorKind::ContextTooLarge {
            what: "Header.globalContext",
            bytes: 513,
            max: 512
        }
    );
}

#[test]
fn local_context_of_2_kib_is_accepted_and_over_is_rejected() {
    let enc = |n: usize| {
        let mut h = BytesMut::new();
        Header {
            local_context: Some(vec![("k".into(), "v".repeat(n - 1))]),
            ..Header::default()
        }
        .encode(&mut h);
        h
    };
    assert!(HeaderRef::decode(&enc(2048)).is_ok());
    assert!(matches!(
        kind(HeaderRef::decode(&enc(2049))),
        ErrorKind::ContextTooLarge { max: 2048, .. }
    ));
}

#[test]
fn unknown_fields_of_every_type_are_skipped() {
    let mut known = BytesMut::new();
    request_header().encode(&mut known);
    let mut v = known[..known.len() - 1].to_vec(); // drop STOP
    let mut add = |id: i16, ty: TType, val: &dyn Fn(&mut Vec<u8>)| {
        thrift::write_field_begin(&mut v, ty, id);
        val(&mut v);
    };
    add(20, TType::Bool, &|v| thrift::write_bool(v, true));
    add(21, TType::Byte, &|v| thrift::write_i8(v, 1));
    add(22, TType::Double, &|v| thrift::write_double(v, 1.0));
    add(23, TType::I16, &|v| thrift::write_i16(v, 1));
    add(24, TType::I32, &|v| thrift::write_i32(v, 1));
    add(25, TType::I64, &|v| thrift::write_i64(v, 1));
    add(26, TType::String, &|v| thrift::write_binary(v, b"x"));
    add(27, TType::Struct, &|v| {
        thrift::write_field_begin(v, TType::Struct, 1);
        thrift::write_field_begin(v, TType::List, 1);
        thrift::write_list_begin(v, TType::String, 1);
        thrift::write_binary(v, b"deep");
        thrift::write_field_stop(v);
        thrift::write_field_stop(v);
    });
    add(28, TType::Map, &|v| {
        thrift::write_map_begin(v, TType::I32, TType::Set, 1);
        thrift::write_i32(v, 1);
        thrift::write_set_begin(v, TType::Double, 1);
        thrift::write_double(v, 2.0);
    });
    add(29, TType::Set, &|v| {
        thrift::write_set_begin(v, TType::Bool, 0)
    });
    add(30, TType::List, &|v| {
        thrift::write_list_begin(v, TType::Map, 1);
        thrift::write_map_begin(v, TType::String, TType::String, 0);
    });
    thrift::write_field_stop(&mut v);
    assert_eq!(Header::decode(&v).unwrap(), request_header());
}

#[test]
fn unknown_fields_inside_known_structs_are_skipped() {
    let h = header_with_request_info(|v| {
        thrift::write_field_begin(v, TType::List, 9);
        thrift::write_list_begin(v, TType::I16, 2);
        thrift::write_i16(v, 1);
        thrift::write_i16(v, 2);
        RequestInfo {
            service_name: "s".into(),
            sequence_id: 2,
            call_type: CallType::NoReply,
            timeout_ms: 5,
        }
        .encode(v);
    });
    let ri = HeaderRef::decode(&h).unwrap().request_info.unwrap();
    assert_eq!(
        (ri.service_name, ri.sequence_id, ri.call_type, ri.timeout_ms),
        ("s", 2, CallType::NoReply, 5)
    );
}

// ---- Thrift message envelope -----------------------------------------------------------------

#[test]
fn invalid_message_version_is_rejected() {
    let body = [0x80, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        kind(peek_message(&body)),
        ErrorKind::InvalidMessageVersion(0x8002_0001u32 as i32)
    );
}

#[test]
fn unknown_message_type_is_rejected() {
    let mut body = BytesMut::new();
    body.put_u32(0x8001_0005);
    thrift::write_binary(&mut body, b"echo");
    body.put_i32(1);
    assert_eq!(kind(peek_message(&body)), ErrorKind::UnknownMessageType(5));
}

#[test]
fn truncated_message_header_is_rejected() {
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "echo", ThriftMessageType::Call, 1);
    for cut in 0..body.len() {
        assert!(matches!(
            kind(peek_message(&body[..cut])),
            ErrorKind::UnexpectedEof | ErrorKind::LengthOverrun { .. }
        ));
    }
}

#[test]
fn non_strict_message_header_is_read() {
    let mut body = BytesMut::new();
    thrift::write_binary(&mut body, b"echo");
    body.put_u8(1);
    body.put_i32(9);
    let m = peek_message(&body).unwrap();
    assert_eq!(
        (m.name, m.kind, m.seqid, m.payload_offset),
        ("echo", ThriftMessageType::Call, 9, 13)
    );
}

#[test]
fn non_utf8_method_name_is_rejected() {
    let mut body = BytesMut::new();
    body.put_u32(0x8001_0001);
    thrift::write_binary(&mut body, &[0xFF]);
    body.put_i32(1);
    assert!(matches!(
        kind(peek_message(&body)),
        ErrorKind::InvalidUtf8 { .. }
    ));
}

#[test]
fn unknown_method_is_a_service_exception() {
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "reverse", ThriftMessageType::Call, 1);
    thrift::write_field_stop(&mut body);
    let e = echo::decode_call(&body).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownMethod);
    assert_eq!(e.status(), Status::ServiceException);
}

#[test]
fn reply_given_to_decode_call_is_rejected() {
    let mut body = BytesMut::new();
    echo::encode_reply(&mut body, 1, b"x");
    assert_eq!(
        kind(echo::decode_call(&body)),
        ErrorKind::UnexpectedMessageType(2)
    );
}

#[test]
fn echo_call_without_its_argument_is_rejected() {
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "echo", ThriftMessageType::Call, 1);
    thrift::write_field_stop(&mut body);
    assert_eq!(
        kind(echo::decode_call(&body)),
        ErrorKind::MissingRequiredField {
            strukt: "echo_args",
            field: 1
        }
    );
}

#[test]
fn echo_reply_without_a_result_is_rejected() {
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "echo", ThriftMessageType::Reply, 1);
    thrift::write_field_stop(&mut body);
    assert_eq!(
        kind(echo::decode_reply(&body)),
        ErrorKind::MissingRequiredField {
            strukt: "echo_result",
            field: 0
        }
    );
}

#[test]
fn echo_call_skips_unknown_argument_fields() {
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "echo", ThriftMessageType::Oneway, 4);
    thrift::write_field_begin(&mut body, TType::Map, 7);
    thrift::write_map_begin(&mut body, TType::I16, TType::I16, 1);
    thrift::write_i16(&mut body, 1);
    thrift::write_i16(&mut body, 2);
    thrift::write_field_begin(&mut body, TType::String, 1);
    thrift::write_binary(&mut body, b"m");
    thrift::write_field_stop(&mut body);
    assert_eq!(echo::decode_call(&body).unwrap(), (4, &b"m"[..]));
}

#[test]
fn every_error_kind_but_unknown_method_is_a_protocol_exception() {
    let kinds = [
        ErrorKind::InvalidThriftLength(0),
        ErrorKind::FrameTooLarge { length: 1, max: 0 },
        ErrorKind::ChecksumMismatch {
            carried: 0,
            computed: 1,
        },
        ErrorKind::UnsupportedSerialization(3),
        ErrorKind::DecompressedTooLarge { max: 0 },
        ErrorKind::DepthExceeded,
        ErrorKind::UnknownMessageType(9),
    ];
    for k in kinds {
        assert_eq!(ProtoError::new(k).status(), Status::ProtocolException);
        assert!(!ProtoError::new(k).to_string().is_empty());
    }
    assert_eq!(
        ProtoError::new(ErrorKind::UnknownMethod).status(),
        Status::ServiceException
    );
}
