//! Heap use of the codec, measured by a counting global allocator (this test binary only):
//! the hot path (split → OCTO decode → borrowed header → method peek → echo args → response
//! encode) allocates nothing, and hostile input never makes the decoder allocate past the frame limit.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use bytes::{BufMut, BytesMut};
use octo_engine::proto::echo;
use octo_engine::proto::*;

#[path = "support/dorado_frames.rs"]
mod dorado_frames;
use dorado_frames::request_frame;

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not see each other's allocations.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // try_with: the thread-locals may be gone while a thread is being torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + size));
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

// SAFETY: every method forwards to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Default, PartialEq)]
struct Usage {
    allocs: usize,
    bytes: usize,
    largest: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    ALLOCS.with(|c| c.set(0));
    BYTES.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    let t = f();
    let u = Usage {
        allocs: ALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        largest: LARGEST.with(Cell::get),
    };
    (t, u)
}

/// One request through the server hot path; the response is appended to `out`.
fn serve(dec: &mut FrameDecoder, buf: &mut BytesMut, out: &mut BytesMut) -> usize {
    let Some(Frame::Octo(raw)) = dec.decode(buf).unwrap() else {
        panic!("expected an OCTO frame")
    };
    let f = decode_octo(raw, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let h = f.header_ref().unwrap();
    let req = h.request_info.unwrap();
    assert_eq!(req.service_name, "com.meituan.dorado.test.thrift.api.Echo");
    let body = f.thrift_body().unwrap();
    assert_eq!(peek_message(body).unwrap().name, "echo");
    let (seqid, msg) = echo::decode_call(body).unwrap();
    let mut w = OctoFrameWriter::begin(out, 0, f.flags);
    HeaderRef {
        response_info: Some(ResponseInfoRef {
            sequence_id: req.sequence_id,
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

#[test]
fn split_decode_and_respond_allocate_nothing_once_the_buffer_is_shared() {
    let mut buf = BytesMut::with_capacity(256 << 10);
    for seq in 0..100 {
        buf.put_slice(&request_frame(seq));
    }
    let mut out = BytesMut::with_capacity(256 << 10);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    // The first split turns the buffer into a shared one (bytes allocates its refcount once).
    serve(&mut dec, &mut buf, &mut out);
    let (n, usage) = measure(|| {
        (1..100)
            .map(|_| serve(&mut dec, &mut buf, &mut out))
            .sum::<usize>()
    });
    assert!(n > 99 * 1000);
    assert_eq!(usage, Usage::default());
}

/// One request through the server's borrowed path (a frame of a run taken off the read buffer).
fn serve_borrowed(frame: &[u8], out: &mut BytesMut) -> usize {
    let f = decode_octo_ref(frame, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let h = f.header_ref().unwrap();
    let req = h.request_info.unwrap();
    assert_eq!(req.service_name, "com.meituan.dorado.test.thrift.api.Echo");
    let body = f.thrift_body().unwrap();
    let m = peek_message(body).unwrap();
    echo::check_call(m.name, m.kind).unwrap();
    let msg = echo::decode_args(&body[m.payload_offset..]).unwrap();
    let mut w =
        OctoFrameWriter::begin_response(out, f.version, f.flags, req.sequence_id, Status::Success);
    echo::encode_reply(w.buf(), m.seqid, msg);
    w.finish().unwrap()
}

#[test]
fn the_borrowed_path_allocates_nothing_once_the_buffer_is_shared() {
    let mut buf = BytesMut::with_capacity(256 << 10);
    for seq in 0..100 {
        buf.put_slice(&request_frame(seq));
    }
    let mut out = BytesMut::with_capacity(256 << 10);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    // The first split turns the buffer into a shared one (bytes allocates its refcount once).
    let first = buf.split_to(0);
    drop(first);
    let (n, usage) = measure(|| {
        let len = dec.whole_frames(&mut buf).unwrap();
        let mut run = buf.split_to(len).freeze();
        let mut n = 0;
        while let Some((f, len)) = FrameRef::front(&run, Framing::Octo) {
            n += serve_borrowed(f.bytes(), &mut out);
            bytes::Buf::advance(&mut run, len);
        }
        n
    });
    assert!(n > 100 * 1000);
    assert_eq!(usage, Usage::default());
}

#[test]
fn a_connection_read_loop_reuses_its_buffers_without_allocating() {
    let frame = request_frame(1);
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut out = BytesMut::with_capacity(64 << 10);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut round = |buf: &mut BytesMut, out: &mut BytesMut| {
        // "recv" a frame in two reads, serve it, "send" the response.
        buf.extend_from_slice(&frame[..500]);
        assert!(dec.decode(buf).unwrap().is_none());
        buf.extend_from_slice(&frame[500..]);
        serve(&mut dec, buf, out);
        out.clear();
    };
    round(&mut buf, &mut out);
    let ((), usage) = measure(|| {
        for _ in 0..1000 {
            round(&mut buf, &mut out);
        }
    });
    assert_eq!(usage, Usage::default());
}

#[test]
fn an_announced_length_above_the_limit_allocates_nothing() {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_slice(&[0xAB, 0xBA, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF]);
    let (r, usage) = measure(|| FrameDecoder::new(1 << 20).decode(&mut buf));
    assert!(r.is_err());
    assert_eq!(usage, Usage::default());
}

fn gzip_frame(payload: &[u8]) -> bytes::Bytes {
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::best());
    e.write_all(payload).unwrap();
    let z = e.finish().unwrap();
    let mut f = BytesMut::new();
    f.put_u16(0xABBA);
    f.put_u8(0);
    f.put_u8(0x41);
    f.put_i32(2 + z.len() as i32);
    f.put_i16(0);
    f.put_slice(&z);
    f.freeze()
}

#[test]
fn a_gzip_bomb_never_allocates_past_the_frame_limit() {
    const MAX: usize = 256 << 10;
    let bomb = gzip_frame(&vec![0u8; 64 << 20]);
    let (r, usage) = measure(|| decode_octo(bomb, MAX));
    assert_eq!(
        r.unwrap_err().kind(),
        ErrorKind::DecompressedTooLarge { max: MAX }
    );
    assert!(usage.largest <= MAX, "{usage:?}");
    // The output grows by doubling up to the limit; the inflater's own state is small.
    assert!(usage.bytes <= 2 * MAX + (128 << 10), "{usage:?}");
}

#[test]
fn a_snappy_length_claim_above_the_limit_allocates_nothing() {
    let mut f = BytesMut::new();
    f.put_slice(&[0xAB, 0xBA, 0, 0x21, 0, 0, 0, 7, 0, 0]);
    f.put_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]); // varint u32::MAX
    let f = f.freeze();
    let (r, usage) = measure(|| decode_octo(f, 1 << 20));
    assert!(matches!(
        r.unwrap_err().kind(),
        ErrorKind::DecompressedTooLarge { .. }
    ));
    assert_eq!(usage, Usage::default());
}

#[test]
fn mutated_compressed_frames_never_allocate_past_the_frame_limit() {
    const MAX: usize = 128 << 10;
    let h = Header {
        message_type: MessageType::NormalHeartbeat,
        ..Header::default()
    };
    let mut seeds = vec![];
    for compression in [Compression::Gzip, Compression::Snappy] {
        let mut f = BytesMut::new();
        let flags = Flags {
            compression,
            ..Flags::default()
        };
        encode_octo(&mut f, flags, &h, &vec![b'a'; 100 << 10]).unwrap();
        seeds.push(f.to_vec());
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..2000 {
        let mut f = seeds[i % 2].clone();
        for _ in 0..1 + next() % 4 {
            let at = 10 + (next() as usize) % (f.len() - 10);
            f[at] = next() as u8;
        }
        let f = bytes::Bytes::from(f);
        let (_, usage) = measure(|| decode_octo(f, MAX).map(drop));
        assert!(usage.largest <= MAX, "iteration {i}: {usage:?}");
    }
}
