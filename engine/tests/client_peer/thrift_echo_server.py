#!/usr/bin/env python3
"""Apache Thrift's Echo server for the client interop test (engine/tests/client_thrift.rs).

    thrift_echo_server.py --gen DIR

Serves `service Echo { string echo(1: string message) }` (idl/echo.thrift, generated into DIR
with `thrift --gen py`) with Apache Thrift's own TThreadedServer over TServerSocket +
TFramedTransport + TBinaryProtocol on 127.0.0.1, on a port the kernel picks; prints
`port N` once listening. `echo("sleep:MS")` sleeps MS milliseconds before answering (a call
that is in flight when the test kills this process). Exits by itself after 120 s; exits 3 if
Apache Thrift is missing.
"""

import argparse
import os
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.gen)
    try:
        from thrift.protocol import TBinaryProtocol
        from thrift.server import TServer
        from thrift.transport import TSocket, TTransport
        from octo_idl.echo import Echo
    except ImportError as e:
        print("thrift_echo_server: %s: run scripts/install-deps.sh" % e, file=sys.stderr)
        sys.exit(3)

    class Handler:
        def echo(self, message):
            if message.startswith("sleep:"):
                time.sleep(int(message[6:]) / 1000.0)
            return message

    transport = TSocket.TServerSocket(host="127.0.0.1", port=0)
    transport.listen()
    port = transport.handle.getsockname()[1]
    transport.listen = lambda: None  # already listening: serve() must not bind again
    server = TServer.TThreadedServer(
        Echo.Processor(Handler()),
        transport,
        TTransport.TFramedTransportFactory(),
        TBinaryProtocol.TBinaryProtocolFactory(),
        daemon=True,
    )
    threading.Timer(120.0, lambda: os._exit(0)).start()
    print("port %d" % port, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
