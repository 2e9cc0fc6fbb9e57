#!/usr/bin/env python3
"""Apache Thrift's side of the server interop test (driven by engine/tests/server_thrift_interop.rs).

    thrift_client.py --gen DIR --port PORT native   a generated Echo.Client over TSocket +
                                                    TFramedTransport + TBinaryProtocol calls the
                                                    server's default service (native Thrift)
    thrift_client.py --gen DIR --port PORT octo     OCTO frames whose Header and Echo bodies are
                                                    written by Apache Thrift's generated classes
                                                    (checksum, gzip, Snappy, both heartbeats,
                                                    64-bit sequence ids, 200 pipelined requests,
                                                    unknown header fields, unknown service,
                                                    one-way) are answered correctly

DIR holds `thrift --gen py` output of idl/octo.thrift and idl/echo.thrift. Prints one line per
check; exits 1 on the first wrong answer, 3 if Apache Thrift or cramjam is missing.
"""

import argparse
import gzip
import socket
import struct
import sys
import zlib

FLAG_CHECKSUM = 0x80
FLAG_GZIP = 0x40
FLAG_SNAPPY = 0x20


def load(gen_dir):
    sys.path.insert(0, gen_dir)
    try:
        import cramjam  # noqa: F401
        import thrift  # noqa: F401
        import octo_idl.echo.Echo  # noqa: F401
        import octo_idl.ttypes  # noqa: F401
    except ImportError as e:
        print("thrift_client: %s: run scripts/install-deps.sh" % e, file=sys.stderr)
        sys.exit(3)


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


# --- native Thrift --------------------------------------------------------------------------


def native(port):
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException, TMessageType
    from thrift.transport import TSocket, TTransport
    from octo_idl.echo import Echo

    sock = TSocket.TSocket("127.0.0.1", port)
    sock.setTimeout(10000)
    trans = TTransport.TFramedTransport(sock)
    proto = TBinaryProtocol.TBinaryProtocol(trans)
    client = Echo.Client(proto)
    trans.open()
    check(client.echo("hello") == "hello", "native Thrift echo of a short string")
    big = "x" * 1024
    check(client.echo(big) == big, "native Thrift echo of 1 KiB")
    uni = "h\u00e9llo \u4e16\u754c"
    check(client.echo(uni) == uni, "native Thrift echo of UTF-8")
    for i in range(100):
        s = "call %d" % i
        if client.echo(s) != s:
            check(False, "100 sequential calls")
    check(True, "100 sequential calls on one connection")

    proto.writeMessageBegin("shout", TMessageType.CALL, 99)
    proto.writeStructBegin("shout_args")
    proto.writeFieldStop()
    proto.writeStructEnd()
    proto.writeMessageEnd()
    trans.flush()
    name, mtype, seqid = proto.readMessageBegin()
    x = TApplicationException()
    x.read(proto)
    proto.readMessageEnd()
    check(mtype == TMessageType.EXCEPTION and seqid == 99 and name == "shout",
          "an unknown method gets an EXCEPTION with its name and seqid")
    check(x.type == TApplicationException.UNKNOWN_METHOD, "... of type UNKNOWN_METHOD")
    check(client.echo("again") == "again", "the connection still works afterwards")
    trans.close()


# --- OCTO frames built with Apache Thrift ---------------------------------------------------


def serialize(obj):
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    buf = TTransport.TMemoryBuffer()
    obj.write(TBinaryProtocol.TBinaryProtocol(buf))
    return buf.getvalue()


def echo_call(seqid, message):
    """An echo CALL message exactly as the generated client writes it."""
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport
    from octo_idl.echo import Echo

    buf = TTransport.TMemoryBuffer()
    client = Echo.Client(TBinaryProtocol.TBinaryProtocol(buf))
    client._seqid = seqid
    client.send_echo(message)
    return buf.getvalue()


def request_header(service, seq, message_type=0, call_type=0):
    from octo_idl.ttypes import Header, RequestInfo, TraceInfo

    return Header(
        messageType=message_type,
        requestInfo=RequestInfo(serviceName=service, sequenceId=seq, callType=call_type, timeout=5000),
        traceInfo=TraceInfo(clientAppkey="octo.interop.python", clientIp="127.0.0.1"),
    )


def octo_frame(header_bytes, body, checksum=False, compression=None):
    payload = header_bytes + body
    flags = 1
    if checksum:
        flags |= FLAG_CHECKSUM
    if compression == "gzip":
        flags |= FLAG_GZIP
        payload = gzip.compress(payload)
    elif compression == "snappy":
        import cramjam

        flags |= FLAG_SNAPPY
        payload = bytes(cramjam.snappy.compress_raw(payload))
    total = 2 + len(payload) + (4 if checksum else 0)
    frame = b"\xab\xba" + bytes([0, flags]) + struct.pack(">ih", total, len(header_bytes)) + payload
    if checksum:
        frame += struct.pack(">I", zlib.adler32(frame) & 0xFFFFFFFF)
    return frame


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def octo(self):
        """Reads one OCTO answer; returns (flags, Header, body) after checking and decompressing."""
        from octo_idl.ttypes import Header
        from thrift.protocol import TBinaryProtocol
        from thrift.transport import TTransport

        prefix = self.exact(8)
        if prefix[:2] != b"\xab\xba":
            check(False, "answer starts with the OCTO magic")
        flags = prefix[3]
        total = struct.unpack(">i", prefix[4:8])[0]
        rest = self.exact(total)
        header_len = struct.unpack(">h", rest[:2])[0]
        if flags & FLAG_CHECKSUM:
            payload, carried = rest[2:-4], struct.unpack(">I", rest[-4:])[0]
            if zlib.adler32(prefix + rest[:-4]) & 0xFFFFFFFF != carried:
                check(False, "answer checksum")
        else:
            payload = rest[2:]
        if flags & FLAG_GZIP:
            payload = gzip.decompress(payload)
        elif flags & FLAG_SNAPPY:
            import cramjam

            payload = bytes(cramjam.snappy.decompress_raw(payload))
        header = Header()
        header.read(TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(payload[:header_len])))
        return flags, header, payload[header_len:]


def parse_reply(body):
    """('ok', seqid, result) or ('exc', seqid, TApplicationException)."""
    from octo_idl.echo import Echo
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException, TMessageType
    from thrift.transport import TTransport

    p = TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(body))
    _, mtype, seqid = p.readMessageBegin()
    if mtype == TMessageType.EXCEPTION:
        x = TApplicationException()
        x.read(p)
        return ("exc", seqid, x)
    r = Echo.echo_result()
    r.read(p)
    return ("ok", seqid, r.success)


def to_i32(seq):
    v = seq & 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def octo(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rd = Reader(sock)

    def call(seq, message, checksum=False, compression=None, service="Echo", header_bytes=None):
        hb = header_bytes if header_bytes is not None else serialize(request_header(service, seq))
        frame = octo_frame(hb, echo_call(to_i32(seq), message), checksum, compression)
        sock.sendall(frame)
        return frame[3], rd.octo()

    msg = "m" * 1024
    for checksum, compression in [(False, None), (True, None), (False, "gzip"), (False, "snappy"),
                                  (True, "gzip"), (True, "snappy")]:
        sent_flags, (flags, header, body) = call(11, msg, checksum, compression)
        what = "checksum=%s compression=%s" % (checksum, compression)
        check(flags == sent_flags, what + ": answer mirrors the protocol byte")
        check(header.responseInfo.sequenceId == 11 and header.responseInfo.status == 0, what + ": status 0, same sequenceId")
        check(parse_reply(body) == ("ok", 11, msg), what + ": echoed")

    for seq in [(1 << 32) + 5, (1 << 62) + 3, -7]:
        _, (_, header, body) = call(seq, "big seq")
        check(header.responseInfo.sequenceId == seq, "64-bit sequenceId %d answered whole" % seq)
        check(parse_reply(body)[1] == to_i32(seq), "... with the Thrift seqid its low 32 bits")

    for mtype in (1, 2):
        sock.sendall(octo_frame(serialize(request_header("Echo", 40 + mtype, message_type=mtype)), b""))
        _, header, body = rd.octo()
        check(header.messageType == mtype and header.responseInfo.sequenceId == 40 + mtype
              and header.responseInfo.status == 0 and body == b"",
              "heartbeat messageType %d answered with status 0 and no body" % mtype)
        if mtype == 2:
            check(header.heartbeatInfo is not None and header.heartbeatInfo.status == 2,
                  "scanner heartbeat answered with HeartbeatInfo ALIVE")

    batch = b"".join(
        octo_frame(serialize(request_header("Echo", 1000 + i)), echo_call(1000 + i, "p%d" % i)) for i in range(200))
    sock.sendall(batch)
    good = 0
    for i in range(200):
        _, header, body = rd.octo()
        if header.responseInfo.sequenceId == 1000 + i and parse_reply(body) == ("ok", 1000 + i, "p%d" % i):
            good += 1
    check(good == 200, "200 pipelined requests answered in order")

    hb = serialize(request_header("Echo", 77))
    string_field = b"\x0b" + struct.pack(">h", 42) + struct.pack(">i", 5) + b"newer"
    struct_field = b"\x0c" + struct.pack(">h", 43) + b"\x08" + struct.pack(">h", 1) + struct.pack(">i", 9) + b"\x00"
    list_field = b"\x0f" + struct.pack(">h", 44) + b"\x08" + struct.pack(">i", 2) + struct.pack(">ii", 1, 2)
    extended = hb[:-1] + string_field + struct_field + list_field + b"\x00"
    _, (_, header, body) = call(77, "unknown fields", header_bytes=extended)
    check(header.responseInfo.sequenceId == 77 and parse_reply(body) == ("ok", 77, "unknown fields"),
          "a header with unknown fields (string, struct, list) is answered")

    _, (_, header, body) = call(88, "x", service="NoSuchService")
    kind, seqid, x = parse_reply(body)
    check(header.responseInfo.status == 8, "an unknown service is answered with status 8")
    from thrift.Thrift import TApplicationException

    check(kind == "exc" and seqid == 88 and x.type == TApplicationException.UNKNOWN_METHOD,
          "... and a TApplicationException UNKNOWN_METHOD body")

    oneway = octo_frame(serialize(request_header("Echo", 90, call_type=1)), echo_call(90, "one-way"))
    sock.sendall(oneway + octo_frame(serialize(request_header("Echo", 91)), echo_call(91, "two-way")))
    _, header, body = rd.octo()
    check(header.responseInfo.sequenceId == 91, "a one-way (NoReply) call gets no answer")
    sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("mode", choices=["native", "octo"])
    a = ap.parse_args()
    load(a.gen)
    if a.mode == "native":
        native(a.port)
    else:
        octo(a.port)


if __name__ == "__main__":
    main()
