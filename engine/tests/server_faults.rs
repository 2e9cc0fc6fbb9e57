//! Faults and limits over real loopback sockets: bad input closes only the offending
//! connection, limits refuse before allocating, slow and stalled peers, many connections, and a
//! graceful shutdown under load that loses no answer. Every test is bounded by socket timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use octo_engine::proto::{
    decode_octo, echo, encode_octo, CallType, Flags, Frame, FrameDecoder, Header, MessageType,
    RequestInfo, Status,
};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Limits, Reply, Request, Server};

const WAIT: Duration = Duration::from_secs(10);

fn engine(shards: usize) -> Engine {
    Engine::builder()
        .shards(shards)
        .cpus(vec![])
        .build()
        .expect("engine")
}

fn server(engine: &Engine, limits: Limits) -> Server {
    Server::builder(engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .limits(limits)
        .service("Echo", EchoService)
        .start()
        .expect("server")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn echo_request(seq: i64, msg: &[u8]) -> BytesMut {
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, seq as i32, msg);
    let header = Header {
        message_type: MessageType::Normal,
        request_info: Some(RequestInfo {
            service_name: "Echo".into(),
            sequence_id: seq,
            call_type: CallType::Reply,
            timeout_ms: 10_000,
        }),
        ..Header::default()
    };
    let mut out = BytesMut::new();
    encode_octo(
        &mut out,
        Flags {
            serialization: 1,
            ..Flags::default()
        },
        &header,
        &body,
    )
    .unwrap();
    out
}

/// Reads answers until `n` arrived; returns their (sequence id, status).
fn read_answers(s: &mut TcpStream, n: usize) -> Vec<(i64, Status)> {
    let mut dec = FrameDecoder::new(64 << 20);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    while out.len() < n {
        match dec.decode(&mut buf).unwrap() {
            Some(Frame::Octo(f)) => {
                let f = decode_octo(f, 64 << 20).unwrap();
                let ri = Header::decode(&f.header).unwrap().response_info.unwrap();
                out.push((ri.sequence_id, ri.status));
            }
            Some(Frame::Thrift(_)) => panic!("unexpected Thrift answer"),
            None => {
                let mut chunk = vec![0u8; 1 << 16];
                let k = s.read(&mut chunk).expect("answer before the timeout");
                assert!(k > 0, "closed after {} of {n} answers", out.len());
                buf.extend_from_slice(&chunk[..k]);
            }
        }
    }
    out
}

/// A connection doing a normal call: proves the server (and this shard) still serves.
fn assert_serves(addr: SocketAddr) {
    let mut s = connect(addr);
    s.write_all(&echo_request(4242, b"bystander")).unwrap();
    assert_eq!(read_answers(&mut s, 1), vec![(4242, Status::Success)]);
}

/// Waits (bounded) until the peer closes; returns how long that took.
fn time_to_close(s: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("expected the server to close the connection, got {e}"),
        }
    }
}

#[test]
fn garbage_closes_only_the_offending_connection() {
    let engine = engine(1);
    let server = server(&engine, Limits::default());
    let mut bystander = connect(server.local_addr());
    bystander.write_all(&echo_request(1, b"before")).unwrap();
    assert_eq!(read_answers(&mut bystander, 1), vec![(1, Status::Success)]);
    for garbage in [
        &b"\xff\xff\xff\xffGARBAGE"[..],
        &b"\xab\xba\x00\x01\x00\x00\x00\x00\x00\x00"[..],
        &b"\x00\x00\x00\x00"[..],
    ] {
        let mut bad = connect(server.local_addr());
        bad.write_all(garbage).unwrap();
        time_to_close(&mut bad);
    }
    // A whole OCTO frame whose checksum is wrong: its header cannot be trusted, so it closes.
    let mut frame = BytesMut::new();
    encode_octo(
        &mut frame,
        Flags {
            checksum: true,
            serialization: 1,
            ..Flags::default()
        },
        &Header::default(),
        b"",
    )
    .unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    let mut bad = connect(server.local_addr());
    bad.write_all(&frame).unwrap();
    time_to_close(&mut bad);
    bystander.write_all(&echo_request(2, b"after")).unwrap();
    assert_eq!(read_answers(&mut bystander, 1), vec![(2, Status::Success)]);
    assert!(server.stats().closed_on_bad_input >= 1);
}

#[test]
fn a_two_gib_length_claim_is_refused_at_once() {
    let engine = engine(1);
    let server = server(&engine, Limits::default());
    for claim in [
        i32::MAX.to_be_bytes().to_vec(), // native Thrift length
        [&b"\xab\xba\x00\x01"[..], &i32::MAX.to_be_bytes()[..]].concat(), // OCTO total_length
    ] {
        let mut s = connect(server.local_addr());
        s.write_all(&claim).unwrap();
        // Closed without waiting for (or reserving room for) the claimed bytes.
        time_to_close(&mut s);
    }
    assert_serves(server.local_addr());
}

#[test]
fn a_frame_above_the_configured_limit_closes_the_connection() {
    let engine = engine(1);
    let server = server(
        &engine,
        Limits {
            max_frame_size: 64 << 10,
            ..Limits::default()
        },
    );
    let mut s = connect(server.local_addr());
    s.write_all(&echo_request(1, &vec![b'a'; 32 << 10]))
        .unwrap();
    assert_eq!(read_answers(&mut s, 1), vec![(1, Status::Success)]);
    let big = echo_request(2, &vec![b'a'; 100 << 10]);
    let _ = s.write_all(&big[..1024]);
    time_to_close(&mut s);
    assert_serves(server.local_addr());
}

#[test]
fn a_truncated_frame_is_never_answered_and_disturbs_no_one() {
    let engine = engine(1);
    let server = server(&engine, Limits::default());
    let req = echo_request(9, b"cut short");
    let mut s = connect(server.local_addr());
    s.write_all(&req[..req.len() - 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no answer to a frame that never completed");
    assert_serves(server.local_addr());
}

#[test]
fn a_peer_sending_a_frame_a_few_bytes_at_a_time_is_answered() {
    let engine = engine(1);
    let server = server(&engine, Limits::default());
    let mut s = connect(server.local_addr());
    let req = echo_request(5, &[b'q'; 600]);
    for chunk in req.chunks(3) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(read_answers(&mut s, 1), vec![(5, Status::Success)]);
}

#[test]
fn a_peer_that_stops_mid_frame_is_closed_by_the_idle_timeout() {
    let engine = engine(1);
    let server = server(
        &engine,
        Limits {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        },
    );
    let mut s = connect(server.local_addr());
    let req = echo_request(5, b"stalled");
    // Measured from before the bytes leave: the server cannot have seen them earlier, so the
    // close can come no sooner than the idle timeout after this instant.
    let sent = Instant::now();
    s.write_all(&req[..20]).unwrap();
    time_to_close(&mut s);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "closed after {took:?}, before the idle timeout"
    );
    assert_serves(server.local_addr());
}

#[test]
fn connections_beyond_the_per_shard_limit_are_closed_at_once() {
    let engine = engine(1);
    let server = server(
        &engine,
        Limits {
            max_connections_per_shard: 2,
            ..Limits::default()
        },
    );
    let mut a = connect(server.local_addr());
    let mut b = connect(server.local_addr());
    a.write_all(&echo_request(1, b"a")).unwrap();
    b.write_all(&echo_request(2, b"b")).unwrap();
    assert_eq!(read_answers(&mut a, 1), vec![(1, Status::Success)]);
    assert_eq!(read_answers(&mut b, 1), vec![(2, Status::Success)]);
    let mut c = connect(server.local_addr());
    time_to_close(&mut c);
    assert_eq!(server.stats().connections_refused, 1);
    drop(a);
    // Once a slot is free again, new connections are served.
    let mut served = false;
    let until = Instant::now() + WAIT;
    while Instant::now() < until {
        let mut d = connect(server.local_addr());
        let _ = d.write_all(&echo_request(3, b"d"));
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 4096];
        if let Ok(k) = d.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..k]);
            if k > 0 && dec.decode(&mut buf).ok().flatten().is_some() {
                served = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served, "a freed connection slot is reused");
}

#[test]
fn two_thousand_connections_opened_and_closed_leave_the_server_serving() {
    let engine = engine(2);
    let server = server(&engine, Limits::default());
    let addr = server.local_addr();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..500 {
                    let mut s = connect(addr);
                    if i % 5 == 0 {
                        let seq = (t * 1000 + i) as i64;
                        s.write_all(&echo_request(seq, b"hi")).unwrap();
                        assert_eq!(read_answers(&mut s, 1), vec![(seq, Status::Success)]);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_serves(addr);
    let mut open = u64::MAX;
    let until = Instant::now() + WAIT;
    while Instant::now() < until {
        open = server.stats().connections_open;
        if open == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(open, 0, "every closed connection was released");
    assert!(server.stats().connections_accepted >= 2001);
}

/// Caps the socket's receive buffer (the kernel's default may hold tens of MiB) and returns it.
fn small_receive_buffer(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 128 << 10;
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid socket, and pointers to live ints of the sizes given.
    unsafe {
        let p = &size as *const libc::c_int as *const libc::c_void;
        libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut got as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        );
    }
    got as usize
}

#[test]
fn a_peer_that_does_not_read_is_not_buffered_without_bound() {
    // The server stops reading a connection whose unsent output passes the high-water mark, so a
    // peer that only writes cannot make it queue answers without bound.
    let engine = engine(1);
    let limits = Limits {
        write_high_water: 64 << 10,
        write_low_water: 16 << 10,
        ..Limits::default()
    };
    let server = server(&engine, limits);
    let mut s = connect(server.local_addr());
    let rcvbuf = small_receive_buffer(&s);
    let msg = vec![b'w'; 16 << 10];
    let n = 4000i64; // ~64 MiB of answers owed
    let mut writer = s.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let t = std::thread::spawn(move || {
        let mut sent = 0;
        for seq in 0..n {
            let req = echo_request(seq, &msg);
            let mut off = 0;
            while off < req.len() {
                match writer.write(&req[off..]) {
                    Ok(k) => off += k,
                    Err(_) if !done2.load(Ordering::SeqCst) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            sent += 1;
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(500));
    // What may legitimately be handled while the peer reads nothing: answers that fit in the
    // kernel's socket buffers (server send side, client receive side), the high-water mark, and
    // the requests in one read.
    let kernel_max = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(8 << 20)
    };
    let absorbable = kernel_max("/proc/sys/net/ipv4/tcp_wmem") + rcvbuf + (64 << 10) + (64 << 10);
    let bound = (absorbable / (16 << 10)) as u64 + 16;
    let handled_while_stalled = server.stats().requests;
    assert!(
        bound < n as u64 / 2,
        "the test must owe far more than the buffers hold"
    );
    assert!(
        handled_while_stalled <= bound,
        "{handled_while_stalled} requests handled while the peer read nothing (bound {bound}): the server must stop reading"
    );
    let answers = read_answers(&mut s, n as usize);
    done.store(true, Ordering::SeqCst);
    assert_eq!(t.join().unwrap(), n);
    assert!(answers
        .iter()
        .enumerate()
        .all(|(i, a)| *a == (i as i64, Status::Success)));
}

#[test]
fn graceful_shutdown_under_load_loses_no_answer() {
    let engine = engine(2);
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    // Half of the calls are answered later from another thread, so some are in flight when the
    // shutdown begins.
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", move |req: &Request<'_>, reply: Reply<'_>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let (seqid, msg) = echo::decode_call(req.body()).unwrap();
            if seqid % 2 == 0 {
                reply.ok_with(|out| echo::encode_reply(out, seqid, msg));
            } else {
                let responder = reply.later();
                let msg = msg.to_vec();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    let mut body = BytesMut::new();
                    echo::encode_reply(&mut body, seqid, &msg);
                    responder.ok(body.freeze());
                });
            }
        })
        .start()
        .unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut writer = s.try_clone().unwrap();
                let w = std::thread::spawn(move || {
                    let mut sent = 0u64;
                    while !stop.load(Ordering::SeqCst) && sent < 100_000 {
                        let seq = (c << 32) | sent as i64;
                        if writer.write_all(&echo_request(seq, b"load")).is_err() {
                            break;
                        }
                        sent += 1;
                        if sent % 16 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
                // Read answers until the server closes the connection.
                let mut dec = FrameDecoder::new(1 << 20);
                let mut buf = BytesMut::new();
                let mut answered = 0u64;
                let mut chunk = vec![0u8; 1 << 16];
                loop {
                    while let Some(Frame::Octo(f)) = dec.decode(&mut buf).unwrap() {
                        let f = decode_octo(f, 1 << 20).unwrap();
                        let ri = Header::decode(&f.header).unwrap().response_info.unwrap();
                        assert_eq!(ri.status, Status::Success, "answer {ri:?}");
                        assert_eq!(ri.sequence_id >> 32, c, "an answer for this connection");
                        answered += 1;
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                w.join().unwrap();
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.shutdown(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let answered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let handled = handled.load(Ordering::SeqCst);
    assert!(handled > 100, "the load ran ({handled} calls)");
    assert_eq!(
        answered, handled,
        "every call a handler accepted was answered before its connection closed"
    );
}

#[test]
fn mutated_and_random_input_never_takes_the_server_down() {
    // Deterministic xorshift: the same inputs every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let engine = engine(1);
    let server = server(
        &engine,
        Limits {
            idle_timeout: Some(Duration::from_millis(200)),
            ..Limits::default()
        },
    );
    let addr = server.local_addr();
    let valid = echo_request(77, b"mutate me");
    for round in 0..300 {
        let mut input = if round % 3 == 0 {
            (0..(next() % 256))
                .map(|_| next() as u8)
                .collect::<Vec<u8>>()
        } else {
            let mut v = valid.to_vec();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % v.len();
                v[i] ^= 1 << (next() % 8);
            }
            v
        };
        if round % 5 == 0 {
            input.extend_from_slice(&valid); // a valid frame after the damage
        }
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&input);
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Whatever comes back, the server must end the exchange by itself (answer and/or close).
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    assert_serves(addr);
    assert_eq!(server.stats().handler_panics, 0);
}

#[test]
fn a_peer_that_stops_reading_does_not_delay_answers_from_responders_to_others() {
    // Connection A fills every socket buffer with answers it never reads (so the server's last
    // send to it cannot complete), then goes quiet. An answer given later by a Responder to
    // connection B must still go out at once.
    let engine = engine(1);
    let pending: Arc<std::sync::Mutex<Vec<octo_engine::Responder>>> = Arc::default();
    let keep = pending.clone();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService)
        .service("Later", move |_: &Request<'_>, reply: Reply<'_>| {
            keep.lock().unwrap().push(reply.later())
        })
        .start()
        .unwrap();
    let a = connect(server.local_addr());
    let mut a_writer = a.try_clone().unwrap();
    a_writer
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let big = echo_request(1, &vec![b'a'; 256 << 10]);
    for _ in 0..64 {
        if a_writer.write_all(&big).is_err() {
            break; // the server stopped reading A: its buffers are full
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut b = connect(server.local_addr());
    let mut req = echo_request(2, b"later");
    // route to the Later service
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, 2, b"later");
    let header = Header {
        message_type: MessageType::Normal,
        request_info: Some(RequestInfo {
            service_name: "Later".into(),
            sequence_id: 2,
            call_type: CallType::Reply,
            timeout_ms: 10_000,
        }),
        ..Header::default()
    };
    req.clear();
    encode_octo(
        &mut req,
        Flags {
            serialization: 1,
            ..Flags::default()
        },
        &header,
        &body,
    )
    .unwrap();
    b.write_all(&req).unwrap();
    let responder = loop {
        if let Some(r) = pending.lock().unwrap().pop() {
            break r;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut reply = BytesMut::new();
    echo::encode_reply(&mut reply, 2, b"later");
    responder.ok(reply.freeze());
    // Without the fix this waited for the next unrelated event (here: none), and the read timed out.
    assert_eq!(read_answers(&mut b, 1), vec![(2, Status::Success)]);
    drop(a);
}
