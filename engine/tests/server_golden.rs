//! Dorado's golden frames (../shared/vectors/dorado) sent to octo's server: each request is
//! answered as Dorado's own server path answered it — byte for byte where nothing is compressed
//! or clock-dependent, field for field otherwise.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use octo_engine::proto::{
    decode_octo, echo, heartbeat_status, Frame, FrameDecoder, Header, MessageType, Status,
};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Server};

const DORADO_ECHO: &str = "com.meituan.dorado.test.thrift.api.Echo";

fn vector(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/dorado"
    ));
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("golden vector {name}: {e}"))
}

struct Fixture {
    _engine: Engine,
    server: Server,
}

fn fixture() -> Fixture {
    let engine = Engine::builder().shards(1).cpus(vec![]).build().unwrap();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(DORADO_ECHO, EchoService)
        .appkey("com.meituan.octo.dorado.server")
        .start()
        .unwrap();
    Fixture {
        _engine: engine,
        server,
    }
}

/// Sends `request` and returns the whole answer frame as it came off the wire.
fn answer(f: &Fixture, request: &[u8]) -> Bytes {
    let mut s = TcpStream::connect(f.server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut dec = FrameDecoder::new(64 << 20);
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        if let Some(frame) = dec.decode(&mut buf).unwrap() {
            return match frame {
                Frame::Octo(b) => b,
                Frame::Thrift(m) => {
                    let mut whole = (m.len() as i32).to_be_bytes().to_vec();
                    whole.extend_from_slice(&m);
                    whole.into()
                }
            };
        }
        let n = s.read(&mut chunk).expect("an answer");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn decoded(frame: &[u8]) -> (u8, Header, Bytes) {
    let f = decode_octo(Bytes::copy_from_slice(frame), 64 << 20).unwrap();
    (
        f.flags.to_byte(),
        Header::decode(&f.header).unwrap(),
        f.body,
    )
}

#[test]
fn uncompressed_echo_requests_are_answered_byte_for_byte_as_dorado_does() {
    let f = fixture();
    for (req, resp) in [
        ("request_plain_1k.bin", "response_plain_1k.bin"),
        ("request_seq_above_2_32.bin", "response_seq_above_2_32.bin"),
        (
            "native_thrift_request_1k.bin",
            "native_thrift_response_1k.bin",
        ),
    ] {
        assert_eq!(&answer(&f, &vector(req))[..], &vector(resp)[..], "{req}");
    }
}

#[test]
fn a_normal_heartbeat_is_answered_byte_for_byte_as_dorado_encodes_success() {
    let f = fixture();
    assert_eq!(
        &answer(&f, &vector("heartbeat_request.bin"))[..],
        &vector("heartbeat_response.bin")[..]
    );
}

#[test]
fn compressed_and_checksummed_requests_are_answered_with_the_same_flags_and_content() {
    let f = fixture();
    for (req, seq) in [
        ("request_checksum_1k.bin", 2),
        ("request_gzip_1k.bin", 3),
        ("request_snappy_1k.bin", 5),
    ] {
        let request = vector(req);
        let (flags, _, body) = decoded(&request);
        let (_, call) = echo::decode_call(&body)
            .map(|(s, m)| (s, m.to_vec()))
            .unwrap();
        let (aflags, header, abody) = decoded(&answer(&f, &request));
        assert_eq!(aflags, flags, "{req}: flags mirrored");
        let ri = header.response_info.unwrap();
        assert_eq!((ri.sequence_id, ri.status), (seq, Status::Success), "{req}");
        assert_eq!(
            echo::decode_reply(&abody).unwrap(),
            (seq as i32, echo::EchoReply::Success(&call[..])),
            "{req}"
        );
    }
    // Dorado's own snappy answer decodes to the same header and body as ours.
    let (_, theirs_h, theirs_b) = decoded(&vector("response_snappy_1k.bin"));
    let (_, ours_h, ours_b) = decoded(&answer(&f, &vector("request_snappy_1k.bin")));
    assert_eq!((ours_h, ours_b), (theirs_h, theirs_b));
}

#[test]
fn a_scanner_heartbeat_is_answered_like_dorados_scanner_handler() {
    let f = fixture();
    let (_, theirs, _) = decoded(&vector("scanner_heartbeat_response.bin"));
    let (_, ours, body) = decoded(&answer(&f, &vector("scanner_heartbeat_request.bin")));
    assert!(body.is_empty());
    assert_eq!(ours.message_type, MessageType::ScannerHeartbeat);
    assert_eq!(ours.response_info, theirs.response_info);
    let (o, t) = (ours.heartbeat_info.unwrap(), theirs.heartbeat_info.unwrap());
    assert_eq!((o.appkey, o.status), (t.appkey, heartbeat_status::ALIVE));
}

#[test]
fn trace_contexts_and_a_one_mib_request_are_answered() {
    let f = fixture();
    for (req, seq) in [
        ("request_trace_contexts_utf8.bin", 10),
        ("request_large_1mib.bin", 11),
    ] {
        let request = vector(req);
        let (_, _, body) = decoded(&request);
        let call = echo::decode_call(&body).unwrap().1.to_vec();
        let (_, header, abody) = decoded(&answer(&f, &request));
        assert_eq!(header.response_info.unwrap().sequence_id, seq);
        assert_eq!(
            echo::decode_reply(&abody).unwrap().1,
            echo::EchoReply::Success(&call[..]),
            "{req}"
        );
    }
}
