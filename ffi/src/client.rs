//! `octo_client`: calls to OCTO and plain Thrift servers from any host thread.

use std::ffi::{c_char, c_void, CString};
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

use ::octo_engine::client::{CallError, CallErrorKind, CallResult, Client, Heartbeat, Request};
use ::octo_engine::proto::Framing;

use crate::boundary::{
    arg, bytes, call, checked_out, not_in_callback, text, value, write_out, Failure, Outcome,
};
use crate::buf::octo_buf;
use crate::engine::octo_engine;
use crate::status::octo_status;

/// How a client calls. Fill it with `octo_client_config_default`, then change what you need;
/// `octo_client_new` copies it (strings included).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_client_config {
    /// The service called (RequestInfo.serviceName on OCTO; unused on plain Thrift). Required.
    pub service_name: *const c_char,
    /// TraceInfo.clientAppkey; NULL for "octo.client".
    pub appkey: *const c_char,
    /// Default call timeout in ms (1000); a call may give its own.
    pub timeout_ms: u32,
    /// How long a connect may take, in ms (1000).
    pub connect_timeout_ms: u32,
    /// Connections per endpoint on each shard (2).
    pub pool_size: u32,
    /// Calls in flight on one connection before it counts as full (65536).
    pub max_in_flight_per_connection: u32,
    /// Send a heartbeat on a connection silent this long, in ms (30000); 0 = no heartbeats.
    pub heartbeat_interval_ms: u32,
    /// Close a connection whose heartbeat is unanswered this long, in ms (5000).
    pub heartbeat_timeout_ms: u32,
    /// Largest answer frame accepted, in bytes (16 MiB); a larger one closes its connection.
    pub max_frame_size: u32,
}

/// One server a client calls.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_endpoint {
    /// "IP:PORT" (NUL-terminated; read during `octo_client_new` only).
    pub address: *const c_char,
    /// An `octo_framing`: OCTO_FRAMING_OCTO, or OCTO_FRAMING_THRIFT for plain Thrift servers
    /// (Whale, Apache Thrift).
    pub framing: u32,
}

/// Receives the outcome of one call, exactly once, on a shard thread (never block in it):
/// `status` is OK or why the call failed (an OCTO status from the server or the transport,
/// TIMEOUT, CLOSED when the client was closed first). `reply` is the whole Thrift message the
/// server answered (the REPLY on success; the EXCEPTION or REPLY body of a remote error, if any;
/// NULL otherwise): it is OWNED by the callback, which frees it with `octo_buf_free` (from any
/// thread, now or later). `message` is a NUL-terminated description of a failure ("" on
/// success), lent for the duration of the callback.
#[allow(non_camel_case_types)]
pub type octo_call_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: octo_status,
        reply: *mut octo_buf,
        message: *const c_char,
    ),
>;

impl Default for octo_client_config {
    fn default() -> Self {
        octo_client_config {
            service_name: std::ptr::null(),
            appkey: std::ptr::null(),
            timeout_ms: 1000,
            connect_timeout_ms: 1000,
            pool_size: 2,
            max_in_flight_per_connection: 65536,
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 5_000,
            max_frame_size: ::octo_engine::proto::DEFAULT_MAX_FRAME_SIZE as u32,
        }
    }
}

/// A client of one service over a list of endpoints, on an engine's shards: multiplexed
/// connections, per-call deadlines, reconnects with backoff, heartbeats.
///
/// Threads: every function may be called from any thread, concurrently (the handle is
/// internally synchronized); the waiting one (`octo_client_call_wait`) not from inside an octo
/// callback.
#[allow(non_camel_case_types)]
pub struct octo_client {
    client: RwLock<Option<Client>>,
}

impl octo_client {
    fn open(&self) -> Outcome<Client> {
        let guard = self.client.read().unwrap_or_else(|p| p.into_inner());
        guard
            .clone()
            .ok_or_else(|| Failure::new(octo_status::Closed, "the client was closed"))
    }
}

/// Writes the default client configuration into `*out` (service_name NULL: set it). Any thread.
#[no_mangle]
pub extern "C" fn octo_client_config_default(out: *mut octo_client_config) -> octo_status {
    call("octo_client_config_default", || {
        let out = checked_out(out, "out")?;
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, octo_client_config::default()) };
        Ok(())
    })
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(ms.into())
}

/// Makes a client of `config->service_name` calling the `endpoints_len` servers in `endpoints`
/// (round-robin over those that are up), on the shards of `engine`. Connections open in the
/// background; calls made before the first one is up wait for it (within their timeout).
/// Ownership: `*out` belongs to the caller: close and free it with `octo_client_free`, before
/// the engine. INVALID_ARGUMENT for NULL arguments, no endpoints, an address that does not
/// parse, an unknown framing or zero limits. Any thread but a shard thread.
#[no_mangle]
pub extern "C" fn octo_client_new(
    engine: *const octo_engine,
    config: *const octo_client_config,
    endpoints: *const octo_endpoint,
    endpoints_len: usize,
    out: *mut *mut octo_client,
) -> octo_status {
    call("octo_client_new", || {
        // SAFETY: a non-NULL engine is a live handle, per the contract.
        let engine = unsafe { arg(engine, "engine") }?;
        // SAFETY: a non-NULL config points to a live struct, per the contract.
        let config = *unsafe { arg(config, "config") }?;
        let out = checked_out(out, "out")?;
        if endpoints_len == 0 || endpoints.is_null() {
            return Err(Failure::invalid("a client needs at least one endpoint"));
        }
        if endpoints_len > 4096 {
            return Err(Failure::invalid(format!(
                "{endpoints_len} endpoints is more than 4096"
            )));
        }
        // SAFETY: endpoints points to endpoints_len structs, per the contract.
        let list = unsafe { std::slice::from_raw_parts(endpoints, endpoints_len) };
        // SAFETY: a non-NULL service_name is a NUL-terminated string, per the contract.
        let service = unsafe { text(config.service_name, "config->service_name") }?;
        let mut builder = Client::builder(service)
            .timeout(millis(config.timeout_ms))
            .connect_timeout(millis(config.connect_timeout_ms))
            .pool_size(config.pool_size as usize)
            .max_in_flight_per_connection(config.max_in_flight_per_connection as usize)
            .max_frame_size(config.max_frame_size as usize)
            .heartbeat((config.heartbeat_interval_ms > 0).then(|| Heartbeat {
                interval: millis(config.heartbeat_interval_ms),
                timeout: millis(config.heartbeat_timeout_ms.max(1)),
            }));
        if config.timeout_ms == 0 || config.connect_timeout_ms == 0 {
            return Err(Failure::invalid(
                "timeout_ms and connect_timeout_ms must be > 0",
            ));
        }
        if config.max_frame_size < 64 || config.max_frame_size > i32::MAX as u32 {
            return Err(Failure::invalid(format!(
                "max_frame_size {} is outside [64, 2^31 - 1]",
                config.max_frame_size
            )));
        }
        if !config.appkey.is_null() {
            // SAFETY: a non-NULL appkey is a NUL-terminated string, per the contract.
            builder = builder.appkey(unsafe { text(config.appkey, "config->appkey") }?);
        }
        for (i, e) in list.iter().enumerate() {
            // SAFETY: a non-NULL address is a NUL-terminated string, per the contract.
            let address = unsafe { text(e.address, "endpoint address") }?;
            let addr: SocketAddr = address.parse().map_err(|_| {
                Failure::invalid(format!("endpoint {i}: address {address:?} is not IP:PORT"))
            })?;
            let framing = match e.framing {
                0 => Framing::Octo,
                1 => Framing::Thrift,
                other => {
                    return Err(Failure::invalid(format!(
                        "endpoint {i}: framing {other} is not an octo_framing"
                    )))
                }
            };
            builder = builder.endpoint(addr, framing);
        }
        let client = builder
            .build_on(engine.engine.runtime().shards().to_vec())
            .map_err(|e| Failure::invalid(format!("building the client: {e}")))?;
        let handle = octo_client {
            client: RwLock::new(Some(client)),
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, Box::into_raw(Box::new(handle))) };
        Ok(())
    })
}

/// # Safety
/// A non-NULL `p` must be a live client handle.
unsafe fn live_client<'a>(p: *const octo_client) -> Outcome<&'a octo_client> {
    // SAFETY: forwarded contract.
    unsafe { arg(p, "client") }
}

fn request_of(body: &[u8], timeout_ms: u32) -> Outcome<Request> {
    let request = Request::new(bytes::Bytes::copy_from_slice(body))
        .map_err(|e| Failure::invalid(format!("body: {}", e.message())))?;
    Ok(if timeout_ms > 0 {
        request.timeout(millis(timeout_ms))
    } else {
        request
    })
}

/// The status a failed call reports through the C ABI.
fn status_of(e: &CallError) -> octo_status {
    match e.kind() {
        CallErrorKind::Timeout => octo_status::Timeout,
        CallErrorKind::Shutdown => octo_status::Closed,
        CallErrorKind::InvalidRequest => octo_status::InvalidArgument,
        CallErrorKind::WouldDeadlock | CallErrorKind::WrongShard => octo_status::Busy,
        _ => e.status().into(),
    }
}

struct CallbackTarget {
    callback: unsafe extern "C" fn(*mut c_void, octo_status, *mut octo_buf, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the C contract of octo_client_call: the callback and its user_data may be used on
// the shard thread that completes the call.
unsafe impl Send for CallbackTarget {}

impl CallbackTarget {
    fn deliver(self, result: CallResult) {
        let (status, reply, message) = match result {
            Ok(r) => (octo_status::Ok, Some(r.body), CString::default()),
            Err(e) => {
                let message = CString::new(e.message().replace('\0', " ")).unwrap_or_default();
                (status_of(&e), e.body().cloned(), message)
            }
        };
        let reply = reply.map_or(std::ptr::null_mut(), |b| octo_buf::shared(b).into_raw());
        // SAFETY: the host gave this callback and user_data for exactly one call; reply is
        // handed over (the callback owns it) and message outlives the call.
        unsafe { (self.callback)(self.user_data, status, reply, message.as_ptr()) }
    }
}

/// Calls with `body` (`len` bytes: a whole Thrift CALL message; its seqid is replaced by the
/// call's sequence id) and returns at once; `callback(user_data, ...)` receives the outcome
/// exactly once, on a shard thread (see `octo_call_fn`). `timeout_ms` 0 uses the client's
/// default. `body` is copied before this returns.
///
/// Returns OK when the call was taken: the callback will run (possibly before this returns,
/// on this thread, with CLOSED if the engine has stopped). On any other status the callback
/// will NOT run: CLOSED after `octo_client_close`, INVALID_ARGUMENT for NULL arguments or a
/// body that is not a Thrift CALL message. Any thread, concurrently.
#[no_mangle]
pub extern "C" fn octo_client_call(
    client: *const octo_client,
    body: *const u8,
    len: usize,
    timeout_ms: u32,
    callback: octo_call_fn,
    user_data: *mut c_void,
) -> octo_status {
    call("octo_client_call", || {
        // SAFETY: a non-NULL client is a live handle, per the contract.
        let c = unsafe { live_client(client) }?;
        // SAFETY: body points to len readable bytes, per the contract.
        let body = unsafe { bytes(body, len, "body") }?;
        let callback = callback.ok_or_else(|| Failure::invalid("callback is NULL"))?;
        let request = request_of(body, timeout_ms)?;
        let client = c.open()?;
        let target = CallbackTarget {
            callback,
            user_data,
        };
        client.call(request, move |result| target.deliver(result));
        Ok(())
    })
}

/// Calls with `body` (a whole Thrift CALL message, copied) and waits for the outcome, at most
/// `timeout_ms` (0: the client's default). On OK, `*out_reply` is the server's REPLY message,
/// owned by the caller (free it with `octo_buf_free`). Otherwise the status says why (TIMEOUT,
/// CLOSED, TRANSPORT_EXCEPTION, or the server's status) and `octo_last_error()` has the
/// server's message; `*out_reply` is untouched. Any thread but a shard thread (BUSY there).
#[no_mangle]
pub extern "C" fn octo_client_call_wait(
    client: *const octo_client,
    body: *const u8,
    len: usize,
    timeout_ms: u32,
    out_reply: *mut *mut octo_buf,
) -> octo_status {
    call("octo_client_call_wait", || {
        // SAFETY: a non-NULL client is a live handle, per the contract.
        let c = unsafe { live_client(client) }?;
        // SAFETY: body points to len readable bytes, per the contract.
        let body = unsafe { bytes(body, len, "body") }?;
        let out_reply = checked_out(out_reply, "out_reply")?;
        not_in_callback("octo_client_call_wait")?;
        let request = request_of(body, timeout_ms)?;
        let client = c.open()?;
        match client.call_blocking(request) {
            Ok(r) => {
                // SAFETY: out_reply is non-NULL and valid for a write per the contract.
                unsafe { write_out(out_reply, octo_buf::shared(r.body).into_raw()) };
                Ok(())
            }
            Err(e) => Err(Failure::new(status_of(&e), e.to_string())),
        }
    })
}

/// Sends `body` (a whole Thrift CALL message, copied) as a one-way call (NoReply on OCTO): no
/// answer comes back and whether it arrived is not known. CLOSED after `octo_client_close` or
/// once the engine stopped. Any thread, concurrently.
#[no_mangle]
pub extern "C" fn octo_client_send_one_way(
    client: *const octo_client,
    body: *const u8,
    len: usize,
) -> octo_status {
    call("octo_client_send_one_way", || {
        // SAFETY: a non-NULL client is a live handle, per the contract.
        let c = unsafe { live_client(client) }?;
        // SAFETY: body points to len readable bytes, per the contract.
        let body = unsafe { bytes(body, len, "body") }?;
        let request = request_of(body, 0)?;
        let client = c.open()?;
        client
            .send_one_way(request)
            .map_err(|e| Failure::new(status_of(&e), e.to_string()))
    })
}

/// Closes the client: its connections close and calls still in flight complete with CLOSED
/// (their callbacks run soon, on shard threads); later calls return CLOSED. The handle stays
/// valid until `octo_client_free`. CLOSED if closed already. Any thread.
#[no_mangle]
pub extern "C" fn octo_client_close(client: *mut octo_client) -> octo_status {
    call("octo_client_close", || {
        // SAFETY: a non-NULL client is a live handle, per the contract.
        let c = unsafe { live_client(client) }?;
        let taken = c.client.write().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(client) => {
                drop(client);
                Ok(())
            }
            None => Err(Failure::new(
                octo_status::Closed,
                "the client was closed already",
            )),
        }
    })
}

/// Closes the client (as `octo_client_close`, if it is open) and frees the handle (NULL is
/// ignored). Callbacks of calls in flight still run, with CLOSED. Any thread.
#[no_mangle]
pub extern "C" fn octo_client_free(client: *mut octo_client) {
    value("octo_client_free", (), || {
        if !client.is_null() {
            // SAFETY: client is a live handle from octo_client_new that the caller gives up.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}
