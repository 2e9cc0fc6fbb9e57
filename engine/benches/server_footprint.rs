//! The server's footprint, measured with a counting global allocator (a benchmark, not a test):
//! heap bytes per idle connection (target <= 32 KiB) and heap allocations per Echo call in steady
//! state (target 0), for OCTO and native Thrift, one call at a time and 16 pipelined.
//!
//! `cargo bench -p octo-engine --bench server_footprint`

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use octo_engine::proto::{
    echo, encode_octo, CallType, Flags, Header, MessageType, RequestInfo, ThriftFrameWriter,
    TraceInfo,
};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Server};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn octo_request(seq: i64, msg: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, seq as i32, msg);
    let header = Header {
        message_type: MessageType::Normal,
        request_info: Some(RequestInfo {
            service_name: "Echo".into(),
            sequence_id: seq,
            call_type: CallType::Reply,
            timeout_ms: 5000,
        }),
        trace_info: Some(TraceInfo {
            client_appkey: "footprint".into(),
            ..TraceInfo::default()
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
    out.to_vec()
}

fn thrift_request(seq: i32, msg: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut w = ThriftFrameWriter::begin(&mut out);
    echo::encode_call(w.buf(), seq, msg);
    w.finish().unwrap();
    out.to_vec()
}

/// Bytes of one answer: read one with a generous buffer and measure it.
fn answer_len(addr: SocketAddr, request: &[u8]) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut have = 0;
    loop {
        have += s.read(&mut buf[have..]).unwrap();
        if have >= 4 {
            let n = if buf[0] == 0xAB && buf[1] == 0xBA {
                if have < 8 {
                    continue;
                }
                8 + u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize
            } else {
                4 + u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
            };
            if have >= n {
                return n;
            }
        }
    }
}

/// Heap allocations per call while one connection makes `calls` calls, `depth` at a time.
/// The client side allocates nothing inside the measured loop.
fn allocs_per_call(addr: SocketAddr, request: &[u8], depth: usize, calls: usize) -> f64 {
    let reply_len = answer_len(addr, request);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let batch: Vec<u8> = request.repeat(depth);
    let mut answers = vec![0u8; reply_len * depth];
    let mut run = |rounds: usize| {
        for _ in 0..rounds {
            s.write_all(&batch).unwrap();
            s.read_exact(&mut answers).unwrap();
        }
    };
    run(2000 / depth + 10); // warm up: buffers reach their steady size
    let before = ALLOCS.load(Ordering::SeqCst);
    let rounds = calls / depth;
    run(rounds);
    let after = ALLOCS.load(Ordering::SeqCst);
    (after - before) as f64 / (rounds * depth) as f64
}

/// Heap bytes held per open connection: `n` connections, each after `calls` calls (0: never used).
fn bytes_per_idle_connection(server: &Server, n: usize, request: &[u8], calls: usize) -> f64 {
    let addr = server.local_addr();
    let reply_len = answer_len(addr, request);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let mut answer = vec![0u8; reply_len];
    let wait_open = |want: u64| {
        for _ in 0..500 {
            if server.stats().connections_open == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("connections did not settle at {want}");
    };
    wait_open(0);
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        for _ in 0..calls {
            s.write_all(request).unwrap();
            s.read_exact(&mut answer).unwrap();
        }
        conns.push(s);
    }
    wait_open(n as u64);
    std::thread::sleep(Duration::from_millis(100));
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    drop(conns);
    wait_open(0);
    after.saturating_sub(before) as f64 / n as f64
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once quickly with no flag.
    let quick = !std::env::args().any(|a| a == "--bench");
    let engine = Engine::builder().shards(1).build().unwrap();
    let server = Server::builder(&engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service("Echo", EchoService)
        .start()
        .unwrap();
    let addr = server.local_addr();
    let msg = vec![b'm'; 1024];
    let octo = octo_request(7, &msg);
    let thrift = thrift_request(7, &msg);
    let calls = if quick { 2_000 } else { 100_000 };
    let n = if quick { 100 } else { 1000 };

    println!("server footprint (1 shard, Echo 1 KiB, counting allocator over the whole process)");
    for (name, req) in [("octo", &octo), ("thrift", &thrift)] {
        for depth in [1, 16] {
            let a = allocs_per_call(addr, req, depth, calls);
            println!("  allocations per call, {name}, depth {depth:>2}: {a:.4}  (over {calls} calls; target 0)");
        }
    }
    let fresh = bytes_per_idle_connection(&server, n, &octo, 0);
    println!("  heap bytes per idle connection, never used:     {fresh:.0}  ({n} connections; target <= 32768)");
    let used = bytes_per_idle_connection(&server, n, &octo, 1);
    println!("  heap bytes per idle connection, after one call: {used:.0}  ({n} connections; target <= 32768)");
    let claim = bytes_per_claimed_large_frame(&server, 20);
    println!("  heap bytes per connection that announced a 15 MiB frame and sent 1 KiB of it: {claim:.0}  (20 connections)");
    server.shutdown(Duration::from_secs(1));
}

/// Heap bytes held per connection whose peer announced a large (allowed) frame and then sent
/// only its first KiB: the server must not reserve the whole frame up front.
fn bytes_per_claimed_large_frame(server: &Server, n: usize) -> f64 {
    let addr = server.local_addr();
    let mut prefix = vec![0xAB, 0xBA, 0x00, 0x01];
    prefix.extend_from_slice(&(15i32 << 20).to_be_bytes());
    prefix.extend_from_slice(&[0u8; 1024]);
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&prefix).unwrap();
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    drop(conns);
    after.saturating_sub(before) as f64 / n as f64
}
