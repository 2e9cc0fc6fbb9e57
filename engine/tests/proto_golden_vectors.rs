//! The Dorado golden vectors (../shared/vectors/dorado): octo decodes each to exactly the values
//! in index.json and re-encodes each from those values to the same bytes (compressed frames:
//! same bytes outside the compressed region, same bytes after decompression).

use bytes::{Bytes, BytesMut};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/dorado");

struct Vector {
    name: String,
    bytes: Vec<u8>,
    meta: Value,
}

fn vectors() -> Vec<Vector> {
    let index = std::fs::read_to_string(format!("{DIR}/index.json")).expect("index.json");
    let index: Value = serde_json::from_str(&index).expect("index.json parses");
    let vs = index["vectors"].as_array().expect("vectors array");
    assert!(vs.len() >= 20, "expected the full vector set");
    vs.iter()
        .map(|v| Vector {
            name: v["name"].as_str().unwrap().to_owned(),
            bytes: std::fs::read(format!("{DIR}/{}", v["file"].as_str().unwrap())).unwrap(),
            meta: v.clone(),
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s(v: &Value) -> String {
    v.as_str().expect("string").to_owned()
}

fn opt_s(v: &Value, k: &str) -> Option<String> {
    v.get(k).map(s)
}

fn context(v: &Value) -> Option<Vec<(String, String)>> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

/// The Header that index.json describes (only fields present on the wire are listed there).
fn expected_header(h: &Value) -> Header {
    Header {
        message_type: MessageType::from_i8(h["messageType"].as_i64().unwrap() as i8).unwrap(),
        request_info: h.get("requestInfo").map(|r| RequestInfo {
            service_name: s(&r["serviceName"]),
            sequence_id: r["sequenceId"].as_i64().unwrap(),
            call_type: CallType::from_i8(r["callType"].as_i64().unwrap() as i8).unwrap(),
            timeout_ms: r["timeout"].as_i64().unwrap() as i32,
        }),
        response_info: h.get("responseInfo").map(|r| ResponseInfo {
            sequence_id: r["sequenceId"].as_i64().unwrap(),
            status: Status::from_code(r["status"].as_u64().unwrap() as u8).unwrap(),
            message: opt_s(r, "message"),
        }),
        trace_info: h.get("traceInfo").map(|t| TraceInfo {
            client_appkey: s(&t["clientAppkey"]),
            trace_id: opt_s(t, "traceId"),
            span_id: opt_s(t, "spanId"),
            root_message_id: opt_s(t, "rootMessageId"),
            current_message_id: opt_s(t, "currentMessageId"),
            server_message_id: opt_s(t, "serverMessageId"),
            debug: t.get("debug").map(|b| b.as_bool().unwrap()),
            sample: t.get("sample").map(|b| b.as_bool().unwrap()),
            client_ip: opt_s(t, "clientIp"),
        }),
        global_context: h.get("globalContext").and_then(context),
        local_context: h.get("localContext").and_then(context),
        heartbeat_info: h.get("heartbeatInfo").map(|b| {
            assert!(b.get("loadInfo").is_none(), "vectors carry no loadInfo");
            HeartbeatInfo {
                appkey: opt_s(b, "appkey"),
                send_time: b.get("sendTime").map(|t| t.as_i64().unwrap()),
                load_info: None,
                status: b["status"].as_i64().unwrap() as i32,
            }
        }),
    }
}

/// The string an index.json string description stands for, checked against its length and hash.
fn expected_string(d: &Value) -> Vec<u8> {
    let text = match d.get("value") {
        Some(v) => s(v),
        None => {
            let p = &d["pattern"];
            let chars = p["repeat_then_truncate_to_chars"].as_u64().unwrap() as usize;
            s(&p["unit"]).chars().cycle().take(chars).collect()
        }
    };
    assert_eq!(text.len() as u64, d["utf8_len"].as_u64().unwrap());
    assert_eq!(hex(&Sha256::digest(text.as_bytes())), s(&d["sha256"]));
    text.into_bytes()
}

/// Splits the file with a FrameDecoder fed in small pieces: exactly one frame, nothing left over.
fn split_one(bytes: &[u8]) -> (Frame, Option<Framing>) {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut buf = BytesMut::new();
    let mut frames = vec![];
    for chunk in bytes.chunks(97) {
        buf.extend_from_slice(chunk);
        while let Some(f) = dec.decode(&mut buf).expect("vector splits") {
            frames.push(f);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(frames.len(), 1);
    (frames.pop().unwrap(), dec.framing())
}

/// Checks a body against index.json and re-encodes it from the indexed values.
fn check_body(name: &str, body: &[u8], b: &Value) -> Vec<u8> {
    assert_eq!(body.len() as u64, b["length"].as_u64().unwrap(), "{name}");
    let tm = &b["thrift_message"];
    let m = peek_message(body).unwrap();
    assert_eq!(m.name, s(&tm["name"]), "{name}");
    assert_eq!(m.kind as u8 as u64, tm["type"].as_u64().unwrap(), "{name}");
    assert_eq!(m.seqid as i64, tm["seqid"].as_i64().unwrap(), "{name}");
    let mut out = BytesMut::new();
    if let Some(a) = b.get("args_messge") {
        let want = expected_string(a);
        let (seqid, msg) = echo::decode_call(body).unwrap();
        assert_eq!((seqid, msg), (m.seqid, &want[..]), "{name}");
        echo::encode_call(&mut out, seqid, &want);
    } else if let Some(r) = b.get("result_success") {
        let want = expected_string(r);
        let (seqid, reply) = echo::decode_reply(body).unwrap();
        assert_eq!(reply, EchoReply::Success(&want[..]), "{name}");
        echo::encode_reply(&mut out, seqid, &want);
    } else {
        let e = &b["application_exception"];
        let (seqid, reply) = echo::decode_reply(body).unwrap();
        let want = ApplicationException {
            message: s(&e["message"]),
            kind: ApplicationExceptionKind::from_i32(e["type"].as_i64().unwrap() as i32),
        };
        assert_eq!(reply, EchoReply::Exception(want.clone()), "{name}");
        write_application_exception(&mut out, m.name, seqid, want.kind, &want.message);
    }
    out.to_vec()
}

#[test]
fn every_vector_file_matches_its_index_size_and_sha256() {
    for v in vectors() {
        assert_eq!(
            v.bytes.len() as u64,
            v.meta["size"].as_u64().unwrap(),
            "{}",
            v.name
        );
        assert_eq!(
            hex(&Sha256::digest(&v.bytes)),
            s(&v.meta["sha256"]),
            "{}",
            v.name
        );
    }
}

#[test]
fn octo_vectors_decode_to_the_indexed_frame_header_and_body() {
    let mut seen = 0;
    for v in vectors()
        .into_iter()
        .filter(|v| v.meta["frame"]["framing"] == "octo")
    {
        seen += 1;
        let (name, fm) = (&v.name, &v.meta["frame"]);
        let (frame, framing) = split_one(&v.bytes);
        assert_eq!(framing, Some(Framing::Octo), "{name}");
        let Frame::Octo(raw) = frame else {
            panic!("{name}: not an OCTO frame")
        };
        assert_eq!(raw.len(), v.bytes.len());
        assert_eq!(
            i32::from_be_bytes(raw[4..8].try_into().unwrap()) as u64,
            fm["total_length"].as_u64().unwrap()
        );
        assert_eq!(
            i16::from_be_bytes(raw[8..10].try_into().unwrap()) as u64,
            fm["header_length"].as_u64().unwrap()
        );
        let f = decode_octo(raw.clone(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(f.version as u64, fm["version"].as_u64().unwrap(), "{name}");
        assert_eq!(
            f.flags.to_byte() as u64,
            fm["protocol_byte"].as_u64().unwrap(),
            "{name}"
        );
        let flags = &fm["flags"];
        assert_eq!(
            f.flags.checksum,
            flags["checksum"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            f.flags.compression == Compression::Gzip,
            flags["gzip"].as_bool().unwrap()
        );
        assert_eq!(
            f.flags.compression == Compression::Snappy,
            flags["snappy"].as_bool().unwrap()
        );
        assert_eq!(
            f.flags.serialization as u64,
            flags["serialize_code"].as_u64().unwrap()
        );
        let payload_on_wire = raw.len() - 10 - if f.flags.checksum { 4 } else { 0 };
        assert_eq!(
            payload_on_wire as u64,
            fm["payload_length_on_wire"].as_u64().unwrap()
        );
        if let Some(sum) = fm.get("checksum_adler32_hex") {
            assert_eq!(
                format!(
                    "{:#010x}",
                    u32::from_be_bytes(raw[raw.len() - 4..].try_into().unwrap())
                ),
                s(sum)
            );
        }
        assert_eq!(
            f.header.len() as u64,
            fm["header_length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            (f.header.len() + f.body.len()) as u64,
            fm["header_body_length_uncompressed"].as_u64().unwrap()
        );
        assert_eq!(
            f.body.len() as u64,
            fm["body_length_uncompressed"].as_u64().unwrap(),
            "{name}"
        );

        let header = f.header_ref().unwrap();
        assert_eq!(
            header.to_owned(),
            expected_header(&v.meta["header"]),
            "{name}"
        );
        match &v.meta["body"] {
            Value::Null => assert!(f.body.is_empty(), "{name}"),
            b => {
                check_body(name, f.thrift_body().unwrap(), b);
            }
        }
    }
    assert_eq!(seen, 19);
}

#[test]
fn context_maps_iterate_in_wire_order() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "request_trace_contexts_utf8")
        .unwrap();
    let f = decode_octo(Bytes::from(v.bytes), DEFAULT_MAX_FRAME_SIZE).unwrap();
    let h = f.header_ref().unwrap();
    let local: Vec<_> = h.local_context.unwrap().iter().collect();
    assert_eq!(
        local,
        [("город", "Москва"), ("emoji", "🚀✓"), ("empty", "")]
    );
    let global = h.global_context.unwrap();
    assert_eq!(global.get("tenant"), Some("美团点评"));
    assert_eq!(
        global.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["tenant", "lang"]
    );
}

#[test]
fn native_thrift_vectors_decode_to_the_indexed_message_and_re_encode_byte_for_byte() {
    let mut seen = 0;
    for v in vectors()
        .into_iter()
        .filter(|v| v.meta["frame"]["framing"] == "thrift-framed")
    {
        seen += 1;
        let name = &v.name;
        let (frame, framing) = split_one(&v.bytes);
        assert_eq!(framing, Some(Framing::Thrift), "{name}");
        let Frame::Thrift(body) = frame else {
            panic!("{name}: not a Thrift frame")
        };
        assert_eq!(
            body.len() as u64,
            v.meta["frame"]["length_prefix"].as_u64().unwrap()
        );
        assert!(v.meta["header"].is_null());
        let re_body = check_body(name, &body, &v.meta["body"]);
        let mut out = BytesMut::new();
        let mut w = ThriftFrameWriter::begin(&mut out);
        w.buf().extend_from_slice(&re_body);
        w.finish().unwrap();
        assert_eq!(hex(&out), hex(&v.bytes), "{name}");
    }
    assert_eq!(seen, 2);
}

#[test]
fn octo_vectors_re_encode_from_the_indexed_values() {
    for v in vectors()
        .into_iter()
        .filter(|v| v.meta["frame"]["framing"] == "octo")
    {
        let name = &v.name;
        let fm = &v.meta["frame"];
        let flags = Flags::from_byte(fm["protocol_byte"].as_u64().unwrap() as u8).unwrap();
        let header = expected_header(&v.meta["header"]);
        let body = match &v.meta["body"] {
            Value::Null => vec![],
            b => {
                // The body is rebuilt from the indexed values only; check_body decodes the original first.
                let orig =
                    decode_octo(Bytes::from(v.bytes.clone()), DEFAULT_MAX_FRAME_SIZE).unwrap();
                check_body(name, &orig.body, b)
            }
        };
        let mut out = BytesMut::new();
        encode_octo(&mut out, flags, &header, &body).unwrap();
        if flags.compression == Compression::None {
            assert_eq!(hex(&out), hex(&v.bytes), "{name}");
        } else {
            // Outside the compressed region: magic, version, protocol byte, header_length.
            assert_eq!(out[..4], v.bytes[..4], "{name}");
            assert_eq!(out[8..10], v.bytes[8..10], "{name}");
            let ours = decode_octo(out.freeze(), DEFAULT_MAX_FRAME_SIZE).unwrap();
            let theirs = decode_octo(Bytes::from(v.bytes), DEFAULT_MAX_FRAME_SIZE).unwrap();
            assert_eq!(ours, theirs, "{name}: same header+body after decompression");
        }
    }
}

#[test]
fn borrowed_headers_re_encode_to_the_original_header_bytes() {
    for v in vectors()
        .into_iter()
        .filter(|v| v.meta["frame"]["framing"] == "octo")
    {
        let f = decode_octo(Bytes::from(v.bytes), DEFAULT_MAX_FRAME_SIZE).unwrap();
        let mut out = BytesMut::new();
        f.header_ref().unwrap().encode(&mut out);
        assert_eq!(hex(&out), hex(&f.header), "{}", v.name);
    }
}
