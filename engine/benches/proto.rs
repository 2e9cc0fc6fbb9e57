//! Benchmarks of the proto hot path on a 1 KiB Echo request (the shape of Dorado's benchmark):
//! split + OCTO decode + borrowed header + method peek + echo args, and the response encode.
//! Run: `cargo bench -p octo-engine --bench proto`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use octo_engine::proto::echo;
use octo_engine::proto::*;

#[path = "../tests/support/dorado_frames.rs"]
mod dorado_frames;
use dorado_frames::request_frame;

/// What the request path hands the handler and the response writer.
struct Decoded {
    frame: OctoFrame,
    sequence_id: i64,
}

#[inline]
fn decode_request(dec: &mut FrameDecoder, buf: &mut BytesMut) -> Decoded {
    let Ok(Some(Frame::Octo(raw))) = dec.decode(buf) else {
        unreachable!()
    };
    let frame = decode_octo(raw, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let h = frame.header_ref().unwrap();
    let sequence_id = h.request_info.unwrap().sequence_id;
    let m = peek_message(&frame.body).unwrap();
    black_box((h, m));
    Decoded { frame, sequence_id }
}

#[inline]
fn encode_response(d: &Decoded, out: &mut BytesMut) -> usize {
    let (seqid, msg) = echo::decode_call(&d.frame.body).unwrap();
    let mut w = OctoFrameWriter::begin(out, 0, d.frame.flags);
    HeaderRef {
        response_info: Some(ResponseInfoRef {
            sequence_id: d.sequence_id,
            status: Status::Success,
            message: None,
        }),
        ..HeaderRef::default()
    }
    .encode(w.buf());
    w.end_header();
    echo::encode_reply(w.buf(), seqid, msg);
    w.finish().unwrap()
}

/// One request answered as the server's borrowed path does it.
#[inline]
fn serve_one(frame: &[u8], out: &mut BytesMut) -> usize {
    let f = decode_octo_ref(frame, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let h = f.header_ref().unwrap();
    let sequence_id = h.request_info.unwrap().sequence_id;
    let body = f.thrift_body().unwrap();
    let m = peek_message(body).unwrap();
    echo::check_call(m.name, m.kind).unwrap();
    let msg = echo::decode_args(&body[m.payload_offset..]).unwrap();
    let mut w =
        OctoFrameWriter::begin_response(out, f.version, f.flags, sequence_id, Status::Success);
    echo::encode_reply(w.buf(), m.seqid, msg);
    w.finish().unwrap()
}

const BATCH: u64 = 1024;

/// Times `f` over frames pre-loaded into a read buffer, BATCH at a time (the fill is not timed).
fn over_buffered_frames(
    iters: u64,
    frame: &[u8],
    mut f: impl FnMut(&mut FrameDecoder, &mut BytesMut, &mut BytesMut),
) -> Duration {
    over_buffered_batches(iters, frame, |dec, buf, out, n| {
        for _ in 0..n {
            f(dec, buf, out);
        }
    })
}

/// Times `batch` once per read buffer pre-loaded with up to BATCH frames (its last argument:
/// how many); the fill is not timed.
fn over_buffered_batches(
    iters: u64,
    frame: &[u8],
    mut batch: impl FnMut(&mut FrameDecoder, &mut BytesMut, &mut BytesMut, u64),
) -> Duration {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut buf = BytesMut::with_capacity(frame.len() * BATCH as usize);
    let mut out = BytesMut::with_capacity(frame.len() * BATCH as usize);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        buf.clear();
        out.clear();
        for _ in 0..n {
            buf.put_slice(frame);
        }
        let t = Instant::now();
        batch(&mut dec, &mut buf, &mut out, n);
        total += t.elapsed();
        left -= n;
    }
    total
}

fn hot_path(c: &mut Criterion) {
    let frame = request_frame(1);
    let mut g = c.benchmark_group("echo_1k");
    g.bench_function("request_decode", |b| {
        b.iter_custom(|iters| {
            over_buffered_frames(iters, &frame, |dec, buf, _| {
                black_box(decode_request(dec, buf));
            })
        })
    });
    g.bench_function("response_encode", |b| {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        let mut buf = BytesMut::from(&frame[..]);
        let d = decode_request(&mut dec, &mut buf);
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            black_box(encode_response(black_box(&d), &mut out));
        })
    });
    g.bench_function("request_decode_and_response_encode", |b| {
        b.iter_custom(|iters| {
            over_buffered_frames(iters, &frame, |dec, buf, out| {
                let d = decode_request(dec, buf);
                black_box(encode_response(&d, out));
            })
        })
    });
    g.bench_function("server_path_borrowed", |b| {
        // What the server does per request: whole frames taken off the read buffer in one run,
        // each decoded borrowed (OCTO prefix, header, message header, echo args) and answered
        // with the prebuilt response header and the echo reply.
        b.iter_custom(|iters| {
            over_buffered_batches(iters, &frame, |dec, buf, out, _| {
                let len = dec.whole_frames(buf).unwrap();
                let mut run = buf.split_to(len).freeze();
                while let Some((f, len)) = FrameRef::front(&run, Framing::Octo) {
                    black_box(serve_one(f.bytes(), out));
                    bytes::Buf::advance(&mut run, len);
                }
            })
        })
    });
    g.finish();

    // Alternatives, interleaved in one run: borrowed vs owned header decode.
    let f = decode_octo(frame.clone().into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
    let mut g = c.benchmark_group("request_header_decode");
    g.bench_function("borrowed_HeaderRef", |b| {
        b.iter(|| black_box(HeaderRef::decode(black_box(&f.header)).unwrap()))
    });
    g.bench_function("owned_Header", |b| {
        b.iter(|| black_box(Header::decode(black_box(&f.header)).unwrap()))
    });
    g.finish();

    // Compressed variants of the whole 1 KiB request decode (split excluded).
    let mut g = c.benchmark_group("request_decode_octo_1k");
    for (name, compression, checksum) in [
        ("plain", Compression::None, false),
        ("checksum", Compression::None, true),
        ("gzip", Compression::Gzip, false),
        ("snappy", Compression::Snappy, false),
    ] {
        let mut out = BytesMut::new();
        encode_octo(
            &mut out,
            Flags {
                checksum,
                compression,
                serialization: 1,
            },
            &Header::decode(&f.header).unwrap(),
            &f.body,
        )
        .unwrap();
        let raw = out.freeze();
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(decode_octo(black_box(raw.clone()), DEFAULT_MAX_FRAME_SIZE).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_path
}
criterion_main!(benches);
