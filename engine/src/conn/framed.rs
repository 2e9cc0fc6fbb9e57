//! A framed connection: splits received bytes into OCTO/Thrift frames and hands each to a
//! [`FrameHandler`], stopping while output is above its high water mark, closing when idle too
//! long, and closing gracefully once nothing is owed to the peer.
//!
//! The whole frames a receive brought are taken off the input in one run (one `split_to`) and
//! handed over one by one, borrowed ([`FrameHandler::on_frame_ref`]): a frame costs no reference
//! count unless its handler keeps part of it.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::proto::{Frame, FrameDecoder, FrameRef, Framing, ProtoError};
use crate::runtime::{CloseReason, ConnIo, Connection, ShardCore, TimerId};

/// What runs on the frames of one connection (the server's request dispatch, the client's
/// response matching).
pub trait FrameHandler: 'static {
    /// The connection opened.
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        let _ = io;
    }
    /// One whole frame arrived (its last byte no later than `arrived`). An error closes the
    /// connection at once (bad input whose frame boundary cannot be trusted).
    fn on_frame(
        &mut self,
        frame: Frame,
        framing: Framing,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError>;
    /// One whole frame arrived, borrowed from the run of frames received with it: the fast path
    /// that [`FramedConn`] calls. Keep a part past the call with `frame.source().slice_ref(part)`
    /// (one reference count, no copy). The default makes the owned [`Frame`] and calls
    /// [`FrameHandler::on_frame`].
    fn on_frame_ref(
        &mut self,
        frame: FrameRef<'_>,
        io: &mut ConnIo<'_>,
        arrived: Instant,
    ) -> Result<(), ProtoError> {
        self.on_frame(frame.to_frame(), frame.framing(), io, arrived)
    }
    /// Calls still owed an answer on this connection: while non-zero the connection is not idle
    /// and a graceful close waits.
    fn in_flight(&self) -> usize;
    /// The connection closed.
    fn on_closed(&mut self, shard: &mut ShardCore, reason: CloseReason) {
        let _ = (shard, reason);
    }
}

/// Limits of one framed connection.
#[derive(Clone, Copy, Debug)]
pub struct FramedLimits {
    /// Largest frame accepted (the length field's value); larger claims close at once.
    pub max_frame_size: usize,
    /// Close after this long without receiving a byte while nothing is in flight.
    pub idle_timeout: Option<Duration>,
}

const IDLE_TIMER: u64 = 0;

/// A runtime [`Connection`] that frames bytes for a [`FrameHandler`].
pub struct FramedConn<H: FrameHandler> {
    decoder: FrameDecoder,
    /// Whole frames taken off the input at once and not handled yet (empty between runs, so
    /// the input buffer stays the only owner of its memory and can be reused in place).
    run: Bytes,
    handler: H,
    idle_timeout: Option<Duration>,
    idle_timer: Option<TimerId>,
    last_activity: Instant,
    last_recv: Instant,
    draining: bool,
}

impl<H: FrameHandler> FramedConn<H> {
    /// A connection that runs `handler` under `limits`.
    pub fn new(handler: H, limits: FramedLimits) -> Self {
        let now = Instant::now();
        FramedConn {
            decoder: FrameDecoder::new(limits.max_frame_size),
            run: Bytes::new(),
            handler,
            idle_timeout: limits.idle_timeout,
            idle_timer: None,
            last_activity: now,
            last_recv: now,
            draining: false,
        }
    }

    /// The frame handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The frame handler, mutably (e.g. to complete a call from a posted closure; call
    /// [`FramedConn::settle`] afterwards).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The connection's framing once its first frame was seen.
    pub fn framing(&self) -> Option<Framing> {
        self.decoder.framing()
    }

    /// Stops reading new bytes; frames already received are still handled, and the connection
    /// closes gracefully (after its output is flushed) once nothing is in flight.
    pub fn drain(&mut self, io: &mut ConnIo<'_>) {
        self.draining = true;
        io.pause_reading();
        self.process(io);
        self.finish_if_done(io);
    }

    /// True once [`FramedConn::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Re-checks the connection after its handler changed state outside a frame (an answer
    /// completed later): handles frames left waiting and closes a drained connection.
    pub fn settle(&mut self, io: &mut ConnIo<'_>) {
        self.last_activity = io.now();
        self.process(io);
        self.finish_if_done(io);
    }

    /// Handles the frames received, in order, until none is whole, the output is above its high
    /// water mark or the connection is closing. Whole frames are taken off the input in runs
    /// (one `split_to` for all the frames a receive brought) and handed to the handler borrowed.
    fn process(&mut self, io: &mut ConnIo<'_>) {
        loop {
            if io.is_write_blocked() || io.is_closing() {
                return;
            }
            if self.run.is_empty() {
                match self.decoder.whole_frames(io.input()) {
                    Ok(0) => {
                        let needed = self.decoder.bytes_needed(io.input().len());
                        io.set_read_hint(needed);
                        return;
                    }
                    Ok(n) => self.run = io.input().split_to(n).freeze(),
                    Err(_) => {
                        io.abort();
                        return;
                    }
                }
            }
            let framing = self.decoder.framing().unwrap_or(Framing::Thrift);
            let Some((frame, len)) = FrameRef::front(&self.run, framing) else {
                // Cannot happen: the run holds only whole frames the decoder checked.
                io.abort();
                return;
            };
            let r = self.handler.on_frame_ref(frame, io, self.last_recv);
            self.run.advance(len);
            if self.run.is_empty() {
                // Give up the run's share of the input buffer as soon as it is used up.
                self.run = Bytes::new();
            }
            if r.is_err() {
                io.abort();
                return;
            }
        }
    }

    fn arm_idle(&mut self, io: &mut ConnIo<'_>, from: Instant) {
        if let Some(idle) = self.idle_timeout {
            self.idle_timer = Some(io.set_timer(from + idle, IDLE_TIMER));
        }
    }
}

impl<H: FrameHandler> Connection for FramedConn<H> {
    fn on_open(&mut self, io: &mut ConnIo<'_>) {
        let now = io.now();
        self.last_activity = now;
        self.last_recv = now;
        self.arm_idle(io, now);
        self.handler.on_open(io);
    }

    fn on_data(&mut self, io: &mut ConnIo<'_>) {
        let now = io.now();
        self.last_activity = now;
        self.last_recv = now;
        self.process(io);
        self.finish_if_done(io);
    }

    fn on_writable(&mut self, io: &mut ConnIo<'_>) {
        // The peer is reading its answers: that is activity too.
        self.last_activity = io.now();
        self.process(io);
        self.finish_if_done(io);
    }

    fn on_timer(&mut self, io: &mut ConnIo<'_>, token: u64) {
        if token != IDLE_TIMER {
            return;
        }
        self.idle_timer = None;
        let Some(idle) = self.idle_timeout else {
            return;
        };
        let now = io.now();
        // Idle: nothing received and no call in flight for `idle`. Unsent output does not keep a
        // connection alive: a peer that has neither sent nor read anything for that long (even
        // one that half-closed and never reads its answers) is gone.
        if self.handler.in_flight() == 0 && now >= self.last_activity + idle {
            io.abort();
            return;
        }
        let from = if self.handler.in_flight() > 0 {
            now
        } else {
            self.last_activity
        };
        self.arm_idle(io, from);
    }

    fn on_read_closed(&mut self, io: &mut ConnIo<'_>) {
        self.process(io);
        self.finish_if_done(io);
    }

    fn on_closed(&mut self, shard: &mut ShardCore, reason: CloseReason) {
        if let Some(t) = self.idle_timer.take() {
            shard.cancel_timer(t);
        }
        self.handler.on_closed(shard, reason);
    }
}

impl<H: FrameHandler> FramedConn<H> {
    /// A draining (or half-closed) connection closes, after flushing, once every whole frame
    /// received has been handled and nothing is in flight; a partial frame is discarded.
    fn finish_if_done(&mut self, io: &mut ConnIo<'_>) {
        let no_more_input = self.draining || io.is_read_closed();
        if no_more_input
            && self.handler.in_flight() == 0
            && !io.is_write_blocked()
            && !io.is_closing()
        {
            io.close();
        }
    }
}
