package com.meituan.octo;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import octo.idl.Echo;
import octo.idl.Header;
import octo.idl.TraceInfo;
import org.junit.jupiter.api.Test;

class OctoServerTest {
    private static final byte[] CALL = callEcho("hi");

    static byte[] callEcho(String message) {
        try {
            return OctoWirePeer.callMessage(p -> new Echo.Client(p).send_echo(message));
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static OctoServer.Builder server() {
        return OctoServer.builder().host("127.0.0.1").shards(1);
    }

    private static void answerWith(Responder r, String text) {
        r.ok(text.getBytes(UTF_8));
    }

    @Test
    void callsAreRoutedToTheServiceTheyName() throws Exception {
        try (OctoServer s = server()
                .service("A", (req, r) -> answerWith(r, "from A"))
                .service("B", (req, r) -> answerWith(r, "from B"))
                .build().start();
                OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertArrayEquals("from B".getBytes(UTF_8), peer.call("B", 1, CALL).body());
            assertArrayEquals("from A".getBytes(UTF_8), peer.call("A", 2, CALL).body());
        }
    }

    @Test
    void anAnswerCarriesTheRequestsSequenceIdAndStatus0() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> answerWith(r, "ok")).build().start();
                OctoWirePeer peer = new OctoWirePeer(s.port())) {
            OctoWirePeer.Answer a = peer.call("A", 0x1234_5678_9AL, CALL);
            assertEquals(0x1234_5678_9AL, a.info().getSequenceId());
            assertEquals(0, a.status());
        }
    }

    @Test
    void theHandlerSeesServiceMethodIdsTimeoutAndFraming() throws Exception {
        AtomicReference<String> seen = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            seen.set(req.service() + "|" + req.method() + "|" + req.sequenceId() + "|" + req.thriftSeqid() + "|"
                    + req.timeoutMillis() + "|" + req.framing() + "|" + req.isOneWay() + "|" + req.shard());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.call("A", 77, CALL);
            // The Thrift seqid is the one in the message as sent (the tests' peer writes 1).
            assertEquals("A|echo|77|1|1000|OCTO|false|0", seen.get());
        }
    }

    @Test
    void handlersRunOnAShardThreadAttachedToTheJvmOnce() throws Exception {
        java.util.Set<Thread> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (OctoServer s = server().service("A", (req, r) -> {
            threads.add(Thread.currentThread());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            for (int i = 0; i < 100; i++) {
                peer.call("A", i, CALL);
            }
        }
        assertEquals(1, threads.size(), threads.toString());
        Thread shard = threads.iterator().next();
        assertEquals("octo-shard-0", shard.getName());
        assertTrue(shard.isDaemon());
    }

    @Test
    void aHandlerReadsItsOwnServersStatsWithoutWaiting() throws Exception {
        AtomicReference<OctoServer> self = new AtomicReference<>();
        AtomicReference<long[]> seen = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            seen.set(self.get().stats());
            answerWith(r, "ok");
        }).build()) {
            self.set(s);
            s.start();
            try (OctoWirePeer peer = new OctoWirePeer(s.port())) {
                peer.call("A", 1, CALL);
                peer.call("A", 2, CALL);
            }
            // [accepted, refused, open, requests, ...]: the second call counts itself.
            assertEquals(2, seen.get()[3]);
            assertEquals(1, seen.get()[2]);
        }
    }

    @Test
    void theBodyIsADirectBufferOverTheWholeThriftMessage() throws Exception {
        AtomicReference<byte[]> body = new AtomicReference<>();
        AtomicReference<Boolean> direct = new AtomicReference<>();
        AtomicReference<Integer> argsLength = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            ByteBuffer b = req.body();
            direct.set(b.isDirect() && b.isReadOnly());
            byte[] copy = new byte[b.remaining()];
            b.get(copy);
            body.set(copy);
            argsLength.set(req.args().remaining());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.call("A", 5, CALL);
            assertTrue(direct.get());
            assertArrayEquals(CALL, body.get());
            int headerLength = ThriftMessages.seqidOffset(ByteBuffer.wrap(CALL)) + 4;
            assertEquals(CALL.length - headerLength, argsLength.get());
        }
    }

    @Test
    void theHandlerSeesTheContextsAndTraceInfo() throws Exception {
        AtomicReference<String> seen = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            seen.set(req.globalContext() + "|" + req.localContext() + "|" + req.traceInfo());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            Header h = OctoWirePeer.request("A", 9, Map.of("g", "1"), Map.of("l", "\u00e9\u4e2d"));
            TraceInfo t = new TraceInfo("client.appkey");
            t.setTraceId("trace-1");
            t.setDebug(true);
            h.setTraceInfo(t);
            peer.send(h, CALL);
            peer.receive();
            assertEquals("{g=1}|{l=\u00e9\u4e2d}|TraceInfo[clientAppkey=client.appkey, traceId=trace-1, spanId=null, "
                    + "rootMessageId=null, currentMessageId=null, serverMessageId=null, debug=true, sample=null, "
                    + "clientIp=null]", seen.get());
        }
    }

    @Test
    void aCallWithoutContextsOrTraceInfoHasEmptyOnes() throws Exception {
        AtomicReference<String> seen = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            seen.set(req.globalContext() + "|" + req.localContext() + "|" + req.traceInfo());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.call("A", 1, CALL);
            assertEquals("{}|{}|null", seen.get());
        }
    }

    @Test
    void theRequestIsUnusableOnceTheHandlerReturned() throws Exception {
        CompletableFuture<OctoRequest> kept = new CompletableFuture<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            kept.complete(req);
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.call("A", 1, CALL);
            OctoRequest req = kept.get(10, TimeUnit.SECONDS);
            assertThrows(IllegalStateException.class, req::traceInfo);
            assertThrows(IllegalStateException.class, req::retainBody);
        }
    }

    @Test
    void anAnswerGivenLaterFromAnotherThreadReachesTheCaller() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> {
            OctoBuffer body = req.retainBody();
            new Thread(() -> {
                try (body) {
                    answerWith(r, "later " + body.length());
                }
            }).start();
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertArrayEquals(("later " + CALL.length).getBytes(UTF_8), peer.call("A", 1, CALL).body());
        }
    }

    @Test
    void aHandlerThatThrowsAnswersStatus2WithItsMessage() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> {
            throw new IllegalStateException("broken handler");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            OctoWirePeer.Answer a = peer.call("A", 1, CALL);
            assertEquals(Status.RUNTIME_EXCEPTION.code(), a.status());
            assertTrue(a.info().getMessage().contains("broken handler"), a.info().getMessage());
        }
    }

    @Test
    void aHandlerThatThrowsAnOctoExceptionAnswersItsStatus() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> {
            throw new OctoException(Status.SECURITY_EXCEPTION, "who are you");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertEquals(Status.SECURITY_EXCEPTION.code(), peer.call("A", 1, CALL).status());
        }
    }

    @Test
    void anErrorAnswerCarriesStatusAndMessage() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> r.error(Status.DEGRADE_EXCEPTION, "shed"))
                .build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            OctoWirePeer.Answer a = peer.call("A", 1, CALL);
            assertEquals(Status.DEGRADE_EXCEPTION.code(), a.status());
            assertEquals("shed", a.info().getMessage());
        }
    }

    @Test
    void aSecondAnswerIsRefused() throws Exception {
        AtomicReference<OctoException> second = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            answerWith(r, "first");
            second.set(assertThrows(OctoException.class, () -> answerWith(r, "second")));
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertArrayEquals("first".getBytes(UTF_8), peer.call("A", 1, CALL).body());
            assertEquals(Status.ALREADY_ANSWERED, second.get().status());
        }
    }

    @Test
    void aLocalStatusCannotBeSentToACaller() throws Exception {
        AtomicReference<OctoException> refused = new AtomicReference<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            refused.set(assertThrows(OctoException.class, () -> r.error(Status.TIMEOUT, "no")));
            assertFalse(r.isAnswered());
            answerWith(r, "ok");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertEquals(0, peer.call("A", 1, CALL).status());
            assertEquals(Status.INVALID_ARGUMENT, refused.get().status());
        }
    }

    @Test
    void anUnknownServiceIsAnsweredWithStatus8() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> answerWith(r, "ok")).build().start();
                OctoWirePeer peer = new OctoWirePeer(s.port())) {
            assertEquals(Status.SERVICE_EXCEPTION.code(), peer.call("Nope", 1, CALL).status());
            assertEquals(1, s.answers(Status.SERVICE_EXCEPTION));
        }
    }

    @Test
    void aResponderDroppedUnansweredAnswersStatus3OnceCollected() throws Exception {
        try (OctoServer s = server().service("A", (req, r) -> {
            // neither answered nor kept
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.send(OctoWirePeer.request("A", 1, false), CALL);
            CountDownLatch answered = new CountDownLatch(1);
            Thread collector = new Thread(() -> {
                while (answered.getCount() > 0) {
                    System.gc();
                    try {
                        answered.await(50, TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            collector.start();
            try {
                assertEquals(Status.RPC_EXCEPTION.code(), peer.receive().status());
            } finally {
                answered.countDown();
                collector.join();
            }
        }
    }

    @Test
    void aOneWayCallGetsNoAnswerButReachesTheHandler() throws Exception {
        CompletableFuture<Boolean> oneWay = new CompletableFuture<>();
        try (OctoServer s = server().service("A", (req, r) -> {
            if (req.isOneWay()) {
                oneWay.complete(true);
            }
            answerWith(r, "discarded for one-way calls");
        }).build().start(); OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.send(OctoWirePeer.request("A", 1, true), CALL);
            assertTrue(oneWay.get(10, TimeUnit.SECONDS));
            // The next answer on the connection is the next call's: the one-way call got none.
            assertEquals(2, peer.call("A", 2, CALL).info().getSequenceId());
        }
    }

    @Test
    void closeLetsACallInFlightBeAnswered() throws Exception {
        CountDownLatch inHandler = new CountDownLatch(1);
        AtomicReference<Responder> held = new AtomicReference<>();
        OctoServer s = server().service("A", (req, r) -> {
            held.set(r);
            inHandler.countDown();
        }).build().start();
        try (OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.send(OctoWirePeer.request("A", 1, false), CALL);
            assertTrue(inHandler.await(10, TimeUnit.SECONDS));
            Thread late = new Thread(() -> {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
                answerWith(held.get(), "answered during shutdown");
            });
            late.start();
            s.close(); // waits for the answer (grace 5 s)
            late.join();
            assertArrayEquals("answered during shutdown".getBytes(UTF_8), peer.receive().body());
        }
    }

    @Test
    void aClosedServerRefusesFurtherUse() {
        OctoServer s = server().service("A", (req, r) -> answerWith(r, "ok")).build().start();
        s.close();
        assertEquals(Status.CLOSED, assertThrows(OctoException.class, s::port).status());
        s.close(); // idempotent
    }

    @Test
    void theShardCountOfTheServersEngineIsTheOneAskedFor() {
        try (OctoEngine e = OctoEngine.builder().shards(2).pinShards(false).build()) {
            assertEquals(2, e.shards());
            try (OctoServer s = OctoServer.builder().engine(e).host("127.0.0.1")
                    .service("A", (req, r) -> answerWith(r, "ok")).build().start()) {
                assertTrue(s.port() > 0);
            }
        }
    }

    @Test
    void aServerWithoutServicesIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> server().build());
    }

    @Test
    void shutdownWithAGraceReturnsOnceConnectionsAreClosed() throws Exception {
        OctoServer s = server().service("A", (req, r) -> answerWith(r, "ok")).build().start();
        try (OctoWirePeer peer = new OctoWirePeer(s.port())) {
            peer.call("A", 1, CALL);
            s.shutdown(Duration.ofSeconds(2));
            assertEquals(-1, peer.readEnd());
        } finally {
            s.close();
        }
    }
}
