package com.meituan.octo;

import com.meituan.octo.thrift.ThriftService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import octo.idl.Echo;

/**
 * Run in a child JVM (heap fixed and pre-touched, so RSS moves only with native memory) by
 * {@link NativeMemoryTest}: a Java client calls a Java Echo server in the same process, CALLS times
 * with WINDOW calls in flight, and the resident set size is sampled every SAMPLE calls after a
 * warm-up. Prints one JSON line.
 * Usage: MemoryLoop CALLS WARMUP SAMPLE WINDOW
 */
public final class MemoryLoop {
    private MemoryLoop() {}

    static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no VmRSS");
    }

    public static void main(String[] args) throws Exception {
        long calls = Long.parseLong(args[0]);
        long warmup = Long.parseLong(args[1]);
        long sample = Long.parseLong(args[2]);
        int window = Integer.parseInt(args[3]);
        byte[] request = OctoServerTest.callEcho("x".repeat(1024));
        List<Long> samples = new ArrayList<>();
        AtomicLong failures = new AtomicLong();
        long start;
        try (OctoServer server = OctoServer.builder().host("127.0.0.1").shards(1)
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build().start();
                OctoClient client = OctoClient.builder().directConnAddress("127.0.0.1:" + server.port())
                        .serviceName("Echo").timeoutMillis(30_000).shards(1).build()) {
            Semaphore inFlight = new Semaphore(window);
            start = System.nanoTime();
            for (long i = 0; i < warmup + calls; i++) {
                if (i >= warmup && (i - warmup) % sample == 0) {
                    inFlight.acquireUninterruptibly(window); // quiesce: nothing in flight while sampling
                    samples.add(rssKb());
                    inFlight.release(window);
                }
                inFlight.acquireUninterruptibly();
                // A direct request (the zero-copy path) every other call, a heap one otherwise.
                ByteBuffer body = (i & 1) == 0 ? ByteBuffer.wrap(request)
                        : ByteBuffer.allocateDirect(request.length).put(request).flip();
                client.call(body).whenComplete((reply, error) -> {
                    if (error != null || reply.remaining() < 1024) {
                        failures.incrementAndGet();
                    }
                    inFlight.release();
                });
            }
            inFlight.acquireUninterruptibly(window);
            samples.add(rssKb());
        }
        double secs = (System.nanoTime() - start) / 1e9;
        long first = samples.get(0);
        long last = samples.get(samples.size() - 1);
        long max = samples.stream().mapToLong(Long::longValue).max().orElse(0);
        System.out.println("{\"calls\":" + calls + ",\"failures\":" + failures.get() + ",\"secs\":"
                + String.format("%.1f", secs) + ",\"rss_after_warmup_kb\":" + first + ",\"rss_end_kb\":" + last
                + ",\"rss_max_kb\":" + max + ",\"growth_kb\":" + (last - first) + ",\"samples_kb\":" + samples + "}");
    }
}
