//! A runnable Echo server: the reference service under the name `Echo` (also the default for
//! native Thrift), plus a service that answers later from another thread.
//!
//! ```sh
//! cargo run --release -p octo-engine --example echo_server -- 127.0.0.1:9090
//! ```
//! Serves for 60 seconds, then shuts down gracefully.

use std::time::Duration;

use bytes::BytesMut;
use octo_engine::proto::echo;
use octo_engine::server::EchoService;
use octo_engine::{Engine, Reply, Request, Server};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9090".to_string());
    let engine = Engine::builder().shards(2).build()?;
    let server = Server::builder(&engine)
        .listen(
            addr.parse()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        )
        .service("Echo", EchoService)
        .service(
            "SlowEcho",
            |req: &Request<'_>, reply: Reply<'_>| match echo::decode_call(req.body()) {
                Ok((seqid, msg)) => {
                    // Answer from another thread: the Responder routes the answer back to the shard.
                    let responder = reply.later();
                    let msg = msg.to_vec();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(10));
                        let mut body = BytesMut::new();
                        echo::encode_reply(&mut body, seqid, &msg);
                        responder.ok(body.freeze());
                    });
                }
                Err(e) => reply.error(e.status(), &e.to_string()),
            },
        )
        .default_service("Echo")
        .start()?;
    println!(
        "echo server on {} ({} shards, {})",
        server.local_addr(),
        engine.shard_count(),
        engine.task_run()
    );
    std::thread::sleep(Duration::from_secs(60));
    let stats = server.stats();
    println!(
        "{} requests, {} heartbeats",
        stats.requests, stats.heartbeats
    );
    server.shutdown(Duration::from_secs(5));
    Ok(())
}
