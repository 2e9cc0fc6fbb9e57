//! Property tests: every struct and frame variant round-trips, and arbitrary or mutated bytes
//! never panic (and always terminate) in any decoder.

use bytes::{Bytes, BytesMut};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::thrift::Reader;
use octo_engine::proto::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z.]{0,40}"]
}

fn context(max_entries: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    // Small enough to stay under the 512-byte global limit.
    vec((".{0,6}", ".{0,6}"), 0..max_entries)
}

fn request_info() -> impl Strategy<Value = RequestInfo> {
    (
        text(),
        any::<i64>(),
        prop_oneof![Just(CallType::Reply), Just(CallType::NoReply)],
        any::<i32>(),
    )
        .prop_map(
            |(service_name, sequence_id, call_type, timeout_ms)| RequestInfo {
                service_name,
                sequence_id,
                call_type,
                timeout_ms,
            },
        )
}

fn response_info() -> impl Strategy<Value = ResponseInfo> {
    (any::<i64>(), 0u8..10, option::of(text())).prop_map(|(sequence_id, code, message)| {
        ResponseInfo {
            sequence_id,
            status: Status::from_code(code).unwrap(),
            message,
        }
    })
}

fn trace_info() -> impl Strategy<Value = TraceInfo> {
    (
        text(),
        [
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(text()),
        ],
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(text()),
    )
        .prop_map(
            |(client_appkey, [t, s, r, c, sv], debug, sample, client_ip)| TraceInfo {
                client_appkey,
                trace_id: t,
                span_id: s,
                root_message_id: r,
                current_message_id: c,
                server_message_id: sv,
                debug,
                sample,
                client_ip,
            },
        )
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("comparable", |f| !f.is_nan())
}

fn load_info() -> impl Strategy<Value = LoadInfo> {
    (
        option::of(finite()),
        option::of(any::<i32>()),
        option::of(any::<i32>()),
        option::of(any::<i32>()),
        option::of(vec((text(), finite()), 0..4)),
    )
        .prop_map(
            |(average_load, old_gc, thread_num, queue_size, method_qps_map)| LoadInfo {
                average_load,
                old_gc,
                thread_num,
                queue_size,
                method_qps_map,
            },
        )
}

fn heartbeat_info() -> impl Strategy<Value = HeartbeatInfo> {
    (
        option::of(text()),
        option::of(any::<i64>()),
        option::of(load_info()),
        any::<i32>(),
    )
        .prop_map(|(appkey, send_time, load_info, status)| HeartbeatInfo {
            appkey,
            send_time,
            load_info,
            status,
        })
}

fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![
            Just(MessageType::Normal),
            Just(MessageType::NormalHeartbeat),
            Just(MessageType::ScannerHeartbeat)
        ],
        option::of(request_info()),
        option::of(response_info()),
        option::of(trace_info()),
        option::of(context(8)),
        option::of(context(8)),
        option::of(heartbeat_info()),
    )
        .prop_map(
            |(
                message_type,
                request_info,
                response_info,
                trace_info,
                global_context,
                local_context,
                heartbeat_info,
            )| {
                Header {
                    message_type,
                    request_info,
                    response_info,
                    trace_info,
                    global_context,
                    local_context,
                    heartbeat_info,
                }
            },
        )
}

fn flags() -> impl Strategy<Value = Flags> {
    (
        any::<bool>(),
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy)
        ],
        0u8..4,
    )
        .prop_map(|(checksum, compression, serialization)| Flags {
            checksum,
            compression,
            serialization,
        })
}

fn encoded<T>(v: &T, f: impl Fn(&T, &mut BytesMut)) -> BytesMut {
    let mut out = BytesMut::new();
    f(v, &mut out);
    out
}

/// Feeds `stream` to a FrameDecoder in the given chunk sizes (cycled) and collects every frame.
fn split_all(stream: &[u8], chunks: &[usize], max: usize) -> Result<Vec<Frame>, ProtoError> {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = vec![];
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(f) = dec.decode(&mut buf)? {
            frames.push(f);
        }
    }
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_info_round_trips(v in request_info()) {
        prop_assert_eq!(RequestInfo::decode(&encoded(&v, |v, o| v.encode(o))).unwrap(), v);
    }

    #[test]
    fn response_info_round_trips(v in response_info()) {
        prop_assert_eq!(ResponseInfo::decode(&encoded(&v, |v, o| v.encode(o))).unwrap(), v);
    }

    #[test]
    fn trace_info_round_trips(v in trace_info()) {
        prop_assert_eq!(TraceInfo::decode(&encoded(&v, |v, o| v.encode(o))).unwrap(), v);
    }

    #[test]
    fn load_info_round_trips(v in load_info()) {
        prop_assert_eq!(LoadInfo::decode(&encoded(&v, |v, o| v.encode(o))).unwrap(), v);
    }

    #[test]
    fn heartbeat_info_round_trips(v in heartbeat_info()) {
        prop_assert_eq!(HeartbeatInfo::decode(&encoded(&v, |v, o| v.encode(o))).unwrap(), v);
    }

    #[test]
    fn header_round_trips_and_borrowed_form_re_encodes_identically(h in header()) {
        let bytes = encoded(&h, |v, o| v.encode(o));
        let r = HeaderRef::decode(&bytes).unwrap();
        prop_assert_eq!(r.to_owned(), h);
        prop_assert_eq!(encoded(&r, |v, o| v.encode(o)), bytes);
    }

    #[test]
    fn octo_frame_round_trips_through_the_stream_splitter(
        flags in flags(), h in header(), body in vec(any::<u8>(), 0..3000), chunks in vec(1usize..700, 1..8),
    ) {
        let mut stream = BytesMut::new();
        let len = encode_octo(&mut stream, flags, &h, &body).unwrap();
        prop_assert_eq!(len, stream.len());
        let frames = split_all(&stream, &chunks, DEFAULT_MAX_FRAME_SIZE).unwrap();
        prop_assert_eq!(frames.len(), 1);
        let Frame::Octo(raw) = &frames[0] else { panic!("not OCTO") };
        let f = decode_octo(raw.clone(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        prop_assert_eq!(f.flags, flags);
        prop_assert_eq!(Header::decode(&f.header).unwrap(), h);
        prop_assert_eq!(&f.body[..], &body[..]);
    }

    #[test]
    fn many_frames_split_identically_whatever_the_read_sizes(
        bodies in vec(vec(any::<u8>(), 1..300), 1..10), chunks in vec(1usize..64, 1..8), thrift in any::<bool>(),
    ) {
        let mut stream = BytesMut::new();
        for (i, b) in bodies.iter().enumerate() {
            if thrift {
                let mut w = ThriftFrameWriter::begin(&mut stream);
                w.buf().extend_from_slice(b);
                w.finish().unwrap();
            } else {
                let h = Header { response_info: Some(ResponseInfo { sequence_id: i as i64, status: Status::Success, message: None }), ..Header::default() };
                encode_octo(&mut stream, Flags::default(), &h, b).unwrap();
            }
        }
        let frames = split_all(&stream, &chunks, 1 << 16).unwrap();
        prop_assert_eq!(frames.len(), bodies.len());
        for (f, b) in frames.iter().zip(&bodies) {
            match f {
                Frame::Thrift(m) => prop_assert_eq!(&m[..], &b[..]),
                Frame::Octo(raw) => prop_assert_eq!(&decode_octo(raw.clone(), 1 << 16).unwrap().body[..], &b[..]),
            }
        }
    }

    #[test]
    fn echo_call_and_reply_round_trip(seqid in any::<i32>(), msg in vec(any::<u8>(), 0..2000)) {
        let call = encoded(&(), |_, o| echo::encode_call(o, seqid, &msg));
        prop_assert_eq!(echo::decode_call(&call).unwrap(), (seqid, &msg[..]));
        let reply = encoded(&(), |_, o| echo::encode_reply(o, seqid, &msg));
        prop_assert_eq!(echo::decode_reply(&reply).unwrap(), (seqid, EchoReply::Success(&msg[..])));
    }

    #[test]
    fn application_exception_round_trips(method in "[a-zA-Z]{1,10}", seqid in any::<i32>(), code in any::<i32>(), message in ".{0,40}") {
        let kind = ApplicationExceptionKind::from_i32(code);
        prop_assert_eq!(kind.code(), code);
        let body = encoded(&(), |_, o| write_application_exception(o, &method, seqid, kind, &message));
        let m = peek_message(&body).unwrap();
        prop_assert_eq!((m.name, m.kind, m.seqid), (&method[..], ThriftMessageType::Exception, seqid));
        let (s, reply) = echo::decode_reply(&body).unwrap();
        prop_assert_eq!(s, seqid);
        prop_assert_eq!(reply, EchoReply::Exception(ApplicationException { message, kind }));
    }

    #[test]
    fn flags_byte_round_trips(b in any::<u8>()) {
        match Flags::from_byte(b) {
            Ok(f) => prop_assert_eq!(f.to_byte(), b & 0xE3),
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::ConflictingCompression),
        }
    }
}

/// Runs every decoder over `bytes`; none may panic. (Termination is the test finishing.)
fn decode_everything(bytes: &[u8], max: usize) {
    let _ = split_all(bytes, &[bytes.len().max(1)], max);
    let _ = split_all(bytes, &[1, 3, 7], max);
    let _ = decode_octo(Bytes::copy_from_slice(bytes), max).map(|f| {
        let _ = f
            .header_ref()
            .map(|h| (h.to_owned(), h.global_context.map(|c| c.to_vec())));
        let _ = f.thrift_body().map(|b| echo::decode_call(b));
    });
    let _ = HeaderRef::decode(bytes).map(|h| h.to_owned());
    let _ = peek_message(bytes);
    let _ = echo::decode_call(bytes);
    let _ = echo::decode_reply(bytes);
    let _ = Reader::new(bytes).skip(octo_engine::proto::thrift::TType::Struct);
}

fn sample_frames() -> Vec<Vec<u8>> {
    let h = Header {
        request_info: Some(RequestInfo {
            service_name: "svc".into(),
            sequence_id: 7,
            call_type: CallType::Reply,
            timeout_ms: 1,
        }),
        trace_info: Some(TraceInfo {
            client_appkey: "app".into(),
            debug: Some(true),
            ..TraceInfo::default()
        }),
        global_context: Some(vec![("k".into(), "v".into())]),
        ..Header::default()
    };
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, 7, b"hello");
    [Compression::None, Compression::Gzip, Compression::Snappy]
        .into_iter()
        .flat_map(|c| {
            [false, true].map(|checksum| Flags {
                checksum,
                compression: c,
                serialization: 1,
            })
        })
        .map(|flags| {
            let mut out = BytesMut::new();
            encode_octo(&mut out, flags, &h, &body).unwrap();
            out.to_vec()
        })
        .chain([{
            let mut out = BytesMut::new();
            let mut w = ThriftFrameWriter::begin(&mut out);
            w.buf().extend_from_slice(&body);
            w.finish().unwrap();
            out.to_vec()
        }])
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes, 4096);
    }

    #[test]
    fn arbitrary_bytes_after_octo_magic_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let mut v = vec![0xAB, 0xBA];
        v.extend_from_slice(&bytes);
        decode_everything(&v, 4096);
    }

    #[test]
    fn mutated_frames_never_panic(which in 0usize..7, edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut f = sample_frames().swap_remove(which);
        for (i, b) in edits {
            let i = i.index(f.len());
            f[i] = b;
        }
        decode_everything(&f, 4096);
    }
}

#[test]
fn fuzz_seed_corpus_replays_through_every_decoder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/decode");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).expect("seed corpus") {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            decode_everything(&std::fs::read(&path).unwrap(), DEFAULT_MAX_FRAME_SIZE);
            seeds += 1;
        }
    }
    assert!(seeds >= 20, "found {seeds} seeds");
}
