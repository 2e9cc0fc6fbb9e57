//! `octo_server`: a port served on every shard, with services backed by C callbacks.

use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::octo_engine::server::ServerBuilder;
use ::octo_engine::{Handler, Reply, Request, Server};

use crate::boundary::{
    arg, call, checked_out, not_in_callback, set_last_error, text, value, write_out, Failure,
    Outcome,
};
use crate::engine::octo_engine;
use crate::request::{self, octo_request};
use crate::responder::{octo_responder, AnswerCounters};
use crate::status::octo_status;

/// A service's handler: called on a shard thread for each call routed to the service, with the
/// `user_data` given at registration, the call (`request`, lent for this callback only) and its
/// `responder` (owned by the callee from now on: answer it at most once and free it exactly
/// once, now or later, from any thread). Runs on several shard threads at once: never block
/// inside it; hand slow work to your own threads and answer from there.
#[allow(non_camel_case_types)]
pub type octo_handler_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        request: *const octo_request,
        responder: *mut octo_responder,
    ),
>;

/// Releases `user_data` once octo no longer needs it; may run on any thread.
#[allow(non_camel_case_types)]
pub type octo_finalizer_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A server's counters, summed over its shards.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct octo_server_stats {
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections closed at once (over the per-shard limit, or while shutting down).
    pub connections_refused: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Request frames routed to services (heartbeats excluded).
    pub requests: u64,
    /// Requests dropped unanswered because their caller's timeout had passed.
    pub expired: u64,
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Connections closed because of input that could not be framed or decoded.
    pub closed_on_bad_input: u64,
    /// Answers by OCTO status (index = status code 0..9): those the handlers gave, plus those
    /// the engine gave for them (3 for a responder freed unanswered, 5 for malformed requests,
    /// 6 for calls shed, 8 for unknown services).
    pub answers_by_status: [u64; 10],
}

struct CHandler {
    callback: unsafe extern "C" fn(*mut c_void, *const octo_request, *mut octo_responder),
    user_data: *mut c_void,
    finalizer: octo_finalizer_fn,
    counters: Arc<AnswerCounters>,
}

// SAFETY: the C contract of octo_server_add_service: the callback and user_data may be used from
// any shard thread, concurrently, and the finalizer from any thread.
unsafe impl Send for CHandler {}
// SAFETY: as above; CHandler itself is never mutated after construction.
unsafe impl Sync for CHandler {}

impl Handler for CHandler {
    fn call(&self, request: &Request<'_>, reply: Reply<'_>) {
        request::lend(request, |req| {
            octo_responder::serve(reply, request.shard(), &self.counters, |resp| {
                // SAFETY: the callback was given as a valid function by the C host, which also
                // vouched for user_data; req and resp are valid for this call.
                unsafe { (self.callback)(self.user_data, req, resp) }
            })
        });
    }
}

impl Drop for CHandler {
    fn drop(&mut self) {
        if let Some(finalize) = self.finalizer {
            // SAFETY: the host gave this finalizer for this user_data; it runs exactly once.
            unsafe { finalize(self.user_data) }
        }
    }
}

enum State {
    Configuring {
        builder: Option<ServerBuilder>,
        names: Vec<String>,
        default: Option<String>,
    },
    Running(Server),
    Stopped,
}

/// A server: configured (services, default service), started, shut down, freed.
///
/// Threads: its functions may be called from any thread, also concurrently: the handle is
/// internally synchronized. Inside a callback (on a shard thread), `octo_server_start`,
/// `octo_server_shutdown` and `octo_server_free` are refused: they would wait for that very
/// thread.
#[allow(non_camel_case_types)]
pub struct octo_server {
    state: Mutex<State>,
    counters: Arc<AnswerCounters>,
}

impl octo_server {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes a server that will listen on `address` ("IP:PORT", e.g. "0.0.0.0:9001"; port 0 picks a
/// free port) on every shard of `engine`. It serves nothing until `octo_server_start`.
/// Ownership: `*out` belongs to the caller: free it with `octo_server_free`, before the engine.
/// INVALID_ARGUMENT for a NULL argument or an address that does not parse.
#[no_mangle]
pub extern "C" fn octo_server_new(
    engine: *const octo_engine,
    address: *const c_char,
    out: *mut *mut octo_server,
) -> octo_status {
    call("octo_server_new", || {
        // SAFETY: a non-NULL engine is a live handle, per the contract.
        let engine = unsafe { arg(engine, "engine") }?;
        // SAFETY: a non-NULL address is a NUL-terminated string, per the contract.
        let address = unsafe { text(address, "address") }?;
        let out = checked_out(out, "out")?;
        let addr: SocketAddr = address
            .parse()
            .map_err(|_| Failure::invalid(format!("address {address:?} is not IP:PORT")))?;
        let server = octo_server {
            state: Mutex::new(State::Configuring {
                builder: Some(Server::builder(&engine.engine).listen(addr)),
                names: Vec::new(),
                default: None,
            }),
            counters: Arc::new(AnswerCounters::new(engine.engine.shard_count())),
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, Box::into_raw(Box::new(server))) };
        Ok(())
    })
}

/// # Safety
/// A non-NULL `p` must be a live server handle.
unsafe fn live_server<'a>(p: *const octo_server) -> Outcome<&'a octo_server> {
    // SAFETY: forwarded contract.
    unsafe { arg(p, "server") }
}

/// Adds the service `name` (RequestInfo.serviceName), handled by `handler` with `user_data`.
/// The first service added is the default for native Thrift calls unless
/// `octo_server_set_default_service` names another. Before `octo_server_start` only (BUSY
/// after; CLOSED after shutdown); INVALID_ARGUMENT for a NULL handler, an empty or duplicate name.
///
/// Ownership: on success octo keeps `user_data` and calls `finalizer(user_data)` (if not NULL)
/// exactly once, on any thread, when no call can reach the handler any more: after the server
/// is shut down or freed (at the latest when its engine is freed). On failure octo keeps
/// nothing and never calls the finalizer. `handler` and `user_data` must be usable from several
/// shard threads at once.
#[no_mangle]
pub extern "C" fn octo_server_add_service(
    server: *mut octo_server,
    name: *const c_char,
    handler: octo_handler_fn,
    user_data: *mut c_void,
    finalizer: octo_finalizer_fn,
) -> octo_status {
    call("octo_server_add_service", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        // SAFETY: a non-NULL name is a NUL-terminated string, per the contract.
        let name = unsafe { text(name, "name") }?;
        let callback = handler.ok_or_else(|| Failure::invalid("handler is NULL"))?;
        if name.is_empty() {
            return Err(Failure::invalid("the service name is empty"));
        }
        let mut state = s.lock();
        let State::Configuring { builder, names, .. } = &mut *state else {
            return Err(not_configuring(&state));
        };
        if names.iter().any(|n| n == name) {
            return Err(Failure::invalid(format!(
                "a service named {name:?} exists already"
            )));
        }
        let handler = CHandler {
            callback,
            user_data,
            finalizer,
            counters: s.counters.clone(),
        };
        *builder = Some(
            builder
                .take()
                .ok_or_else(lost_builder)?
                .service(name, handler),
        );
        names.push(name.to_owned());
        Ok(())
    })
}

fn lost_builder() -> Failure {
    Failure::new(
        octo_status::Closed,
        "the server's configuration was lost to an earlier panic",
    )
}

fn not_configuring(state: &State) -> Failure {
    match state {
        State::Running(_) => Failure::new(
            octo_status::Busy,
            "the server has started; it takes no more configuration",
        ),
        _ => Failure::new(octo_status::Closed, "the server was shut down"),
    }
}

/// Makes `name` (a service added before) the one native Thrift calls go to. Before start only.
#[no_mangle]
pub extern "C" fn octo_server_set_default_service(
    server: *mut octo_server,
    name: *const c_char,
) -> octo_status {
    call("octo_server_set_default_service", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        // SAFETY: a non-NULL name is a NUL-terminated string, per the contract.
        let name = unsafe { text(name, "name") }?;
        let mut state = s.lock();
        let State::Configuring { names, default, .. } = &mut *state else {
            return Err(not_configuring(&state));
        };
        if !names.iter().any(|n| n == name) {
            return Err(Failure::invalid(format!(
                "no service named {name:?} was added"
            )));
        }
        *default = Some(name.to_owned());
        Ok(())
    })
}

/// Binds the address on every shard and starts serving; calls reach the handlers from now on.
/// IO if the address cannot be bound (the server is then closed: free it); BUSY if started
/// already; CLOSED after shutdown. Threads: not from inside a callback.
#[no_mangle]
pub extern "C" fn octo_server_start(server: *mut octo_server) -> octo_status {
    call("octo_server_start", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        not_in_callback("octo_server_start")?;
        let mut state = s.lock();
        if !matches!(*state, State::Configuring { .. }) {
            return Err(not_configuring(&state));
        }
        let State::Configuring {
            builder,
            default,
            names,
        } = std::mem::replace(&mut *state, State::Stopped)
        else {
            unreachable!("checked above")
        };
        if names.is_empty() {
            *state = State::Configuring {
                builder,
                names,
                default,
            };
            return Err(Failure::invalid("the server has no service"));
        }
        let builder = builder.ok_or_else(lost_builder)?;
        let builder = match default {
            Some(d) => builder.default_service(&d),
            None => builder,
        };
        let running = builder
            .start()
            .map_err(|e| Failure::new(octo_status::Io, format!("starting the server: {e}")))?;
        *state = State::Running(running);
        Ok(())
    })
}

/// The TCP port the server listens on (useful after listening on port 0). BUSY before start;
/// CLOSED after shutdown. Any thread.
#[no_mangle]
pub extern "C" fn octo_server_port(server: *const octo_server, out: *mut u16) -> octo_status {
    call("octo_server_port", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        let out = checked_out(out, "out")?;
        let state = s.lock();
        let port = match &*state {
            State::Running(r) => r.local_addr().port(),
            State::Configuring { .. } => {
                return Err(Failure::new(
                    octo_status::Busy,
                    "the server has not started",
                ))
            }
            State::Stopped => {
                return Err(Failure::new(
                    octo_status::Closed,
                    "the server was shut down",
                ))
            }
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, port) };
        Ok(())
    })
}

/// The server's counters, summed over its shards (each shard publishes its own; nothing waits
/// for a shard). BUSY before start; CLOSED after shutdown. Threads: any, also inside a callback,
/// where it returns BUSY at the moment another thread holds the handle to start or configure
/// the server (rather than wait for it).
#[no_mangle]
pub extern "C" fn octo_server_get_stats(
    server: *const octo_server,
    out: *mut octo_server_stats,
) -> octo_status {
    call("octo_server_get_stats", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        let out = checked_out(out, "out")?;
        let state = if crate::boundary::in_callback() {
            // Another thread may hold the handle while it waits for this very shard (a start).
            match s.state.try_lock() {
                Ok(state) => state,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(Failure::new(
                        octo_status::Busy,
                        "another thread holds the server (starting or configuring it); a \
                         callback does not wait for it",
                    ))
                }
            }
        } else {
            s.lock()
        };
        let e = match &*state {
            State::Running(r) => r.stats(),
            State::Configuring { .. } => {
                return Err(Failure::new(
                    octo_status::Busy,
                    "the server has not started",
                ))
            }
            State::Stopped => {
                return Err(Failure::new(
                    octo_status::Closed,
                    "the server was shut down",
                ))
            }
        };
        let mut answers = s.counters.totals();
        answers[3] += e.handler_panics;
        answers[5] += e.protocol_errors;
        answers[6] += e.shed;
        answers[8] += e.unknown_service;
        let stats = octo_server_stats {
            connections_accepted: e.connections_accepted,
            connections_refused: e.connections_refused,
            connections_open: e.connections_open,
            requests: e.requests,
            expired: e.expired,
            heartbeats: e.heartbeats,
            closed_on_bad_input: e.closed_on_bad_input,
            answers_by_status: answers,
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, stats) };
        Ok(())
    })
}

/// Shuts the server down gracefully: stops accepting, reports STOPPED to health scanners, lets
/// calls in flight be answered and flushed, and closes every connection once it owes nothing;
/// at `deadline_ms` it closes whatever is left. Returns when every connection is closed.
/// Responders still held afterwards answer into closed connections (harmlessly).
/// CLOSED if already shut down. Threads: not from inside a callback (BUSY there).
#[no_mangle]
pub extern "C" fn octo_server_shutdown(server: *mut octo_server, deadline_ms: u32) -> octo_status {
    call("octo_server_shutdown", || {
        // SAFETY: a non-NULL server is a live handle, per the contract.
        let s = unsafe { live_server(server) }?;
        not_in_callback("octo_server_shutdown")?;
        let previous = std::mem::replace(&mut *s.lock(), State::Stopped);
        match previous {
            State::Running(r) => r.shutdown(Duration::from_millis(deadline_ms.into())),
            State::Configuring { .. } => {}
            State::Stopped => {
                return Err(Failure::new(
                    octo_status::Closed,
                    "the server was shut down already",
                ))
            }
        }
        Ok(())
    })
}

/// Frees the server (NULL is ignored); a running server is shut down first with no grace
/// (calls in flight are cut off). Must not be called from inside a callback (there it does
/// nothing but set the last error). Any other thread.
#[no_mangle]
pub extern "C" fn octo_server_free(server: *mut octo_server) {
    value("octo_server_free", (), || {
        if server.is_null() {
            return;
        }
        if crate::boundary::in_callback() {
            set_last_error("octo_server_free: called inside a callback; the server was not freed");
            return;
        }
        // SAFETY: server is a live handle from octo_server_new that the caller gives up.
        drop(unsafe { Box::from_raw(server) });
    })
}
