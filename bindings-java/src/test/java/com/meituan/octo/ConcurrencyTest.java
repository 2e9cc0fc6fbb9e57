package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.meituan.octo.thrift.ThriftService;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import octo.idl.Echo;
import org.junit.jupiter.api.Test;

class ConcurrencyTest {
    private static final int THREADS = 16;
    private static final int CALLS = 10_000;
    private static final int WINDOW = 256;

    @Test
    void sixteenThreadsOfTenThousandAsyncCallsAreAllAnsweredAndMatched() throws Exception {
        try (OctoServer server = OctoServer.builder().host("127.0.0.1").shards(2)
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build().start();
                OctoClient client = OctoClient.builder().directConnAddress("127.0.0.1:" + server.port())
                        .serviceName("Echo").timeoutMillis(30_000).shards(2).build()) {
            AtomicInteger matched = new AtomicInteger();
            ConcurrentLinkedQueue<String> wrong = new ConcurrentLinkedQueue<>();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                threads.add(new Thread(() -> {
                    Semaphore window = new Semaphore(WINDOW);
                    List<CompletableFuture<?>> all = new ArrayList<>(CALLS);
                    for (int i = 0; i < CALLS; i++) {
                        String message = "t" + thread + "-" + i;
                        window.acquireUninterruptibly();
                        all.add(client.call(OctoClientTest.echoCall(message)).whenComplete((reply, error) -> {
                            window.release();
                            try {
                                String got = error == null ? OctoClientTest.echoReply(reply) : error.toString();
                                if (got.equals(message)) {
                                    matched.incrementAndGet();
                                } else {
                                    wrong.add(message + " -> " + got);
                                }
                            } catch (Exception e) {
                                wrong.add(message + " -> " + e);
                            }
                        }));
                    }
                    CompletableFuture.allOf(all.toArray(new CompletableFuture<?>[0])).exceptionally(e -> null).join();
                }, "caller-" + t));
            }
            threads.forEach(Thread::start);
            for (Thread th : threads) {
                th.join(TimeUnit.MINUTES.toMillis(2));
                assertTrue(!th.isAlive(), th.getName() + " is stuck");
            }
            assertEquals(List.of(), wrong.stream().limit(5).toList());
            assertEquals(THREADS * CALLS, matched.get());
        }
    }
}
