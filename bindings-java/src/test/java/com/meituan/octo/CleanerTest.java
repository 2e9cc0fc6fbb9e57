package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ConnectException;
import java.net.Socket;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** Native handles whose Java owners are forgotten without close() are freed once unreachable. */
class CleanerTest {
    /** Collects garbage until {@code done} holds; false if it never does within 30 s. */
    private static boolean collectUntil(BooleanSupplier done) throws InterruptedException {
        long end = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < end) {
            if (done.getAsBoolean()) {
                return true;
            }
            System.gc();
            Thread.sleep(20);
        }
        return done.getAsBoolean();
    }

    private static int forgottenServerPort() {
        OctoServer s = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("A", (req, r) -> r.ok(new byte[0])).build().start();
        return s.port();
    }

    private static boolean refuses(int port) {
        try {
            new Socket("127.0.0.1", port).close();
            return false;
        } catch (ConnectException e) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void aForgottenServerStopsListeningOnceCollected() throws Exception {
        int port = forgottenServerPort();
        assertTrue(collectUntil(() -> refuses(port)), "port " + port + " still accepts connections");
    }

    private static void forgottenClientCall(int port) {
        OctoClient c = OctoClient.builder().directConnAddress("127.0.0.1:" + port).serviceName("A").shards(1).build();
        c.callBlocking(OctoClientTest.echoCall("hi"));
    }

    @Test
    void aForgottenClientClosesItsConnectionsOnceCollected() throws Exception {
        try (OctoServer s = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("A", (req, r) -> r.ok(new byte[0])).build().start()) {
            forgottenClientCall(s.port());
            assertTrue(s.stats()[2] > 0, "the client's connections are open");
            assertTrue(collectUntil(() -> s.stats()[2] == 0), "the forgotten client's connections stay open");
        }
    }

    @Test
    void aClosedEngineStaysUpUntilItsLastServerCloses() {
        OctoEngine e = OctoEngine.builder().shards(1).pinShards(false).build();
        OctoServer s = OctoServer.builder().engine(e).host("127.0.0.1")
                .service("A", (req, r) -> r.ok("still here".getBytes())).build().start();
        e.close();
        try (OctoClient c = OctoClient.builder().directConnAddress("127.0.0.1:" + s.port()).serviceName("A")
                .shards(1).build()) {
            assertEquals("still here", new String(c.callBlocking(OctoClientTest.echoCall("x")).array()));
        } finally {
            s.close();
        }
    }
}
