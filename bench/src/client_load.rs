//! The load generator built on octo's own client (`octo-bench load`, the default generator): one
//! client shard, `conns` clients of one connection each, and either `depth` calls in flight per
//! connection (closed loop) or calls issued at a fixed `rate` (open loop, latency counted from
//! each call's intended send time, so a stalled server cannot hide its stall: no coordinated
//! omission). Every answer is checked: its Thrift seqid must be the low 32 bits of the call's
//! sequence id and the echoed message must be the one sent; a mismatch counts as an error.
//!
//! Cheap per call, so that the generator is not what a run measures: calls are made with
//! `Client::call_on_then` (the answer's callback makes the next call on the spot: no future,
//! waker or mailbox hop), the request body is static (cloning it is free), an answer is checked
//! with one compare against the expected reply, and counts stay on the shard, published to the
//! clock thread every 100 ms and when the window closes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use octo_engine::client::{CallErrorKind, CallResult, Client, Request};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::{peek_message, Framing, ThriftMessageType};
use octo_engine::runtime::Shard;
use octo_engine::Engine;

/// Every call's timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// In an open loop, the generator's shard polls instead of sleeping between events (see
    /// [`run`]); closed loops never do.
    pub busy_poll: bool,
}

/// What one run measured, over the measuring window only (after warm-up).
pub struct Outcome {
    pub requests: u64,
    pub elapsed: Duration,
    /// Microseconds; in an open loop, from the intended send time.
    pub latency_us: Histogram<u64>,
    /// Failed or mismatched calls, by kind and status.
    pub errors: BTreeMap<String, u64>,
    /// CPU seconds of this process (the generator) over the window, less the time its shard
    /// spent polling with nothing to do when it busy-polls: the CPU its work took.
    pub client_cpu: f64,
    /// Seconds the generator's shard spent polling with nothing to do (0 unless busy polling).
    pub client_polled: f64,
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

    /// Calls the generator's own client refused at once as Overloaded (never sent): in an open
    /// loop, what a rate above the generator's capacity leaves (its connections' unsent output
    /// reached the high water mark). Counted among the errors too.
    pub fn refused_by_generator(&self) -> u64 {
        let prefix = error_key_prefix(CallErrorKind::Overloaded);
        self.errors
            .iter()
            .filter(|(what, _)| what.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

/// How a failed call is counted in [`Outcome::errors`]: its kind, then its OCTO status.
fn error_key(kind: CallErrorKind, status: octo_engine::Status) -> String {
    format!("{}{status:?})", error_key_prefix(kind))
}

/// The start of [`error_key`] for every failure of `kind`.
fn error_key_prefix(kind: CallErrorKind) -> String {
    format!("{kind:?} (")
}

/// What the generator's shard and the thread that runs the clock share. The shard publishes its
/// counts here every [`PUBLISH`] and once more when the measuring window closes.
struct Tally {
    measuring: AtomicBool,
    stop: AtomicBool,
    ok: AtomicU64,
    outstanding: AtomicU64,
    /// The shard's idle polling (ns) when the window opened and when it closed.
    polled_at_start: AtomicU64,
    polled_at_end: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ok: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            polled_at_start: AtomicU64::new(0),
            polled_at_end: AtomicU64::new(0),
            hist: Mutex::new(histogram()),
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

/// How often the shard publishes its counts (the progress lines read them).
const PUBLISH: Duration = Duration::from_millis(100);

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// The right answer to every call, byte for byte, but for the seqid at `seq_at`.
struct Expected {
    reply: Vec<u8>,
    seq_at: usize,
    message: Vec<u8>,
}

impl Expected {
    fn new(message: &[u8]) -> Expected {
        let mut reply = BytesMut::new();
        echo::encode_reply(&mut reply, 0, message);
        let seq_at = peek_message(&reply).expect("a reply").payload_offset - 4;
        Expected {
            reply: reply.to_vec(),
            seq_at,
            message: message.to_vec(),
        }
    }

    /// [`check`], fast: an answer identical to the expected reply with the call's seqid passes
    /// with one compare; anything else gets the full check (which names the mismatch, and passes
    /// an answer that is right but encoded differently).
    fn check(&self, body: &[u8], sequence_id: i64) -> Result<(), String> {
        let (e, at) = (&self.reply, self.seq_at);
        if body.len() == e.len()
            && body[at..at + 4] == (sequence_id as i32).to_be_bytes()
            && body[..at] == e[..at]
            && body[at + 4..] == e[at + 4..]
        {
            return Ok(());
        }
        check(body, sequence_id, &self.message)
    }
}

/// The generator shard's own counts: every answer is checked and recorded here, without locks
/// or shared cache lines, and published to the [`Tally`] in bulk.
struct Local {
    tally: Arc<Tally>,
    expected: Expected,
    ok: u64,
    hist: Histogram<u64>,
    /// Failed calls by kind and status, counted without formatting anything: a generator that
    /// falls behind has its own client refuse calls by the hundred thousand, and that must not
    /// cost more than a call (named by [`error_key`] when published).
    failed: Vec<(CallErrorKind, octo_engine::Status, u64)>,
    /// Mismatched answers, by what was wrong.
    errors: BTreeMap<String, u64>,
}

thread_local! {
    /// The generator shard's [`Local`] (for the final publish, posted from the clock thread).
    static LOCAL: RefCell<Option<Rc<RefCell<Local>>>> = const { RefCell::new(None) };
}

impl Local {
    fn new(tally: Arc<Tally>, message: &[u8]) -> Local {
        Local {
            tally,
            expected: Expected::new(message),
            ok: 0,
            hist: histogram(),
            failed: Vec::new(),
            errors: BTreeMap::new(),
        }
    }

    /// Checks one answer and records it (if it completes inside the measuring window).
    fn record(&mut self, started: Instant, now: Instant, result: CallResult) {
        let measuring = self.tally.measuring.load(Ordering::Relaxed);
        match result {
            Ok(r) => {
                let verdict = self.expected.check(&r.body, r.sequence_id);
                if !measuring {
                    return;
                }
                match verdict {
                    Ok(()) => {
                        self.ok += 1;
                        let us = now.saturating_duration_since(started).as_micros() as u64;
                        let _ = self.hist.record(us.max(1));
                    }
                    Err(e) => *self.errors.entry(e).or_insert(0) += 1,
                }
            }
            Err(_) if !measuring => {}
            Err(e) => {
                let (kind, status) = (e.kind(), e.status());
                match self
                    .failed
                    .iter_mut()
                    .find(|f| f.0 == kind && f.1 == status)
                {
                    Some(f) => f.2 += 1,
                    None => self.failed.push((kind, status, 1)),
                }
            }
        }
    }

    fn publish(&mut self) {
        let t = &self.tally;
        if self.ok > 0 {
            t.ok.fetch_add(self.ok, Ordering::Relaxed);
            let _ = t.hist.lock().unwrap().add(&self.hist);
            self.ok = 0;
            self.hist.reset();
        }
        for (kind, status, n) in self.failed.drain(..) {
            *self.errors.entry(error_key(kind, status)).or_insert(0) += n;
        }
        if !self.errors.is_empty() {
            let mut errors = t.errors.lock().unwrap();
            for (what, n) in std::mem::take(&mut self.errors) {
                *errors.entry(what).or_insert(0) += n;
            }
        }
    }
}

/// Publishes the shard's counts every [`PUBLISH`] until the run stops.
fn publish_tick(shard: &mut Shard, local: Rc<RefCell<Local>>) {
    local.borrow_mut().publish();
    if local.borrow().tally.stop.load(Ordering::Relaxed) {
        return;
    }
    let at = shard.now() + PUBLISH;
    shard.set_timer(at, move |s| publish_tick(s, local));
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

/// One closed-loop caller: a call in flight on one client; its answer's callback checks it and
/// makes the next call on the spot (`call_on_then`: no future, no waker, no mailbox hop; the
/// next call leaves in the same flush). One clock read per call: an answer's arrival time is
/// the next call's start, and its deadline is counted from there.
struct Chain {
    clients: Rc<[Client]>,
    client: usize,
    request: Request,
    local: Rc<RefCell<Local>>,
    started: Instant,
    /// Dropped when the chain ends (the clock thread waits for all of them).
    _done: mpsc::Sender<()>,
}

fn chain_call(shard: &mut Shard, mut c: Box<Chain>) {
    let clients = c.clients.clone();
    // The deadline from the clock read already made: the client need not read it again.
    let request = c.request.clone().deadline(c.started + CALL_TIMEOUT);
    clients[c.client].call_on_then(shard, request, move |shard, r| {
        let now = Instant::now();
        c.local.borrow_mut().record(c.started, now, r);
        if c.local.borrow().tally.stop.load(Ordering::Relaxed) {
            return;
        }
        c.started = now;
        chain_call(shard, c);
    });
}

/// The open loop's shortest sleep. Measured at 367K calls/s over 8 connections, interleaved
/// (client / server CPU per call, p99): 50 us 2.7 / 2.5 us, 15-23 ms; 100 us 2.4 / 2.2 us,
/// 9-13 ms; 250 us 1.95 / 1.6 us, 2.2-6.7 ms (both sides saturate less, so calls queue less).
const PACE_TICK: Duration = Duration::from_micros(250);

/// Issues open-loop calls as they fall due (all calls due by now, each stamped with the time it
/// was due), then sleeps until the next one is due.
struct Pacer {
    clients: Vec<Client>,
    request: Request,
    local: Rc<RefCell<Local>>,
    timeout: Duration,
    start: Instant,
    interval: Duration,
    issued: u64,
    next: usize,
}

fn pace(shard: &mut Shard, mut p: Box<Pacer>) {
    let tally = p.local.borrow().tally.clone();
    if tally.stop.load(Ordering::Relaxed) {
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
    let n = due.saturating_sub(p.issued);
    tally.outstanding.fetch_add(n, Ordering::Relaxed);
    while p.issued < due {
        let intended = at(&p, p.issued);
        p.issued += 1;
        let client = &p.clients[p.next % p.clients.len()];
        p.next += 1;
        let local = p.local.clone();
        // The timeout counts from the intended send time, as the latency does (and no clock
        // read per call).
        let request = p.request.clone().deadline(intended + p.timeout);
        client.call_on_then(shard, request, move |_, r| {
            let mut l = local.borrow_mut();
            l.record(intended, Instant::now(), r);
            l.tally.outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Wake up when the next call is due, but at most every PACE_TICK: each wake-up sends one
    // batch per connection, and the server answers each batch with one send, so the tick sets
    // the batch size and with it both sides' cost per call. Calls sent late by up to a tick count
    // that lateness in their latency (measured from the intended send time).
    let next = at(&p, p.issued).max(now + PACE_TICK);
    shard.set_timer(next, move |s| pace(s, p));
}

/// Runs one load on its own client engine (one shard, pinned to `spec.cpu`).
///
/// An open loop's shard busy-polls (`spec.busy_poll`, the default): it has its CPU to itself,
/// and polling means it never waits to be woken for a tick or an answer. Interleaved at
/// 600K/s (6 rounds each, same server): p99 0.44-13.9 ms, median 1.5 ms, polling, working
/// 46-60% of its CPU; 1.25-5.2 ms, median 2.7 ms, sleeping, using 65-78%. The time the shard
/// spends polling with nothing to do is left out of `client_cpu` (see [`Outcome`]), so the
/// client CPU still shows what the generator's work costs. Closed loops never poll.
pub fn run(spec: &ClientLoadSpec) -> Result<Outcome, String> {
    // This thread only keeps time, but it belongs on the generator's CPU, not the server's.
    if let Some(id) = spec.cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let engine = Engine::builder()
        .busy_poll(spec.rate.is_some() && spec.busy_poll)
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
                .timeout(CALL_TIMEOUT)
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
    let tally = Arc::new(Tally::new());
    // The request's body is static: cloning the request per call costs no reference count.
    let body: &'static [u8] = Box::leak(Request::echo(&message).body().to_vec().into_boxed_slice());
    let request = Request::new(Bytes::from_static(body)).map_err(|e| e.to_string())?;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let shard = engine.runtime().shard(0);
    let closed_loop = spec.rate.is_none();
    if let Some(rate) = spec.rate {
        if rate.is_nan() || rate <= 0.0 {
            return Err("--rate must be positive".into());
        }
    }
    let (rate, depth, timeout) = (spec.rate, spec.depth.max(1), CALL_TIMEOUT);
    let (tally2, clients2) = (tally.clone(), clients.clone());
    shard
        .post(move |shard| {
            let local = Rc::new(RefCell::new(Local::new(tally2, &message)));
            LOCAL.with(|l| *l.borrow_mut() = Some(local.clone()));
            publish_tick(shard, local.clone());
            match rate {
                None => {
                    let clients: Rc<[Client]> = clients2.into();
                    let now = Instant::now();
                    for client in 0..clients.len() {
                        for _ in 0..depth {
                            let c = Box::new(Chain {
                                clients: clients.clone(),
                                client,
                                request: request.clone(),
                                local: local.clone(),
                                started: now,
                                _done: done_tx.clone(),
                            });
                            chain_call(shard, c);
                        }
                    }
                }
                Some(rate) => {
                    let p = Box::new(Pacer {
                        clients: clients2,
                        request,
                        local,
                        timeout,
                        start: Instant::now(),
                        interval: Duration::from_secs_f64(1.0 / rate),
                        issued: 0,
                        next: 0,
                    });
                    pace(shard, p)
                }
            }
        })
        .map_err(|_| "the client shard stopped")?;

    std::thread::sleep(Duration::from_secs_f64(spec.warmup));
    let cpu0 = Cpu::sample(spec.server_pid);
    tally.measuring.store(true, Ordering::Relaxed);
    let t = tally.clone();
    shard
        .post(move |shard| {
            let polled = shard.idle_polled().as_nanos() as u64;
            t.polled_at_start.store(polled, Ordering::Relaxed);
        })
        .map_err(|_| "the client shard stopped")?;
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
            // As published by the shard (at most PUBLISH old).
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
    // The shard's last counts of the window (it records nothing after this runs).
    let (pub_tx, pub_rx) = mpsc::channel::<()>();
    let t = tally.clone();
    shard
        .post(move |shard| {
            let polled = shard.idle_polled().as_nanos() as u64;
            t.polled_at_end.store(polled, Ordering::Relaxed);
            LOCAL.with(|l| {
                if let Some(local) = l.borrow().as_ref() {
                    local.borrow_mut().publish();
                }
            });
            let _ = pub_tx.send(());
        })
        .map_err(|_| "the client shard stopped")?;
    pub_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the client shard did not publish its counts")?;
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
    let polled = tally
        .polled_at_end
        .load(Ordering::Relaxed)
        .saturating_sub(tally.polled_at_start.load(Ordering::Relaxed)) as f64
        / 1e9;
    let hist = tally.hist.lock().unwrap().clone();
    let errors = tally.errors.lock().unwrap().clone();
    Ok(Outcome {
        requests: tally.ok.load(Ordering::Relaxed),
        elapsed,
        latency_us: hist,
        errors,
        client_cpu: (client_cpu - polled).max(0.0),
        client_polled: polled,
        server_cpu,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use octo_engine::proto::echo;

    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{check, histogram, Expected, Outcome};

    fn reply(seqid: i32, message: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        echo::encode_reply(&mut b, seqid, message);
        b
    }

    #[test]
    fn failed_calls_are_counted_by_kind_and_status_and_named_when_published() {
        use super::{error_key, Local, Tally};
        use octo_engine::client::{Request, Response};
        use std::sync::atomic::Ordering;
        use std::sync::Arc;
        use std::time::Instant;

        let tally = Arc::new(Tally::new());
        tally.measuring.store(true, Ordering::Relaxed);
        let mut local = Local::new(tally.clone(), b"abc");
        // Real call errors: a body that is no Thrift message is refused by the client.
        let refused = Request::new(&b"not thrift"[..]).unwrap_err();
        let key = error_key(refused.kind(), refused.status());
        let now = Instant::now();
        for _ in 0..3 {
            local.record(now, now, Err(refused.clone()));
        }
        let answer = |seq: i32, msg: &[u8]| Response {
            sequence_id: seq as i64,
            body: reply(seq, msg).freeze(),
        };
        local.record(now, now, Ok(answer(7, b"abc")));
        local.record(now, now, Ok(answer(7, b"abd")));
        local.publish();
        let errors = tally.errors.lock().unwrap().clone();
        assert_eq!(errors.get(&key), Some(&3), "{errors:?}");
        assert_eq!(
            errors.get("Mismatch (echoed payload)"),
            Some(&1),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(tally.ok.load(Ordering::Relaxed), 1);
        // Published once: a second publish adds nothing.
        local.publish();
        assert_eq!(tally.errors.lock().unwrap().get(&key), Some(&3));
    }

    #[test]
    fn only_calls_the_generators_own_client_refused_count_as_refused() {
        let mut errors = BTreeMap::new();
        errors.insert("Overloaded (DegradeException)".to_string(), 7);
        errors.insert("Timeout (TransportException)".to_string(), 2);
        errors.insert("answer echoes other bytes".to_string(), 1);
        let o = Outcome {
            requests: 0,
            elapsed: Duration::from_secs(1),
            latency_us: histogram(),
            errors,
            client_cpu: 0.0,
            client_polled: 0.0,
            server_cpu: None,
        };
        assert_eq!(o.refused_by_generator(), 7);
        assert_eq!(o.error_count(), 10);
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

    #[test]
    fn the_fast_check_passes_the_right_answer_and_names_every_mismatch_as_the_full_check_does() {
        let e = Expected::new(b"abc");
        assert_eq!(e.check(&reply(7, b"abc"), 7), Ok(()));
        assert_eq!(e.check(&reply(5, b"abc"), (1 << 40) | 5), Ok(()));
        for (body, seq) in [
            (reply(8, b"abc"), 7),
            (reply(7, b"abd"), 7),
            (reply(7, b"abcd"), 7),
            (reply(7, b""), 7),
        ] {
            let fast = e.check(&body, seq);
            assert!(fast.is_err());
            assert_eq!(fast, check(&body, seq, b"abc"));
        }
        let mut call = BytesMut::new();
        echo::encode_call(&mut call, 7, b"abc");
        assert!(e.check(&call, 7).is_err());
        assert!(e.check(&[], 7).is_err());
    }
}
