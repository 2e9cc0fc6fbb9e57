"""Smoke checks of the bench peers, driven by real Apache Thrift Python clients.

Each check is one behaviour of a peer, named for it. The Thrift C++ peer is called through the
generated Echo client over TFramedTransport; the Netty peer through OCTO frames built here from
the generated Header and Echo args (TBinaryProtocol), and with Dorado's golden frames from
shared/vectors/dorado. A short bounded load (64 connections, a fixed number of calls each, a time
cap) checks that neither peer falls over. Prints one line per check and a closing
"N passed, N failed" line; exits non-zero on any failure.

Usage: smoke_client.py --gen-py DIR --vectors DIR [--netty PORT] [--thrift-cpp PORT]
                       [--load-connections 64] [--load-calls 200] [--load-seconds 60]
"""

import argparse
import gzip
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
import zlib

HOST = "127.0.0.1"
SERVICE = "com.meituan.dorado.test.thrift.api.Echo"
FLAG_CHECKSUM, FLAG_GZIP, FLAG_SNAPPY = 0x80, 0x40, 0x20
IO_TIMEOUT = 30.0

args = None
Header = RequestInfo = TraceInfo = Echo = None
TBinaryProtocol = TMemoryBuffer = TMessageType = TApplicationException = None
TSocket = TTransport = serialize = deserialize = TBinaryProtocolFactory = cramjam = None


def load_modules():
    global Header, RequestInfo, TraceInfo, Echo, TBinaryProtocol, TMemoryBuffer, TMessageType
    global TApplicationException, TSocket, TTransport, serialize, deserialize
    global TBinaryProtocolFactory, cramjam
    sys.path.insert(0, args.gen_py)
    import cramjam as _cramjam
    from octo_idl.echo import Echo as _Echo
    from octo_idl.ttypes import Header as _H, RequestInfo as _RI, TraceInfo as _TI
    from thrift.protocol import TBinaryProtocol as _TBP
    from thrift.Thrift import TApplicationException as _TAE, TMessageType as _TMT
    from thrift.transport import TSocket as _TS, TTransport as _TT
    from thrift.TSerialization import deserialize as _de, serialize as _se

    cramjam = _cramjam
    Echo, Header, RequestInfo, TraceInfo = _Echo, _H, _RI, _TI
    TBinaryProtocol, TBinaryProtocolFactory = _TBP.TBinaryProtocol, _TBP.TBinaryProtocolFactory
    TMemoryBuffer, TMessageType, TApplicationException = _TT.TMemoryBuffer, _TMT, _TAE
    TSocket, TTransport, serialize, deserialize = _TS, _TT, _se, _de


# ---------------------------------------------------------------- OCTO frames (PROTOCOL.md §2-4)


class Frame:
    def __init__(self, protocol, header_length, header, body):
        self.protocol, self.header_length, self.header, self.body = (
            protocol, header_length, header, body)


def encode_frame(header, body, flags=0, serialization=1):
    header_bytes = serialize(header, TBinaryProtocolFactory())
    payload = header_bytes + body
    if flags & FLAG_GZIP:
        payload = gzip.compress(payload)
    elif flags & FLAG_SNAPPY:
        payload = bytes(cramjam.snappy.compress_raw(payload))
    checksum = bool(flags & FLAG_CHECKSUM)
    protocol = flags | serialization
    total = 2 + len(payload) + (4 if checksum else 0)
    frame = struct.pack(">HBBih", 0xABBA, 0, protocol, total, len(header_bytes)) + payload
    if checksum:
        frame += struct.pack(">I", zlib.adler32(frame) & 0xFFFFFFFF)
    return frame


def decode_frame(frame):
    magic, version, protocol, total, header_length = struct.unpack(">HBBih", frame[:10])
    assert magic == 0xABBA, "magic %x" % magic
    assert version == 0, "version %d" % version
    assert len(frame) == 8 + total, "total_length %d for %d bytes" % (total, len(frame))
    payload_end = len(frame)
    if protocol & FLAG_CHECKSUM:
        payload_end -= 4
        (sent,) = struct.unpack(">I", frame[payload_end:])
        assert sent == zlib.adler32(frame[:payload_end]) & 0xFFFFFFFF, "bad Adler-32"
    payload = frame[10:payload_end]
    if protocol & FLAG_GZIP:
        payload = gzip.decompress(payload)
    elif protocol & FLAG_SNAPPY:
        payload = bytes(cramjam.snappy.decompress_raw(payload))
    header = deserialize(Header(), payload[:header_length], TBinaryProtocolFactory())
    return Frame(protocol, header_length, header, payload[header_length:])


def request_header(seq, message_type=0, call_type=0):
    return Header(
        messageType=message_type,
        requestInfo=RequestInfo(serviceName=SERVICE, sequenceId=seq, callType=call_type,
                                timeout=1000),
        traceInfo=TraceInfo(clientAppkey="octo.bench.smoke", clientIp="127.0.0.1"))


def thrift_seqid(seq):
    low = seq & 0xFFFFFFFF
    return low - (1 << 32) if low >= 1 << 31 else low


def call_body(message, seqid, method="echo"):
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.writeMessageBegin(method, TMessageType.CALL, seqid)
    Echo.echo_args(message=message).write(proto)
    proto.writeMessageEnd()
    return buf.getvalue()


def parse_reply(body):
    """(name, type, seqid, value): value is the echoed string or a TApplicationException."""
    proto = TBinaryProtocol(TMemoryBuffer(body))
    name, mtype, seqid = proto.readMessageBegin()
    if mtype == TMessageType.EXCEPTION:
        value = TApplicationException()
        value.read(proto)
    else:
        result = Echo.echo_result()
        result.read(proto)
        value = result.success
    return name, mtype, seqid, value


def echo_request(message, seq, flags=0, call_type=0):
    return encode_frame(request_header(seq, call_type=call_type),
                        call_body(message, thrift_seqid(seq)), flags)


def recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed after %d of %d bytes" % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_octo_frame(sock):
    prefix = recv_exact(sock, 8)
    (total,) = struct.unpack(">i", prefix[4:8])
    return prefix + recv_exact(sock, total)


def connect(port):
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def octo_roundtrip(port, frame_bytes):
    with connect(port) as sock:
        sock.sendall(frame_bytes)
        return read_octo_frame(sock)


def assert_echo_response(raw, seq, message, protocol=0x01):
    frame = decode_frame(raw)
    assert frame.protocol == protocol, "protocol byte %#x, want %#x" % (frame.protocol, protocol)
    header = frame.header
    assert header.messageType == 0, header
    assert header.requestInfo is None and header.traceInfo is None, header
    assert header.responseInfo.sequenceId == seq, header
    assert header.responseInfo.status == 0, header
    name, mtype, seqid, value = parse_reply(frame.body)
    assert (name, mtype, seqid) == ("echo", TMessageType.REPLY, thrift_seqid(seq)), (
        name, mtype, seqid)
    assert value == message, "echoed %r..., want %r..." % (str(value)[:40], message[:40])


def vector(name):
    with open(os.path.join(args.vectors, name), "rb") as f:
        return f.read()


def vector_index():
    with open(os.path.join(args.vectors, "index.json")) as f:
        return {v["name"]: v for v in json.load(f)["vectors"]}


def vector_message(entry):
    arg = entry["body"]["args_messge"]
    if "value" in arg:
        return arg["value"]
    pattern = arg["pattern"]
    unit, n = pattern["unit"], pattern["repeat_then_truncate_to_chars"]
    return (unit * (n // len(unit) + 1))[:n]


# ---------------------------------------------------------------- checks of the Netty OCTO peer


def netty_answers_golden_plain_request_with_dorados_exact_response_bytes(port):
    got = octo_roundtrip(port, vector("request_plain_1k.bin"))
    assert got == vector("response_plain_1k.bin"), "response differs from response_plain_1k.bin"


def netty_answers_golden_checksum_request_with_checksummed_echo(port):
    entry = vector_index()["request_checksum_1k"]
    raw = octo_roundtrip(port, vector("request_checksum_1k.bin"))
    seq = entry["header"]["requestInfo"]["sequenceId"]
    assert_echo_response(raw, seq, vector_message(entry), protocol=0x81)


def netty_answers_golden_request_with_sequence_id_above_2_32_exactly(port):
    got = octo_roundtrip(port, vector("request_seq_above_2_32.bin"))
    assert got == vector("response_seq_above_2_32.bin")


def netty_answers_golden_gzip_request_with_gzip_echo(port):
    entry = vector_index()["request_gzip_1k"]
    raw = octo_roundtrip(port, vector("request_gzip_1k.bin"))
    assert_echo_response(raw, entry["header"]["requestInfo"]["sequenceId"],
                         vector_message(entry), protocol=0x41)


def netty_answers_golden_snappy_request_like_dorado_after_decompression(port):
    got = decode_frame(octo_roundtrip(port, vector("request_snappy_1k.bin")))
    want = decode_frame(vector("response_snappy_1k.bin"))
    assert got.protocol == want.protocol == 0x21
    assert got.header == want.header and got.body == want.body


def netty_answers_golden_heartbeat_with_dorados_clean_heartbeat_response(port):
    got = octo_roundtrip(port, vector("heartbeat_request.bin"))
    assert got == vector("heartbeat_response.bin")


def netty_answers_golden_scanner_heartbeat_with_alive_heartbeat_info(port):
    frame = decode_frame(octo_roundtrip(port, vector("scanner_heartbeat_request.bin")))
    header = frame.header
    assert header.messageType == 2 and frame.body == b"", header
    assert header.responseInfo.sequenceId == 7 and header.responseInfo.status == 0, header
    assert header.heartbeatInfo.status == 2 and header.heartbeatInfo.sendTime > 0, header


def netty_echoes_golden_1mib_request(port):
    entry = vector_index()["request_large_1mib"]
    raw = octo_roundtrip(port, vector("request_large_1mib.bin"))
    assert_echo_response(raw, entry["header"]["requestInfo"]["sequenceId"], vector_message(entry))


def netty_echoes_golden_request_with_utf8_contexts(port):
    entry = vector_index()["request_trace_contexts_utf8"]
    raw = octo_roundtrip(port, vector("request_trace_contexts_utf8.bin"))
    assert_echo_response(raw, entry["header"]["requestInfo"]["sequenceId"], vector_message(entry))


def netty_echoes_python_built_frames_with_every_flag_combination(port):
    message = "héllo, 美团 " * 50
    for i, flags in enumerate([0, FLAG_CHECKSUM, FLAG_GZIP, FLAG_GZIP | FLAG_CHECKSUM,
                               FLAG_SNAPPY, FLAG_SNAPPY | FLAG_CHECKSUM]):
        seq = 1000 + i
        raw = octo_roundtrip(port, echo_request(message, seq, flags))
        assert_echo_response(raw, seq, message, protocol=flags | 1)


def netty_echoes_empty_string(port):
    assert_echo_response(octo_roundtrip(port, echo_request("", 5)), 5, "")


def netty_answers_pipelined_requests_in_order(port):
    count = 100
    with connect(port) as sock:
        sock.sendall(b"".join(echo_request("msg-%d" % i, 2000 + i) for i in range(count)))
        for i in range(count):
            assert_echo_response(read_octo_frame(sock), 2000 + i, "msg-%d" % i)


def netty_sends_nothing_for_one_way_call(port):
    with connect(port) as sock:
        sock.sendall(echo_request("one-way", 3000, call_type=1) + echo_request("two-way", 3001))
        assert_echo_response(read_octo_frame(sock), 3001, "two-way")


def netty_answers_unknown_method_with_service_exception(port):
    frame_bytes = encode_frame(request_header(4000), call_body("x", 4000, method="nosuch"))
    frame = decode_frame(octo_roundtrip(port, frame_bytes))
    assert frame.header.responseInfo.sequenceId == 4000
    assert frame.header.responseInfo.status == 8, frame.header
    name, mtype, seqid, value = parse_reply(frame.body)
    assert mtype == TMessageType.EXCEPTION and seqid == 4000, (name, mtype, seqid)
    assert value.type == TApplicationException.UNKNOWN_METHOD, value


def netty_closes_connection_on_bad_checksum_and_keeps_serving(port):
    frame_bytes = bytearray(echo_request("x", 5000, FLAG_CHECKSUM))
    frame_bytes[-1] ^= 0xFF
    with connect(port) as sock:
        sock.sendall(bytes(frame_bytes))
        assert sock.recv(1) == b"", "a frame with a bad checksum was answered"
    assert_echo_response(octo_roundtrip(port, echo_request("after", 5001)), 5001, "after")


def netty_closes_connection_on_oversized_frame(port):
    with connect(port) as sock:
        sock.sendall(struct.pack(">HBBih", 0xABBA, 0, 1, 0x7FFFFFF0, 0))
        assert sock.recv(1) == b"", "a frame announcing 2 GiB was not refused"


NETTY_CHECKS = [
    netty_answers_golden_plain_request_with_dorados_exact_response_bytes,
    netty_answers_golden_checksum_request_with_checksummed_echo,
    netty_answers_golden_request_with_sequence_id_above_2_32_exactly,
    netty_answers_golden_gzip_request_with_gzip_echo,
    netty_answers_golden_snappy_request_like_dorado_after_decompression,
    netty_answers_golden_heartbeat_with_dorados_clean_heartbeat_response,
    netty_answers_golden_scanner_heartbeat_with_alive_heartbeat_info,
    netty_echoes_golden_1mib_request,
    netty_echoes_golden_request_with_utf8_contexts,
    netty_echoes_python_built_frames_with_every_flag_combination,
    netty_echoes_empty_string,
    netty_answers_pipelined_requests_in_order,
    netty_sends_nothing_for_one_way_call,
    netty_answers_unknown_method_with_service_exception,
    netty_closes_connection_on_bad_checksum_and_keeps_serving,
    netty_closes_connection_on_oversized_frame,
]


# ---------------------------------------------------------------- checks of the Thrift C++ peer


class ThriftEchoClient:
    def __init__(self, port):
        sock = TSocket.TSocket(HOST, port)
        sock.setTimeout(IO_TIMEOUT * 1000)
        self.transport = TTransport.TFramedTransport(sock)
        self.client = Echo.Client(TBinaryProtocol(self.transport))
        self.transport.open()

    def close(self):
        self.transport.close()


def with_thrift_client(port, fn):
    client = ThriftEchoClient(port)
    try:
        return fn(client.client)
    finally:
        client.close()


def thrift_cpp_echoes_strings_through_generated_client(port):
    def calls(client):
        for message in ["hello", "", "héllo, 美团 🚀", "x" * 1024, "y" * (1 << 20)]:
            got = client.echo(message)
            assert got == message, "echoed %r..., want %r..." % (got[:40], message[:40])
    with_thrift_client(port, calls)


def thrift_cpp_answers_golden_native_thrift_request_exactly(port):
    with connect(port) as sock:
        sock.sendall(vector("native_thrift_request_1k.bin"))
        (length,) = struct.unpack(">i", recv_exact(sock, 4))
        got = struct.pack(">i", length) + recv_exact(sock, length)
    assert got == vector("native_thrift_response_1k.bin")


def thrift_cpp_answers_unknown_method_with_application_exception(port):
    body = call_body("x", 9, method="nosuch")
    with connect(port) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (length,) = struct.unpack(">i", recv_exact(sock, 4))
        name, mtype, seqid, value = parse_reply(recv_exact(sock, length))
    assert mtype == TMessageType.EXCEPTION and seqid == 9, (name, mtype, seqid)
    assert value.type == TApplicationException.UNKNOWN_METHOD, value


THRIFT_CPP_CHECKS = [
    thrift_cpp_echoes_strings_through_generated_client,
    thrift_cpp_answers_golden_native_thrift_request_exactly,
    thrift_cpp_answers_unknown_method_with_application_exception,
]


# ---------------------------------------------------------------- bounded load


def run_load(name, port, connection_loop):
    """Runs connection_loop(port, index, deadline, stats) on N threads; fails on any error."""
    deadline = time.monotonic() + args.load_seconds
    stats = {"calls": 0, "errors": [], "cut_short": 0}
    lock = threading.Lock()

    def worker(index):
        done = 0
        try:
            done = connection_loop(port, index, deadline)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            with lock:
                stats["errors"].append("connection %d: %r" % (index, e))
        with lock:
            stats["calls"] += done
            if done < args.load_calls:
                stats["cut_short"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.load_connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print("  %s load: %d connections, %d calls in %.1f s (%.0f calls/s from one Python client; "
          "informational), %d connections stopped by the time cap"
          % (name, args.load_connections, stats["calls"], elapsed, stats["calls"] / elapsed,
             stats["cut_short"]))
    assert not stats["errors"], "; ".join(stats["errors"][:5])
    assert stats["calls"] >= args.load_connections, "some connections completed no call"


def netty_survives_64_connection_load(port):
    message = "L" * 1024

    def loop(port, index, deadline):
        done = 0
        with connect(port) as sock:
            for i in range(args.load_calls):
                if time.monotonic() > deadline:
                    break
                seq = (index << 32) + i
                sock.sendall(echo_request(message, seq))
                assert_echo_response(read_octo_frame(sock), seq, message)
                done += 1
        return done

    run_load("netty", port, loop)
    assert_echo_response(octo_roundtrip(port, echo_request("after load", 7)), 7, "after load")


def thrift_cpp_survives_64_connection_load(port):
    message = "L" * 1024

    def loop(port, index, deadline):
        client = ThriftEchoClient(port)
        done = 0
        try:
            for i in range(args.load_calls):
                if time.monotonic() > deadline:
                    break
                tagged = "%d:%d:%s" % (index, i, message)
                assert client.client.echo(tagged) == tagged
                done += 1
        finally:
            client.close()
        return done

    run_load("thrift-cpp", port, loop)
    assert with_thrift_client(port, lambda c: c.echo("after load")) == "after load"


# ---------------------------------------------------------------- runner


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen-py", required=True)
    parser.add_argument("--vectors", required=True)
    parser.add_argument("--netty", type=int)
    parser.add_argument("--thrift-cpp", type=int)
    parser.add_argument("--load-connections", type=int, default=64)
    parser.add_argument("--load-calls", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    args = parser.parse_args()
    load_modules()

    plan = []
    if args.netty:
        plan += [(c, args.netty) for c in NETTY_CHECKS + [netty_survives_64_connection_load]]
    if args.thrift_cpp:
        plan += [(c, args.thrift_cpp)
                 for c in THRIFT_CPP_CHECKS + [thrift_cpp_survives_64_connection_load]]
    passed = failed = 0
    for check, port in plan:
        try:
            check(port)
        except Exception:  # noqa: BLE001 - a failed check is reported, the others still run
            failed += 1
            print("FAIL %s" % check.__name__)
            traceback.print_exc(limit=3, file=sys.stdout)
        else:
            passed += 1
            print("ok   %s" % check.__name__)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
