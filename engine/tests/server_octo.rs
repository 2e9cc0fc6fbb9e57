//! The server's contract over real loopback sockets, driven by octo's own codec on the client
//! side: routing, heartbeats, flag mirroring, one-way calls, responders, limits and deadlines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use octo_engine::proto::{
    decode_octo, echo, encode_octo, heartbeat_status, peek_message, write_message_begin,
    ApplicationExceptionKind, CallType, Compression, Flags, Frame, FrameDecoder, Header,
    MessageType, RequestInfo, ThriftFrameWriter, ThriftMessageType, TraceInfo,
};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Limits, Reply, Request, Responder, Server, Status};

const WAIT: Duration = Duration::from_secs(10);

fn engine() -> Engine {
    Engine::builder()
        .shards(1)
        .cpus(vec![])
        .build()
        .expect("engine")
}

fn echo_server(engine: &Engine) -> Server {
    Server::builder(engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService)
        .appkey("octo.test")
        .start()
        .expect("server")
}

/// A fresh engine, its Echo server and one connection to it (keep the first two alive).
fn echo_conn() -> (Engine, Server, TcpStream) {
    let engine = engine();
    let server = echo_server(&engine);
    let s = connect(server.local_addr());
    (engine, server, s)
}

/// Flags of a request whose body is Thrift binary (serialization 1), everything else default.
fn thrift_flags() -> Flags {
    Flags {
        serialization: 1,
        ..Flags::default()
    }
}

/// Runs `f` on the engine's shard 0 (a shard thread, as a handler would) and returns what it
/// returned; `what` names it if it does not return in time.
fn on_shard<T: Send + 'static>(
    engine: &Engine,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    engine
        .runtime()
        .shard(0)
        .post(move |_| {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what} did not return on the shard"))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn request_header(
    service: &str,
    seq: i64,
    call_type: CallType,
    timeout_ms: i32,
    kind: MessageType,
) -> Header {
    Header {
        message_type: kind,
        request_info: Some(RequestInfo {
            service_name: service.into(),
            sequence_id: seq,
            call_type,
            timeout_ms,
        }),
        trace_info: Some(TraceInfo {
            client_appkey: "octo.test.client".into(),
            ..TraceInfo::default()
        }),
        ..Header::default()
    }
}

fn echo_request(service: &str, seq: i64, msg: &[u8], flags: Flags) -> BytesMut {
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, seq as i32, msg);
    let mut out = BytesMut::new();
    encode_octo(
        &mut out,
        flags,
        &request_header(service, seq, CallType::Reply, 5000, MessageType::Normal),
        &body,
    )
    .unwrap();
    out
}

/// Reads one whole frame from the socket.
fn read_frame(s: &mut TcpStream, dec: &mut FrameDecoder, buf: &mut BytesMut) -> Frame {
    loop {
        if let Some(f) = dec.decode(buf).expect("a well-formed answer") {
            return f;
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("answer before the timeout");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Answer {
    header: Header,
    flags: Flags,
    body: bytes::Bytes,
}

fn read_octo(s: &mut TcpStream, dec: &mut FrameDecoder, buf: &mut BytesMut) -> Answer {
    let Frame::Octo(f) = read_frame(s, dec, buf) else {
        panic!("expected an OCTO frame")
    };
    let f = decode_octo(f, 16 << 20).unwrap();
    Answer {
        header: Header::decode(&f.header).unwrap(),
        flags: f.flags,
        body: f.body,
    }
}

fn call(s: &mut TcpStream, frame: &[u8]) -> Answer {
    s.write_all(frame).unwrap();
    read_octo(s, &mut FrameDecoder::new(16 << 20), &mut BytesMut::new())
}

fn status_of(a: &Answer) -> Status {
    a.header
        .response_info
        .as_ref()
        .expect("responseInfo")
        .status
}

fn assert_closed(s: &mut TcpStream) {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("expected the connection to be closed, got {e}"),
        }
    }
}

#[test]
fn an_octo_echo_call_is_answered_with_its_sequence_id_and_message() {
    let (_engine, _server, mut s) = echo_conn();
    let msg = vec![b'x'; 1024];
    let a = call(&mut s, &echo_request("Echo", 77, &msg, thrift_flags()));
    let ri = a.header.response_info.unwrap();
    assert_eq!((ri.sequence_id, ri.status), (77, Status::Success));
    assert_eq!(a.header.message_type, MessageType::Normal);
    assert_eq!(
        echo::decode_reply(&a.body).unwrap(),
        (77, echo::EchoReply::Success(&msg[..]))
    );
}

#[test]
fn checksum_and_compression_of_a_request_are_mirrored_in_its_answer() {
    let (_engine, _server, mut s) = echo_conn();
    for (i, (checksum, compression)) in [
        (true, Compression::None),
        (false, Compression::Gzip),
        (false, Compression::Snappy),
        (true, Compression::Gzip),
        (true, Compression::Snappy),
    ]
    .into_iter()
    .enumerate()
    {
        let flags = Flags {
            checksum,
            compression,
            serialization: 1,
        };
        let msg = format!("message {i} ").repeat(100);
        let a = call(
            &mut s,
            &echo_request("Echo", i as i64, msg.as_bytes(), flags),
        );
        assert_eq!(a.flags, flags);
        assert_eq!(status_of(&a), Status::Success);
        assert_eq!(
            echo::decode_reply(&a.body).unwrap().1,
            echo::EchoReply::Success(msg.as_bytes())
        );
    }
}

#[test]
fn sequence_ids_above_32_bits_are_answered_whole() {
    let (_engine, _server, mut s) = echo_conn();
    for seq in [1i64 << 32, (1i64 << 40) + 5, i64::MAX, -3] {
        let a = call(&mut s, &echo_request("Echo", seq, b"hi", thrift_flags()));
        assert_eq!(a.header.response_info.unwrap().sequence_id, seq);
        assert_eq!(echo::decode_reply(&a.body).unwrap().0, seq as i32);
    }
}

#[test]
fn an_unknown_service_is_answered_with_status_8() {
    let (_engine, server, mut s) = echo_conn();
    let a = call(&mut s, &echo_request("Nope", 9, b"hi", thrift_flags()));
    assert_eq!(status_of(&a), Status::ServiceException);
    let (seqid, reply) = echo::decode_reply(&a.body).unwrap();
    assert_eq!(seqid, 9);
    let echo::EchoReply::Exception(e) = reply else {
        panic!("expected an exception body")
    };
    assert_eq!(e.kind, ApplicationExceptionKind::UnknownMethod);
    assert_eq!(server.stats().unknown_service, 1);
}

#[test]
fn requests_are_routed_by_service_name() {
    let engine = engine();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService)
        .service("Shout", |req: &Request<'_>, reply: Reply<'_>| {
            let (seqid, msg) = echo::decode_call(req.body()).unwrap();
            let loud = msg.to_ascii_uppercase();
            reply.ok_with(|out| echo::encode_reply(out, seqid, &loud));
        })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let flags = thrift_flags();
    let a = call(&mut s, &echo_request("Shout", 1, b"hi", flags));
    assert_eq!(
        echo::decode_reply(&a.body).unwrap().1,
        echo::EchoReply::Success(b"HI")
    );
    let a = call(&mut s, &echo_request("Echo", 2, b"hi", flags));
    assert_eq!(
        echo::decode_reply(&a.body).unwrap().1,
        echo::EchoReply::Success(b"hi")
    );
}

#[test]
fn a_normal_heartbeat_is_answered_with_status_0() {
    let (_engine, _server, mut s) = echo_conn();
    let mut out = BytesMut::new();
    let h = request_header(
        "Echo",
        6,
        CallType::Reply,
        3000,
        MessageType::NormalHeartbeat,
    );
    encode_octo(&mut out, thrift_flags(), &h, b"").unwrap();
    let a = call(&mut s, &out);
    assert_eq!(a.header.message_type, MessageType::NormalHeartbeat);
    let ri = a.header.response_info.unwrap();
    assert_eq!((ri.sequence_id, ri.status), (6, Status::Success));
    assert!(a.body.is_empty());
}

fn scanner_heartbeat(s: &mut TcpStream, seq: i64) -> Answer {
    let mut out = BytesMut::new();
    let h = request_header(
        "Echo",
        seq,
        CallType::Reply,
        3000,
        MessageType::ScannerHeartbeat,
    );
    encode_octo(&mut out, thrift_flags(), &h, b"").unwrap();
    call(s, &out)
}

#[test]
fn a_scanner_heartbeat_is_answered_alive_with_heartbeat_info() {
    let (_engine, _server, mut s) = echo_conn();
    let a = scanner_heartbeat(&mut s, 7);
    assert_eq!(a.header.message_type, MessageType::ScannerHeartbeat);
    assert_eq!(a.header.response_info.as_ref().unwrap().sequence_id, 7);
    let hb = a.header.heartbeat_info.unwrap();
    assert_eq!(hb.status, heartbeat_status::ALIVE);
    assert_eq!(hb.appkey.as_deref(), Some("octo.test"));
    assert!(
        hb.send_time.unwrap() > 1_600_000_000_000,
        "sendTime is in milliseconds since the epoch"
    );
}

#[test]
fn a_scanner_heartbeat_during_shutdown_is_answered_stopped() {
    let engine = engine();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService)
        .drain_grace(Duration::from_secs(5))
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    assert_eq!(
        scanner_heartbeat(&mut s, 1)
            .header
            .heartbeat_info
            .unwrap()
            .status,
        heartbeat_status::ALIVE
    );
    let stopper = std::thread::spawn(move || server.shutdown(Duration::from_secs(10)));
    // During the 5 s drain grace the connection is still served, and heartbeats say STOPPED as
    // soon as the shutdown has begun.
    let mut stopped = None;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    let mut seq = 1;
    while std::time::Instant::now() < until {
        seq += 1;
        let hb = scanner_heartbeat(&mut s, seq)
            .header
            .heartbeat_info
            .unwrap();
        if hb.status == heartbeat_status::STOPPED {
            stopped = Some(seq);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        stopped.is_some(),
        "scanners are told STOPPED while the server drains"
    );
    stopper.join().unwrap();
    assert_closed(&mut s);
}

#[test]
fn a_one_way_call_gets_no_answer() {
    let engine = engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", move |req: &Request<'_>, reply: Reply<'_>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let (seqid, msg) = echo::decode_call(req.body()).unwrap();
            reply.ok_with(|out| echo::encode_reply(out, seqid, msg));
        })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, 1, b"fire and forget");
    let mut out = BytesMut::new();
    let flags = thrift_flags();
    encode_octo(
        &mut out,
        flags,
        &request_header("Echo", 1, CallType::NoReply, 1000, MessageType::Normal),
        &body,
    )
    .unwrap();
    out.extend_from_slice(&echo_request("Echo", 2, b"answer me", flags));
    s.write_all(&out).unwrap();
    let a = read_octo(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    );
    assert_eq!(
        a.header.response_info.unwrap().sequence_id,
        2,
        "the first answer is the two-way call's"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the one-way call did run");
}

#[test]
fn two_hundred_pipelined_requests_are_all_answered_in_order() {
    let (_engine, _server, mut s) = echo_conn();
    let mut batch = BytesMut::new();
    for seq in 0..200i64 {
        batch.extend_from_slice(&echo_request(
            "Echo",
            seq,
            format!("m{seq}").as_bytes(),
            thrift_flags(),
        ));
    }
    s.write_all(&batch).unwrap();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    for seq in 0..200i64 {
        let a = read_octo(&mut s, &mut dec, &mut buf);
        assert_eq!(a.header.response_info.unwrap().sequence_id, seq);
        assert_eq!(
            echo::decode_reply(&a.body).unwrap().1,
            echo::EchoReply::Success(format!("m{seq}").as_bytes())
        );
    }
}

#[test]
fn a_native_thrift_call_goes_to_the_default_service() {
    let (_engine, _server, mut s) = echo_conn();
    let mut out = BytesMut::new();
    let mut w = ThriftFrameWriter::begin(&mut out);
    echo::encode_call(w.buf(), 41, b"plain thrift");
    w.finish().unwrap();
    s.write_all(&out).unwrap();
    let Frame::Thrift(body) = read_frame(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    ) else {
        panic!("a Thrift-framed answer")
    };
    assert_eq!(
        echo::decode_reply(&body).unwrap(),
        (41, echo::EchoReply::Success(&b"plain thrift"[..]))
    );
}

#[test]
fn an_unknown_thrift_method_gets_an_unknown_method_exception() {
    let (_engine, _server, mut s) = echo_conn();
    let mut out = BytesMut::new();
    let mut w = ThriftFrameWriter::begin(&mut out);
    write_message_begin(w.buf(), "shout", ThriftMessageType::Call, 3);
    w.buf().extend_from_slice(&[0]); // empty args struct
    w.finish().unwrap();
    s.write_all(&out).unwrap();
    let Frame::Thrift(body) = read_frame(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    ) else {
        panic!("a Thrift-framed answer")
    };
    let m = peek_message(&body).unwrap();
    assert_eq!(
        (m.name, m.kind, m.seqid),
        ("shout", ThriftMessageType::Exception, 3)
    );
    let (_, echo::EchoReply::Exception(e)) = echo::decode_reply(&body).unwrap() else {
        panic!("an exception")
    };
    assert_eq!(e.kind, ApplicationExceptionKind::UnknownMethod);
}

#[test]
fn a_malformed_body_in_an_intact_frame_is_answered_with_status_5() {
    let (_engine, _server, mut s) = echo_conn();
    let mut out = BytesMut::new();
    let h = request_header("Echo", 12, CallType::Reply, 1000, MessageType::Normal);
    encode_octo(&mut out, thrift_flags(), &h, b"\x01\x02garbage").unwrap();
    let a = call(&mut s, &out);
    let ri = a.header.response_info.unwrap();
    assert_eq!((ri.sequence_id, ri.status), (12, Status::ProtocolException));
    // and the connection still works
    let a = call(&mut s, &echo_request("Echo", 13, b"ok", thrift_flags()));
    assert_eq!(status_of(&a), Status::Success);
}

#[test]
fn a_protostuff_body_is_answered_with_status_5() {
    let (_engine, _server, mut s) = echo_conn();
    let a = call(
        &mut s,
        &echo_request(
            "Echo",
            4,
            b"x",
            Flags {
                serialization: 3,
                ..Flags::default()
            },
        ),
    );
    assert_eq!(status_of(&a), Status::ProtocolException);
}

/// Calls kept open by the "Later" service: the responder and the message to echo.
type Pending = Arc<Mutex<Vec<(Responder, Vec<u8>)>>>;

fn deferred_server(engine: &Engine, limits: Limits, pending: Pending) -> Server {
    Server::builder(engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .limits(limits)
        .service("Later", move |req: &Request<'_>, reply: Reply<'_>| {
            let (_, msg) = echo::decode_call(req.body()).unwrap();
            let msg = msg.to_vec();
            pending.lock().unwrap().push((reply.later(), msg));
        })
        .start()
        .unwrap()
}

fn wait_for(pending: &Pending, n: usize) {
    let until = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < until {
        if pending.lock().unwrap().len() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the handler did not run {n} times");
}

#[test]
fn a_responder_answers_from_another_thread() {
    let engine = engine();
    let pending = Arc::new(Mutex::new(Vec::new()));
    let server = deferred_server(&engine, Limits::default(), pending.clone());
    let mut s = connect(server.local_addr());
    s.write_all(&echo_request("Later", 5, b"later", thrift_flags()))
        .unwrap();
    wait_for(&pending, 1);
    let (responder, msg) = pending.lock().unwrap().pop().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut body = BytesMut::new();
        echo::encode_reply(&mut body, responder.thrift_seqid(), &msg);
        responder.ok(body.freeze());
        tx.send(()).unwrap();
    });
    rx.recv_timeout(WAIT).unwrap();
    let a = read_octo(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    );
    assert_eq!(status_of(&a), Status::Success);
    assert_eq!(
        echo::decode_reply(&a.body).unwrap(),
        (5, echo::EchoReply::Success(&b"later"[..]))
    );
}

#[test]
fn a_dropped_responder_answers_status_3() {
    let engine = engine();
    let pending = Arc::new(Mutex::new(Vec::new()));
    let server = deferred_server(&engine, Limits::default(), pending.clone());
    let mut s = connect(server.local_addr());
    s.write_all(&echo_request("Later", 8, b"x", thrift_flags()))
        .unwrap();
    wait_for(&pending, 1);
    drop(pending.lock().unwrap().pop());
    let a = read_octo(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    );
    let ri = a.header.response_info.unwrap();
    assert_eq!((ri.sequence_id, ri.status), (8, Status::RpcException));
}

#[test]
fn calls_beyond_the_in_flight_limit_are_answered_status_6() {
    let engine = engine();
    let pending = Arc::new(Mutex::new(Vec::new()));
    let limits = Limits {
        max_in_flight_per_connection: 2,
        ..Limits::default()
    };
    let server = deferred_server(&engine, limits, pending.clone());
    let mut s = connect(server.local_addr());
    let flags = thrift_flags();
    for seq in 1..=3 {
        s.write_all(&echo_request("Later", seq, b"x", flags))
            .unwrap();
    }
    let a = read_octo(
        &mut s,
        &mut FrameDecoder::new(1 << 20),
        &mut BytesMut::new(),
    );
    let ri = a.header.response_info.unwrap();
    assert_eq!((ri.sequence_id, ri.status), (3, Status::DegradeException));
    assert_eq!(pending.lock().unwrap().len(), 2);
    assert_eq!(server.stats().shed, 1);
    pending.lock().unwrap().clear(); // answers status 3 to both
}

#[test]
fn a_panicking_handler_answers_status_3_and_the_shard_lives_on() {
    let engine = engine();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Boom", |_: &Request<'_>, _: Reply<'_>| {
            panic!("handler bug")
        })
        .service("Echo", EchoService)
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let flags = thrift_flags();
    assert_eq!(
        status_of(&call(&mut s, &echo_request("Boom", 1, b"x", flags))),
        Status::RpcException
    );
    assert_eq!(
        status_of(&call(&mut s, &echo_request("Echo", 2, b"x", flags))),
        Status::Success
    );
    assert_eq!(server.stats().handler_panics, 1);
}

#[test]
fn a_request_whose_timeout_passed_before_its_handler_starts_is_dropped_and_counted() {
    // Small requests with large answers and a small write high-water mark: the first answer
    // blocks the connection, so the requests received with it wait in the server's input buffer
    // while the peer reads nothing. When the peer reads again, their 1 ms timeout has long
    // passed: they are dropped (and counted), not answered.
    let engine = engine();
    let limits = Limits {
        write_high_water: 16 << 10,
        write_low_water: 4 << 10,
        ..Limits::default()
    };
    static BIG: [u8; 32 << 10] = [b'b'; 32 << 10];
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .limits(limits)
        .service("Big", |req: &Request<'_>, reply: Reply<'_>| {
            let seqid = req.thrift_seqid();
            reply.ok_with(|out| echo::encode_reply(out, seqid, &BIG));
        })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let n = 300i64;
    let mut batch = BytesMut::new();
    for seq in 0..n {
        let mut body = BytesMut::new();
        echo::encode_call(&mut body, seq as i32, b"small");
        let h = request_header("Big", seq, CallType::Reply, 1, MessageType::Normal);
        encode_octo(&mut batch, thrift_flags(), &h, &body).unwrap();
    }
    s.write_all(&batch).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Read answers until every request is either answered or counted as expired.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut answered = 0u64;
    let started = std::time::Instant::now();
    let mut stats = server.stats();
    while answered + stats.expired < n as u64 && started.elapsed() < WAIT {
        match dec.decode(&mut buf).unwrap() {
            Some(_) => answered += 1,
            None => {
                let mut chunk = vec![0u8; 1 << 16];
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    Err(_) => stats = server.stats(),
                }
            }
        }
    }
    let stats = server.stats();
    assert!(
        stats.expired > 0,
        "requests expired while the server waited: {stats:?}"
    );
    assert_eq!(
        answered + stats.expired,
        n as u64,
        "every request is answered or counted as expired"
    );
    assert_eq!(stats.requests, n as u64);
}

#[test]
fn several_services_and_heartbeats_share_one_connection() {
    let (_engine, server, mut s) = echo_conn();
    let flags = thrift_flags();
    assert_eq!(
        status_of(&call(&mut s, &echo_request("Echo", 1, b"a", flags))),
        Status::Success
    );
    assert_eq!(
        scanner_heartbeat(&mut s, 2).header.message_type,
        MessageType::ScannerHeartbeat
    );
    assert_eq!(
        status_of(&call(&mut s, &echo_request("Echo", 3, b"b", flags))),
        Status::Success
    );
    assert_eq!(server.stats().heartbeats, 1);
}

#[test]
fn a_handler_sees_the_whole_header_and_body_of_its_call() {
    let engine = engine();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Look", move |req: &Request<'_>, reply: Reply<'_>| {
            let trace = req.trace_info().map(|t| (t.client_appkey, t.trace_id));
            let seen = format!(
                "{} {} {:?} {:?} {:?} {:?} {} {}",
                req.service(),
                req.method(),
                req.message_type(),
                trace,
                req.global_context().map(|c| c.to_vec()),
                req.local_context().map(|c| c.to_vec()),
                req.body_slice() == &req.body()[..],
                req.args() == &req.body_slice()[16..],
            );
            tx.lock().unwrap().send(seen).unwrap();
            reply.ok_with(|out| echo::encode_reply(out, req.thrift_seqid(), b"seen"));
        })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let mut header = request_header("Look", 3, CallType::Reply, 5000, MessageType::Normal);
    header.trace_info.as_mut().unwrap().trace_id = Some("t-1".into());
    header.global_context = Some(vec![("g".into(), "1".into())]);
    header.local_context = Some(vec![("l".into(), "2".into()), ("k".into(), "".into())]);
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, 3, b"hello");
    let mut frame = BytesMut::new();
    encode_octo(&mut frame, Flags::default(), &header, &body).unwrap();
    let a = call(&mut s, &frame);
    assert_eq!(status_of(&a), Status::Success);
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        "Look echo Call Some((\"octo.test.client\", Some(\"t-1\"))) \
         Some([(\"g\", \"1\")]) Some([(\"l\", \"2\"), (\"k\", \"\")]) true true"
    );
}

#[test]
fn bodies_kept_past_their_calls_stay_intact_while_later_frames_arrive() {
    // Many calls arrive together (handled from one run of frames); each handler keeps its body
    // (Request::body, sharing the read buffer) and answers later. More calls arrive meanwhile,
    // so the read buffer is reused; every kept body must still be its own call's.
    let engine = engine();
    let kept: Arc<Mutex<Vec<(Responder, bytes::Bytes)>>> = Arc::default();
    let k = kept.clone();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Keep", move |req: &Request<'_>, reply: Reply<'_>| {
            k.lock().unwrap().push((reply.later(), req.body().clone()));
        })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    let flags = Flags::default();
    let total = 300i64;
    for chunk in 0..3 {
        let mut batch = BytesMut::new();
        for seq in chunk * 100..(chunk + 1) * 100 {
            let msg = format!("message {seq} {}", "x".repeat(seq as usize % 97));
            batch.extend_from_slice(&echo_request("Keep", seq, msg.as_bytes(), flags));
        }
        s.write_all(&batch).unwrap();
        let until = std::time::Instant::now() + WAIT;
        while kept.lock().unwrap().len() < ((chunk + 1) * 100) as usize {
            assert!(std::time::Instant::now() < until, "calls not handled");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for (responder, body) in kept.lock().unwrap().drain(..) {
        let (seqid, msg) = echo::decode_call(&body).unwrap();
        assert_eq!(seqid as i64, responder.sequence_id());
        let mut reply = BytesMut::new();
        echo::encode_reply(&mut reply, seqid, msg);
        responder.ok(reply.freeze());
    }
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    for seq in 0..total {
        let a = read_octo(&mut s, &mut dec, &mut buf);
        assert_eq!(a.header.response_info.unwrap().sequence_id, seq);
        let msg = format!("message {seq} {}", "x".repeat(seq as usize % 97));
        assert_eq!(
            echo::decode_reply(&a.body).unwrap().1,
            echo::EchoReply::Success(msg.as_bytes())
        );
    }
}

#[test]
fn stats_read_on_a_shard_thread_count_that_shards_own_calls() {
    let (engine, server, mut s) = echo_conn();
    for seq in 1..=3 {
        let a = call(&mut s, &echo_request("Echo", seq, b"a", thrift_flags()));
        assert_eq!(status_of(&a), Status::Success);
    }
    // The only shard asks for the stats itself: nothing may wait for it to answer a post.
    let server = Arc::new(server);
    let shared = server.clone();
    let stats = on_shard(&engine, "stats", move || shared.stats());
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.connections_open, 1, "{stats:?}");
    assert_eq!(server.stats().requests, 3);
}

#[test]
fn a_server_started_on_a_shard_thread_fails_at_once() {
    let engine = engine();
    let builder = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService);
    assert_eq!(
        on_shard(&engine, "start", move || builder
            .start()
            .map(|_| ())
            .map_err(|e| e.kind())),
        Err(std::io::ErrorKind::WouldBlock)
    );
    // The engine still serves a server started from this thread.
    let server = echo_server(&engine);
    let mut s = connect(server.local_addr());
    let a = call(&mut s, &echo_request("Echo", 1, b"a", thrift_flags()));
    assert_eq!(status_of(&a), Status::Success);
}

#[test]
fn a_shutdown_on_a_shard_thread_returns_and_still_closes_the_server() {
    let (engine, server, mut s) = echo_conn();
    let a = call(&mut s, &echo_request("Echo", 1, b"a", thrift_flags()));
    assert_eq!(status_of(&a), Status::Success);
    let addr = server.local_addr();
    on_shard(&engine, "shutdown", move || {
        server.shutdown(Duration::from_millis(200))
    });
    // The idle connection is closed (it owes nothing), and the port stops accepting.
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).expect("closed, not timed out"), 0);
    let until = std::time::Instant::now() + WAIT;
    loop {
        let refused = match TcpStream::connect(addr) {
            Err(_) => true,
            Ok(mut c) => {
                c.set_read_timeout(Some(WAIT)).unwrap();
                matches!(c.read(&mut byte), Ok(0) | Err(_))
            }
        };
        if refused {
            break;
        }
        assert!(std::time::Instant::now() < until, "the port still serves");
        std::thread::sleep(Duration::from_millis(20));
    }
}
