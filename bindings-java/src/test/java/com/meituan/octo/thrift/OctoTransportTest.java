package com.meituan.octo.thrift;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.meituan.octo.OctoClient;
import com.meituan.octo.OctoException;
import com.meituan.octo.OctoServer;
import com.meituan.octo.Status;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import octo.idl.Echo;
import octo.idl.test.Greeter;
import octo.idl.test.Refused;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.transport.TTransportException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Generated Apache Thrift clients calling through octo (OctoTransport), against octo's Java server. */
class OctoTransportTest {
    private final ThriftServiceTest.Greetings greetings = new ThriftServiceTest.Greetings();
    private OctoServer server;
    private OctoClient client;

    @BeforeEach
    void start() {
        server = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("Greeter", new ThriftService(new Greeter.Processor<>(greetings)))
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .service("Slow", (req, r) -> {
                    // keeps the call unanswered: the caller's timeout fires
                })
                .build().start();
        client = OctoClient.builder().directConnAddress("127.0.0.1:" + server.port()).serviceName("Echo")
                .timeoutMillis(5000).shards(1).build();
    }

    @AfterEach
    void stop() {
        client.close();
        server.shutdown(Duration.ofMillis(100)); // no grace for the calls left unanswered on purpose
        server.close();
    }

    @Test
    void aGeneratedEchoClientCallsThroughOcto() throws Exception {
        Echo.Client echo = OctoThrift.client(client, new Echo.Client.Factory());
        assertEquals("hello", echo.echo("hello"));
        assertEquals("again", echo.echo("again")); // the client's own seqids keep matching
    }

    @Test
    void aDeclaredExceptionReachesTheGeneratedClient() {
        Greeter.Client greeter = OctoThrift.client(client, "Greeter", new Greeter.Client.Factory());
        Refused r = assertThrows(Refused.class, () -> greeter.greet("nobody"));
        assertEquals("no one to greet", r.getReason());
    }

    @Test
    void anUndeclaredExceptionIsAnInternalErrorForTheGeneratedClient() {
        Greeter.Client greeter = OctoThrift.client(client, "Greeter", new Greeter.Client.Factory());
        TApplicationException e = assertThrows(TApplicationException.class, () -> greeter.greet("crash"));
        assertEquals(TApplicationException.INTERNAL_ERROR, e.getType());
    }

    @Test
    void voidAndOneWayMethodsWork() throws Exception {
        Greeter.Client greeter = OctoThrift.client(client, "Greeter", new Greeter.Client.Factory());
        greeter.touch(7);
        greeter.note("noted");
        assertEquals("noted", greetings.noted.get(10, TimeUnit.SECONDS));
        assertEquals("hello again", greeter.greet("again"));
    }

    @Test
    void aTimeoutIsATransportExceptionCarryingTheOctoStatus() {
        try (OctoClient quick = OctoClient.builder().directConnAddress("127.0.0.1:" + server.port())
                .timeoutMillis(100).shards(1).build()) {
            Echo.Client slow = OctoThrift.client(quick, "Slow", new Echo.Client.Factory());
            TTransportException e = assertThrows(TTransportException.class, () -> slow.echo("hi"));
            assertEquals(TTransportException.TIMED_OUT, e.getType());
            assertEquals(Status.TIMEOUT, assertInstanceOf(OctoException.class, e.getCause()).status());
        }
    }
}
