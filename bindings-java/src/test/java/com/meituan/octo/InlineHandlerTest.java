package com.meituan.octo;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The inline path: a handler that answers before returning, through a reused InlineCall. */
class InlineHandlerTest {
    private static final byte[] CALL = OctoServerTest.callEcho("hi");

    /** An InlineHandler from a lambda; {@code inline} false sends calls to handle() instead. */
    private static InlineHandler handler(boolean inline, Inline body) {
        return new InlineHandler() {
            @Override
            public boolean answersInline() {
                return inline;
            }

            @Override
            public void handleInline(InlineCall call) throws Exception {
                body.run(call);
            }

            @Override
            public void handle(OctoRequest request, Responder responder) {
                responder.ok("via handle".getBytes(UTF_8));
            }
        };
    }

    interface Inline {
        void run(InlineCall call) throws Exception;
    }

    private static OctoWirePeer.Answer callOnce(InlineHandler h) throws Exception {
        try (OctoServer s = OctoServer.builder().host("127.0.0.1").shards(1).service("A", h).build().start();
                OctoWirePeer peer = new OctoWirePeer(s.port())) {
            return peer.call("A", 9, CALL);
        }
    }

    @Test
    void theHandlerReadsTheBodyAndAnswers() throws Exception {
        AtomicReference<byte[]> body = new AtomicReference<>();
        AtomicReference<String> seen = new AtomicReference<>();
        OctoWirePeer.Answer a = callOnce(handler(true, call -> {
            byte[] b = new byte[call.bodyLength()];
            call.copyBody(b);
            body.set(b);
            seen.set(call.thriftSeqid() + "|" + call.framing() + "|" + call.isOneWay());
            byte[] reply = "xxreplyxx".getBytes(UTF_8);
            call.reply(Status.APPLICATION_EXCEPTION, reply, 2, 5);
            assertTrue(call.isAnswered());
            assertThrows(OctoException.class, () -> call.reply(Status.SUCCESS, reply, 0, 1), "a second answer");
        }));
        assertArrayEquals(CALL, body.get());
        assertEquals("1|OCTO|false", seen.get());
        assertEquals(1, a.status());
        assertArrayEquals("reply".getBytes(UTF_8), a.body());
    }

    @Test
    void returningUnansweredAnswersStatus2() throws Exception {
        assertEquals(2, callOnce(handler(true, call -> {})).status());
    }

    @Test
    void anOctoExceptionAnswersItsStatus() throws Exception {
        assertEquals(8, callOnce(handler(true, call -> {
            throw new OctoException(Status.SERVICE_EXCEPTION, "no such thing");
        })).status());
    }

    @Test
    void aHandlerThatDeclinesTheInlinePathGetsHandle() throws Exception {
        OctoWirePeer.Answer a = callOnce(handler(false, call -> {
            throw new AssertionError("not inline");
        }));
        assertEquals(0, a.status());
        assertArrayEquals("via handle".getBytes(UTF_8), a.body());
    }

    @Test
    void theCallIsUnusableAfterTheHandlerReturns() throws Exception {
        AtomicReference<InlineCall> kept = new AtomicReference<>();
        callOnce(handler(true, call -> {
            kept.set(call);
            call.error(Status.RPC_EXCEPTION, "done");
        }));
        assertThrows(IllegalStateException.class, () -> kept.get().bodyLength());
        assertThrows(OctoException.class, () -> kept.get().error(Status.RPC_EXCEPTION, "again"));
    }
}
