//! An acceptor that runs every accepted connection as the raw frame echo (frames up to 1 MiB sent
//! back unchanged), with default connection options: the runtime tests' server.

use std::net::SocketAddr;

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
