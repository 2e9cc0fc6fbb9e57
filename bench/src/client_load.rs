//! The load generator built on octo's own client (`octo-bench load`, the default generator): one
//! client shard, `conns` clients of one connection each, and either `depth` calls in flight per
//! connection (closed loop) or calls issued at a fixed `rate` (open loop, latency counted from
//! each call's intended send time, so a stalled server cannot hide its stall: no coordinated
//! omission). Every answer is checked: its Thrift seqid must be the low 32 bits of the call's
//! sequence id and the echoed message must be the one sent; a mismatch counts as an error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use octo_engine::client::{CallResult, Client, Request};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::{peek_message, Framing, ThriftMessageType};
use octo_engine::runtime::{spawn_local, Shard};
use octo_engine::Engine;

use crate::load::Proto;
use crate::measure::{self, Cpu};

/// One load run with octo's client.
#[derive(Clone, Debug)]
pub struct ClientLoadSpec {
    pub addr: SocketAddr,
    pub conns: usize,
    pub depth: usize,
    pub size: usize,
    pub secs: f64,
    pub warmup: f64,
    pub proto: Proto,
    pub service: String,
    pub cpu: Option<usize>,
    /// Open loop at this many calls per second (over all connections) instead of closed loop.
    pub rate: Option<f64>,
    /// The server's pid, to report its CPU time over the measuring window.
    pub server_pid: Option<u32>,
    /// Print QPS and p99 so far once a second (on stderr).
    pub progress: bool,
}

/// What one run measured, over the measuring window only (after warm-up).
pub struct Outcome {
    pub requests: u64,
    pub elapsed: Duration,
    /// Microseconds; in an open loop, from the intended send time.
    pub latency_us: Histogram<u64>,
    /// Failed or mismatched calls, by kind and status.
    pub errors: BTreeMap<String, u64>,
    /// CPU seconds of this process (the generator) over the window.
    pub client_cpu: f64,
    /// CPU seconds of the server over the window, when its pid is known.
    pub server_cpu: Option<f64>,
}

impl Outcome {
    pub fn qps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// State shared by the shard's callers and the thread that runs the clock.
struct Tally {
    measuring: AtomicBool,
    stop: AtomicBool,
    ok: AtomicU64,
    outstanding: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    message: Vec<u8>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

impl Tally {
    fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_insert(0) += 1;
    }

    /// Checks one answer and records it (if it completes inside the measuring window).
    fn record(&self, started: Instant, result: CallResult) {
        let now = Instant::now();
        let measuring = self.measuring.load(Ordering::Relaxed);
        let verdict = match result {
            Ok(r) => check(&r.body, r.sequence_id, &self.message),
            Err(e) => Err(format!("{:?} ({:?})", e.kind(), e.status())),
        };
        if !measuring {
            return;
        }
        match verdict {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let us = now.saturating_duration_since(started).as_micros() as u64;
                let _ = self.hist.lock().unwrap().record(us.max(1));
            }
            Err(e) => self.error(e),
        }
    }
}

/// An Echo answer is right if it is a REPLY with the call's seqid carrying the message sent.
fn check(body: &[u8], sequence_id: i64, message: &[u8]) -> Result<(), String> {
    let m = peek_message(body).map_err(|e| format!("Mismatch (undecodable answer: {e})"))?;
    if m.seqid != sequence_id as i32 {
        return Err("Mismatch (seqid)".into());
    }
    if m.kind != ThriftMessageType::Reply {
        return Err(format!("Mismatch (a {:?} message)", m.kind));
    }
    match echo::decode_reply(body) {
        Ok((_, EchoReply::Success(got))) if got == message => Ok(()),
        Ok((_, EchoReply::Success(_))) => Err("Mismatch (echoed payload)".into()),
        Ok((_, EchoReply::Exception(e))) => Err(format!("Exception ({:?})", e.kind)),
        Err(e) => Err(format!("Mismatch (undecodable reply: {e})")),
    }
}

/// Issues open-loop calls as they fall due (all calls due by now, each stamped with the time it
/// was due), then sleeps until the next one is due.
struct Pacer {
    clients: Vec<Client>,
    request: Request,
    tally: Arc<Tally>,
    start: Instant,
    interval: Duration,
    issued: u64,
    next: usize,
}

fn pace(shard: &mut Shard, mut p: Box<Pacer>) {
    if p.tally.stop.load(Ordering::Relaxed) {
        return;
    }
    let now = Instant::now();
    // Never more than 100 ms worth per tick: a shard that stalled longer catches up gradually,
    // and every late call still counts its lateness from its own intended time.
    let due = (now - p.start).as_nanos() / p.interval.as_nanos().max(1);
    let due = (due as u64).min(p.issued + 100_000);
    let at = |p: &Pacer, i: u64| {
        p.start + Duration::from_nanos((p.interval.as_nanos() as u64).saturating_mul(i))
    };
    while p.issued < due {
        let intended = at(&p, p.issued);
        p.issued += 1;
        let client = &p.clients[p.next % p.clients.len()];
        p.next += 1;
        let tally = p.tally.clone();
        tally.outstanding.fetch_add(1, Ordering::Relaxed);
        client.call_on(shard, p.request.clone(), move |r| {
            tally.record(intended, r);
            tally.outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Wake up when the next call is due (at most every 100 us): a coarser tick would add its
    // own period to every call's latency, counted as it is from the intended send time.
    let next = at(&p, p.issued).max(now + Duration::from_micros(100));
    shard.set_timer(next, move |s| pace(s, p));
}

/// Runs one load on its own client engine (one shard, pinned to `spec.cpu`).
pub fn run(spec: &ClientLoadSpec) -> Result<Outcome, String> {
    // This thread only keeps time, but it belongs on the generator's CPU, not the server's.
    if let Some(id) = spec.cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let engine = Engine::builder()
        .shards(1)
        .cpus(spec.cpu.map(|c| vec![c]).unwrap_or_default())
        .build()
        .map_err(|e| format!("client engine: {e}"))?;
    let result = run_on(&engine, spec);
    engine.shutdown();
    result
}

fn run_on(engine: &Engine, spec: &ClientLoadSpec) -> Result<Outcome, String> {
    let framing = match spec.proto {
        Proto::Octo => Framing::Octo,
        Proto::Thrift => Framing::Thrift,
    };
    let clients = (0..spec.conns.max(1))
        .map(|_| {
            Client::builder(spec.service.clone())
                .endpoint(spec.addr, framing)
                .appkey("octo-bench")
                .pool_size(1)
                .timeout(Duration::from_secs(5))
                .build(engine.runtime())
                .map_err(|e| format!("client: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let message = vec![b'a'; spec.size];
    // One call on each client first: connections open before the clock starts.
    for c in &clients {
        let r = c
            .call_blocking(Request::echo(&message))
            .map_err(|e| format!("first call to {}: {e}", spec.addr))?;
        check(&r.body, r.sequence_id, &message)?;
    }
    let tally = Arc::new(Tally {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        ok: AtomicU64::new(0),
        outstanding: AtomicU64::new(0),
        hist: Mutex::new(histogram()),
        errors: Mutex::new(BTreeMap::new()),
        message: message.clone(),
    });
    let request = Request::echo(&message);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let shard = engine.runtime().shard(0);
    let closed_loop = spec.rate.is_none();
    match spec.rate {
        None => {
            let (tally, depth) = (tally.clone(), spec.depth.max(1));
            let clients = clients.clone();
            shard
                .post(move |shard| {
                    for c in clients {
                        for _ in 0..depth {
                            let (c, tally, request, done) =
                                (c.clone(), tally.clone(), request.clone(), done_tx.clone());
                            spawn_local(shard, async move {
                                while !tally.stop.load(Ordering::Relaxed) {
                                    let started = Instant::now();
                                    let r = c.call_async(request.clone()).await;
                                    tally.record(started, r);
                                }
                                drop(done);
                            });
                        }
                    }
                })
                .map_err(|_| "the client shard stopped")?;
        }
        Some(rate) => {
            if rate.is_nan() || rate <= 0.0 {
                return Err("--rate must be positive".into());
            }
            let p = Box::new(Pacer {
                clients: clients.clone(),
                request,
                tally: tally.clone(),
                start: Instant::now(),
                interval: Duration::from_secs_f64(1.0 / rate),
                issued: 0,
                next: 0,
            });
            drop(done_tx);
            shard
                .post(move |shard| {
                    let mut p = p;
                    p.start = Instant::now();
                    pace(shard, p)
                })
                .map_err(|_| "the client shard stopped")?;
        }
    }

    std::thread::sleep(Duration::from_secs_f64(spec.warmup));
    let cpu0 = Cpu::sample(spec.server_pid);
    tally.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(spec.secs);
    let mut next_tick = start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(end.min(next_tick) - now);
        if Instant::now() >= next_tick && !spec.progress {
            next_tick += Duration::from_secs(1);
        } else if Instant::now() >= next_tick {
            let t = next_tick - start;
            let ok = tally.ok.load(Ordering::Relaxed);
            let p99 = tally.hist.lock().unwrap().value_at_quantile(0.99);
            let errs: u64 = tally.errors.lock().unwrap().values().sum();
            eprintln!(
                "  {:>4.0} s  {:>9.0} req/s  p99 so far {:>6} us  errors {errs}",
                t.as_secs_f64(),
                ok as f64 / t.as_secs_f64(),
                p99
            );
            next_tick += Duration::from_secs(1);
        }
    }
    tally.measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let cpu1 = Cpu::sample(spec.server_pid);
    tally.stop.store(true, Ordering::Relaxed);
    // Let the calls in flight finish (each is bounded by its 5 s timeout).
    let drain_until = Instant::now() + Duration::from_secs(10);
    if closed_loop {
        loop {
            match done_rx.recv_timeout(Duration::from_millis(50)) {
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                _ if Instant::now() > drain_until => break,
                _ => {}
            }
        }
    } else {
        while tally.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < drain_until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(clients);
    let (client_cpu, server_cpu) = measure::cpu_delta(&cpu0, &cpu1);
    let hist = tally.hist.lock().unwrap().clone();
    let errors = tally.errors.lock().unwrap().clone();
    Ok(Outcome {
        requests: tally.ok.load(Ordering::Relaxed),
        elapsed,
        latency_us: hist,
        errors,
        client_cpu,
        server_cpu,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use octo_engine::proto::echo;

    use super::check;

    fn reply(seqid: i32, message: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        echo::encode_reply(&mut b, seqid, message);
        b
    }

    #[test]
    fn an_answer_with_the_calls_seqid_and_message_passes() {
        assert_eq!(check(&reply(7, b"abc"), 7, b"abc"), Ok(()));
    }

    #[test]
    fn an_answer_is_matched_on_the_low_32_bits_of_the_sequence_id() {
        assert_eq!(check(&reply(5, b"abc"), (1 << 40) | 5, b"abc"), Ok(()));
    }

    #[test]
    fn an_answer_with_another_seqid_is_a_mismatch() {
        assert_eq!(
            check(&reply(8, b"abc"), 7, b"abc"),
            Err("Mismatch (seqid)".into())
        );
    }

    #[test]
    fn an_answer_echoing_other_bytes_is_a_mismatch() {
        assert_eq!(
            check(&reply(7, b"abd"), 7, b"abc"),
            Err("Mismatch (echoed payload)".into())
        );
    }

    #[test]
    fn the_request_sent_back_unchanged_is_a_mismatch() {
        let mut call = BytesMut::new();
        echo::encode_call(&mut call, 7, b"abc");
        assert!(check(&call, 7, b"abc").is_err());
    }
}
