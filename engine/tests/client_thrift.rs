//! The client against a real Apache Thrift server (plain Thrift framing): the Python `thrift`
//! library's TThreadedServer with TFramedTransport + TBinaryProtocol, running code generated
//! from idl/echo.thrift by the `thrift` compiler at test time, in a subprocess
//! (tests/client_peer/thrift_echo_server.py). A missing compiler or Python module fails these
//! tests with "run scripts/install-deps.sh": they never pass silently.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[path = "support/apache_thrift.rs"]
mod apache_thrift;
use apache_thrift::{python, INSTALL_HINT};

use bytes::BytesMut;
use octo_engine::client::{CallErrorKind, Client, ClientEvent, Heartbeat, Request};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::{write_message_begin, Framing, ThriftMessageType};
use octo_engine::{Engine, Status};

const WAIT: Duration = Duration::from_secs(20);
const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/client_peer/thrift_echo_server.py"
);

/// `thrift --gen py` output of idl/, generated once per test process.
fn generated() -> &'static Path {
    static GEN: OnceLock<PathBuf> = OnceLock::new();
    GEN.get_or_init(|| apache_thrift::generate_python("client_thrift", &[]).join("gen-py"))
}

/// The Apache Thrift server process; killed when dropped.
struct ThriftServer {
    child: Child,
    addr: SocketAddr,
}

impl ThriftServer {
    fn start() -> ThriftServer {
        let mut child = Command::new(python())
            .arg(PEER)
            .arg("--gen")
            .arg(generated())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}: {INSTALL_HINT}", python()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = match line.trim().strip_prefix("port ") {
            Some(p) => p.parse().unwrap(),
            None => {
                let status = child.wait().unwrap();
                panic!("the Thrift server did not start ({status}): {INSTALL_HINT}");
            }
        };
        ThriftServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ThriftServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn engine() -> Engine {
    Engine::builder()
        .shards(1)
        .cpus(vec![])
        .build()
        .expect("engine")
}

fn client(engine: &Engine, server: &ThriftServer) -> octo_engine::client::ClientBuilder {
    let _ = engine;
    Client::builder("Echo")
        .endpoint(server.addr, Framing::Thrift)
        .timeout(Duration::from_secs(10))
}

fn echoed(body: &[u8]) -> Vec<u8> {
    match echo::decode_reply(body).expect("an echo reply") {
        (_, EchoReply::Success(m)) => m.to_vec(),
        (_, EchoReply::Exception(e)) => panic!("exception: {e:?}"),
    }
}

#[test]
fn octos_client_calls_an_apache_thrift_server() {
    let server = ThriftServer::start();
    let e = engine();
    let c = client(&e, &server).build(e.runtime()).unwrap();
    let message = "h\u{e9}llo from octo ".repeat(64);
    let r = c.call_blocking(Request::echo(message.as_bytes())).unwrap();
    assert_eq!(echoed(&r.body), message.as_bytes());
}

#[test]
fn calls_in_flight_to_an_apache_thrift_server_are_matched_by_their_32_bit_seqid() {
    let server = ThriftServer::start();
    let e = engine();
    const N: usize = 500;
    // The 64-bit ids cross 2^32, so the Thrift seqids wrap from -1 to 0 midway.
    let c = client(&e, &server)
        .pool_size(2)
        .first_sequence_id((1i64 << 32) - (N as i64 / 2))
        .build(e.runtime())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..N {
        let tx = tx.clone();
        c.call(
            Request::echo(format!("thrift call {i}").as_bytes()),
            move |r| {
                let _ = tx.send((i, r));
            },
        );
    }
    let mut seen = vec![false; N];
    let mut negative = 0;
    for _ in 0..N {
        let (i, r) = rx.recv_timeout(WAIT).expect("every call is answered");
        let r = r.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(echoed(&r.body), format!("thrift call {i}").as_bytes());
        if r.sequence_id < 0 {
            negative += 1;
        }
        assert!(!std::mem::replace(&mut seen[i], true));
    }
    assert!(negative > 0, "some seqids were negative i32s");
}

#[test]
fn an_unknown_method_on_an_apache_thrift_server_is_a_service_exception() {
    let server = ThriftServer::start();
    let e = engine();
    let c = client(&e, &server).build(e.runtime()).unwrap();
    let mut body = BytesMut::new();
    write_message_begin(&mut body, "shout", ThriftMessageType::Call, 0);
    body.extend_from_slice(&[0]);
    let err = c
        .call_blocking(Request::new(body.freeze()).unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), CallErrorKind::Remote);
    assert_eq!(err.status(), Status::ServiceException);
    assert!(err.body().is_some());
    // The connection is still good.
    assert!(c.call_blocking(Request::echo(b"still")).is_ok());
}

#[test]
fn heartbeats_to_an_apache_thrift_server_are_answered_and_keep_the_connection() {
    let server = ThriftServer::start();
    let e = engine();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let c = client(&e, &server)
        .pool_size(1)
        .heartbeat(Some(Heartbeat {
            interval: Duration::from_millis(30),
            timeout: Duration::from_secs(5),
        }))
        .thrift_heartbeat_method(Some("octoHeartbeat".to_owned()))
        .on_event(move |ev| sink.lock().unwrap().push(ev.clone()))
        .build(e.runtime())
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let sent = events
            .lock()
            .unwrap()
            .iter()
            .filter(|ev| matches!(ev, ClientEvent::HeartbeatSent { .. }))
            .count();
        if sent >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "heartbeats are sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ev = events.lock().unwrap().clone();
    assert!(
        !ev.iter().any(|e| matches!(
            e,
            ClientEvent::HeartbeatTimedOut { .. } | ClientEvent::Disconnected { .. }
        )),
        "{ev:?}"
    );
    assert!(c.call_blocking(Request::echo(b"alive")).is_ok());
}

#[test]
fn killing_the_apache_thrift_server_mid_call_fails_the_call_before_its_timeout() {
    let mut server = ThriftServer::start();
    let e = engine();
    let timeout = Duration::from_secs(15);
    let c = client(&e, &server)
        .timeout(timeout)
        .build(e.runtime())
        .unwrap();
    c.call_blocking(Request::echo(b"warm")).unwrap();
    let (tx, rx) = mpsc::channel();
    c.call(Request::echo(b"sleep:10000"), move |r| {
        let _ = tx.send(r);
    });
    std::thread::sleep(Duration::from_millis(200));
    let killed = Instant::now();
    server.kill();
    let err = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(err.kind(), CallErrorKind::ConnectionLost, "{err}");
    assert_eq!(err.status(), Status::TransportException);
    assert!(killed.elapsed() < timeout);
}
