//! The prebuilt-frame generator (`octo-bench load --generator raw`, and `octo-bench runtimes`):
//! a closed-loop Echo load generator on one thread (tokio current_thread):
//! N connections, each keeping D requests in flight, requests prebuilt once and stamped with a
//! fresh sequence id, every answer checked (sequence id and status, the whole echo every 64th).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use octo_engine::proto::{
    decode_octo, echo, encode_octo, peek_message, CallType, Flags, Frame, FrameDecoder, Header,
    MessageType, RequestInfo, Status, ThriftFrameWriter, ThriftMessageType, TraceInfo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::Args;

/// Which framing the generator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Octo,
    Thrift,
}

/// One load run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub conns: usize,
    pub depth: usize,
    pub size: usize,
    pub secs: f64,
    pub warmup: f64,
    pub proto: Proto,
    pub service: String,
    pub cpu: Option<usize>,
}

/// What a load run measured (only the measuring window, after warm-up).
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl LoadResult {
    pub fn qps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

const MARK64: i64 = 0x5A5A_5A5A_5A5A_5A5A;
const MARK32: i32 = 0x5A5A_5A5A;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A prebuilt request frame and where its sequence ids sit.
struct Template {
    frame: Vec<u8>,
    seq64_at: Option<usize>,
    seq32_at: usize,
    message: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn template(proto: Proto, service: &str, size: usize) -> Template {
    let message = vec![b'a'; size];
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, MARK32, &message);
    let mut frame = BytesMut::new();
    match proto {
        Proto::Octo => {
            let header = Header {
                message_type: MessageType::Normal,
                request_info: Some(RequestInfo {
                    service_name: service.to_string(),
                    sequence_id: MARK64,
                    call_type: CallType::Reply,
                    timeout_ms: 5000,
                }),
                trace_info: Some(TraceInfo {
                    client_appkey: "octo-bench".into(),
                    ..TraceInfo::default()
                }),
                ..Header::default()
            };
            encode_octo(
                &mut frame,
                Flags {
                    serialization: 1,
                    ..Flags::default()
                },
                &header,
                &body,
            )
            .expect("request frame");
            let header_end = 10 + u16::from_be_bytes([frame[8], frame[9]]) as usize;
            let seq64_at =
                find(&frame[..header_end], &MARK64.to_be_bytes()).expect("sequence id in header");
            let seq32_at = header_end
                + find(&frame[header_end..], &MARK32.to_be_bytes()).expect("seqid in body");
            Template {
                frame: frame.to_vec(),
                seq64_at: Some(seq64_at),
                seq32_at,
                message,
            }
        }
        Proto::Thrift => {
            let mut w = ThriftFrameWriter::begin(&mut frame);
            w.buf().extend_from_slice(&body);
            w.finish().expect("thrift frame");
            let seq32_at = find(&frame, &MARK32.to_be_bytes()).expect("seqid");
            Template {
                frame: frame.to_vec(),
                seq64_at: None,
                seq32_at,
                message,
            }
        }
    }
}

impl Template {
    fn stamp(&self, out: &mut BytesMut, seq: i64) {
        let start = out.len();
        out.extend_from_slice(&self.frame);
        if let Some(at) = self.seq64_at {
            out[start + at..start + at + 8].copy_from_slice(&seq.to_be_bytes());
        }
        out[start + self.seq32_at..start + self.seq32_at + 4]
            .copy_from_slice(&(seq as i32).to_be_bytes());
    }

    /// Checks one answer against the sequence id it must carry. A raw frame echo sends the
    /// request itself back; that counts as an answer too.
    fn check(&self, frame: Frame, seq: i64, full: bool) -> Result<(), String> {
        let body = match frame {
            Frame::Octo(f) => {
                let f = decode_octo(f, 64 << 20).map_err(|e| format!("answer frame: {e}"))?;
                let h = f.header_ref().map_err(|e| format!("answer header: {e}"))?;
                match (h.response_info, h.request_info) {
                    (Some(ri), _) => {
                        if ri.sequence_id != seq {
                            return Err(format!(
                                "answer for {} where {seq} was due",
                                ri.sequence_id
                            ));
                        }
                        if ri.status != Status::Success {
                            return Err(format!("answer status {:?}", ri.status));
                        }
                    }
                    (None, Some(ri)) if ri.sequence_id == seq => return Ok(()),
                    _ => return Err("answer without responseInfo".into()),
                }
                f.body
            }
            Frame::Thrift(b) => b,
        };
        let m = peek_message(&body).map_err(|e| format!("answer message: {e}"))?;
        if m.seqid != seq as i32 {
            return Err(format!(
                "answer seqid {} where {} was due",
                m.seqid, seq as i32
            ));
        }
        if m.kind == ThriftMessageType::Call || !full {
            return Ok(());
        }
        match echo::decode_reply(&body) {
            Ok((_, echo::EchoReply::Success(m))) if m == &self.message[..] => Ok(()),
            other => Err(format!("bad echo answer: {other:?}")),
        }
    }
}

struct Shared {
    measuring: Cell<bool>,
    stopping: Cell<bool>,
    requests: Cell<u64>,
    errors: Cell<u64>,
    hist: RefCell<Histogram<u64>>,
}

async fn drive(
    index: usize,
    spec: Rc<LoadSpec>,
    tpl: Rc<Template>,
    shared: Rc<Shared>,
) -> Result<(), String> {
    let mut socket = tokio::net::TcpStream::connect(spec.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut decoder = FrameDecoder::new(64 << 20);
    let mut input = BytesMut::with_capacity(64 << 10);
    let mut output = BytesMut::with_capacity(spec.depth * (tpl.frame.len() + 16));
    let mut in_flight: VecDeque<(i64, Instant)> = VecDeque::with_capacity(spec.depth);
    let mut next_seq: i64 = ((index as i64) << 40) | 1;
    let mut checked: u64 = 0;
    let now = Instant::now();
    for _ in 0..spec.depth {
        tpl.stamp(&mut output, next_seq);
        in_flight.push_back((next_seq, now));
        next_seq += 1;
    }
    loop {
        if !output.is_empty() {
            socket
                .write_all(&output)
                .await
                .map_err(|e| format!("write: {e}"))?;
            output.clear();
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        if input.capacity() - input.len() < 8192 {
            input.reserve(64 << 10);
        }
        let n = tokio::time::timeout(READ_TIMEOUT, socket.read_buf(&mut input))
            .await
            .map_err(|_| "no answer within 5 s".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        let now = Instant::now();
        while let Some(frame) = decoder
            .decode(&mut input)
            .map_err(|e| format!("answer framing: {e}"))?
        {
            let (seq, sent) = in_flight.pop_front().ok_or("an answer nobody asked for")?;
            checked += 1;
            tpl.check(frame, seq, checked % 64 == 1)?;
            if shared.measuring.get() {
                shared.requests.set(shared.requests.get() + 1);
                let us = now.duration_since(sent).as_micros() as u64;
                let _ = shared.hist.borrow_mut().record(us.max(1));
            }
            if !shared.stopping.get() {
                tpl.stamp(&mut output, next_seq);
                in_flight.push_back((next_seq, now));
                next_seq += 1;
            }
        }
    }
}

/// Runs one load on the calling thread (pinned to `spec.cpu` if set) and returns what it measured.
pub fn run(spec: &LoadSpec) -> Result<LoadResult, String> {
    if let Some(id) = spec.cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let spec = Rc::new(spec.clone());
    let tpl = Rc::new(template(spec.proto, &spec.service, spec.size));
    let shared = Rc::new(Shared {
        measuring: Cell::new(false),
        stopping: Cell::new(false),
        requests: Cell::new(0),
        errors: Cell::new(0),
        hist: RefCell::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")),
    });
    let elapsed = local.block_on(&rt, async {
        let mut tasks = Vec::new();
        for i in 0..spec.conns {
            let (spec, tpl, shared) = (spec.clone(), tpl.clone(), shared.clone());
            tasks.push(tokio::task::spawn_local(async move {
                if let Err(e) = drive(i, spec, tpl, shared.clone()).await {
                    if !shared.stopping.get() || shared.errors.get() < 5 {
                        eprintln!("octo-bench load: connection {i}: {e}");
                    }
                    shared.errors.set(shared.errors.get() + 1);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(spec.warmup)).await;
        shared.measuring.set(true);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(spec.secs)).await;
        shared.measuring.set(false);
        let elapsed = start.elapsed();
        shared.stopping.set(true);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        elapsed
    });
    let hist = shared.hist.borrow().clone();
    Ok(LoadResult {
        requests: shared.requests.get(),
        errors: shared.errors.get(),
        elapsed,
        latency_us: hist,
    })
}

pub fn spec_from(args: &Args) -> Result<LoadSpec, String> {
    let proto = match args.str("proto").unwrap_or("octo") {
        "octo" => Proto::Octo,
        "thrift" => Proto::Thrift,
        other => return Err(format!("bad --proto {other}")),
    };
    Ok(LoadSpec {
        addr: args
            .str("addr")
            .unwrap_or("127.0.0.1:9000")
            .parse()
            .map_err(|e| format!("--addr: {e}"))?,
        conns: args.get("conns", 8)?,
        depth: args.get("depth", 1)?,
        size: args.get("size", 1024)?,
        secs: args.get("secs", 5.0)?,
        warmup: args.get("warmup", 1.0)?,
        proto,
        service: args.str("service").unwrap_or("Echo").to_string(),
        cpu: args
            .get::<i64>("cpu", -1)
            .map(|c| (c >= 0).then_some(c as usize))?,
    })
}
