//! The client under faults, over real loopback sockets, each test bounded in time: a server
//! killed mid-call, a server that comes back, a server that accepts but never answers, a server
//! that answers garbage, and 200 clients reconnecting after a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use octo_engine::client::{Backoff, CallErrorKind, Client, ClientEvent, Heartbeat, Request};
use octo_engine::proto::Framing;
use octo_engine::server::EchoService;
use octo_engine::{Engine, Reply, Responder, Server, Status};

const WAIT: Duration = Duration::from_secs(20);
const SERVICE: &str = "com.meituan.octo.test.Echo";

fn engine() -> Engine {
    Engine::builder()
        .shards(1)
        .cpus(vec![])
        .build()
        .expect("engine")
}

fn echo_server_at(engine: &Engine, addr: SocketAddr) -> Server {
    Server::builder(engine)
        .listen(addr)
        .service(SERVICE, EchoService)
        .start()
        .expect("server")
}

/// A server whose handler keeps every call unanswered.
fn holding_server(engine: &Engine) -> (Server, Arc<Mutex<Vec<Responder>>>) {
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    let server = Server::builder(engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            SERVICE,
            move |_: &octo_engine::Request<'_>, reply: Reply<'_>| {
                keep.lock().unwrap().push(reply.later());
            },
        )
        .start()
        .unwrap();
    (server, held)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A misbehaving peer on a std socket: accepts, and runs `on_conn` on each connection in its own
/// thread, until dropped.
struct RawPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawPeer {
    fn start(on_conn: fn(std::net::TcpStream, &AtomicBool)) -> RawPeer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + WAIT * 2;
            let mut conns = Vec::new();
            while !flag.load(Ordering::SeqCst) && Instant::now() < end {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                        let flag = flag.clone();
                        conns.push(std::thread::spawn(move || on_conn(s, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            flag.store(true, Ordering::SeqCst);
            for c in conns {
                let _ = c.join();
            }
        });
        RawPeer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads and discards everything; never writes.
fn silent(mut s: std::net::TcpStream, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// Answers whatever it receives with bytes that are no frame (an OCTO prefix announcing a
/// negative length).
fn garbage(mut s: std::net::TcpStream, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if s.write_all(&[0xAB, 0xBA, 0, 1, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0])
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// A listening socket whose accept queue is full: new connects get no answer to their SYN, so
/// they neither succeed nor fail until the connecting side gives up.
struct FullBacklog {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<std::net::TcpStream>,
}

fn full_backlog() -> FullBacklog {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: plain listen(2) on a socket this function owns; a backlog of 0 keeps one slot.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break, // the queue is full
        }
    }
    FullBacklog {
        addr,
        _listener: listener,
        _fillers: fillers,
    }
}

/// Answers each NormalHeartbeat as a stock Dorado server does (messageType 1, status 3, "Message
/// type do not match ..."), with the request's sequence id plus `SEQ_SKEW`; never answers calls.
fn heartbeat_answerer<const SEQ_SKEW: i64>(mut s: std::net::TcpStream, stop: &AtomicBool) {
    use octo_engine::proto::{
        decode_octo, encode_octo, Flags, Frame, FrameDecoder, Header, MessageType, ResponseInfo,
    };
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut input = bytes::BytesMut::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        while let Ok(Some(Frame::Octo(frame))) = decoder.decode(&mut input) {
            let f = decode_octo(frame, 1 << 20).unwrap();
            let h = Header::decode(&f.header).unwrap();
            if h.message_type != MessageType::NormalHeartbeat {
                continue;
            }
            let seq = h.request_info.unwrap().sequence_id + SEQ_SKEW;
            let answer = Header {
                message_type: MessageType::NormalHeartbeat,
                response_info: Some(ResponseInfo {
                    sequence_id: seq,
                    status: Status::RpcException,
                    message: Some("Message type do not match ScannerHeartBeatInvokeHandler".into()),
                }),
                ..Header::default()
            };
            let mut out = bytes::BytesMut::new();
            encode_octo(&mut out, Flags::default(), &answer, b"").unwrap();
            if s.write_all(&out).is_err() {
                return;
            }
        }
    }
}

type Events = Arc<Mutex<Vec<ClientEvent>>>;

fn recorder() -> (Events, impl Fn(&ClientEvent) + Send + Sync + 'static) {
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e: &ClientEvent| {
        sink.lock().unwrap().push(e.clone())
    })
}

#[test]
fn calls_in_flight_fail_with_transport_exception_when_the_server_is_killed() {
    let server_engine = engine();
    let (server, held) = holding_server(&server_engine);
    let client_engine = engine();
    let timeout = Duration::from_secs(10);
    let client = Client::builder(SERVICE)
        .endpoint(server.local_addr(), Framing::Octo)
        .timeout(timeout)
        .build(client_engine.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        client.call(Request::echo(b"doomed"), move |r| {
            let _ = tx.send(r);
        });
    }
    wait_until("the calls reach the server", || {
        held.lock().unwrap().len() == 10
    });
    let killed = Instant::now();
    server_engine.shutdown();
    for _ in 0..10 {
        let e = rx.recv_timeout(WAIT).unwrap().unwrap_err();
        assert_eq!(e.kind(), CallErrorKind::ConnectionLost, "{e}");
        assert_eq!(e.status(), Status::TransportException);
    }
    assert!(
        killed.elapsed() < timeout,
        "the calls failed when the connection died, not at their timeout"
    );
    drop(server);
}

#[test]
fn the_client_reconnects_by_itself_when_the_server_returns() {
    let server_engine = engine();
    let first = echo_server_at(&server_engine, "127.0.0.1:0".parse().unwrap());
    let addr = first.local_addr();
    let (events, hook) = recorder();
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(addr, Framing::Octo)
        .pool_size(1)
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        })
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    client.call_blocking(Request::echo(b"before")).unwrap();
    server_engine.shutdown();
    drop(first);
    wait_until("the client sees the connection die", || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. }))
    });
    // While the server is away, calls fail fast (no endpoint) or at worst time out.
    let e = client
        .call_blocking(Request::echo(b"during").timeout(Duration::from_millis(500)))
        .unwrap_err();
    assert_eq!(e.status(), Status::TransportException, "{e}");
    wait_until("a reconnect attempt fails", || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ClientEvent::ConnectFailed { .. }))
    });

    let server_engine = engine();
    let _again = echo_server_at(&server_engine, addr);
    wait_until("the client is connected again", || {
        client.open_connections() == vec![1]
    });
    let r = client.call_blocking(Request::echo(b"after"));
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn a_call_to_a_server_that_never_answers_times_out_after_its_deadline() {
    let peer = RawPeer::start(silent);
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .heartbeat(None)
        .build(client_engine.runtime())
        .unwrap();
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let e = client
        .call_blocking(Request::echo(b"anyone?").timeout(timeout))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.status(), Status::TransportException);
    assert!(started.elapsed() >= timeout, "not before the deadline");
    assert_eq!(
        client.open_connections(),
        vec![2],
        "a timeout alone keeps the connection"
    );
}

#[test]
fn an_unanswered_heartbeat_closes_the_connection_and_fails_its_calls() {
    let peer = RawPeer::start(silent);
    let (events, hook) = recorder();
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .pool_size(1)
        .heartbeat(Some(Heartbeat {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
        }))
        .backoff(Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(5),
        })
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    let started = Instant::now();
    let e = client
        .call_blocking(Request::echo(b"anyone?").timeout(Duration::from_secs(15)))
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::ConnectionLost, "{e}");
    assert_eq!(e.status(), Status::TransportException);
    assert!(e.message().contains("heartbeat"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let ev = events.lock().unwrap().clone();
    let sent = ev
        .iter()
        .position(|e| matches!(e, ClientEvent::HeartbeatSent { .. }));
    let missed = ev
        .iter()
        .position(|e| matches!(e, ClientEvent::HeartbeatTimedOut { .. }));
    let closed = ev
        .iter()
        .position(|e| matches!(e, ClientEvent::Disconnected { .. }));
    assert!(sent < missed && missed < closed && sent.is_some(), "{ev:?}");
}

#[test]
fn an_answered_heartbeat_keeps_an_idle_connection_open() {
    let server_engine = engine();
    let server = echo_server_at(&server_engine, "127.0.0.1:0".parse().unwrap());
    let (events, hook) = recorder();
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(server.local_addr(), Framing::Octo)
        .pool_size(1)
        .heartbeat(Some(Heartbeat {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        }))
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    wait_until("three heartbeats were answered", || {
        server.stats().heartbeats >= 3
    });
    let ev = events.lock().unwrap().clone();
    assert!(
        !ev.iter().any(|e| matches!(
            e,
            ClientEvent::HeartbeatTimedOut { .. } | ClientEvent::Disconnected { .. }
        )),
        "{ev:?}"
    );
    assert_eq!(client.open_connections(), vec![1]);
}

#[test]
fn garbage_closes_only_its_connection_and_fails_its_calls_with_status_5() {
    let server_engine = engine();
    let good = echo_server_at(&server_engine, "127.0.0.1:0".parse().unwrap());
    let bad = RawPeer::start(garbage);
    let (events, hook) = recorder();
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(good.local_addr(), Framing::Octo)
        .endpoint(bad.addr, Framing::Octo)
        .pool_size(1)
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    wait_until("both endpoints are connected", || {
        client.open_connections() == vec![1, 1]
    });
    let (mut ok, mut protocol) = (0, 0);
    for _ in 0..20 {
        match client.call_blocking(Request::echo(b"x")) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.status(), Status::ProtocolException, "{e}");
                assert_eq!(e.kind(), CallErrorKind::BadResponse);
                protocol += 1;
            }
        }
    }
    assert!(protocol >= 1, "a call went to the garbage endpoint");
    assert!(ok >= 10, "the good endpoint kept answering: {ok} ok");
    assert_eq!(good.stats().requests, ok as u64);
    let ev = events.lock().unwrap().clone();
    assert!(ev.iter().any(|e| matches!(e,
        ClientEvent::Disconnected { endpoint, reason } if *endpoint == bad.addr && reason.contains("malformed"))),
        "{ev:?}");
    assert!(!ev.iter().any(|e| matches!(e,
        ClientEvent::Disconnected { endpoint, .. } if *endpoint == good.local_addr())));
}

#[test]
fn two_hundred_clients_spread_their_reconnects_after_a_restart() {
    const CLIENTS: usize = 200;
    let server_engine = engine();
    let server = echo_server_at(&server_engine, "127.0.0.1:0".parse().unwrap());
    let addr = server.local_addr();
    let client_engine = engine();
    let attempts: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            let sink = attempts.clone();
            Client::builder(SERVICE)
                .endpoint(addr, Framing::Octo)
                .pool_size(1)
                .heartbeat(None)
                .backoff(Backoff {
                    base: Duration::from_millis(300),
                    cap: Duration::from_secs(2),
                })
                .on_event(move |e| {
                    if let ClientEvent::ConnectAttempt { at, .. } = e {
                        sink.lock().unwrap().push((i, *at));
                    }
                })
                .build(client_engine.runtime())
                .unwrap()
        })
        .collect();
    wait_until("every client is connected", || {
        server.stats().connections_open == CLIENTS as u64
    });
    let killed = Instant::now();
    server_engine.shutdown();
    drop(server);
    wait_until("every client tried to reconnect", || {
        let a = attempts.lock().unwrap();
        let mut seen = [false; CLIENTS];
        for (i, at) in a.iter() {
            if *at > killed {
                seen[*i] = true;
            }
        }
        seen.iter().all(|s| *s)
    });
    let a = attempts.lock().unwrap().clone();
    let mut first = vec![None; CLIENTS];
    for (i, at) in a {
        if at > killed && first[i].is_none() {
            first[i] = Some(at);
        }
    }
    let mut offsets: Vec<Duration> = first.iter().map(|t| t.unwrap() - killed).collect();
    offsets.sort();
    let spread = offsets[CLIENTS - 1] - offsets[0];
    let window = Duration::from_millis(10);
    let busiest = offsets
        .iter()
        .map(|start| {
            offsets
                .iter()
                .filter(|o| **o >= *start && **o < *start + window)
                .count()
        })
        .max()
        .unwrap();
    eprintln!(
        "200 reconnects: first {:?}, median {:?}, last {:?}, busiest 10 ms window {busiest}",
        offsets[0],
        offsets[CLIENTS / 2],
        offsets[CLIENTS - 1]
    );
    assert!(
        busiest < CLIENTS / 2,
        "half the clients reconnected in one 10 ms window"
    );
    assert!(
        spread >= Duration::from_millis(50),
        "attempts spread over {spread:?} only"
    );

    // The server comes back on the same port: every client finds it again by itself.
    let server_engine = engine();
    let again = echo_server_at(&server_engine, addr);
    wait_until("every client is connected again", || {
        again.stats().connections_open == CLIENTS as u64
    });
    drop(clients);
}

#[test]
fn a_connect_that_gets_no_answer_times_out_and_fails_the_calls_waiting_for_it() {
    let peer = full_backlog();
    let (events, hook) = recorder();
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .pool_size(1)
        .connect_timeout(Duration::from_millis(200))
        .backoff(Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(5),
        })
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    let started = Instant::now();
    let e = client
        .call_blocking(Request::echo(b"hello?").timeout(Duration::from_secs(10)))
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::NoEndpoint, "{e}");
    assert_eq!(e.status(), Status::TransportException);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed at the connect timeout"
    );
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.iter().any(|e| matches!(e,
            ClientEvent::ConnectFailed { reason, .. } if reason.contains("timed out"))),
        "{ev:?}"
    );
}

fn heartbeat_client(
    peer: &RawPeer,
    hook: impl Fn(&ClientEvent) + Send + Sync + 'static,
) -> (Engine, Client) {
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .pool_size(1)
        .heartbeat(Some(Heartbeat {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(1),
        }))
        .backoff(Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(5),
        })
        .on_event(hook)
        .build(client_engine.runtime())
        .unwrap();
    (client_engine, client)
}

fn count(events: &Events, what: fn(&ClientEvent) -> bool) -> usize {
    events.lock().unwrap().iter().filter(|e| what(e)).count()
}

#[test]
fn a_dorado_heartbeat_answer_with_status_3_proves_the_server_alive() {
    let peer = RawPeer::start(heartbeat_answerer::<0>);
    let (events, hook) = recorder();
    let (_engine, client) = heartbeat_client(&peer, hook);
    // Enough heartbeats that a missed answer would have closed the connection meanwhile.
    wait_until("heartbeats span three heartbeat timeouts", || {
        count(&events, |e| matches!(e, ClientEvent::HeartbeatSent { .. })) >= 75
    });
    assert_eq!(
        count(&events, |e| matches!(
            e,
            ClientEvent::HeartbeatTimedOut { .. } | ClientEvent::Disconnected { .. }
        )),
        0
    );
    assert_eq!(client.open_connections(), vec![1]);
}

#[test]
fn a_heartbeat_answer_with_another_sequence_id_does_not_count() {
    let peer = RawPeer::start(heartbeat_answerer::<1>);
    let (events, hook) = recorder();
    let (_engine, _client) = heartbeat_client(&peer, hook);
    wait_until("the heartbeat times out", || {
        count(&events, |e| {
            matches!(e, ClientEvent::HeartbeatTimedOut { .. })
        }) >= 1
    });
    wait_until("the connection closes", || {
        count(&events, |e| matches!(e, ClientEvent::Disconnected { .. })) >= 1
    });
}

#[test]
fn calls_whose_deadlines_come_out_of_order_each_time_out_after_their_own_deadline() {
    // In-order deadlines share the connection's deadline queue; an earlier one than the last
    // queued gets a timer of its own. Both kinds must fire, and none before its deadline.
    let peer = RawPeer::start(silent);
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .pool_size(1)
        .heartbeat(None)
        .build(client_engine.runtime())
        .unwrap();
    // Connected first, so that every call below goes out on the connection at once.
    let e = client
        .call_blocking(Request::echo(b"warm").timeout(Duration::from_millis(50)))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let timeouts_ms = [300u64, 100, 200, 400, 150, 400, 50];
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            let started = Instant::now();
            for (i, &ms) in timeouts_ms.iter().enumerate() {
                let tx = tx.clone();
                let timeout = Duration::from_millis(ms);
                c.call_on(shard, Request::echo(b"x").timeout(timeout), move |r| {
                    let _ = tx.send((i, timeout, started.elapsed(), r.map(|_| ())));
                });
            }
        })
        .unwrap();
    let mut seen = vec![false; timeouts_ms.len()];
    for _ in 0..timeouts_ms.len() {
        let (i, timeout, waited, r) = rx.recv_timeout(WAIT).unwrap();
        let e = r.unwrap_err();
        assert!(e.is_timeout(), "call {i}: {e}");
        assert!(
            waited >= timeout,
            "call {i} failed after {waited:?}, before its {timeout:?}"
        );
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(
        client.open_connections(),
        vec![1],
        "timeouts keep the connection"
    );
}

#[test]
fn answered_calls_leave_the_deadline_queue_and_later_calls_still_time_out() {
    // A server that answers only some calls: the answered ones leave stale entries in the
    // connection's deadline queue, which must neither fire nor stop the unanswered ones firing.
    let (server_engine, client_engine) = (engine(), engine());
    let (server, held) = holding_server(&server_engine);
    let client = Client::builder(SERVICE)
        .endpoint(server.local_addr(), Framing::Octo)
        .pool_size(1)
        .heartbeat(None)
        .timeout(Duration::from_millis(300))
        .build(client_engine.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..200 {
        let tx = tx.clone();
        client.call(Request::echo(format!("{i}").as_bytes()), move |r| {
            let _ = tx.send((i, r.map(|_| ())));
        });
    }
    wait_until("the server holds every call", || {
        held.lock().unwrap().len() == 200
    });
    // Answer every other call, out of order (last first).
    let answered: Vec<Responder> = {
        let mut h = held.lock().unwrap();
        let all: Vec<Responder> = h.drain(..).collect();
        let (mut odd, even): (Vec<_>, Vec<_>) =
            all.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
        h.extend(even.into_iter().map(|(_, r)| r));
        odd.reverse();
        odd.into_iter().map(|(_, r)| r).collect()
    };
    for r in answered {
        let mut body = bytes::BytesMut::new();
        octo_engine::proto::echo::encode_reply(&mut body, r.thrift_seqid(), b"ok");
        r.ok(body.freeze());
    }
    let (mut ok, mut timed_out) = (0, 0);
    for _ in 0..200 {
        let (_, r) = rx.recv_timeout(WAIT).unwrap();
        match r {
            Ok(()) => ok += 1,
            Err(e) if e.is_timeout() => timed_out += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, timed_out), (100, 100));
}

#[test]
fn a_call_on_then_callback_still_waiting_when_the_shard_stops_is_dropped_without_running() {
    let peer = RawPeer::start(silent);
    let client_engine = engine();
    let client = Client::builder(SERVICE)
        .endpoint(peer.addr, Framing::Octo)
        .heartbeat(None)
        .timeout(Duration::from_secs(60))
        .build(client_engine.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel::<&'static str>();
    let c = client.clone();
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            c.call_on_then(shard, Request::echo(b"never answered"), move |_, _| {
                let _ = tx.send("ran");
            });
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(client);
    client_engine.shutdown();
    // The callback either ran with the Shutdown error (the client closed first) or was dropped
    // with the shard: never hangs, never runs twice.
    match rx.recv_timeout(WAIT) {
        Ok("ran") => assert!(rx.recv_timeout(Duration::from_millis(100)).is_err()),
        Ok(other) => panic!("{other}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the callback was neither run nor dropped"),
    }
}
