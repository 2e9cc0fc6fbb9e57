//! Fuzz target: arbitrary bytes through every proto decoder, as a server would see them.
//!
//! Checks: no panic, termination, and that whatever decodes re-encodes to something that decodes
//! to the same value (headers, echo calls and replies).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::*;

const MAX: usize = 64 << 10;

fn check_header(bytes: &[u8]) {
    if let Ok(h) = HeaderRef::decode(bytes) {
        let mut again = BytesMut::new();
        h.encode(&mut again);
        let h2 = HeaderRef::decode(&again).expect("a re-encoded header decodes");
        assert_eq!(h.to_owned(), h2.to_owned());
    }
}

fn check_body(body: &[u8]) {
    let _ = peek_message(body);
    if let Ok((seqid, msg)) = echo::decode_call(body) {
        let mut again = BytesMut::new();
        echo::encode_call(&mut again, seqid, msg);
        assert_eq!(echo::decode_call(&again).unwrap(), (seqid, msg));
    }
    if let Ok((seqid, EchoReply::Success(msg))) = echo::decode_reply(body) {
        let mut again = BytesMut::new();
        echo::encode_reply(&mut again, seqid, msg);
        assert_eq!(
            echo::decode_reply(&again).unwrap(),
            (seqid, EchoReply::Success(msg))
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // The stream as a connection receives it, in reads of a size taken from the first byte.
    let step = data.first().map_or(1, |b| *b as usize + 1);
    let mut dec = FrameDecoder::new(MAX);
    let mut buf = BytesMut::new();
    'stream: for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Frame::Octo(raw))) => {
                    if let Ok(f) = decode_octo(raw, MAX) {
                        check_header(&f.header);
                        if let Ok(body) = f.thrift_body() {
                            check_body(body);
                        }
                    }
                }
                Ok(Some(Frame::Thrift(body))) => check_body(&body),
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    // And the raw bytes given straight to each decoder.
    check_header(data);
    check_body(data);
    let _ = decode_octo(bytes::Bytes::copy_from_slice(data), MAX);
});
