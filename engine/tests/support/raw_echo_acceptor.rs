//! An acceptor that runs every accepted connection as the raw frame echo (frames up to 1 MiB sent
//! back unchanged), with default connection options: the runtime tests' server; and the way
//! they send it a stream of frames and read the echo back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use octo_engine::conn::RawFrameEcho;
use octo_engine::runtime::{Acceptor, ConnOptions, Connection, ShardCore};

pub struct EchoAcceptor;

impl Acceptor for EchoAcceptor {
    fn on_accept(
        &mut self,
        _: &mut ShardCore,
        _: Option<SocketAddr>,
    ) -> Option<(Box<dyn Connection>, ConnOptions)> {
        Some((Box::new(RawFrameEcho::new(1 << 20)), ConnOptions::default()))
    }
}

/// Writes `bytes` on `s` from another thread while reading as many back (so that a stream
/// larger than the socket buffers cannot stall both sides), and returns what came back.
pub fn send_and_read_back(s: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let sent = bytes.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
    let mut back = vec![0; bytes.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    back
}
