//! The raw frame echo: a connection that sends every whole frame back unchanged, without
//! decoding it. It is the baseline the server is measured against (runtime cost alone).

use bytes::Buf;

use crate::runtime::{ConnIo, Connection};

/// Echoes whole frames (OCTO `0xABBA` or Thrift-framed, split by their length prefix alone).
/// A length prefix that is negative or above `max_frame` closes the connection.
#[derive(Debug)]
pub struct RawFrameEcho {
    max_frame: usize,
}

impl RawFrameEcho {
    /// An echo that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        RawFrameEcho { max_frame }
    }

    fn echo(&mut self, io: &mut ConnIo<'_>) {
        loop {
            if io.is_write_blocked() {
                return;
            }
            let (input, output) = io.buffers();
            let Some(len) = frame_len(input, self.max_frame) else {
                io.abort();
                return;
            };
            let Some(len) = len else {
                io.set_read_hint(0);
                return;
            };
            if input.len() < len {
                let missing = len - input.len();
                io.set_read_hint(missing);
                return;
            }
            output.extend_from_slice(&input[..len]);
            input.advance(len);
        }
    }
}

/// `Some(Some(n))`: the first frame is `n` bytes long; `Some(None)`: need more bytes to tell;
/// `None`: the length prefix is invalid.
fn frame_len(input: &[u8], max: usize) -> Option<Option<usize>> {
    if input.len() >= 2 && input[0] == 0xAB && input[1] == 0xBA {
        if input.len() < 8 {
            return Some(None);
        }
        let n = i32::from_be_bytes([input[4], input[5], input[6], input[7]]);
        if n < 2 || n as usize > max {
            return None;
        }
        return Some(Some(8 + n as usize));
    }
    if input.len() < 4 {
        return Some(None);
    }
    let n = i32::from_be_bytes([input[0], input[1], input[2], input[3]]);
    if n <= 0 || n as usize > max {
        return None;
    }
    Some(Some(4 + n as usize))
}

impl Connection for RawFrameEcho {
    fn on_data(&mut self, io: &mut ConnIo<'_>) {
        self.echo(io);
    }

    fn on_writable(&mut self, io: &mut ConnIo<'_>) {
        self.echo(io);
    }
}
