package com.meituan.octo.bench;

import com.meituan.octo.OctoRequest;
import com.meituan.octo.OctoServer;
import com.meituan.octo.Responder;
import com.meituan.octo.Status;
import com.meituan.octo.ThriftMessages;
import java.nio.ByteBuffer;
import com.meituan.octo.thrift.ThriftService;
import java.util.concurrent.CountDownLatch;
import octo.idl.Echo;

/**
 * The Java Echo server of the benchmarks: the generated {@code Echo.Processor} on octo through
 * {@link ThriftService}, as a Dorado user would run it.
 * Usage: {@code EchoServerMain PORT [SHARDS] [thrift|raw]} (raw: {@link #rawEcho}, no Thrift library); prints "listening on PORT" and serves until killed.
 */
public final class EchoServerMain {
    private EchoServerMain() {}

    private static final ThreadLocal<ByteBuffer> REPLY = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(1 << 16));

    /**
     * Echo without a Thrift library: the reply is the call with its message type set to REPLY and
     * its args field id (1) set to the result's (0), copied once into a reused direct buffer.
     */
    static void rawEcho(OctoRequest request, Responder responder) {
        ByteBuffer body = request.body();
        int n = body.remaining();
        ByteBuffer out = REPLY.get();
        if (n > out.capacity()) {
            responder.error(Status.PROTOCOL_EXCEPTION, "too large for the raw echo");
            return;
        }
        out.clear();
        out.put(body).flip();
        int structAt = ThriftMessages.seqidOffset(out) + 4;
        out.put(3, (byte) 2);
        out.putShort(structAt + 1, (short) 0);
        responder.ok(out);
    }

    public static void main(String[] args) throws InterruptedException {
        int port = Integer.parseInt(args[0]);
        int shards = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        boolean raw = args.length > 2 && args[2].equals("raw");
        OctoServer server = OctoServer.builder()
                .host("127.0.0.1")
                .port(port)
                .shards(shards)
                .service("Echo", raw ? EchoServerMain::rawEcho
                        : new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build()
                .start();
        System.out.println("listening on " + server.port() + " pid " + ProcessHandle.current().pid());
        System.out.flush();
        Runtime.getRuntime().addShutdownHook(new Thread(server::close));
        new CountDownLatch(1).await();
    }
}
