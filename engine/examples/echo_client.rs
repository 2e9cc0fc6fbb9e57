//! Calls an Echo service with octo's client, in each of the ways the client offers.
//!
//! ```text
//! cargo run -p octo-engine --example echo_client                     # starts octo's own Echo server
//! cargo run -p octo-engine --example echo_client -- 127.0.0.1:9001   # an OCTO server already running
//! cargo run -p octo-engine --example echo_client -- 127.0.0.1:9090 thrift   # a plain Thrift server
//! ```

use std::sync::mpsc;
use std::time::{Duration, Instant};

use octo_engine::client::{Client, Request};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::Framing;
use octo_engine::runtime::spawn_local;
use octo_engine::server::EchoService;
use octo_engine::{Engine, Server};

const SERVICE: &str = "com.meituan.octo.example.Echo";

fn text(body: &[u8]) -> String {
    match echo::decode_reply(body) {
        Ok((_, EchoReply::Success(m))) => String::from_utf8_lossy(m).into_owned(),
        Ok((_, EchoReply::Exception(e))) => format!("exception: {}", e.message),
        Err(e) => format!("undecodable reply: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let engine = Engine::builder()
        .shards(1)
        .cpus(vec![])
        .build()
        .expect("engine");

    // The server: the one named on the command line, or octo's own Echo on this engine.
    let mut own_server = None;
    let (addr, framing) = match args.first() {
        Some(a) => {
            let framing = match args.get(1).map(String::as_str) {
                Some("thrift") => Framing::Thrift,
                _ => Framing::Octo,
            };
            (a.parse().expect("HOST:PORT"), framing)
        }
        None => {
            let server = Server::builder(&engine)
                .listen("127.0.0.1:0".parse().unwrap())
                .service(SERVICE, EchoService)
                .start()
                .expect("server");
            let addr = server.local_addr();
            own_server = Some(server);
            (addr, Framing::Octo)
        }
    };
    println!("calling {addr} ({framing:?})");

    let client = Client::builder(SERVICE)
        .endpoint(addr, framing)
        .appkey("com.meituan.octo.example")
        .timeout(Duration::from_millis(500))
        .pool_size(2)
        .build(engine.runtime())
        .expect("client");

    // 1. Blocking, from this (non-shard) thread.
    let started = Instant::now();
    match client.call_blocking(Request::echo(b"hello, blocking")) {
        Ok(r) => println!("blocking: {:?} in {:?}", text(&r.body), started.elapsed()),
        Err(e) => println!("blocking: failed: {e}"),
    }

    // 2. A callback, run on the shard thread; here it hands the result back over a channel.
    let (tx, rx) = mpsc::channel();
    client.call(Request::echo(b"hello, callback"), move |r| {
        let _ = tx.send(r);
    });
    match rx.recv().expect("the callback runs exactly once") {
        Ok(r) => println!(
            "callback: {:?} (sequence id {})",
            text(&r.body),
            r.sequence_id
        ),
        Err(e) => println!("callback: failed: {e}"),
    }

    // 3. async, on a shard task: no mailbox hop between the task and its connection.
    let (tx, rx) = mpsc::channel();
    let c = client.clone();
    engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            spawn_local(shard, async move {
                let mut lines = Vec::new();
                for i in 0..3 {
                    let r = c
                        .call_async(Request::echo(format!("hello, async {i}").as_bytes()))
                        .await;
                    lines.push(match r {
                        Ok(r) => text(&r.body),
                        Err(e) => format!("failed: {e}"),
                    });
                }
                let _ = tx.send(lines);
            });
        })
        .expect("post");
    for line in rx.recv().expect("the task reports") {
        println!("async: {line:?}");
    }

    // 4. A one-way call: no answer comes back.
    client
        .send_one_way(Request::echo(b"fire and forget"))
        .expect("one-way");

    // 5. A timeout: a deadline that has already passed fails at once, as a Timeout.
    let e = client
        .call_blocking(Request::echo(b"too late").deadline(Instant::now()))
        .unwrap_err();
    println!(
        "deadline in the past: {e} (is_timeout = {})",
        e.is_timeout()
    );

    drop(client);
    if let Some(server) = own_server {
        server.shutdown(Duration::from_secs(1));
    }
    engine.shutdown();
}
