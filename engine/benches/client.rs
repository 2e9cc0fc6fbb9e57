//! The client's benchmark (not a test): `cargo bench -p octo-engine --bench client -- [options]`.
//!
//! 1. Timeout lateness while the same shard serves load. One client shard (CPU 0) sends Echo calls
//!    open-loop at `--rate` calls/s to octo's Echo server (its own engine, CPU 1) and, on the same
//!    shard, every millisecond a probe call with a `--timeout-ms` deadline to a peer that never
//!    answers. Lateness is the time from a probe's deadline to its Timeout reaching the caller:
//!    the probe's callback on the shard, and a blocking caller on a foreign thread. Rounds with
//!    and without the load are interleaved; p50/p99/max are reported per kind of round.
//! 2. Calls/s per client core, closed-loop, against the same Echo server: `--depth` shard tasks
//!    each awaiting `call_async` in a loop, interleaved with a foreign thread keeping `--depth`
//!    callback calls in flight.
//!
//! Options: `--secs S` (per round, default 3), `--rounds N` (2), `--rate R` (100000),
//! `--timeout-ms T` (10), `--depth D` (256), `--size BYTES` (1024), `--client-cpu N` (0),
//! `--server-cpu N` (1), `--only lateness|throughput`.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use octo_engine::client::{CallErrorKind, Client, Request};
use octo_engine::proto::Framing;
use octo_engine::runtime::{spawn_local, Shard};
use octo_engine::server::EchoService;
use octo_engine::{Engine, Server};

const SERVICE: &str = "com.meituan.octo.bench.Echo";

struct Opts {
    secs: f64,
    rounds: usize,
    rate: f64,
    timeout: Duration,
    depth: usize,
    size: usize,
    client_cpu: usize,
    server_cpu: usize,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        secs: 3.0,
        rounds: 2,
        rate: 100_000.0,
        timeout: Duration::from_millis(10),
        depth: 256,
        size: 1024,
        client_cpu: 0,
        server_cpu: 1,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--secs" => o.secs = v.parse().expect("--secs"),
            "--rounds" => o.rounds = v.parse().expect("--rounds"),
            "--rate" => o.rate = v.parse().expect("--rate"),
            "--timeout-ms" => o.timeout = Duration::from_millis(v.parse().expect("--timeout-ms")),
            "--depth" => o.depth = v.parse().expect("--depth"),
            "--size" => o.size = v.parse().expect("--size"),
            "--client-cpu" => o.client_cpu = v.parse().expect("--client-cpu"),
            "--server-cpu" => o.server_cpu = v.parse().expect("--server-cpu"),
            "--only" => o.only = Some(v),
            // `cargo bench` passes --bench; ignore anything else without a value.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// A peer that accepts and reads everything, never answering (bounded by `stop`).
fn silent_peer(stop: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let stop = stop.clone();
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        while !stop.load(Ordering::Relaxed) {
                            match s.read(&mut buf) {
                                Ok(0) => return,
                                Ok(_) => {}
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::WouldBlock
                                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    addr
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".to_owned();
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    format!(
        "n={:6} p50={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        v.len(),
        p(0.50),
        p(0.99),
        v[v.len() - 1]
    )
}

struct LoadRound {
    client: Client,
    probe: Client,
    request: Request,
    probe_request: Request,
    rate: f64,
    timeout: Duration,
    start: Instant,
    end: Instant,
    issued: u64,
    next_probe: Instant,
    ok: Rc<Cell<u64>>,
    failed: Rc<RefCell<Failures>>,
    lateness: Rc<RefCell<Vec<Duration>>>,
    done: mpsc::Sender<(u64, Failures, Vec<Duration>)>,
}

/// Failed calls, by kind.
type Failures = Vec<(CallErrorKind, u64)>;

fn count(failed: &RefCell<Failures>, kind: CallErrorKind) {
    let mut f = failed.borrow_mut();
    match f.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, n)) => *n += 1,
        None => f.push((kind, 1)),
    }
}

/// Every millisecond: issues the calls due at `rate` and one probe.
fn tick(shard: &mut Shard, mut r: Box<LoadRound>) {
    let now = Instant::now();
    if now >= r.end {
        // Let the last probes time out, then report.
        let wait = now + r.timeout * 2 + Duration::from_millis(20);
        shard.set_timer(wait, move |_| {
            let late = std::mem::take(&mut *r.lateness.borrow_mut());
            let failed = std::mem::take(&mut *r.failed.borrow_mut());
            let _ = r.done.send((r.ok.get(), failed, late));
        });
        return;
    }
    let due = ((now - r.start).as_secs_f64() * r.rate) as u64;
    let n = due.saturating_sub(r.issued).min(20_000);
    for _ in 0..n {
        let (ok, failed) = (r.ok.clone(), r.failed.clone());
        r.client
            .call_on(shard, r.request.clone(), move |res| match res {
                Ok(_) => ok.set(ok.get() + 1),
                Err(e) => count(&failed, e.kind()),
            });
    }
    r.issued += n;
    while r.next_probe <= now {
        r.next_probe += Duration::from_millis(1);
        let deadline = Instant::now() + r.timeout;
        let lateness = r.lateness.clone();
        let req = r.probe_request.clone().deadline(deadline);
        r.probe.call_on(shard, req, move |res| {
            let at = Instant::now();
            if matches!(res, Err(ref e) if e.kind() == CallErrorKind::Timeout) {
                lateness
                    .borrow_mut()
                    .push(at.saturating_duration_since(deadline));
            }
        });
    }
    shard.set_timer(now + Duration::from_millis(1), move |s| tick(s, r));
}

struct Results {
    shard_late: Vec<Duration>,
    foreign_late: Vec<Duration>,
    ok: u64,
    failed: Failures,
    secs: f64,
    loadavg: String,
}

/// The 1-minute load average (other processes compete for the two CPUs: say so).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn lateness_round(
    o: &Opts,
    client_engine: &Engine,
    echo_addr: SocketAddr,
    silent: SocketAddr,
    rate: f64,
) -> Results {
    let load = Client::builder(SERVICE)
        .endpoint(echo_addr, Framing::Octo)
        .pool_size(2)
        .timeout(Duration::from_secs(5))
        .build(client_engine.runtime())
        .unwrap();
    let probe = Client::builder(SERVICE)
        .endpoint(silent, Framing::Octo)
        .pool_size(1)
        .heartbeat(None)
        .build(client_engine.runtime())
        .unwrap();
    // Warm up: connections open, buffers grown.
    for _ in 0..100 {
        load.call_blocking(Request::echo(&vec![b'a'; o.size]))
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let secs = o.secs;
    let timeout = o.timeout;
    let message = vec![b'a'; o.size];
    let (l2, p2) = (load.clone(), probe.clone());
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            let now = Instant::now();
            let round = Box::new(LoadRound {
                client: l2,
                probe: p2,
                request: Request::echo(&message),
                probe_request: Request::echo(b"probe"),
                rate,
                timeout,
                start: now,
                end: now + Duration::from_secs_f64(secs),
                issued: 0,
                next_probe: now,
                ok: Rc::new(Cell::new(0)),
                failed: Rc::new(RefCell::new(Vec::new())),
                lateness: Rc::new(RefCell::new(Vec::new())),
                done: tx,
            });
            tick(shard, round);
        })
        .unwrap();
    // A foreign thread's blocking probes, every 5 ms, meanwhile.
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut foreign = Vec::new();
    while Instant::now() < end {
        let deadline = Instant::now() + timeout;
        let r = probe.call_blocking(Request::echo(b"foreign probe").deadline(deadline));
        let at = Instant::now();
        if matches!(r, Err(ref e) if e.is_timeout()) {
            foreign.push(at.saturating_duration_since(deadline));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (ok, failed, shard_late) = rx.recv().unwrap();
    Results {
        shard_late,
        foreign_late: foreign,
        ok,
        failed,
        secs,
        loadavg: loadavg(),
    }
}

fn throughput_async(o: &Opts, client_engine: &Engine, echo_addr: SocketAddr) -> (f64, u64) {
    let client = Client::builder(SERVICE)
        .endpoint(echo_addr, Framing::Octo)
        .pool_size(2)
        .timeout(Duration::from_secs(5))
        .build(client_engine.runtime())
        .unwrap();
    client.call_blocking(Request::echo(b"warm")).unwrap();
    let (tx, rx) = mpsc::channel();
    let depth = o.depth;
    let secs = o.secs;
    let message = vec![b'a'; o.size];
    let c = client.clone();
    let started = Instant::now();
    client_engine
        .runtime()
        .shard(0)
        .post(move |shard| {
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let request = Request::echo(&message);
            for _ in 0..depth {
                let (c, tx, request) = (c.clone(), tx.clone(), request.clone());
                spawn_local(shard, async move {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while Instant::now() < end {
                        match c.call_async(request.clone()).await {
                            Ok(_) => ok += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    let _ = tx.send((ok, failed));
                });
            }
        })
        .unwrap();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..depth {
        let (a, b) = rx.recv().unwrap();
        ok += a;
        failed += b;
    }
    (ok as f64 / started.elapsed().as_secs_f64(), failed)
}

fn throughput_foreign(o: &Opts, client_engine: &Engine, echo_addr: SocketAddr) -> (f64, u64) {
    let client = Client::builder(SERVICE)
        .endpoint(echo_addr, Framing::Octo)
        .pool_size(2)
        .timeout(Duration::from_secs(5))
        .build(client_engine.runtime())
        .unwrap();
    client.call_blocking(Request::echo(b"warm")).unwrap();
    let request = Request::echo(&vec![b'a'; o.size]);
    let (tx, rx) = mpsc::channel::<bool>();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(o.secs);
    let issue = |tx: mpsc::Sender<bool>| {
        client.call(request.clone(), move |r| {
            let _ = tx.send(r.is_ok());
        })
    };
    for _ in 0..o.depth {
        issue(tx.clone());
    }
    let (mut ok, mut failed, mut outstanding) = (0u64, 0u64, o.depth);
    while outstanding > 0 {
        let r = rx.recv().unwrap();
        outstanding -= 1;
        if r {
            ok += 1
        } else {
            failed += 1
        }
        if Instant::now() < end {
            issue(tx.clone());
            outstanding += 1;
        }
    }
    (ok as f64 / started.elapsed().as_secs_f64(), failed)
}

fn main() {
    let o = opts();
    let server_engine = Engine::builder()
        .shards(1)
        .cpus(vec![o.server_cpu])
        .build()
        .unwrap();
    let server = Server::builder(&server_engine)
        .listen("127.0.0.1:0".parse().unwrap())
        .service(SERVICE, EchoService)
        .start()
        .unwrap();
    let client_engine = Engine::builder()
        .shards(1)
        .cpus(vec![o.client_cpu])
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let silent = silent_peer(stop.clone());
    println!(
        "client bench: {}s rounds x{}, {} B echo, client shard on CPU {}, server shard on CPU {}, ring {}",
        o.secs,
        o.rounds,
        o.size,
        o.client_cpu,
        o.server_cpu,
        client_engine.task_run()
    );

    if o.only.as_deref() != Some("throughput") {
        println!(
            "\n== timeout lateness (deadline {:?}; probe every 1 ms on the shard, every 5 ms from a foreign thread)",
            o.timeout
        );
        let (mut idle_s, mut idle_f, mut load_s, mut load_f) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..o.rounds {
            for rate in [0.0, o.rate] {
                let r = lateness_round(&o, &client_engine, server.local_addr(), silent, rate);
                println!(
                    "round {round} load {:>7.0}/s (loadavg {}): served {:>8.0} calls/s (failed: {:?}); shard caller {}; foreign caller {}",
                    rate,
                    r.loadavg,
                    r.ok as f64 / r.secs,
                    r.failed,
                    percentiles(r.shard_late.clone()),
                    percentiles(r.foreign_late.clone())
                );
                if rate == 0.0 {
                    idle_s.extend(r.shard_late);
                    idle_f.extend(r.foreign_late);
                } else {
                    load_s.extend(r.shard_late);
                    load_f.extend(r.foreign_late);
                }
            }
        }
        println!(
            "all rounds, no load:    shard caller {}",
            percentiles(idle_s)
        );
        println!(
            "all rounds, no load:    foreign      {}",
            percentiles(idle_f)
        );
        println!(
            "all rounds, under load: shard caller {}",
            percentiles(load_s)
        );
        println!(
            "all rounds, under load: foreign      {}",
            percentiles(load_f)
        );
    }

    if o.only.as_deref() != Some("lateness") {
        println!(
            "\n== closed-loop calls/s on one client core, depth {}",
            o.depth
        );
        let (mut a_sum, mut f_sum) = (0.0, 0.0);
        for round in 0..o.rounds {
            let (a, af) = throughput_async(&o, &client_engine, server.local_addr());
            let (f, ff) = throughput_foreign(&o, &client_engine, server.local_addr());
            println!(
                "round {round}: async on the shard {a:>9.0} calls/s ({af} failed); foreign-thread callbacks {f:>9.0} calls/s ({ff} failed)"
            );
            a_sum += a;
            f_sum += f;
        }
        println!(
            "mean: async on the shard {:.0} calls/s, foreign-thread callbacks {:.0} calls/s (ratio {:.2})",
            a_sum / o.rounds as f64,
            f_sum / o.rounds as f64,
            a_sum / f_sum.max(1.0)
        );
    }
    stop.store(true, Ordering::Relaxed);
}
