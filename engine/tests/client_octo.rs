//! The client against octo's own server (OCTO framing) over real loopback sockets: answers,
//! sequence-id matching under thousands of calls in flight, round-robin over endpoints, skipping
//! a dead endpoint, remote errors, one-way calls, and every way to call (callback, blocking,
//! async on a shard task and from a foreign thread, on-shard callback).

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use octo_engine::client::{CallErrorKind, Client, Request};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::Framing;
use octo_engine::runtime::spawn_local;
use octo_engine::server::EchoService;
use octo_engine::{Engine, Reply, Server, Status};

const WAIT: Duration = Duration::from_secs(20);
const SERVICE: &str = "com.meituan.octo.test.Echo";

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
        .service(SERVICE, EchoService)
        .start()
        .expect("server")
}

fn client_of(engine: &Engine, addrs: &[SocketAddr]) -> octo_engine::client::ClientBuilder {
    let mut b = Client::builder(SERVICE)
        .appkey("octo.client.test")
        .timeout(Duration::from_secs(10));
    for a in addrs {
        b = b.endpoint(*a, Framing::Octo);
    }
    let _ = engine;
    b
}

fn echoed(body: &[u8]) -> Vec<u8> {
    match echo::decode_reply(body).expect("an echo reply") {
        (_, EchoReply::Success(m)) => m.to_vec(),
        (_, EchoReply::Exception(e)) => panic!("exception: {e:?}"),
    }
}

/// An Echo server and a client of it (`configure` adjusts the client's builder), each on its own
/// engine; returned in the order the tests declared them, so they drop in the same order.
fn echo_pair(
    configure: impl FnOnce(octo_engine::client::ClientBuilder) -> octo_engine::client::ClientBuilder,
) -> (Engine, Server, Engine, Client) {
    let server_engine = engine();
    let server = echo_server(&server_engine);
    let client_engine = engine();
    let client = configure(client_of(&client_engine, &[server.local_addr()]))
        .build(client_engine.runtime())
        .unwrap();
    (server_engine, server, client_engine, client)
}

/// A port nothing listens on.
fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn a_blocking_call_to_octos_server_is_answered() {
    let (_server_engine, server, _client_engine, client) = echo_pair(|b| b);
    let r = client.call_blocking(Request::echo(b"hello")).unwrap();
    assert_eq!(echoed(&r.body), b"hello");
    assert_eq!(server.stats().requests, 1);
}

#[test]
fn thousands_of_calls_in_flight_on_two_connections_are_all_matched_across_2_pow_32() {
    let server_engine = engine();
    let server = echo_server(&server_engine);
    let client_engine = engine();
    const N: usize = 5000;
    let first = (1i64 << 32) - (N as i64 / 2);
    let client = client_of(&client_engine, &[server.local_addr()])
        .pool_size(2)
        .first_sequence_id(first)
        .build(client_engine.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..N {
        let tx = tx.clone();
        let msg = format!("call number {i}");
        client.call(Request::echo(msg.as_bytes()), move |r| {
            let _ = tx.send((i, r));
        });
    }
    let mut seen = vec![false; N];
    let mut above = 0;
    for _ in 0..N {
        let (i, r) = rx.recv_timeout(WAIT).expect("every call is answered");
        let r = r.unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert_eq!(echoed(&r.body), format!("call number {i}").as_bytes());
        assert!(r.sequence_id >= first);
        if r.sequence_id > u32::MAX as i64 {
            above += 1;
        }
        assert!(!seen[i], "call {i} answered twice");
        seen[i] = true;
    }
    assert!(above > 0, "some sequence ids crossed 2^32");
    assert_eq!(client.open_connections(), vec![2]);
    assert!(server.stats().connections_accepted <= 2);
}

#[test]
fn calls_alternate_between_endpoints() {
    let server_engine = engine();
    let a = echo_server(&server_engine);
    let b = echo_server(&server_engine);
    let client_engine = engine();
    let client = client_of(&client_engine, &[a.local_addr(), b.local_addr()])
        .pool_size(1)
        .build(client_engine.runtime())
        .unwrap();
    // Wait until both are connected so that round-robin sees both.
    let deadline = std::time::Instant::now() + WAIT;
    while client.open_connections() != vec![1, 1] {
        assert!(
            std::time::Instant::now() < deadline,
            "both endpoints connect"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..20 {
        client.call_blocking(Request::echo(b"x")).unwrap();
    }
    assert_eq!((a.stats().requests, b.stats().requests), (10, 10));
}

#[test]
fn an_endpoint_that_is_down_is_skipped() {
    let server_engine = engine();
    let up = echo_server(&server_engine);
    let client_engine = engine();
    let client = client_of(&client_engine, &[dead_port(), up.local_addr()])
        .pool_size(1)
        .build(client_engine.runtime())
        .unwrap();
    for i in 0..50 {
        let r = client.call_blocking(Request::echo(b"still here"));
        assert!(r.is_ok(), "call {i}: {r:?}");
    }
    assert_eq!(up.stats().requests, 50);
}

#[test]
fn a_server_error_status_reaches_the_caller_with_its_body() {
    let server_engine = engine();
    let server = Server::builder(&server_engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(SERVICE, |_: &octo_engine::Request<'_>, reply: Reply<'_>| {
            reply.error(Status::DegradeException, "shed for the test")
        })
        .start()
        .unwrap();
    let client_engine = engine();
    let client = client_of(&client_engine, &[server.local_addr()])
        .build(client_engine.runtime())
        .unwrap();
    let e = client.call_blocking(Request::echo(b"x")).unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::Remote);
    assert_eq!(e.status(), Status::DegradeException);
    assert!(e.message().contains("shed for the test"), "{e}");
    assert!(e.body().is_some(), "the EXCEPTION body is kept");
}

#[test]
fn an_unknown_service_is_a_service_exception() {
    let server_engine = engine();
    let server = echo_server(&server_engine);
    let client_engine = engine();
    let client = Client::builder("no.such.Service")
        .endpoint(server.local_addr(), Framing::Octo)
        .build(client_engine.runtime())
        .unwrap();
    let e = client.call_blocking(Request::echo(b"x")).unwrap_err();
    assert_eq!(e.status(), Status::ServiceException);
}

#[test]
fn one_way_calls_reach_the_server_and_get_no_answer() {
    let server_engine = engine();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let server = Server::builder(&server_engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            SERVICE,
            move |req: &octo_engine::Request<'_>, reply: Reply<'_>| {
                if req.is_one_way() {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                reply.ok(b"")
            },
        )
        .start()
        .unwrap();
    let client_engine = engine();
    let client = client_of(&client_engine, &[server.local_addr()])
        .build(client_engine.runtime())
        .unwrap();
    for _ in 0..10 {
        client.send_one_way(Request::echo(b"fire")).unwrap();
    }
    // A two-way call after them on the same shard: when it is answered, the one-way calls
    // before it were sent (same connection order is not promised with a pool, so poll).
    client.call_blocking(Request::echo(b"sync")).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while count.load(Ordering::SeqCst) < 10 {
        assert!(std::time::Instant::now() < deadline, "one-way calls arrive");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(count.load(Ordering::SeqCst), 10);
}

#[test]
fn an_async_call_on_a_shard_task_is_answered() {
    let (_server_engine, _server, client_engine, client) = echo_pair(|b| b);
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            spawn_local(shard, async move {
                let mut got = Vec::new();
                for i in 0..3 {
                    let r = c
                        .call_async(Request::echo(format!("async {i}").as_bytes()))
                        .await;
                    got.push(echoed(&r.unwrap().body));
                }
                let _ = tx.send(got);
            });
        })
        .unwrap();
    let got = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        got,
        vec![
            b"async 0".to_vec(),
            b"async 1".to_vec(),
            b"async 2".to_vec()
        ]
    );
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "the future resolves");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn an_async_call_from_a_foreign_thread_is_answered() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| b);
    let r = block_on(client.call_async(Request::echo(b"from afar"))).unwrap();
    assert_eq!(echoed(&r.body), b"from afar");
}

#[test]
fn a_call_on_the_shard_runs_its_callback_on_the_shard() {
    let (_server_engine, _server, client_engine, client) = echo_pair(|b| b);
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            let on = std::thread::current().id();
            c.call_on(shard, Request::echo(b"local"), move |r| {
                let same = std::thread::current().id() == on;
                let _ = tx.send((same, r.map(|r| echoed(&r.body))));
            });
        })
        .unwrap();
    let (same_thread, r) = rx.recv_timeout(WAIT).unwrap();
    assert!(same_thread);
    assert_eq!(r.unwrap(), b"local");
}

#[test]
fn a_blocking_call_on_a_shard_thread_is_refused() {
    let (_server_engine, _server, client_engine, client) = echo_pair(|b| b);
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    client_engine
        .runtime()
        .shard(0)
        .post(move |_| {
            let _ = tx.send(c.call_blocking(Request::echo(b"x")));
        })
        .unwrap();
    let e = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::WouldDeadlock);
}

#[test]
fn dropping_the_client_fails_its_calls_in_flight_with_shutdown() {
    let server_engine = engine();
    // A server that keeps every call unanswered.
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let server = Server::builder(&server_engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            SERVICE,
            move |_: &octo_engine::Request<'_>, reply: Reply<'_>| {
                keep.lock().unwrap().push(reply.later());
            },
        )
        .start()
        .unwrap();
    let client_engine = engine();
    let client = client_of(&client_engine, &[server.local_addr()])
        .build(client_engine.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    client.call(Request::echo(b"never answered"), move |r| {
        let _ = tx.send(r);
    });
    let deadline = std::time::Instant::now() + WAIT;
    while held.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call reaches the server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(client);
    let e = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::Shutdown);
}

#[test]
fn gzip_and_snappy_calls_with_checksums_round_trip() {
    use octo_engine::proto::{Compression, Flags};
    let server_engine = engine();
    let server = echo_server(&server_engine);
    let client_engine = engine();
    for compression in [Compression::Gzip, Compression::Snappy] {
        let client = client_of(&client_engine, &[server.local_addr()])
            .flags(Flags {
                checksum: true,
                compression,
                serialization: 1,
            })
            .build(client_engine.runtime())
            .unwrap();
        let message = "compress me ".repeat(200);
        let r = client
            .call_blocking(Request::echo(message.as_bytes()))
            .unwrap();
        assert_eq!(echoed(&r.body), message.as_bytes(), "{compression:?}");
    }
}

#[test]
fn an_answer_above_the_frame_limit_closes_the_connection_with_status_5() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| b.max_frame_size(512));
    let e = client
        .call_blocking(Request::echo(&[b'z'; 4096]))
        .unwrap_err();
    assert_eq!(e.status(), Status::ProtocolException, "{e}");
    assert_eq!(e.kind(), CallErrorKind::BadResponse);
    // Small answers still come back (on a new connection).
    assert!(client.call_blocking(Request::echo(b"small")).is_ok());
}

#[test]
fn a_panicking_callback_does_not_stop_the_shard() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| b);
    let (tx, rx) = mpsc::channel();
    client.call(Request::echo(b"boom"), move |_| {
        let _ = tx.send(());
        panic!("a caller's bug");
    });
    rx.recv_timeout(WAIT).unwrap();
    let r = client.call_blocking(Request::echo(b"after the panic"));
    assert_eq!(echoed(&r.unwrap().body), b"after the panic");
}

#[test]
fn an_on_shard_call_on_a_shard_the_client_does_not_run_on_is_refused() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| b);
    let other = engine();
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    other
        .runtime()
        .shard(0)
        .post(move |shard| {
            c.call_on(shard, Request::echo(b"x"), move |r| {
                let _ = tx.send(r.map(|_| ()));
            });
        })
        .unwrap();
    let e = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::WrongShard);
}

/// One link of a `call_on_then` chain: calls, and from the answer's callback makes the next call.
fn chain(
    shard: &mut octo_engine::runtime::Shard,
    c: Client,
    left: usize,
    tx: mpsc::Sender<Result<Vec<u8>, String>>,
) {
    let message = format!("link {left}");
    let on = std::thread::current().id();
    c.clone()
        .call_on_then(shard, Request::echo(message.as_bytes()), move |shard, r| {
            assert_eq!(std::thread::current().id(), on, "runs on the shard");
            let r = r.map(|r| echoed(&r.body)).map_err(|e| e.to_string());
            let again = left > 1 && r.as_deref() == Ok(message.as_bytes());
            let _ = tx.send(r);
            if again {
                chain(shard, c, left - 1, tx);
            }
        });
}

#[test]
fn call_on_then_callbacks_get_the_shard_and_make_the_next_call() {
    let (_server_engine, _server, client_engine, client) = echo_pair(|b| b);
    let (tx, rx) = mpsc::channel();
    // Four chains of 200 calls each, interleaved on the same connections.
    for _ in 0..4 {
        let (c, tx) = (client.clone(), tx.clone());
        client_engine
            .runtime()
            .shard(0)
            .post(move |shard| chain(shard, c, 200, tx))
            .unwrap();
    }
    drop(tx);
    let mut answered = 0;
    while let Ok(r) = rx.recv_timeout(WAIT) {
        let m = r.unwrap();
        assert!(m.starts_with(b"link "), "{m:?}");
        answered += 1;
    }
    assert_eq!(answered, 800, "every link of every chain was answered");
}

#[test]
fn call_on_then_on_a_shard_the_client_does_not_run_on_is_refused() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| b);
    let other = engine();
    let (tx, rx) = mpsc::channel();
    other
        .runtime()
        .shard(0)
        .post(move |shard| {
            client.call_on_then(shard, Request::echo(b"x"), move |_, r| {
                let _ = tx.send(r.map(|_| ()));
            });
        })
        .unwrap();
    let e = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::WrongShard);
}

/// A flood of large calls backs the client's requests up (write-blocked: the server is busy
/// writing answers the client must read first). The client keeps reading answers meanwhile: one
/// that stopped reading while write-blocked would wait for a server that waits for it (each side
/// at its high water mark, both sockets full), and every call in flight would time out.
#[test]
fn a_client_whose_requests_back_up_keeps_reading_answers_so_a_flood_of_large_calls_finishes() {
    let (_server_engine, _server, _client_engine, client) = echo_pair(|b| {
        b.pool_size(1)
            .timeout(Duration::from_secs(15))
            // A high water mark above what the sockets hold (a few MiB each way on loopback),
            // so that the client's output backs up behind a server that has stopped reading.
            .conn_options(octo_engine::runtime::ConnOptions {
                write_high_water: 16 << 20,
                write_low_water: 4 << 20,
                ..Default::default()
            })
    });
    // 512 calls of 128 KiB in flight: 64 MiB each way, more than both sockets and both
    // sides' water marks hold.
    const BODY: usize = 128 << 10;
    const IN_FLIGHT: usize = 512;
    const TOTAL: usize = 2048;
    let payload: Vec<u8> = (0..BODY).map(|i| (i % 251) as u8).collect();
    let (tx, rx) = mpsc::channel();
    let submit = |i: usize| {
        let tx = tx.clone();
        client.call(Request::echo(&payload), move |r| {
            let _ = tx.send((i, r));
        });
    };
    for i in 0..IN_FLIGHT {
        submit(i);
    }
    let (mut next, mut answered, mut refused) = (IN_FLIGHT, 0, 0);
    while answered < TOTAL {
        let (i, r) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("calls keep being answered");
        match r {
            Ok(r) => {
                assert!(echoed(&r.body) == payload, "call {i}: the echo differs");
                answered += 1;
                if next < TOTAL {
                    submit(next);
                    next += 1;
                }
            }
            // Refused at once while the connection is write-blocked: send it again shortly.
            Err(e) if e.kind() == CallErrorKind::Overloaded => {
                refused += 1;
                std::thread::sleep(Duration::from_micros(200));
                submit(i);
            }
            Err(e) => panic!("call {i} failed: {e}"),
        }
    }
    // The flood did block the client's writes (else this test would prove nothing).
    assert!(refused > 0, "no call was ever refused as Overloaded");
}
