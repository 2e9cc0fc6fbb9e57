//! Receiving: multishot receives into the shard's buffer pool (the default), the single-shot
//! receives a connection falls back to when the pool runs dry, and the same echo with multishot
//! receives off; a connection that stops reading stops taking bytes in.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use octo_engine::runtime::{
    bind_reuseport_group, Acceptor, ConnId, ConnIo, ConnOptions, Connection, Runtime,
    RuntimeConfig, ShardCore,
};

const WAIT: Duration = Duration::from_secs(10);

#[path = "support/raw_echo_acceptor.rs"]
mod raw_echo_acceptor;
use raw_echo_acceptor::{send_and_read_back, EchoAcceptor};

fn runtime(multishot: bool, buffers: u16, size: u32) -> Runtime {
    Runtime::start(RuntimeConfig {
        shards: 1,
        cpus: Some(vec![]),
        recv_multishot: multishot,
        recv_pool_buffers: buffers,
        recv_pool_buffer_size: size,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

fn listen(rt: &Runtime, acceptor: impl Acceptor + Send + 'static) -> SocketAddr {
    let mut listeners = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 1, 128).unwrap();
    let l = listeners.pop().unwrap();
    let addr = l.local_addr();
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |shard| {
            shard.listen(l, Box::new(acceptor));
            tx.send(()).unwrap();
        })
        .unwrap();
    rx.recv_timeout(WAIT).unwrap();
    addr
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn thrift_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// 16 connections, each writing 40 frames of 1-9 KiB at once from its own thread and reading
/// them all back, byte for byte.
fn echo_many(addr: SocketAddr) {
    let threads: Vec<_> = (0..16u8)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut all = Vec::new();
                for i in 0..40u32 {
                    let len = 1000 + (i as usize * 211 + c as usize * 97) % 8000;
                    let payload: Vec<u8> = (0..len).map(|j| (j as u8) ^ c ^ i as u8).collect();
                    all.extend_from_slice(&thrift_frame(&payload));
                }
                let back = send_and_read_back(&mut s, &all);
                assert!(back == all, "connection {c}: echo differs");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn multishot_receives_echo_many_connections() {
    let rt = runtime(true, 64, 32 << 10);
    echo_many(listen(&rt, EchoAcceptor));
}

#[test]
fn a_pool_of_two_small_buffers_runs_dry_and_every_byte_still_arrives_in_order() {
    // 2 buffers of 64 bytes: frames span many buffers, and the pool runs dry under 16
    // connections at once (each falls back to one single-shot receive, then re-arms).
    let rt = runtime(true, 2, 64);
    echo_many(listen(&rt, EchoAcceptor));
}

#[test]
fn single_shot_receives_when_multishot_is_off() {
    let rt = runtime(false, 64, 32 << 10);
    echo_many(listen(&rt, EchoAcceptor));
}

#[test]
fn a_bad_pool_size_is_refused() {
    let err = Runtime::start(RuntimeConfig {
        shards: 1,
        cpus: Some(vec![]),
        recv_multishot: true,
        recv_pool_buffers: 3,
        ..RuntimeConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Stops reading after its first bytes; counts what it took in.
struct Pauser {
    ids: mpsc::Sender<ConnId>,
    received: usize,
}

impl Connection for Pauser {
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        let _ = self.ids.send(io.id());
    }
    fn on_data(&mut self, io: &mut ConnIo<'_>) {
        let n = io.input().len();
        self.received += n;
        io.input().clear();
        io.pause_reading();
    }
}

struct PauserAcceptor(mpsc::Sender<ConnId>);

impl Acceptor for PauserAcceptor {
    fn on_accept(
        &mut self,
        _: &mut ShardCore,
        _: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)> {
        Some((
            Box::new(Pauser {
                ids: self.0.clone(),
                received: 0,
            }),
            ConnOptions::default(),
        ))
    }
}

fn received(rt: &Runtime, id: ConnId, resume: bool) -> usize {
    let (tx, rx) = mpsc::channel();
    rt.shard(0)
        .post(move |shard| {
            let n = shard.with_conn::<Pauser, _>(id, |p, io| {
                if resume {
                    io.resume_reading();
                }
                p.received + io.input().len()
            });
            tx.send(n.unwrap_or(usize::MAX)).unwrap();
        })
        .unwrap();
    rx.recv_timeout(WAIT).unwrap()
}

#[test]
fn a_connection_that_pauses_reading_takes_in_no_more_than_the_pool_holds() {
    const TOTAL: usize = 8 << 20;
    // 4 buffers of 4 KiB: after the pause, at most what they held was already taken in.
    let rt = runtime(true, 4, 4096);
    let (tx, ids) = mpsc::channel();
    let addr = listen(&rt, PauserAcceptor(tx));
    let s = connect(addr);
    let id = ids.recv_timeout(WAIT).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![1u8; 64 << 10];
        let mut sent = 0;
        while sent < TOTAL {
            w.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
    });
    // Give the writer time to fill the socket buffers (no timing assertion: the bound below
    // holds however far it got).
    std::thread::sleep(Duration::from_millis(300));
    let first = received(&rt, id, false);
    assert!(
        first > 0 && first <= 4 * 4096 + (64 << 10),
        "took in {first} bytes"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        received(&rt, id, false),
        first,
        "bytes arrived while paused"
    );
    // Resumed (each on_data pauses again): every byte arrives in the end.
    let deadline = Instant::now() + WAIT;
    while received(&rt, id, true) < TOTAL {
        assert!(Instant::now() < deadline, "not all bytes arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.join().unwrap();
    assert_eq!(received(&rt, id, false), TOTAL);
    drop(s);
}

/// Answers its first bytes with `ANSWER` bytes and closes gracefully at once.
struct AnswerAndClose;

const ANSWER: usize = 4 << 20;

impl Connection for AnswerAndClose {
    fn on_data(&mut self, io: &mut ConnIo<'_>) {
        io.input().clear();
        if !io.is_closing() {
            io.output().extend_from_slice(&vec![7u8; ANSWER]);
            io.close();
        }
    }
}

struct AnswerAcceptor;

impl Acceptor for AnswerAcceptor {
    fn on_accept(
        &mut self,
        _: &mut ShardCore,
        _: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)> {
        Some((
            Box::new(AnswerAndClose),
            ConnOptions {
                write_high_water: 8 << 20,
                ..ConnOptions::default()
            },
        ))
    }
}

#[test]
fn a_graceful_close_with_unread_input_still_delivers_every_answer_byte() {
    // Closing a socket that holds unread input resets the connection and drops what the kernel
    // has not sent yet: the shard waits for the socket to send it first.
    for multishot in [true, false] {
        let rt = runtime(multishot, 8, 64 << 10);
        let addr = listen(&rt, AnswerAcceptor);
        let mut s = connect(addr);
        s.write_all(b"first").unwrap();
        // Bytes the server never reads (it is closing by the time they arrive).
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&[1u8; 4096]).unwrap();
        // Read slowly at first, so that the answer is still queued in the server's socket when it
        // has handed everything to the kernel.
        let mut got = 0;
        let mut buf = vec![0u8; 64 << 10];
        let mut reads = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    assert!(buf[..n].iter().all(|&b| b == 7));
                    got += n;
                }
            }
            reads += 1;
            if reads < 20 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert_eq!(got, ANSWER, "multishot {multishot}: answer bytes received");
    }
}
