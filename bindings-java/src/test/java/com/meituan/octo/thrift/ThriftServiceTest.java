package com.meituan.octo.thrift;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.meituan.octo.OctoServer;
import com.meituan.octo.OctoWirePeer;
import com.meituan.octo.Status;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import octo.idl.Echo;
import octo.idl.test.Greeter;
import octo.idl.test.Refused;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessage;
import org.apache.thrift.protocol.TMessageType;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.layered.TFramedTransport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ThriftServiceTest {
    /** Greets, refuses "nobody" (declared), fails on "crash" (undeclared); notes one-way calls. */
    static final class Greetings implements Greeter.Iface {
        final CompletableFuture<String> noted = new CompletableFuture<>();

        @Override
        public String greet(String name) throws Refused {
            if (name.equals("nobody")) {
                throw new Refused("no one to greet");
            }
            if (name.equals("crash")) {
                throw new IllegalStateException("the greeter broke");
            }
            return "hello " + name;
        }

        @Override
        public void touch(int n) {}

        @Override
        public void note(String text) {
            noted.complete(text);
        }
    }

    private final Greetings greetings = new Greetings();
    private OctoServer server;

    @BeforeEach
    void start() {
        server = OctoServer.builder()
                .host("127.0.0.1")
                .shards(1)
                .service("Greeter", new ThriftService(new Greeter.Processor<>(greetings)))
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build()
                .start();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private <T> T withThriftClient(ThriftCall<T> call) throws Exception {
        try (TSocket socket = new TSocket("127.0.0.1", server.port())) {
            socket.open();
            return call.run(new Greeter.Client(new TBinaryProtocol(new TFramedTransport(socket))));
        }
    }

    interface ThriftCall<T> {
        T run(Greeter.Client client) throws Exception;
    }

    private OctoWirePeer.Answer octoCall(String service, OctoWirePeer.ThriftSend send) throws Exception {
        try (OctoWirePeer peer = new OctoWirePeer(server.port())) {
            return peer.call(service, 1, OctoWirePeer.callMessage(send));
        }
    }

    @Test
    void anApacheThriftFramedClientCallsTheDefaultServicesGeneratedProcessor() throws Exception {
        assertEquals("hello octo", withThriftClient(c -> c.greet("octo")));
    }

    @Test
    void anApacheThriftFramedClientGetsTheDeclaredException() throws Exception {
        Refused r = assertThrows(Refused.class, () -> withThriftClient(c -> c.greet("nobody")));
        assertEquals("no one to greet", r.getReason());
        assertEquals(1, server.answers(Status.APPLICATION_EXCEPTION));
    }

    @Test
    void anApacheThriftFramedClientGetsAnInternalErrorForAnUndeclaredException() throws Exception {
        TApplicationException e = assertThrows(TApplicationException.class,
                () -> withThriftClient(c -> c.greet("crash")));
        assertEquals(TApplicationException.INTERNAL_ERROR, e.getType());
        assertEquals(1, server.answers(Status.RUNTIME_EXCEPTION));
    }

    @Test
    void aVoidMethodAnswersStatus0() throws Exception {
        assertEquals(0, octoCall("Greeter", p -> new Greeter.Client(p).send_touch(3)).status());
    }

    @Test
    void messagesOfEverySizeRoundTripThroughBothInlinePaths() throws Exception {
        // Up to 1 MiB the body crosses in the shard thread's byte[]; above, in a direct buffer
        // copied into the codec's own array. The reply grows the output array past its start.
        for (int n : new int[] {0, 1, 4095, 5000, (1 << 20) - 64, (1 << 20) + 1, 3 << 20}) {
            String text = "é".repeat(n / 2) + "x".repeat(n % 2);
            OctoWirePeer.Answer a = octoCall("Echo", p -> new Echo.Client(p).send_echo(text));
            assertEquals(0, a.status(), "size " + n);
            TBinaryProtocol in = OctoWirePeer.replyProtocol(a.body());
            in.readMessageBegin();
            Echo.echo_result result = new Echo.echo_result();
            result.read(in);
            assertEquals(text, result.getSuccess(), "size " + n);
        }
    }

    @Test
    void aResultAnswersStatus0WithTheProcessorsReply() throws Exception {
        OctoWirePeer.Answer a = octoCall("Echo", p -> new Echo.Client(p).send_echo("x".repeat(1024)));
        assertEquals(0, a.status());
        TBinaryProtocol in = OctoWirePeer.replyProtocol(a.body());
        TMessage m = in.readMessageBegin();
        assertEquals(TMessageType.REPLY, m.type);
        Echo.echo_result result = new Echo.echo_result();
        result.read(in);
        assertEquals("x".repeat(1024), result.getSuccess());
    }

    @Test
    void aDeclaredExceptionAnswersStatus1() throws Exception {
        assertEquals(1, octoCall("Greeter", p -> new Greeter.Client(p).send_greet("nobody")).status());
    }

    @Test
    void anUndeclaredExceptionAnswersStatus2() throws Exception {
        assertEquals(2, octoCall("Greeter", p -> new Greeter.Client(p).send_greet("crash")).status());
    }

    @Test
    void anUnknownMethodAnswersStatus8() throws Exception {
        // Echo's method sent to the Greeter service: the processor does not know "echo".
        assertEquals(8, octoCall("Greeter", p -> new Echo.Client(p).send_echo("hi")).status());
    }

    @Test
    void malformedArgumentsAnswerStatus5() throws Exception {
        byte[] call = OctoWirePeer.callMessage(p -> new Echo.Client(p).send_echo("hi"));
        byte[] truncated = java.util.Arrays.copyOf(call, call.length - 3);
        try (OctoWirePeer peer = new OctoWirePeer(server.port())) {
            assertEquals(5, peer.call("Echo", 1, truncated).status());
        }
    }

    @Test
    void aOneWayMethodRunsAndAnswersNothing() throws Exception {
        withThriftClient(c -> {
            c.note("for the record");
            return null;
        });
        assertEquals("for the record", greetings.noted.get(10, TimeUnit.SECONDS));
    }

    @Test
    void anExecutorRunsTheProcessorOffTheShardThreads() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2, r -> new Thread(r, "business"));
        CompletableFuture<String> thread = new CompletableFuture<>();
        Echo.Iface impl = message -> {
            thread.complete(Thread.currentThread().getName());
            return message;
        };
        try (OctoServer s = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("Echo", new ThriftService(new Echo.Processor<>(impl), pool)).build().start();
                TSocket socket = new TSocket("127.0.0.1", s.port())) {
            socket.open();
            Echo.Client c = new Echo.Client(new TBinaryProtocol(new TFramedTransport(socket)));
            assertEquals("off the shard", c.echo("off the shard"));
            assertEquals("business", thread.get(10, TimeUnit.SECONDS));
        } finally {
            pool.shutdown();
        }
        assertTrue(pool.awaitTermination(10, TimeUnit.SECONDS));
    }
}
