#!/usr/bin/env python3
"""Apache Thrift's side of octo's codec cross-check (driven by engine/tests/thrift_xcheck.rs).

Two modes, both over a directory of cases. A case is NAME.bin (bytes) plus NAME.json (what the
bytes mean):

  generate OUTDIR   Apache Thrift writes: Header structs through the classes `thrift --gen py`
                    made from idl/octo.thrift, Echo messages through the generated Echo client
                    (send_echo) and processor (process), Thrift-framed messages through
                    TFramedTransport, and whole OCTO frames assembled here per PROTOCOL.md §2
                    (Adler-32 from zlib, gzip from the stdlib, raw Snappy from cramjam).
  verify INDIR      Apache Thrift reads what octo wrote: frame checks and decompression here, the
                    header with the generated Header class, the body with readMessageBegin and
                    the generated echo_args / echo_result / TApplicationException. Every field
                    must equal the JSON; exits 1 with one line per mismatch otherwise.

The generated code is imported from the directory in $OCTO_XCHECK_GEN (or --gen DIR): octo_idl
(idl/octo.thrift), octo_idl.echo (idl/echo.thrift) and octo_xcheck.newer (newer_header.thrift).

Case JSON (shared with the Rust side; absent key = field absent on the wire):
  {"kind": "header" | "message" | "octo" | "thrift_framed",
   "expect": "ok" | "error",            # "error": a conforming decoder must reject the bytes
   "why": "...",                        # for "error" cases: what is wrong, in words,
   "reason": "checksum" | "gzip" | "snappy" | "header_length" | "total_length"
           | "missing_required_field:STRUCT:ID",   # and as a code a decoder's error must match
   "header": {IDL field names},         # kinds header, octo; strings as JSON strings (UTF-8),
                                        # i64 as JSON integers, doubles as JSON numbers
   "strict": false,                     # kind message: Apache Thrift wrote the old non-strict
                                        # message header (octo reads it, never writes it)
   "frame": {"version": 0, "checksum": bool, "compression": "none"|"gzip"|"snappy",
             "serialization": 1|2},     # kind octo
   "body": null | {"name": str, "type": 1 CALL|2 REPLY|3 EXCEPTION|4 ONEWAY, "seqid": i32,
                   one of "args": {"message": str}, "result": {"success": str} (or {}),
                   "exception": {"message": str, "type": int}}}
"""

import argparse
import gzip
import json
import logging
import os
import struct
import sys
import zlib

MAGIC = b"\xab\xba"
FLAG_CHECKSUM = 0x80
FLAG_GZIP = 0x40
FLAG_SNAPPY = 0x20
MAX_FRAME = 16 * 1024 * 1024


def load_modules(gen_dir):
    """Imports Apache Thrift and the generated code; exits 3 with a clear hint if missing."""
    sys.path.insert(0, gen_dir)
    try:
        import cramjam  # noqa: F401
        from thrift.Thrift import TApplicationException, TMessageType, TType  # noqa: F401
        from thrift.protocol import TBinaryProtocol  # noqa: F401
        from thrift.transport import TTransport  # noqa: F401
    except ImportError as e:
        print("thrift_peer: %s: run scripts/install-deps.sh" % e, file=sys.stderr)
        sys.exit(3)
    try:
        import octo_idl.echo.Echo  # noqa: F401
        import octo_idl.ttypes  # noqa: F401
        import octo_xcheck.newer.ttypes  # noqa: F401
    except ImportError as e:
        print("thrift_peer: generated code missing in %s: %s" % (gen_dir, e), file=sys.stderr)
        sys.exit(3)


# ---------------------------------------------------------------------------------------------
# Thrift structs <-> the case JSON, walking the generated thrift_spec (no hand-written layout).


def struct_to_json(obj):
    from thrift.Thrift import TType

    def value(ttype, targs, v):
        if ttype == TType.STRUCT:
            return struct_to_json(v)
        if ttype == TType.MAP:
            ktype, kargs, vtype, vargs = targs[0], targs[1], targs[2], targs[3]
            return {value(ktype, kargs, k): value(vtype, vargs, x) for k, x in v.items()}
        if ttype in (TType.LIST, TType.SET):
            etype, eargs = targs[0], targs[1]
            return [value(etype, eargs, x) for x in v]
        if ttype == TType.STRING and isinstance(v, bytes):
            return v.hex()
        return v

    out = {}
    for spec in obj.thrift_spec:
        if spec is None:
            continue
        fid, ttype, name, targs = spec[0], spec[1], spec[2], spec[3]
        v = getattr(obj, name)
        if v is not None:
            out[name] = value(ttype, targs, v)
    return out


def struct_from_json(cls, d):
    from thrift.Thrift import TType

    def value(ttype, targs, v):
        if ttype == TType.STRUCT:
            return struct_from_json(targs[0], v)
        if ttype == TType.MAP:
            ktype, kargs, vtype, vargs = targs[0], targs[1], targs[2], targs[3]
            return {value(ktype, kargs, k): value(vtype, vargs, x) for k, x in v.items()}
        if ttype in (TType.LIST, TType.SET):
            etype, eargs = targs[0], targs[1]
            items = [value(etype, eargs, x) for x in v]
            return set(items) if ttype == TType.SET else items
        if ttype == TType.DOUBLE:
            return float(v)
        return v

    obj = cls()
    names = set()
    for spec in cls.thrift_spec:
        if spec is None:
            continue
        fid, ttype, name, targs = spec[0], spec[1], spec[2], spec[3]
        names.add(name)
        # Absent in the JSON means absent on the wire, even where the IDL has a default.
        setattr(obj, name, value(ttype, targs, d[name]) if name in d else None)
    unknown = set(d) - names
    if unknown:
        raise ValueError("%s has no fields %s" % (cls.__name__, sorted(unknown)))
    return obj


def validate_tree(obj):
    """Runs the generated validate() (required fields) on a struct and every nested struct."""
    obj.validate()
    for spec in obj.thrift_spec:
        if spec is None:
            continue
        v = getattr(obj, spec[2])
        if hasattr(v, "thrift_spec"):
            validate_tree(v)


def serialize(obj):
    """What Apache Thrift's TSerializer does: TMemoryBuffer + TBinaryProtocol (strict write).
    The C writer (TBinaryProtocolAccelerated), where built, must produce the same bytes."""
    from thrift.transport import TTransport

    out = None
    for tag, protocol in readers():
        buf = TTransport.TMemoryBuffer()
        obj.write(protocol(buf))
        if out is not None and buf.getvalue() != out:
            raise AssertionError("Apache Thrift's two writers disagree on %r" % obj)
        out = buf.getvalue()
    return out


# ---------------------------------------------------------------------------------------------
# Echo messages through the generated client and processor.


class EchoHandler:
    """The reference Echo service; raises what the case asks for instead of answering."""

    def __init__(self, raise_exc=None):
        self.raise_exc = raise_exc

    def echo(self, message):
        if self.raise_exc is not None:
            raise self.raise_exc
        return message


def echo_call_bytes(message, seqid, strict_write=True):
    from octo_idl.echo import Echo
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer()
    client = Echo.Client(TBinaryProtocol.TBinaryProtocol(buf, strictWrite=strict_write))
    client._seqid = seqid
    client.send_echo(message)
    return buf.getvalue()


def processor_answer(call, handler, strict_write=True):
    """Feeds a request message to the generated Echo.Processor; returns what it wrote."""
    from octo_idl.echo import Echo
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    out = TTransport.TMemoryBuffer()
    Echo.Processor(handler).process(
        TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(call)),
        TBinaryProtocol.TBinaryProtocol(out, strictWrite=strict_write),
    )
    return out.getvalue()


def raw_call_bytes(name, seqid, message):
    """A call to a method name the Echo client cannot send (to make UNKNOWN_METHOD answers)."""
    from octo_idl.echo import Echo
    from thrift.Thrift import TMessageType
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer()
    p = TBinaryProtocol.TBinaryProtocol(buf)
    p.writeMessageBegin(name, TMessageType.CALL, seqid)
    Echo.echo_args(message=message).write(p)
    p.writeMessageEnd()
    return buf.getvalue()


def oneway_call_bytes(message, seqid):
    from octo_idl.echo import Echo
    from thrift.Thrift import TMessageType
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer()
    p = TBinaryProtocol.TBinaryProtocol(buf)
    p.writeMessageBegin("echo", TMessageType.ONEWAY, seqid)
    Echo.echo_args(message=message).write(p)
    p.writeMessageEnd()
    return buf.getvalue()


def thrift_seqid(sequence_id):
    """PROTOCOL.md §5: the Thrift seqid is the low 32 bits of sequenceId, as a signed i32."""
    return struct.unpack(">i", struct.pack(">I", sequence_id & 0xFFFFFFFF))[0]


def octo_frame(header, body, checksum=False, compression="none", serialization=1, version=0):
    """Assembles an OCTO frame per PROTOCOL.md §2 (the layout, not octo's code)."""
    payload = header + body
    flags = version | serialization
    if compression == "gzip":
        payload = gzip.compress(payload, mtime=0)
        flags |= FLAG_GZIP
    elif compression == "snappy":
        import cramjam

        payload = bytes(cramjam.snappy.compress_raw(payload))
        flags |= FLAG_SNAPPY
    if checksum:
        flags |= FLAG_CHECKSUM
    total = 2 + len(payload) + (4 if checksum else 0)
    frame = MAGIC + bytes([version, flags]) + struct.pack(">ih", total, len(header)) + payload
    if checksum:
        frame += struct.pack(">I", zlib.adler32(frame) & 0xFFFFFFFF)
    return frame


# ---------------------------------------------------------------------------------------------
# generate


ECHO_1K = ("octo-xcheck:0123456789abcdefghijklmnopqrstuvwxyz|" * 32)[:1024]
ECHO_UNICODE = "回声 echo ✓ — Ünïcødé 🚀 \u0000 tab\t newline\n end"
# Compressible but not trivially: a repeating text with a changing counter.
ECHO_64K = "".join("line %05d: the quick brown fox jumps over the lazy dog\n" % i for i in range(1200))[
    :65536
]

SERVICE = "octo.idl.Echo"


def request_header(seq, *, call_type=0, timeout=1000, trace=None, global_ctx=None, local_ctx=None,
                   message_type=0, service=SERVICE):
    h = {"messageType": message_type,
         "requestInfo": {"serviceName": service, "sequenceId": seq, "callType": call_type,
                         "timeout": timeout}}
    if trace is not None:
        h["traceInfo"] = trace
    if global_ctx is not None:
        h["globalContext"] = global_ctx
    if local_ctx is not None:
        h["localContext"] = local_ctx
    return h


def response_header(seq, status=0, message=None, local_ctx=None, message_type=0):
    r = {"sequenceId": seq, "status": status}
    if message is not None:
        r["message"] = message
    h = {"messageType": message_type, "responseInfo": r}
    if local_ctx is not None:
        h["localContext"] = local_ctx
    return h


DORADO_TRACE = {"clientAppkey": "com.meituan.octo.xcheck.client", "clientIp": "10.4.5.6"}
FULL_TRACE = {
    "clientAppkey": "com.meituan.octo.xcheck.client",
    "traceId": "7203948572039485720",
    "spanId": "0.1.2",
    "rootMessageId": "root-msg-1",
    "currentMessageId": "cur-msg-2",
    "serverMessageId": "srv-msg-3",
    "debug": True,
    "sample": False,
    "clientIp": "fe80::1%eth0",
}


def header_cases():
    """Header structs covering every field of every struct, and the edges of each type."""
    cases = {
        "header_request_minimal": request_header(1),
        "header_request_dorado_shape": request_header(1, trace=DORADO_TRACE),
        "header_request_full_trace_and_contexts": request_header(
            42, call_type=0, timeout=250, trace=FULL_TRACE,
            global_ctx={"tenant": "t-1", "zone": "sh-01", "": "empty key"},
            local_ctx={"retry": "2", "empty value": ""}),
        "header_request_oneway": request_header(7, call_type=1, timeout=0, trace=DORADO_TRACE),
        "header_request_seq_above_2_32": request_header(2**32 + 77, trace=DORADO_TRACE),
        "header_request_seq_i64_max": request_header(2**63 - 1),
        "header_request_seq_i64_min": request_header(-(2**63)),
        "header_request_seq_negative": request_header(-5, timeout=-1),
        "header_request_timeout_i32_max": request_header(3, timeout=2**31 - 1),
        "header_request_unicode": request_header(
            9, service="服务.Echo✓", trace={"clientAppkey": "appkey-🚀", "traceId": "追踪"},
            global_ctx={"键": "值", "emoji 🎉": "ü"}, local_ctx={"ключ": "значение"}),
        "header_request_empty_maps": request_header(10, global_ctx={}, local_ctx={}),
        "header_request_empty_strings": request_header(
            11, service="", trace={"clientAppkey": "", "traceId": "", "clientIp": ""}),
        "header_request_debug_false_sample_true": request_header(
            12, trace={"clientAppkey": "a", "debug": False, "sample": True}),
        "header_request_many_context_entries": request_header(
            13, local_ctx={"k%03d" % i: "v%03d" % i for i in range(100)}),
        "header_response_success": response_header(1),
        "header_response_with_message": response_header(
            2, status=8, message="unknown method: octo.idl.Echo.nope"),
        "header_response_every_status": None,  # filled below, one per status
        "header_response_seq_above_2_32": response_header(2**32 + 77),
        "header_response_seq_negative": response_header(-(2**40)),
        "header_response_local_context_unicode": response_header(
            3, local_ctx={"服务端": "上下文 ✓"}, message="ошибка — 错误"),
        "header_response_empty_message": response_header(4, status=2, message=""),
        "header_normal_heartbeat_request": request_header(
            100, message_type=1, trace=DORADO_TRACE),
        "header_normal_heartbeat_response": response_header(100, message_type=1),
        "header_scanner_heartbeat_request": request_header(101, message_type=2),
        "header_scanner_heartbeat_response_minimal": dict(
            response_header(101, message_type=2), heartbeatInfo={"status": 2}),
        "header_scanner_heartbeat_response_dorado_shape": dict(
            response_header(102, message_type=2),
            heartbeatInfo={"appkey": "com.meituan.octo.xcheck.server", "sendTime": 1763788800123,
                           "status": 2}),
        "header_scanner_heartbeat_response_load_info": dict(
            response_header(103, message_type=2),
            heartbeatInfo={
                "appkey": "com.meituan.octo.xcheck.server", "sendTime": 1763788800123,
                "status": 4,
                "loadInfo": {"averageLoad": 0.1, "oldGC": 3, "threadNum": 64,
                             "queueSize": -1,
                             "methodQpsMap": {"echo": 120000.5, "ping": 1e-300,
                                              "big": 1.7976931348623157e308, "neg": -0.0,
                                              "third": 1 / 3}}}),
        "header_scanner_heartbeat_response_empty_load_info": dict(
            response_header(104, message_type=2),
            heartbeatInfo={"status": 0, "loadInfo": {"methodQpsMap": {}}}),
        "header_scanner_heartbeat_response_load_info_no_map": dict(
            response_header(105, message_type=2),
            heartbeatInfo={"status": 2, "loadInfo": {"averageLoad": 2.5, "threadNum": 8}}),
        "header_request_and_response_both": dict(
            request_header(200, trace=DORADO_TRACE), responseInfo={"sequenceId": 200, "status": 0}),
    }
    del cases["header_response_every_status"]
    for status in range(10):
        cases["header_response_status_%d" % status] = response_header(300 + status, status=status)
    # messageType has an IDL default of 0: a Header without field 1 on the wire means Normal.
    no_type = request_header(400)
    del no_type["messageType"]
    cases["header_request_without_message_type"] = no_type
    no_type = response_header(401)
    del no_type["messageType"]
    cases["header_response_without_message_type"] = no_type
    cases["header_empty_struct"] = {}
    return cases


def newer_header_cases():
    """Headers written by a newer peer (newer_header.thrift): octo must skip the extra fields."""
    known = request_header(500, trace=FULL_TRACE, global_ctx={"g": "1"}, local_ctx={"l": "2"})
    newer = json.loads(json.dumps(known))
    newer["requestInfo"].update(routingTag="canary", retryHistory=[1, -2, 2**40])
    newer["traceInfo"]["baggage"] = {"b": {"name": "n", "values": [1, 2, 3]}, "e": {}}
    newer.update(compressedBody=True, token=b"\x00\xff\x10binary".hex(),
                 extensions=[{"name": "x"}, {"values": []}], features=[1, 2, 3],
                 routes={"7": ["a", "b"], "-1": []}, tail={"name": "last"})
    resp_known = dict(response_header(501, message_type=2),
                      heartbeatInfo={"status": 2, "loadInfo": {"averageLoad": 1.5,
                                                               "methodQpsMap": {"echo": 3.0}}})
    resp_newer = json.loads(json.dumps(resp_known))
    resp_newer["responseInfo"]["serverCostMs"] = 0.25
    resp_newer["heartbeatInfo"]["weight"] = 10
    resp_newer["heartbeatInfo"]["loadInfo"]["hotMethods"] = ["echo", "ping"]
    return {
        "header_newer_peer_request_unknown_fields": (newer, known),
        "header_newer_peer_heartbeat_unknown_fields": (resp_newer, resp_known),
    }


def retyped_header_cases():
    """Known optional fields with unexpected types (newer_header.thrift's RetypedHeader): what
    Apache Thrift reads with octo.thrift is the header without them."""
    request = {"serviceName": SERVICE, "sequenceId": 600, "callType": 0, "timeout": 10}
    retyped = {"messageType": "2", "requestInfo": request,
               "traceInfo": {"clientAppkey": "a", "debug": "yes", "clientIp": 167772161},
               "globalContext": ["k", "v"], "localContext": 7, "heartbeatInfo": "alive"}
    known = {"requestInfo": request, "traceInfo": {"clientAppkey": "a"}}
    return {"header_known_fields_with_unexpected_types_are_skipped": (retyped, known)}


def newer_ttypes():
    import octo_xcheck.newer.ttypes

    return octo_xcheck.newer.ttypes


def newer_struct_from_json(d):
    """Builds a newer_header.Header; `token` is hex and map keys of `routes` are i64."""
    from octo_xcheck.newer import ttypes as newer

    d = json.loads(json.dumps(d))
    token = d.pop("token", None)
    routes = d.pop("routes", None)
    h = struct_from_json(newer.Header, d)
    if token is not None:
        h.token = bytes.fromhex(token)
    if routes is not None:
        h.routes = {int(k): v for k, v in routes.items()}
    return h


def invalid_header_cases():
    """Headers lacking a required field: PROTOCOL.md §3 says decoders must reject them."""
    return {
        "header_reject_request_info_without_sequence_id": (
            {"messageType": 0, "requestInfo": {"serviceName": SERVICE, "callType": 0,
                                               "timeout": 1000}},
            "RequestInfo.sequenceId (required) is missing",
            "missing_required_field:RequestInfo:2"),
        "header_reject_request_info_without_service_name": (
            {"requestInfo": {"sequenceId": 1, "callType": 0, "timeout": 1000}},
            "RequestInfo.serviceName (required) is missing",
            "missing_required_field:RequestInfo:1"),
        "header_reject_request_info_without_call_type": (
            {"requestInfo": {"serviceName": SERVICE, "sequenceId": 1, "timeout": 1000}},
            "RequestInfo.callType (required) is missing",
            "missing_required_field:RequestInfo:3"),
        "header_reject_request_info_without_timeout": (
            {"requestInfo": {"serviceName": SERVICE, "sequenceId": 1, "callType": 0}},
            "RequestInfo.timeout (required) is missing",
            "missing_required_field:RequestInfo:4"),
        "header_reject_response_info_without_status": (
            {"responseInfo": {"sequenceId": 1}}, "ResponseInfo.status (required) is missing",
            "missing_required_field:ResponseInfo:2"),
        "header_reject_response_info_without_sequence_id": (
            {"responseInfo": {"status": 0}}, "ResponseInfo.sequenceId (required) is missing",
            "missing_required_field:ResponseInfo:1"),
        "header_reject_trace_info_without_client_appkey": (
            dict(request_header(1), traceInfo={"traceId": "t"}),
            "TraceInfo.clientAppkey (required) is missing",
            "missing_required_field:TraceInfo:1"),
        "header_reject_heartbeat_info_without_status": (
            dict(response_header(1, message_type=2), heartbeatInfo={"appkey": "a"}),
            "HeartbeatInfo.status (required) is missing",
            "missing_required_field:HeartbeatInfo:4"),
    }


def message_cases():
    """Echo bodies written by the generated client and processor. Returns name -> (bytes, json)."""
    from thrift.Thrift import TApplicationException

    out = {}

    def call(name, message, seqid):
        out[name] = (echo_call_bytes(message, seqid),
                     {"name": "echo", "type": 1, "seqid": seqid, "args": {"message": message}})

    def reply(name, message, seqid):
        data = processor_answer(echo_call_bytes(message, seqid), EchoHandler())
        out[name] = (data, {"name": "echo", "type": 2, "seqid": seqid,
                            "result": {"success": message}})

    call("message_echo_call_1k", ECHO_1K, 1)
    call("message_echo_call_empty_string", "", 2)
    call("message_echo_call_unicode", ECHO_UNICODE, 3)
    call("message_echo_call_seqid_negative", "neg", -2**31)
    call("message_echo_call_seqid_max", "max", 2**31 - 1)
    reply("message_echo_reply_1k", ECHO_1K, 1)
    reply("message_echo_reply_empty_string", "", 2)
    reply("message_echo_reply_unicode", ECHO_UNICODE, 3)
    reply("message_echo_reply_seqid_negative", "neg", -7)

    data = processor_answer(
        echo_call_bytes("x", 5),
        EchoHandler(TApplicationException(TApplicationException.UNKNOWN, "handler said no ✗")))
    out["message_echo_exception_unknown"] = (
        data, {"name": "echo", "type": 3, "seqid": 5,
               "exception": {"message": "handler said no ✗", "type": 0}})
    data = processor_answer(echo_call_bytes("x", 6), EchoHandler(RuntimeError("boom")))
    out["message_echo_exception_internal_error"] = (
        data, {"name": "echo", "type": 3, "seqid": 6,
               "exception": {"message": "Internal error", "type": 6}})
    data = processor_answer(raw_call_bytes("nope", 8, "x"), EchoHandler())
    out["message_exception_unknown_method"] = (
        data, {"name": "nope", "type": 3, "seqid": 8,
               "exception": {"message": "Unknown function nope", "type": 1}})
    # Old Thrift writers (and TBinaryProtocol(strictWrite=False)) omit the version word; Apache
    # Thrift still reads that by default, and so does octo.
    out["message_echo_call_non_strict"] = (
        echo_call_bytes("old writer", 10, strict_write=False),
        {"name": "echo", "type": 1, "seqid": 10, "args": {"message": "old writer"},
         "strict": False})
    out["message_echo_reply_non_strict"] = (
        processor_answer(echo_call_bytes("old writer", 11), EchoHandler(), strict_write=False),
        {"name": "echo", "type": 2, "seqid": 11, "result": {"success": "old writer"},
         "strict": False})
    out["message_echo_oneway"] = (
        oneway_call_bytes("fire and forget", 9),
        {"name": "echo", "type": 4, "seqid": 9, "args": {"message": "fire and forget"}})
    return out


def frame_cases():
    """Whole OCTO frames: every flag combination, heartbeats, large and 64-bit sequence ids."""
    from thrift.Thrift import TApplicationException

    out = {}

    def request(name, seq, message, checksum=False, compression="none", serialization=1,
                trace=DORADO_TRACE, call_type=0, **kw):
        seqid = thrift_seqid(seq)
        header = request_header(seq, trace=trace, call_type=call_type, **kw)
        body = echo_call_bytes(message, seqid)
        out[name] = (
            octo_frame(serialize(struct_from_json(ttypes().Header, header)), body, checksum,
                       compression, serialization),
            {"kind": "octo", "header": header,
             "frame": frame_json(checksum, compression, serialization),
             "body": {"name": "echo", "type": 1, "seqid": seqid, "args": {"message": message}}})

    def response(name, seq, message, checksum=False, compression="none", status=0,
                 exc=None, exc_json=None, local_ctx=None, status_message=None):
        seqid = thrift_seqid(seq)
        header = response_header(seq, status=status, message=status_message, local_ctx=local_ctx)
        body = processor_answer(echo_call_bytes(message, seqid), EchoHandler(exc))
        if exc is None:
            body_json = {"name": "echo", "type": 2, "seqid": seqid, "result": {"success": message}}
        else:
            body_json = {"name": "echo", "type": 3, "seqid": seqid, "exception": exc_json}
        out[name] = (
            octo_frame(serialize(struct_from_json(ttypes().Header, header)), body, checksum,
                       compression),
            {"kind": "octo", "header": header, "frame": frame_json(checksum, compression, 1),
             "body": body_json})

    def heartbeat(name, header, checksum=False, compression="none"):
        out[name] = (
            octo_frame(serialize(struct_from_json(ttypes().Header, header)), b"", checksum,
                       compression),
            {"kind": "octo", "header": header, "frame": frame_json(checksum, compression, 1),
             "body": None})

    for checksum in (False, True):
        for compression in ("none", "gzip", "snappy"):
            tag = compression + ("_checksum" if checksum else "")
            request("frame_request_%s_1k" % tag, 1000 + len(out), ECHO_1K, checksum, compression)
            response("frame_response_%s_1k" % tag, 2000 + len(out), ECHO_1K, checksum,
                     compression)
            request("frame_request_%s_64k" % tag, 3000 + len(out), ECHO_64K, checksum,
                    compression)
            heartbeat("frame_normal_heartbeat_request_%s" % tag,
                      request_header(4000 + len(out), message_type=1, trace=DORADO_TRACE),
                      checksum, compression)
    request("frame_request_serialization_2", 5000, "s2", serialization=2)
    request("frame_request_seq_above_2_32", 2**32 + 77, "seq", checksum=True)
    request("frame_request_seq_negative", -(2**33) - 3, "neg", compression="snappy")
    request("frame_request_unicode_everywhere", 5001, ECHO_UNICODE, compression="gzip",
            trace={"clientAppkey": "appkey-🚀", "traceId": "追踪", "debug": True},
            global_ctx={"键": "值"}, local_ctx={"ключ": "значение"}, service="服务.Echo")
    request("frame_request_oneway", 5002, "one way", call_type=1)
    request("frame_request_empty_string", 5003, "", checksum=True, compression="snappy")
    response("frame_response_seq_above_2_32", 2**32 + 77, "seq", checksum=True)
    response("frame_response_application_exception", 5004, "x", status=1,
             exc=TApplicationException(TApplicationException.UNKNOWN,
                                       "java.lang.IllegalStateException:bad"),
             exc_json={"message": "java.lang.IllegalStateException:bad", "type": 0},
             status_message="java.lang.IllegalStateException:bad")
    response("frame_response_runtime_exception_gzip_checksum", 5005, "x", checksum=True,
             compression="gzip", status=2, exc=RuntimeError("boom"),
             exc_json={"message": "Internal error", "type": 6}, status_message="boom")
    response("frame_response_local_context", 5006, "ctx", local_ctx={"server": "octo-✓"})
    heartbeat("frame_normal_heartbeat_response", response_header(6000, message_type=1))
    heartbeat("frame_scanner_heartbeat_request", request_header(6001, message_type=2),
              checksum=True)
    heartbeat("frame_scanner_heartbeat_response",
              dict(response_header(6002, message_type=2),
                   heartbeatInfo={"appkey": "com.meituan.octo.xcheck.server",
                                  "sendTime": 1763788800123, "status": 2,
                                  "loadInfo": {"averageLoad": 0.75, "threadNum": 2,
                                               "methodQpsMap": {"echo": 12.5}}}),
              compression="snappy")
    return out


def invalid_frame_cases():
    """OCTO frames a decoder must refuse (PROTOCOL.md §2)."""
    header = request_header(1, trace=DORADO_TRACE)
    hb = serialize(struct_from_json(ttypes().Header, header))
    body = echo_call_bytes("x", 1)
    out = {}

    good = bytearray(octo_frame(hb, body, checksum=True))
    good[-1] ^= 0x01
    out["frame_reject_checksum_mismatch"] = (bytes(good), "Adler-32 trailer does not match", "checksum")
    good = bytearray(octo_frame(hb, body, checksum=True, compression="snappy"))
    good[len(good) // 2] ^= 0x10
    out["frame_reject_checksum_mismatch_compressed_payload"] = (
        bytes(good), "a compressed payload byte changed after the Adler-32 was computed",
        "checksum")
    plain = bytearray(octo_frame(hb, body))
    plain[8:10] = struct.pack(">h", len(hb) + len(body) + 1)
    out["frame_reject_header_length_beyond_payload"] = (
        bytes(plain), "header_length exceeds the decompressed length", "header_length")
    plain = bytearray(octo_frame(hb, body, compression="snappy"))
    plain[8:10] = struct.pack(">h", len(hb) + len(body) + 1)
    out["frame_reject_header_length_beyond_decompressed_payload"] = (
        bytes(plain), "header_length exceeds the Snappy-decompressed length", "header_length")
    out["frame_reject_total_length_below_2"] = (
        MAGIC + bytes([0, 1]) + struct.pack(">i", 1) + b"\x00", "total_length 1 < 2", "total_length")
    out["frame_reject_total_length_below_6_with_checksum"] = (
        MAGIC + bytes([0, 0x81]) + struct.pack(">ih", 5, 0) + b"\x00\x00\x00",
        "total_length 5 < 6 with the checksum flag", "total_length")
    out["frame_reject_gzip_garbage"] = (
        MAGIC + bytes([0, 0x41]) + struct.pack(">ih", 2 + 8, 0) + b"notgzip!",
        "gzip flag but the payload is not gzip", "gzip")
    out["frame_reject_snappy_garbage"] = (
        MAGIC + bytes([0, 0x21]) + struct.pack(">ih", 2 + 4, 0) + b"\xff\xff\xff\xff",
        "Snappy flag but the payload is not a valid Snappy block", "snappy")
    out["frame_reject_header_missing_required_field"] = (
        octo_frame(serialize(struct_from_json(ttypes().Header,
                                              {"responseInfo": {"sequenceId": 1}})), b""),
        "the header's ResponseInfo lacks status (required)",
        "missing_required_field:ResponseInfo:2")
    return out


def thrift_framed_cases():
    """Apache Thrift framed transport (PROTOCOL.md §1): TFramedTransport over a memory buffer."""
    from thrift.transport import TTransport

    def framed(message_bytes):
        buf = TTransport.TMemoryBuffer()
        t = TTransport.TFramedTransport(buf)
        t.write(message_bytes)
        t.flush()
        return buf.getvalue()

    out = {}
    for name, message, seqid in (("thrift_framed_echo_call_1k", ECHO_1K, 1),
                                 ("thrift_framed_echo_call_unicode", ECHO_UNICODE, -3),
                                 ("thrift_framed_echo_call_64k", ECHO_64K, 2**31 - 1)):
        out[name] = (framed(echo_call_bytes(message, seqid)),
                     {"name": "echo", "type": 1, "seqid": seqid, "args": {"message": message}})
    out["thrift_framed_echo_reply_1k"] = (
        framed(processor_answer(echo_call_bytes(ECHO_1K, 11), EchoHandler())),
        {"name": "echo", "type": 2, "seqid": 11, "result": {"success": ECHO_1K}})
    out["thrift_framed_exception_unknown_method"] = (
        framed(processor_answer(raw_call_bytes("nope", 12, "x"), EchoHandler())),
        {"name": "nope", "type": 3, "seqid": 12,
         "exception": {"message": "Unknown function nope", "type": 1}})
    return out


def ttypes():
    import octo_idl.ttypes

    return octo_idl.ttypes


def frame_json(checksum, compression, serialization):
    return {"version": 0, "checksum": checksum, "compression": compression,
            "serialization": serialization}


def write_case(outdir, name, data, meta):
    with open(os.path.join(outdir, name + ".bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(outdir, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1, allow_nan=False)


def generate(outdir):
    from octo_idl import ttypes as t

    os.makedirs(outdir, exist_ok=True)
    count = 0
    for name, header in header_cases().items():
        obj = struct_from_json(t.Header, header)
        validate_tree(obj)
        data = serialize(obj)
        check_reads_back(t.Header, data, header)
        write_case(outdir, name, data, {"kind": "header", "expect": "ok", "header": header})
        count += 1
    for name, (newer, known) in newer_header_cases().items():
        # Not read back here: Apache Thrift for Python skips an unknown `binary` field through
        # readString(), which insists on UTF-8, so it cannot skip `token` (octo must).
        data = serialize(newer_struct_from_json(newer))
        write_case(outdir, name, data, {"kind": "header", "expect": "ok", "header": known})
        count += 1
    for name, (retyped, known) in retyped_header_cases().items():
        data = serialize(struct_from_json(newer_ttypes().RetypedHeader, retyped))
        check_reads_back(t.Header, data, known)
        write_case(outdir, name, data, {"kind": "header", "expect": "ok", "header": known})
        count += 1
    for name, (header, why, reason) in invalid_header_cases().items():
        obj = struct_from_json(t.Header, header)
        write_case(outdir, name, serialize(obj),
                   {"kind": "header", "expect": "error", "why": why, "reason": reason})
        count += 1
    for name, (data, body) in message_cases().items():
        strict = body.pop("strict", True)
        errors = check_message(data, body, strict=strict)
        if errors:
            raise AssertionError("generate: %s does not read back: %s" % (name, errors))
        meta = {"kind": "message", "expect": "ok", "body": body}
        if not strict:
            meta["strict"] = False
        write_case(outdir, name, data, meta)
        count += 1
    for name, (data, meta) in frame_cases().items():
        errors = check_octo(data, meta)
        if errors:
            raise AssertionError("generate: %s does not read back: %s" % (name, errors))
        meta["expect"] = "ok"
        write_case(outdir, name, data, meta)
        count += 1
    for name, (data, why, reason) in invalid_frame_cases().items():
        write_case(outdir, name, data,
                   {"kind": "octo", "expect": "error", "why": why, "reason": reason})
        count += 1
    for name, (data, body) in thrift_framed_cases().items():
        meta = {"kind": "thrift_framed", "expect": "ok", "body": body}
        if check_thrift_framed(data, meta):
            raise AssertionError("generate: %s does not read back" % name)
        write_case(outdir, name, data, meta)
        count += 1
    print("generated %d cases" % count)


def check_reads_back(cls, data, expected):
    errors = check_header(data, expected)
    if errors:
        raise AssertionError("generate: header does not read back: %s" % errors)


# ---------------------------------------------------------------------------------------------
# verify


def diff(path, expected, actual, errors):
    """Collects every difference between two JSON-like values (floats compared bit for bit)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual)):
            if k not in actual:
                errors.append("%s.%s: expected %r, absent" % (path, k, expected[k]))
            elif k not in expected:
                errors.append("%s.%s: unexpected %r" % (path, k, actual[k]))
            else:
                diff("%s.%s" % (path, k), expected[k], actual[k], errors)
    elif isinstance(expected, float) or isinstance(actual, float):
        same = (isinstance(expected, (int, float)) and isinstance(actual, (int, float))
                and not isinstance(expected, bool) and not isinstance(actual, bool)
                and struct.pack(">d", float(expected)) == struct.pack(">d", float(actual)))
        if not same:
            errors.append("%s: expected %r, got %r" % (path, expected, actual))
    elif type(expected) is not type(actual) or expected != actual:
        errors.append("%s: expected %r, got %r" % (path, expected, actual))


def header_to_json(obj):
    h = struct_to_json(obj)
    return h


def readers():
    """Apache Thrift's two TBinaryProtocol readers: the Python one and, where the `thrift` package
    built it, the C extension (fastbinary) that TBinaryProtocolAccelerated uses for structs."""
    from thrift.protocol import TBinaryProtocol

    out = [("", TBinaryProtocol.TBinaryProtocol)]
    try:
        from thrift.protocol import fastbinary  # noqa: F401

        out.append(("[fastbinary] ", lambda trans, **kw: TBinaryProtocol.TBinaryProtocolAccelerated(
            trans, fallback=False, **kw)))
    except ImportError:
        print("thrift_peer: thrift.protocol.fastbinary is not built; pure-Python reader only",
              file=sys.stderr)
    return out


def check_header(data, expected):
    """Decodes a header with the generated class; the struct must end exactly at len(data)."""
    from octo_idl import ttypes as t
    from thrift.transport import TTransport

    errors = []
    expected = dict(expected)
    # IDL default: a Header without messageType reads as messageType 0 in Apache Thrift.
    expected.setdefault("messageType", 0)
    for tag, protocol in readers():
        buf = TTransport.TMemoryBuffer(data)
        obj = t.Header()
        try:
            obj.read(protocol(buf, strictRead=True))
            validate_tree(obj)
        except Exception as e:  # any Thrift decode failure is a finding, reported as such
            errors.append("%sheader: Apache Thrift cannot decode it: %s: %s"
                          % (tag, type(e).__name__, e))
            continue
        rest = len(data) - buf._buffer.tell()
        if rest:
            errors.append("%sheader: %d bytes after the Header struct's STOP" % (tag, rest))
        diff(tag + "header", expected, header_to_json(obj), errors)
    return errors


def check_message(data, expected, strict=True):
    """Decodes one TBinaryProtocol message with the generated Echo structs, with each reader.
    `strict`: the message header must be the strict form (what PROTOCOL.md §4 asks of octo)."""
    errors = []
    for tag, protocol in readers():
        errors += ["%s%s" % (tag, e) for e in check_message_with(protocol, data, expected, strict)]
    return errors


def check_message_with(protocol, data, expected, strict):
    from octo_idl.echo import Echo
    from thrift.Thrift import TApplicationException, TMessageType
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer(data)
    p = protocol(buf, strictRead=strict)
    actual = {}
    try:
        name, mtype, seqid = p.readMessageBegin()
        actual.update(name=name, type=mtype, seqid=seqid)
        if mtype in (TMessageType.CALL, TMessageType.ONEWAY):
            args = Echo.echo_args()
            args.read(p)
            actual["args"] = struct_to_json(args)
        elif mtype == TMessageType.REPLY:
            result = Echo.echo_result()
            result.read(p)
            actual["result"] = struct_to_json(result)
        elif mtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(p)
            actual["exception"] = {"message": x.message, "type": x.type}
        p.readMessageEnd()
    except Exception as e:
        return ["body: Apache Thrift cannot decode it: %s: %s" % (type(e).__name__, e)]
    errors = []
    rest = len(data) - buf._buffer.tell()
    if rest:
        errors.append("body: %d bytes after the message" % rest)
    diff("body", expected, actual, errors)
    if not errors and actual["type"] in (TMessageType.REPLY, TMessageType.EXCEPTION):
        errors += check_client_receives(protocol, data, expected)
    return errors


def check_client_receives(protocol, data, expected):
    """The generated client's recv_echo must return the reply or raise the exception."""
    from octo_idl.echo import Echo
    from thrift.Thrift import TApplicationException
    from thrift.transport import TTransport

    client = Echo.Client(protocol(TTransport.TMemoryBuffer(data)))
    try:
        got = client.recv_echo()
    except TApplicationException as x:
        if "exception" in expected:
            return []
        if expected.get("result") == {} and x.type == TApplicationException.MISSING_RESULT:
            return []
        return ["body: Echo.Client.recv_echo raised %r" % x]
    if "result" in expected and got == expected["result"].get("success"):
        return []
    return ["body: Echo.Client.recv_echo returned %r" % (got,)]


def check_octo(data, meta):
    """Parses an OCTO frame per PROTOCOL.md §2 and decodes its header and body with Thrift."""
    import cramjam

    errors = []
    if len(data) < 10 or data[:2] != MAGIC:
        return ["frame: no OCTO magic/prefix (%d bytes)" % len(data)]
    version, flags = data[2], data[3]
    total, header_len = struct.unpack(">ih", data[4:10])
    fexp = meta["frame"]
    checksum = bool(flags & FLAG_CHECKSUM)
    compression = {0: "none", FLAG_GZIP: "gzip", FLAG_SNAPPY: "snappy"}.get(
        flags & (FLAG_GZIP | FLAG_SNAPPY), "gzip+snappy")
    actual_frame = {"version": version, "checksum": checksum, "compression": compression,
                    "serialization": flags & 0x03}
    diff("frame", fexp, actual_frame, errors)
    if flags & 0x1C:
        errors.append("frame: reserved protocol bits set: 0x%02x" % flags)
    if total != len(data) - 8:
        errors.append("frame: total_length %d but the frame has %d bytes after offset 8"
                      % (total, len(data) - 8))
        return errors
    end = len(data) - (4 if checksum else 0)
    if checksum:
        want = struct.unpack(">I", data[end:])[0]
        got = zlib.adler32(data[:end]) & 0xFFFFFFFF
        if want != got:
            errors.append("frame: Adler-32 trailer 0x%08x, computed 0x%08x" % (want, got))
    payload = data[10:end]
    try:
        if compression == "gzip":
            d = zlib.decompressobj(wbits=31)
            payload = d.decompress(payload, MAX_FRAME)
            if not d.eof or d.unused_data or d.unconsumed_tail:
                errors.append("frame: gzip payload is not exactly one complete member")
        elif compression == "snappy":
            payload = bytes(cramjam.snappy.decompress_raw(payload))
    except Exception as e:
        return errors + ["frame: %s payload does not decompress: %s" % (compression, e)]
    if header_len < 0 or header_len > len(payload):
        return errors + ["frame: header_length %d, payload %d bytes" % (header_len, len(payload))]
    errors += check_header(payload[:header_len], meta["header"])
    body = payload[header_len:]
    if meta["body"] is None:
        if body:
            errors.append("body: expected none, got %d bytes" % len(body))
    else:
        errors += check_message(body, meta["body"])
    return errors


def check_thrift_framed(data, meta):
    from thrift.transport import TTransport

    if len(data) < 4:
        return ["thrift_framed: %d bytes" % len(data)]
    (length,) = struct.unpack(">i", data[:4])
    if length != len(data) - 4:
        return ["thrift_framed: length prefix %d, %d bytes follow" % (length, len(data) - 4)]
    t = TTransport.TFramedTransport(TTransport.TMemoryBuffer(data))
    t.readFrame()
    return check_message(t.read(length), meta["body"])


def verify(indir):
    names = sorted(f[:-5] for f in os.listdir(indir) if f.endswith(".json"))
    if not names:
        print("verify: no cases in %s" % indir, file=sys.stderr)
        return 1
    failures = []
    for name in names:
        with open(os.path.join(indir, name + ".json"), encoding="utf-8") as f:
            meta = json.load(f)
        with open(os.path.join(indir, name + ".bin"), "rb") as f:
            data = f.read()
        kind = meta["kind"]
        if meta.get("expect", "ok") != "ok":
            failures.append("%s: verify only takes valid encodings" % name)
            continue
        if kind == "header":
            errors = check_header(data, meta["header"])
        elif kind == "message":
            errors = check_message(data, meta["body"])
        elif kind == "octo":
            errors = check_octo(data, meta)
        elif kind == "thrift_framed":
            errors = check_thrift_framed(data, meta)
        else:
            errors = ["unknown kind %r" % kind]
        failures += ["%s: %s" % (name, e) for e in errors]
    for line in failures:
        print("MISMATCH " + line, file=sys.stderr)
    if failures:
        print("verify: %d mismatches in %d cases" % (len(failures), len(names)), file=sys.stderr)
        return 1
    print("verified %d cases" % len(names))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["generate", "verify"])
    ap.add_argument("dir")
    ap.add_argument("--gen", default=os.environ.get("OCTO_XCHECK_GEN"),
                    help="directory holding the `thrift --gen py` output")
    args = ap.parse_args()
    if not args.gen:
        ap.error("--gen or $OCTO_XCHECK_GEN is required")
    load_modules(args.gen)
    # The generated Echo.Processor logs every handler exception; those are cases, not faults.
    logging.disable(logging.CRITICAL)
    if args.mode == "generate":
        generate(args.dir)
        return 0
    return verify(args.dir)


if __name__ == "__main__":
    sys.exit(main())
