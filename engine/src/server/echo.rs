//! The reference Echo service (PROTOCOL.md §6): `string echo(1: string message)` answers with the
//! same string, decoded and encoded by `proto::echo` straight into the connection's buffers.

use crate::proto::echo;

use super::call::{Handler, Reply, Request};

/// `service Echo { string echo(1: string message) }`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoService;

impl Handler for EchoService {
    fn call(&self, request: &Request<'_>, reply: Reply<'_>) {
        // The dispatcher has read the message header: check it and read the args, borrowed.
        let args = echo::check_call(request.method(), request.message_type())
            .and_then(|()| echo::decode_args(request.args()));
        match args {
            Ok(message) => {
                let seqid = request.thrift_seqid();
                let mut reply = reply;
                reply.reserve(echo::reply_len(message.len()));
                reply.ok_with(|out| echo::encode_reply(out, seqid, message))
            }
            Err(e) => reply.error(e.status(), &e.to_string()),
        }
    }
}
