package com.meituan.octo.bench;

import com.meituan.octo.OctoClient;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import octo.idl.Echo;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.transport.TMemoryBuffer;

/**
 * The Java async client benchmark: THREADS caller threads keep up to IN_FLIGHT calls (in total) of
 * {@code Echo.echo} with a 1 KiB string in flight through {@link OctoClient#call}, for SECS seconds
 * after a 2-second warm-up. Prints one JSON line: calls per second, errors.
 * Usage: {@code ClientMain HOST:PORT [SECS] [IN_FLIGHT] [THREADS] [SHARDS]}
 */
public final class ClientMain {
    private ClientMain() {}

    public static void main(String[] args) throws Exception {
        String address = args[0];
        double secs = args.length > 1 ? Double.parseDouble(args[1]) : 5;
        int inFlight = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : 4;
        int shards = args.length > 4 ? Integer.parseInt(args[4]) : 1;
        TMemoryBuffer buffer = new TMemoryBuffer(2048);
        new Echo.Client(new TBinaryProtocol(buffer)).send_echo("x".repeat(1024));
        byte[] request = java.util.Arrays.copyOf(buffer.getArray(), buffer.length());

        LongAdder done = new LongAdder();
        LongAdder errors = new LongAdder();
        AtomicBoolean stop = new AtomicBoolean();
        try (OctoClient client = OctoClient.builder().directConnAddress(address).serviceName("Echo")
                .timeoutMillis(10_000).shards(shards).build()) {
            client.callBlocking(ByteBuffer.wrap(request)); // connected
            List<Thread> callers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int perThread = Math.max(1, inFlight / threads);
                // Callers refill their window a quarter at a time: waking a caller per answer would
                // measure context switches rather than the client.
                int batch = Math.max(1, perThread / 4);
                Semaphore window = new Semaphore(perThread);
                Thread th = new Thread(() -> {
                    while (!stop.get()) {
                        window.acquireUninterruptibly(batch);
                        for (int i = 0; i < batch; i++) {
                            client.call(ByteBuffer.wrap(request)).whenComplete((reply, error) -> {
                                if (error != null || reply.remaining() < 1024) {
                                    errors.increment();
                                }
                                done.increment();
                                window.release();
                            });
                        }
                    }
                }, "caller-" + t);
                th.setDaemon(true);
                callers.add(th);
                th.start();
            }
            Thread.sleep(2000);
            long before = done.sum();
            long errorsBefore = errors.sum();
            long start = System.nanoTime();
            Thread.sleep((long) (secs * 1000));
            long calls = done.sum() - before;
            double elapsed = (System.nanoTime() - start) / 1e9;
            stop.set(true);
            for (Thread th : callers) {
                th.join(5000);
            }
            System.out.printf("{\"calls\":%d,\"secs\":%.2f,\"calls_per_s\":%.0f,\"errors\":%d,\"in_flight\":%d,"
                    + "\"threads\":%d,\"shards\":%d}%n", calls, elapsed, calls / elapsed, errors.sum() - errorsBefore,
                    inFlight, threads, shards);
        }
    }
}
