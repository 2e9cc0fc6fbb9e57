//! A client's presence on one shard: its pool of connections per endpoint, the round-robin over
//! them, the calls waiting for a first connection, and reconnects with jittered backoff.
//!
//! Everything here lives on one shard thread (`Rc<RefCell<_>>`, found through a thread-local
//! registry by client id): no lock is taken on the way from a call to its connection.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::{CloseReason, ConnId, ConnOptions, Shard, ShardCore, TimerId};

use super::backoff::Jitter;
use super::call::{CallError, CallErrorKind};
use super::conn::{ClientConn, Outgoing, SeqHasher};
use super::{ClientConfig, ClientEvent};
use crate::proto::Status;

thread_local! {
    /// The clients present on this (shard) thread, by client id (small consecutive numbers:
    /// hashed by a multiplication, not SipHash; looked up on every call).
    static REGISTRY: RefCell<HashMap<u64, Rc<RefCell<ShardClient>>, BuildHasherDefault<SeqHasher>>> =
        RefCell::new(HashMap::default());
    /// Ids of clients closed on this thread: a late call for one must not start it again.
    static CLOSED: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    /// Not connected, nothing scheduled (only before the first connect).
    Idle,
    /// A connect is under way.
    Connecting(ConnId),
    /// Connected: calls may go out on it.
    Open(ConnId),
    /// Waiting for the backoff timer before the next connect.
    Backoff(TimerId),
}

struct Slot {
    state: SlotState,
    /// Failed attempts since the last successful connect.
    attempt: u32,
}

struct Waiting {
    id: u64,
    call: Outgoing,
    timer: TimerId,
}

/// One client on one shard.
pub(crate) struct ShardClient {
    config: Arc<ClientConfig>,
    /// `slots[endpoint][i]`.
    slots: Vec<Vec<Slot>>,
    cursor: usize,
    next_sequence_id: i64,
    waiting: VecDeque<Waiting>,
    next_waiting_id: u64,
    jitter: Jitter,
    closed: bool,
}

impl ShardClient {
    /// The client `client_id` on this shard, created (and its pool started) on first use.
    pub fn get_or_start(
        shard: &mut Shard,
        client_id: u64,
        config: &Arc<ClientConfig>,
    ) -> Rc<RefCell<ShardClient>> {
        if let Some(sc) = Self::find(client_id) {
            return sc;
        }
        let closed = CLOSED.with(|c| c.borrow().contains(&client_id));
        let pool = if closed { 0 } else { config.pool_size.max(1) };
        let sc = Rc::new(RefCell::new(ShardClient {
            config: config.clone(),
            slots: config
                .endpoints
                .iter()
                .map(|_| {
                    (0..pool)
                        .map(|_| Slot {
                            state: SlotState::Idle,
                            attempt: 0,
                        })
                        .collect()
                })
                .collect(),
            cursor: 0,
            next_sequence_id: config.first_sequence_id,
            waiting: VecDeque::new(),
            next_waiting_id: 0,
            jitter: Jitter::new(client_id ^ ((shard.id() as u64) << 48)),
            closed,
        }));
        if closed {
            // Not registered: every call on it fails with Shutdown.
            return sc;
        }
        REGISTRY.with(|r| r.borrow_mut().insert(client_id, sc.clone()));
        for ep in 0..config.endpoints.len() {
            for slot in 0..pool {
                Self::connect(shard, &sc, ep, slot);
            }
        }
        sc
    }

    /// The client `client_id` on the current thread, if it is present.
    pub fn find(client_id: u64) -> Option<Rc<RefCell<ShardClient>>> {
        REGISTRY.with(|r| r.borrow().get(&client_id).cloned())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn next_sequence_id(&mut self) -> i64 {
        let s = self.next_sequence_id;
        self.next_sequence_id = if s == i64::MAX { 1 } else { s + 1 };
        s
    }

    /// Sends `call` on the next open connection (round-robin over endpoints, then over each
    /// endpoint's pool), or queues it while a first connection is being made.
    pub fn submit(shard: &mut Shard, sc: &Rc<RefCell<ShardClient>>, call: Outgoing) {
        let mut call = call;
        let total = {
            let me = sc.borrow();
            if me.closed {
                drop(me);
                call.fail(shard, CallError::shutdown());
                return;
            }
            me.slots.iter().map(Vec::len).sum::<usize>()
        };
        let mut any_open = false;
        for _ in 0..total {
            let next = sc.borrow_mut().next_open();
            let Some((id, seq)) = next else { break };
            any_open = true;
            let mut carried = Some(call);
            let sent = shard.with_conn::<ClientConn, _>(id, |conn, io| {
                let c = carried.take().expect("taken once");
                match conn.send(io, c, seq) {
                    Ok(()) => true,
                    Err(back) => {
                        carried = Some(back);
                        false
                    }
                }
            });
            match (sent, carried.take()) {
                (Some(true), _) => return,
                (_, Some(back)) => call = back,
                (_, None) => return,
            }
        }
        if any_open {
            call.fail(shard, CallError::overloaded());
            return;
        }
        let connecting = sc.borrow().any_connecting();
        if !connecting {
            call.fail(
                shard,
                CallError::new(
                    CallErrorKind::NoEndpoint,
                    Status::TransportException,
                    "no endpoint is connected (all are reconnecting)",
                ),
            );
            return;
        }
        Self::enqueue(shard, sc, call);
    }

    /// The next open connection in round-robin order, and a fresh sequence id for it.
    fn next_open(&mut self) -> Option<(ConnId, i64)> {
        let endpoints = self.slots.len();
        let pool = self.slots.first().map_or(0, Vec::len);
        let total = endpoints * pool;
        for _ in 0..total {
            let i = self.cursor % total;
            self.cursor = self.cursor.wrapping_add(1);
            // Endpoints first, so that consecutive calls go to different endpoints.
            let (ep, slot) = (i % endpoints, (i / endpoints) % pool);
            if let SlotState::Open(id) = self.slots[ep][slot].state {
                return Some((id, self.next_sequence_id()));
            }
        }
        None
    }

    pub(crate) fn any_connecting(&self) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|s| matches!(s.state, SlotState::Connecting(_) | SlotState::Idle))
    }

    /// Queues a call until a connection opens (or its deadline passes).
    pub fn enqueue(shard: &mut ShardCore, sc: &Rc<RefCell<ShardClient>>, call: Outgoing) {
        let mut me = sc.borrow_mut();
        if me.waiting.len() >= me.config.max_waiting {
            drop(me);
            call.fail(
                shard,
                CallError::new(
                    CallErrorKind::Overloaded,
                    Status::DegradeException,
                    "too many calls waiting for a connection",
                ),
            );
            return;
        }
        let id = me.next_waiting_id;
        me.next_waiting_id += 1;
        let weak = Rc::downgrade(sc);
        let timer = shard.set_timer(call.deadline, move |shard| {
            let Some(sc) = weak.upgrade() else { return };
            let expired = {
                let mut me = sc.borrow_mut();
                let pos = me.waiting.iter().position(|w| w.id == id);
                pos.and_then(|p| me.waiting.remove(p))
            };
            if let Some(w) = expired {
                w.call.fail(
                    shard,
                    CallError::new(
                        CallErrorKind::Timeout,
                        Status::TransportException,
                        "no connection could be made before the call's deadline",
                    ),
                );
            }
        });
        me.waiting.push_back(Waiting { id, call, timer });
    }

    /// A connection opened: marks it usable and hands it the calls that waited for one.
    pub fn on_open(
        &mut self,
        shard: &mut ShardCore,
        ep: usize,
        slot: usize,
        id: ConnId,
    ) -> Vec<Outgoing> {
        let s = &mut self.slots[ep][slot];
        s.state = SlotState::Open(id);
        s.attempt = 0;
        let mut calls = Vec::with_capacity(self.waiting.len());
        while let Some(w) = self.waiting.pop_front() {
            shard.cancel_timer(w.timer);
            calls.push(w.call);
        }
        calls
    }

    /// A connection (or a connect attempt) ended: schedules the next attempt after a jittered
    /// backoff, and fails waiting calls if no connection can take them any more.
    pub fn on_closed(
        sc: &Rc<RefCell<ShardClient>>,
        shard: &mut ShardCore,
        ep: usize,
        slot: usize,
        was_open: bool,
        reason: CloseReason,
    ) {
        let mut me = sc.borrow_mut();
        if me.closed || shard.is_stopping() || reason == CloseReason::ShardStopped {
            me.slots[ep][slot].state = SlotState::Idle;
            let waiting: Vec<Waiting> = me.waiting.drain(..).collect();
            drop(me);
            for w in waiting {
                shard.cancel_timer(w.timer);
                w.call.fail(shard, CallError::shutdown());
            }
            return;
        }
        let attempt = if was_open {
            0
        } else {
            me.slots[ep][slot].attempt.saturating_add(1)
        };
        me.slots[ep][slot].attempt = attempt;
        let backoff = me.config.backoff;
        let delay = backoff.delay(attempt, &mut me.jitter);
        let weak = Rc::downgrade(sc);
        let timer = shard.set_timer(shard.now() + delay, move |shard| {
            if let Some(sc) = weak.upgrade() {
                ShardClient::connect(shard, &sc, ep, slot);
            }
        });
        me.slots[ep][slot].state = SlotState::Backoff(timer);
        let stranded = if !me.any_connecting() && !me.any_open() {
            me.waiting.drain(..).collect()
        } else {
            Vec::new()
        };
        drop(me);
        for w in stranded {
            shard.cancel_timer(w.timer);
            w.call.fail(
                shard,
                CallError::new(
                    CallErrorKind::NoEndpoint,
                    Status::TransportException,
                    "no endpoint could be connected",
                ),
            );
        }
    }

    fn any_open(&self) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|s| matches!(s.state, SlotState::Open(_)))
    }

    /// Starts a connect for pool slot `slot` of endpoint `ep`.
    fn connect(shard: &mut Shard, sc: &Rc<RefCell<ShardClient>>, ep: usize, slot: usize) {
        let (config, attempt) = {
            let me = sc.borrow();
            if me.closed || shard.is_stopping() {
                return;
            }
            (me.config.clone(), me.slots[ep][slot].attempt)
        };
        let addr = config.endpoints[ep].addr;
        config.emit(&ClientEvent::ConnectAttempt {
            endpoint: addr,
            attempt,
            at: Instant::now(),
        });
        let conn = ClientConn::new(sc.clone(), config.clone(), ep, slot);
        match shard.connect(
            addr,
            config.connect_timeout,
            Box::new(conn),
            // Answers are always read, whatever options the caller set: see ConnOptions.
            ConnOptions {
                read_while_write_blocked: true,
                ..config.conn_options
            },
        ) {
            Ok(id) => sc.borrow_mut().slots[ep][slot].state = SlotState::Connecting(id),
            Err(_) => {
                // No socket could be made (descriptor limit): retry after a backoff.
                Self::on_closed(sc, shard, ep, slot, false, CloseReason::ConnectFailed(0));
            }
        }
    }

    /// Tears this client down on this shard: stops reconnecting, closes its connections (their
    /// calls fail with Shutdown) and fails the calls that were waiting.
    pub fn close(shard: &mut Shard, client_id: u64) {
        CLOSED.with(|c| c.borrow_mut().insert(client_id));
        let Some(sc) = REGISTRY.with(|r| r.borrow_mut().remove(&client_id)) else {
            return;
        };
        let (conns, waiting) = {
            let mut me = sc.borrow_mut();
            me.closed = true;
            let mut conns = Vec::new();
            let mut timers = Vec::new();
            for s in me.slots.iter_mut().flatten() {
                match s.state {
                    SlotState::Open(id) | SlotState::Connecting(id) => conns.push(id),
                    SlotState::Backoff(t) => timers.push(t),
                    SlotState::Idle => {}
                }
                s.state = SlotState::Idle;
            }
            for t in timers {
                shard.cancel_timer(t);
            }
            let waiting: Vec<Waiting> = me.waiting.drain(..).collect();
            (conns, waiting)
        };
        for w in waiting {
            shard.cancel_timer(w.timer);
            w.call.fail(shard, CallError::shutdown());
        }
        for id in conns {
            shard.close_conn(id, false);
        }
    }

    /// Connections open right now, per endpoint.
    pub fn open_connections(&self) -> Vec<usize> {
        self.slots
            .iter()
            .map(|p| {
                p.iter()
                    .filter(|s| matches!(s.state, SlotState::Open(_)))
                    .count()
            })
            .collect()
    }
}
