package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.meituan.octo.peers.RustBench;
import com.meituan.octo.thrift.OctoThrift;
import com.meituan.octo.thrift.ThriftService;
import java.util.Map;
import octo.idl.Echo;
import org.junit.jupiter.api.Test;

/** Java and Rust octo peers talk to each other as real processes. */
class CrossLanguageTest {
    private static OctoServer javaEchoServer() {
        return OctoServer.builder()
                .host("127.0.0.1")
                .shards(1)
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build()
                .start();
    }

    @Test
    void aJavaClientCallsTheRustEchoServer() throws Exception {
        try (RustBench.Server rust = RustBench.serve(1);
                OctoClient client = OctoClient.builder().directConnAddress("127.0.0.1:" + rust.port)
                        .serviceName("Echo").shards(1).build()) {
            assertEquals("from java", OctoClientTest.echoReply(client.callBlocking(OctoClientTest.echoCall("from java"))));
            Echo.Client echo = OctoThrift.client(client, new Echo.Client.Factory());
            assertEquals("x".repeat(1024), echo.echo("x".repeat(1024)));
        }
    }

    @Test
    void aJavaPlainThriftClientCallsTheRustEchoServer() throws Exception {
        try (RustBench.Server rust = RustBench.serve(1);
                OctoClient client = OctoClient.builder().directConnAddress("127.0.0.1:" + rust.port)
                        .framing(Framing.THRIFT).serviceName("Echo").shards(1).build()) {
            Echo.Client echo = OctoThrift.client(client, new Echo.Client.Factory());
            assertEquals("plain thrift", echo.echo("plain thrift"));
        }
    }

    @Test
    void octosClientThroughTheCAbiCallsAJavaServer() throws Exception {
        try (OctoServer s = javaEchoServer()) {
            String out = RustBench.cEchoClient(s.port(), "Echo", 200, false, "from octo's client");
            assertTrue(out.contains("callbacks: 200 of 200 echoed"), out);
            out = RustBench.cEchoClient(s.port(), "Echo", 200, true, "over plain Thrift");
            assertTrue(out.contains("callbacks: 200 of 200 echoed"), out);
        }
    }

    @Test
    void theRustLoadGeneratorGetsEveryOctoAnswerRightFromAJavaServer() throws Exception {
        try (OctoServer s = javaEchoServer()) {
            Map<String, Double> r = RustBench.load(s.port(), "octo", "Echo", 4, 4, 0.5, 0.1);
            assertTrue(r.get("requests") > 0, r.toString());
            assertEquals(0.0, r.get("errors"), r.toString());
        }
    }

    @Test
    void theRustLoadGeneratorGetsEveryNativeThriftAnswerRightFromAJavaServer() throws Exception {
        try (OctoServer s = javaEchoServer()) {
            Map<String, Double> r = RustBench.load(s.port(), "thrift", "Echo", 4, 4, 0.5, 0.1);
            assertTrue(r.get("requests") > 0, r.toString());
            assertEquals(0.0, r.get("errors"), r.toString());
        }
    }
}
