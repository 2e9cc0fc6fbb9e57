//! `octo_request`: one call as a C handler sees it, lent for the duration of the callback.

use std::cell::Cell;
use std::ffi::c_char;

use ::octo_engine::proto::{ContextMap, Framing};
use ::octo_engine::Request;

use crate::boundary::{bytes, call, checked_out, write_out, Failure, Outcome};
use crate::buf::octo_buf;
use crate::status::octo_status;

/// A call being handled. Lent to the handler callback: valid only during that callback and
/// only on its thread; every function taking it checks this and answers INVALID_ARGUMENT
/// otherwise (keep what you need with `octo_request_body_retain` or by copying).
#[allow(non_camel_case_types)]
pub struct octo_request {
    _opaque: [u8; 0],
}

/// Text borrowed from octo: `len` bytes of UTF-8 at `data`, NOT NUL-terminated. `data` is NULL
/// (and `len` 0) for text that is absent.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_str {
    /// The first byte, or NULL when absent.
    pub data: *const c_char,
    /// The number of bytes.
    pub len: usize,
}

impl octo_str {
    pub(crate) const ABSENT: octo_str = octo_str {
        data: std::ptr::null(),
        len: 0,
    };

    pub(crate) fn of(s: &str) -> octo_str {
        octo_str {
            data: s.as_ptr().cast(),
            len: s.len(),
        }
    }

    fn of_opt(s: Option<&str>) -> octo_str {
        s.map_or(Self::ABSENT, Self::of)
    }
}

/// How a call arrived on the wire.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum octo_framing {
    /// An OCTO frame (0xABBA ...), with a Header.
    Octo = 0,
    /// Apache Thrift framed transport (4-byte length), no Header.
    Thrift = 1,
}

/// Everything about a call in one crossing. Every pointer in it is lent for the duration of the
/// handler callback only.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_request_info {
    /// The service called (RequestInfo.serviceName; the default service for native Thrift).
    pub service: octo_str,
    /// The Thrift method name.
    pub method: octo_str,
    /// The 64-bit sequence id (OCTO), or the Thrift seqid (native Thrift).
    pub sequence_id: i64,
    /// The seqid of the Thrift message header: write it back in the REPLY message.
    pub thrift_seqid: i32,
    /// The caller's timeout in milliseconds; 0 when it sent none.
    pub timeout_ms: i32,
    /// True for a one-way (NoReply) call: whatever is answered is discarded.
    pub one_way: bool,
    /// How the call arrived.
    pub framing: octo_framing,
    /// The shard (thread) running the callback, 0-based.
    pub shard: u32,
    /// The whole Thrift message (message header, then the args struct).
    pub body: *const u8,
    /// Length of `body`.
    pub body_len: usize,
    /// The args struct: `body` after the Thrift message header.
    pub args: *const u8,
    /// Length of `args`.
    pub args_len: usize,
}

/// The TraceInfo sent with an OCTO call. Strings are lent for the callback's duration; absent
/// ones have `data == NULL`. `debug` and `sample` are -1 when absent, else 0 or 1.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct octo_trace_info {
    /// False when the call carried no TraceInfo (native Thrift always): every field is empty.
    pub present: bool,
    /// Field 1, the caller's appkey.
    pub client_appkey: octo_str,
    /// Field 2.
    pub trace_id: octo_str,
    /// Field 3.
    pub span_id: octo_str,
    /// Field 4.
    pub root_message_id: octo_str,
    /// Field 5.
    pub current_message_id: octo_str,
    /// Field 6.
    pub server_message_id: octo_str,
    /// Field 7: -1 absent, 0 false, 1 true.
    pub debug: i8,
    /// Field 8: -1 absent, 0 false, 1 true.
    pub sample: i8,
    /// Field 9.
    pub client_ip: octo_str,
}

/// Which context map of an OCTO Header.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum octo_context {
    /// globalContext: whole-call-chain context (Header field 5).
    Global = 0,
    /// localContext: single-hop context (Header field 6).
    Local = 1,
}

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// Lends `request` to C for the duration of `f` on this thread.
pub(crate) fn lend<R>(request: &Request<'_>, f: impl FnOnce(*const octo_request) -> R) -> R {
    struct Restore(*const ());
    impl Drop for Restore {
        fn drop(&mut self) {
            let p = self.0;
            CURRENT.with(|c| c.set(p));
        }
    }
    let p = request as *const Request<'_> as *const ();
    let _restore = Restore(CURRENT.with(|c| c.replace(p)));
    f(p.cast())
}

/// The request behind `p`, if it is the one lent to the callback running on this thread.
fn lent<'a>(p: *const octo_request) -> Outcome<&'a Request<'a>> {
    if p.is_null() {
        return Err(Failure::invalid("request is NULL"));
    }
    if CURRENT.with(|c| c.get()) != p.cast::<()>() {
        return Err(Failure::invalid(
            "the request is valid only inside its handler callback, on the callback's thread",
        ));
    }
    // SAFETY: p is the Request lent by `lend` on this thread, whose frame is still running
    // (CURRENT is reset when it returns), so it is alive for the rest of this C call.
    Ok(unsafe { &*p.cast::<Request<'a>>() })
}

/// Describes the call: service, method, ids, timeout, framing and the lent body.
/// Threads: only inside the handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_get_info(
    request: *const octo_request,
    out: *mut octo_request_info,
) -> octo_status {
    call("octo_request_get_info", || {
        let r = lent(request)?;
        let out = checked_out(out, "out")?;
        let body = r.body_slice();
        let args = r.args();
        let info = octo_request_info {
            service: octo_str::of(r.service()),
            method: octo_str::of(r.method()),
            sequence_id: r.sequence_id(),
            thrift_seqid: r.thrift_seqid(),
            timeout_ms: r
                .timeout()
                .map_or(0, |t| t.as_millis().min(i32::MAX as u128) as i32),
            one_way: r.is_one_way(),
            framing: match r.framing() {
                Framing::Octo => octo_framing::Octo,
                Framing::Thrift => octo_framing::Thrift,
            },
            shard: r.shard() as u32,
            body: body.as_ptr(),
            body_len: body.len(),
            args: args.as_ptr(),
            args_len: args.len(),
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, info) };
        Ok(())
    })
}

/// Gives the call's TraceInfo (`present` is false when there is none).
/// Threads: only inside the handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_trace_info(
    request: *const octo_request,
    out: *mut octo_trace_info,
) -> octo_status {
    call("octo_request_trace_info", || {
        let r = lent(request)?;
        let out = checked_out(out, "out")?;
        let tri = |b: Option<bool>| b.map_or(-1, i8::from);
        let info = match r.trace_info() {
            Some(t) => octo_trace_info {
                present: true,
                client_appkey: octo_str::of(t.client_appkey),
                trace_id: octo_str::of_opt(t.trace_id),
                span_id: octo_str::of_opt(t.span_id),
                root_message_id: octo_str::of_opt(t.root_message_id),
                current_message_id: octo_str::of_opt(t.current_message_id),
                server_message_id: octo_str::of_opt(t.server_message_id),
                debug: tri(t.debug),
                sample: tri(t.sample),
                client_ip: octo_str::of_opt(t.client_ip),
            },
            None => octo_trace_info {
                present: false,
                client_appkey: octo_str::ABSENT,
                trace_id: octo_str::ABSENT,
                span_id: octo_str::ABSENT,
                root_message_id: octo_str::ABSENT,
                current_message_id: octo_str::ABSENT,
                server_message_id: octo_str::ABSENT,
                debug: -1,
                sample: -1,
                client_ip: octo_str::ABSENT,
            },
        };
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, info) };
        Ok(())
    })
}

fn context<'a>(r: &Request<'a>, which: u32) -> Outcome<Option<ContextMap<'a>>> {
    match which {
        0 => Ok(r.global_context()),
        1 => Ok(r.local_context()),
        _ => Err(Failure::invalid(format!(
            "context {which} is neither OCTO_CONTEXT_GLOBAL nor OCTO_CONTEXT_LOCAL"
        ))),
    }
}

/// The number of entries in one of the call's context maps (`which` is an `octo_context`;
/// 0 when the call carried none). Threads: only inside the handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_context_len(
    request: *const octo_request,
    which: u32,
    out: *mut usize,
) -> octo_status {
    call("octo_request_context_len", || {
        let r = lent(request)?;
        let out = checked_out(out, "out")?;
        let len = context(r, which)?.map_or(0, |m| m.len());
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, len) };
        Ok(())
    })
}

/// The entry at `index` (wire order) of a context map: its key and value, lent for the
/// callback's duration. INVALID_ARGUMENT if `index` is not below `octo_request_context_len`.
/// Threads: only inside the handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_context_at(
    request: *const octo_request,
    which: u32,
    index: usize,
    out_key: *mut octo_str,
    out_value: *mut octo_str,
) -> octo_status {
    call("octo_request_context_at", || {
        let r = lent(request)?;
        let (out_key, out_value) = (
            checked_out(out_key, "out_key")?,
            checked_out(out_value, "out_value")?,
        );
        let map = context(r, which)?;
        let (k, v) = map
            .and_then(|m| m.iter().nth(index))
            .ok_or_else(|| Failure::invalid(format!("context entry {index} does not exist")))?;
        // SAFETY: both outputs are non-NULL and valid for writes per the contract.
        unsafe {
            write_out(out_key, octo_str::of(k));
            write_out(out_value, octo_str::of(v));
        }
        Ok(())
    })
}

/// Looks `key_len` bytes of `key` up in a context map: `*out_value` is the value of the first
/// entry with that key, or has `data == NULL` when there is none. Threads: only inside the
/// handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_context_get(
    request: *const octo_request,
    which: u32,
    key: *const c_char,
    key_len: usize,
    out_value: *mut octo_str,
) -> octo_status {
    call("octo_request_context_get", || {
        let r = lent(request)?;
        // SAFETY: key points to key_len readable bytes, per the contract.
        let key = unsafe { bytes(key.cast(), key_len, "key") }?;
        let out_value = checked_out(out_value, "out_value")?;
        let value = context(r, which)?
            .and_then(|m| m.iter().find(|(k, _)| k.as_bytes() == key).map(|(_, v)| v));
        // SAFETY: out_value is non-NULL and valid for a write per the contract.
        unsafe { write_out(out_value, octo_str::of_opt(value)) };
        Ok(())
    })
}

/// Keeps the call's whole Thrift message past the callback, without copying it: `*out` is a
/// read-only `octo_buf` sharing the received bytes. Ownership: the caller frees it with
/// `octo_buf_free` (from any thread). Threads: only inside the handler callback, on its thread.
#[no_mangle]
pub extern "C" fn octo_request_body_retain(
    request: *const octo_request,
    out: *mut *mut octo_buf,
) -> octo_status {
    call("octo_request_body_retain", || {
        let r = lent(request)?;
        let out = checked_out(out, "out")?;
        let buf = octo_buf::shared(r.body().clone());
        // SAFETY: out is non-NULL and valid for a write per the contract.
        unsafe { write_out(out, buf.into_raw()) };
        Ok(())
    })
}
