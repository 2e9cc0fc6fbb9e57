//! `octo-bench serve`: the reference Echo service on octo (or the raw frame echo, or the same
//! work on a tokio current_thread runtime for comparison), until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use octo_engine::conn::RawFrameEcho;
use octo_engine::proto::DEFAULT_MAX_FRAME_SIZE;
use octo_engine::runtime::{
    bind_reuseport_group, Acceptor, ConnOptions, Connection, Runtime, ShardCore, TaskRun,
};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Server};

use crate::args::Args;

/// Blocks SIGINT and SIGTERM in this thread (and every thread it starts later), so that
/// [`wait_for_signal`] can take them synchronously.
pub fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; pthread_sigmask only
    // reads the set we pass.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: set is a valid, initialised signal set; sig is a valid out-pointer.
    unsafe { libc::sigwait(set, &mut sig) };
}

fn ready(addr: SocketAddr, what: &str) {
    println!("listening on {addr} pid {} ({what})", std::process::id());
    let _ = std::io::stdout().flush();
}

struct RawAcceptor;

impl Acceptor for RawAcceptor {
    fn on_accept(
        &mut self,
        _: &mut ShardCore,
        _: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)> {
        Some((
            Box::new(RawFrameEcho::new(DEFAULT_MAX_FRAME_SIZE)),
            ConnOptions::default(),
        ))
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let addr: SocketAddr = args
        .str("addr")
        .unwrap_or("127.0.0.1:9000")
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    let shards: usize = args.get("shards", 1)?;
    let service = args.str("service").unwrap_or("Echo").to_string();
    let cpus = args.cpus("cpus")?;
    let mode = args.str("mode").unwrap_or("echo").to_string();
    let task_run = match args.str("taskrun") {
        Some(s) => TaskRun::parse(s).ok_or_else(|| format!("bad --taskrun {s}"))?,
        None => TaskRun::from_env(),
    };
    if mode != "echo" && mode != "raw" {
        return Err(format!("bad --mode {mode}"));
    }
    let signals = block_stop_signals();
    match args.str("runtime").unwrap_or("octo") {
        "octo" => {
            let mut builder = Engine::builder().shards(shards).task_run(task_run);
            if let Some(c) = cpus {
                builder = builder.cpus(c);
            }
            let engine = builder.build().map_err(|e| format!("engine: {e}"))?;
            if mode == "echo" {
                let server = Server::builder(&engine)
                    .listen(addr)
                    .service(&service, EchoService)
                    .default_service(&service)
                    .start()
                    .map_err(|e| format!("listen on {addr}: {e}"))?;
                ready(
                    server.local_addr(),
                    &format!("octo echo, {}", engine.task_run()),
                );
                wait_for_signal(&signals);
                server.shutdown(Duration::from_secs(5));
            } else {
                serve_raw(engine.runtime(), addr)?;
                wait_for_signal(&signals);
            }
            engine.shutdown();
        }
        "tokio" => {
            let listener =
                std::net::TcpListener::bind(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let cpu_list = cpus.unwrap_or_default();
            for i in 0..shards {
                let l = listener.try_clone().map_err(|e| e.to_string())?;
                let cpu = (!cpu_list.is_empty()).then(|| cpu_list[i % cpu_list.len()]);
                let raw = mode == "raw";
                std::thread::Builder::new()
                    .name(format!("tokio-echo-{i}"))
                    .spawn(move || crate::tokio_echo::serve(l, cpu, raw))
                    .map_err(|e| e.to_string())?;
            }
            ready(local, &format!("tokio current_thread {mode}"));
            wait_for_signal(&signals);
        }
        other => return Err(format!("bad --runtime {other}")),
    }
    Ok(())
}

fn serve_raw(runtime: &Runtime, addr: SocketAddr) -> Result<(), String> {
    let listeners = bind_reuseport_group(addr, runtime.shard_count(), 1024)
        .map_err(|e| format!("listen on {addr}: {e}"))?;
    let local = listeners[0].local_addr();
    let (tx, rx) = std::sync::mpsc::channel();
    for (h, l) in runtime.shards().iter().zip(listeners) {
        let tx = tx.clone();
        h.post(move |shard| {
            shard.listen(l, Box::new(RawAcceptor));
            let _ = tx.send(());
        })
        .map_err(|e| e.to_string())?;
    }
    for _ in 0..runtime.shard_count() {
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| "a shard did not start listening".to_string())?;
    }
    ready(
        local,
        &format!("octo raw frame echo, {}", runtime.task_run()),
    );
    Ok(())
}
