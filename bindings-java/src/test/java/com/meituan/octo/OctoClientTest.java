package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.meituan.octo.thrift.ThriftService;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import octo.idl.Echo;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessage;
import org.apache.thrift.protocol.TMessageType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class OctoClientTest {
    private OctoServer server;
    private OctoClient client;
    private final CompletableFuture<String> oneWaySeen = new CompletableFuture<>();

    static String echoReply(ByteBuffer reply) throws Exception {
        byte[] b = new byte[reply.remaining()];
        reply.duplicate().get(b);
        TBinaryProtocol in = OctoWirePeer.replyProtocol(b);
        TMessage m = in.readMessageBegin();
        assertEquals(TMessageType.REPLY, m.type);
        Echo.echo_result r = new Echo.echo_result();
        r.read(in);
        return r.getSuccess();
    }

    static ByteBuffer echoCall(String message) {
        return ByteBuffer.wrap(OctoServerTest.callEcho(message));
    }

    @BeforeEach
    void start() {
        server = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .service("Silent", (req, r) -> {
                    if (req.isOneWay()) {
                        oneWaySeen.complete(req.method());
                    }
                    // otherwise never answers: the caller times out (the responder is freed later)
                })
                .service("Failing", (req, r) -> r.error(Status.DEGRADE_EXCEPTION, "too busy"))
                .build().start();
        client = OctoClient.builder()
                .directConnAddress("127.0.0.1:" + server.port())
                .serviceName("Echo")
                .timeoutMillis(5000)
                .shards(1)
                .build();
    }

    @AfterEach
    void stop() {
        client.close();
        server.shutdown(Duration.ofMillis(100)); // no grace for the calls left unanswered on purpose
        server.close();
    }

    @Test
    void aJavaClientCallsAJavaServerAndGetsTheReply() throws Exception {
        assertEquals("hello", echoReply(client.call(echoCall("hello")).get(10, TimeUnit.SECONDS)));
    }

    @Test
    void aBlockingCallReturnsTheReply() throws Exception {
        assertEquals("x".repeat(1024), echoReply(client.callBlocking(echoCall("x".repeat(1024)))));
    }

    @Test
    void aDirectRequestBufferIsSentAsWellAsAHeapOne() throws Exception {
        byte[] call = OctoServerTest.callEcho("direct");
        ByteBuffer direct = ByteBuffer.allocateDirect(call.length + 3);
        direct.position(3);
        direct.put(call).flip().position(3);
        assertEquals("direct", echoReply(client.callBlocking("Echo", direct)));
    }

    @Test
    void aCallThatIsNotAnsweredInTimeFailsWithTimeout() {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> client.call("Silent", echoCall("hi"), 100).get(10, TimeUnit.SECONDS));
        OctoException o = (OctoException) e.getCause();
        assertEquals(Status.TIMEOUT, o.status());
        assertTrue(o.isTimeout());
    }

    @Test
    void aFutureFailsWithoutAStackTraceAndABlockingCallRethrowsWithItsCallersStack() {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> client.call("Failing", echoCall("hi")).get(10, TimeUnit.SECONDS));
        OctoException async = (OctoException) e.getCause();
        assertEquals(Status.DEGRADE_EXCEPTION, async.status());
        assertEquals(0, async.getStackTrace().length, "made on the shard thread, where a stack says nothing");

        OctoException blocking = assertThrows(OctoException.class, () -> client.callBlocking("Failing", echoCall("hi")));
        assertEquals(Status.DEGRADE_EXCEPTION, blocking.status());
        assertEquals(async.getMessage(), blocking.getMessage());
        assertTrue(java.util.Arrays.stream(blocking.getStackTrace())
                        .anyMatch(f -> f.getMethodName().startsWith("aFutureFailsWithoutAStackTrace")),
                "the blocking call's exception shows where it was called from");
    }

    @Test
    void aServerErrorIsAnOctoExceptionWithTheServersStatusAndMessage() {
        OctoException e = assertThrows(OctoException.class, () -> client.callBlocking("Failing", echoCall("hi")));
        assertEquals(Status.DEGRADE_EXCEPTION, e.status());
        assertTrue(e.getMessage().contains("too busy"), e.getMessage());
        assertNotNull(e.body(), "the TApplicationException the server sent");
    }

    @Test
    void anUnknownServiceIsAnOctoExceptionWithStatus8() {
        OctoException e = assertThrows(OctoException.class, () -> client.callBlocking("Nope", echoCall("hi")));
        assertEquals(Status.SERVICE_EXCEPTION, e.status());
    }

    @Test
    void aRequestThatIsNotAThriftCallIsRefusedWithInvalidArgument() {
        OctoException e = assertThrows(OctoException.class,
                () -> client.callBlocking(ByteBuffer.wrap(new byte[] {1, 2, 3})));
        assertEquals(Status.INVALID_ARGUMENT, e.status());
    }

    @Test
    void aOneWayCallReachesTheServer() throws Exception {
        client.oneWay("Silent", echoCall("fire and forget"));
        assertEquals("echo", oneWaySeen.get(10, TimeUnit.SECONDS));
    }

    @Test
    void aClosedClientRefusesCallsWithClosed() {
        client.close();
        OctoException e = assertThrows(OctoException.class, () -> client.callBlocking(echoCall("late")));
        assertEquals(Status.CLOSED, e.status());
    }

    @Test
    void aServerThatIsNotThereFailsTheCallWithinItsTimeout() throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (OctoClient nobody = OctoClient.builder().directConnAddress("127.0.0.1:" + port).serviceName("Echo")
                .timeoutMillis(300).shards(1).build()) {
            OctoException e = assertThrows(OctoException.class, () -> nobody.callBlocking(echoCall("anyone?")));
            assertTrue(e.status() == Status.TIMEOUT || e.status() == Status.TRANSPORT_EXCEPTION, e.toString());
        }
    }

    @Test
    void aBlockingCallFromAShardThreadIsRefusedWithBusy() throws Exception {
        CompletableFuture<OctoException> refused = new CompletableFuture<>();
        try (OctoServer nested = OctoServer.builder().host("127.0.0.1").shards(1).service("Nested", (req, r) -> {
            try {
                client.callBlocking(echoCall("nested")); // on the server's shard thread
                refused.complete(null);
            } catch (OctoException e) {
                refused.complete(e);
            }
            r.ok(new byte[0]);
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(nested.port())) {
            peer.call("Nested", 1, OctoServerTest.callEcho("hi"));
            assertEquals(Status.BUSY, refused.get(10, TimeUnit.SECONDS).status());
        }
    }

    @Test
    void hostNamesAndListsOfEndpointsAreAccepted() {
        assertArrayEquals(new String[] {"127.0.0.1:9001", "127.0.0.1:9002"},
                OctoClient.parseEndpoints("localhost:9001, 127.0.0.1:9002"));
        assertArrayEquals(new String[] {"[0:0:0:0:0:0:0:1]:9003"}, OctoClient.parseEndpoints("[::1]:9003"));
        assertThrows(IllegalArgumentException.class, () -> OctoClient.parseEndpoints("127.0.0.1"));
        assertThrows(IllegalArgumentException.class, () -> OctoClient.parseEndpoints(" , "));
    }

    @Test
    void aPlainThriftClientCallsTheServersDefaultService() throws Exception {
        try (OctoClient thrift = OctoClient.builder().directConnAddress("127.0.0.1:" + server.port())
                .framing(Framing.THRIFT).serviceName("Echo").shards(1).build()) {
            assertEquals("plain", echoReply(thrift.callBlocking(echoCall("plain"))));
        }
    }
}
