package com.meituan.octo;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;

/**
 * A client of OCTO (or plain framed Thrift) servers: multiplexed connections on octo's shards,
 * spread over the endpoints of {@link Builder#directConnAddress}, each call matched to its answer by
 * sequence id and failed with status TIMEOUT when its deadline passes.
 *
 * <p>A request body is a whole Thrift message (the CALL header, then the args struct), exactly
 * what a generated Thrift client writes; octo owns the sequence id and rewrites the message's seqid
 * on the wire. The answer is the server's whole Thrift message (REPLY, with the seqid octo
 * chose). Errors are {@link OctoException}s carrying the OCTO status: what the server answered
 * (1..9, with its message and body) or a local failure (TIMEOUT, CLOSED, ...).
 *
 * <pre>{@code
 * try (OctoClient client = OctoClient.builder()
 *         .directConnAddress("127.0.0.1:9001,127.0.0.1:9002")
 *         .serviceName("com.example.Echo")
 *         .timeoutMillis(500)
 *         .build()) {
 *     ByteBuffer reply = client.call(request).join();
 * }
 * }</pre>
 *
 * <p>Threads: every method may be called from any thread, concurrently, except from inside an octo
 * handler or completion (shard threads) for the blocking ones. Futures complete on the shard
 * thread that received the answer unless a {@link Builder#callbackExecutor callback executor} is
 * given: never block in a dependent stage there (use the *Async variants). A forgotten client is
 * freed once it becomes unreachable.
 */
public final class OctoClient implements AutoCloseable {
    static {
        NativeLibrary.load();
    }

    private final Builder config;
    private final String[] endpoints;
    private final NativeHandle engine;
    private final Natives natives;
    private final ConcurrentHashMap<String, NativeHandle> byService;
    private final java.lang.ref.Cleaner.Cleanable cleanable;

    private OctoClient(Builder b) {
        if (b.directConnAddress == null || b.directConnAddress.isBlank()) {
            throw new IllegalArgumentException("a client needs directConnAddress (host:port[,host:port...])");
        }
        this.config = b.copy();
        this.endpoints = parseEndpoints(b.directConnAddress);
        OctoEngine e = b.engine;
        OctoEngine own = null;
        if (e == null) {
            OctoEngine.Builder eb = OctoEngine.builder();
            if (b.shards > 0) {
                eb.shards(b.shards);
            }
            e = own = eb.build();
        }
        this.engine = e.handle();
        this.engine.acquire(); // released when the client is closed or cleaned
        if (own != null) {
            own.close(); // its shards stop once this client releases it
        }
        this.natives = new Natives(engine);
        this.byService = natives.clients;
        // close() runs this, or the Cleaner does once the client is unreachable: exactly once.
        this.cleanable = NativeHandle.CLEANER.register(this, natives);
        if (config.serviceName != null) {
            service(config.serviceName); // connect eagerly for the default service
        }
    }

    /** Starts configuring a client. */
    public static Builder builder() {
        return new Builder();
    }

    /** The native client for {@code service}, made on first use (octo's clients are per service). */
    private NativeHandle service(String service) {
        NativeHandle h = byService.get(service);
        if (h != null) {
            return h;
        }
        synchronized (byService) {
            if (natives.closed) {
                throw new OctoException(Status.CLOSED, "the client is closed");
            }
            h = byService.get(service);
            if (h == null) {
                // The client holds the engine until Natives.run, which takes this same lock first.
                long c = Native.clientNew(engine.address(), service, endpoints, config.framing.ordinal(),
                        config.timeoutMillis, config.connectTimeoutMillis, config.appkey);
                // Not registered with the Cleaner itself: Natives frees it with the OctoClient.
                h = NativeHandle.held(c, Native::clientFree, "client");
                byService.put(service, h);
            }
            return h;
        }
    }

    private String defaultService() {
        if (config.serviceName == null) {
            throw new IllegalStateException("no serviceName was configured: name the service in the call");
        }
        return config.serviceName;
    }

    /** Calls the configured {@link Builder#serviceName service}. */
    public CompletableFuture<ByteBuffer> call(ByteBuffer request) {
        return call(defaultService(), request);
    }

    /**
     * Calls {@code service} with {@code request} (its remaining bytes: a whole Thrift CALL message,
     * copied before this returns) and the client's timeout.
     */
    public CompletableFuture<ByteBuffer> call(String service, ByteBuffer request) {
        return call(service, request, config.timeoutMillis);
    }

    /** Calls {@code service} with its own timeout in milliseconds. */
    public CompletableFuture<ByteBuffer> call(String service, ByteBuffer request, int timeoutMillis) {
        PendingCall pending = new PendingCall(config.callbackExecutor);
        NativeHandle h = service(service);
        long c = h.acquire();
        try {
            int st = request.isDirect()
                    ? Native.clientCall(c, request, request.position(), request.remaining(), timeoutMillis, pending)
                    : Native.clientCallArray(c, array(request), arrayOffset(request), request.remaining(),
                            timeoutMillis, pending);
            if (st != 0) {
                pending.completeExceptionally(new OctoException(st, Native.lastError()));
            }
        } finally {
            h.release();
        }
        return pending;
    }

    /** Calls the configured service and waits for the answer. */
    public ByteBuffer callBlocking(ByteBuffer request) {
        return callBlocking(defaultService(), request);
    }

    /**
     * Calls {@code service} and waits for the answer (at most the timeout: then OctoException
     * TIMEOUT). Not from a shard thread.
     */
    public ByteBuffer callBlocking(String service, ByteBuffer request) {
        if (ShardThreads.current()) {
            throw new OctoException(Status.BUSY,
                    "a blocking call on a shard thread would block the shard that must carry its answer");
        }
        CompletableFuture<ByteBuffer> f = call(service, request);
        try {
            return f.get();
        } catch (ExecutionException | CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof OctoException) {
                throw new OctoException(((OctoException) cause).code(), strip(cause.getMessage()),
                        ((OctoException) cause).body());
            }
            throw new OctoException(Status.RPC_EXCEPTION, String.valueOf(cause), cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new OctoException(Status.RPC_EXCEPTION, "interrupted while waiting for the answer", e);
        }
    }

    /** Sends a one-way call to the configured service. */
    public void oneWay(ByteBuffer request) {
        oneWay(defaultService(), request);
    }

    /**
     * Sends a one-way (NoReply) call to {@code service}: no answer is awaited. Fails only if it
     * cannot be sent (e.g. CLOSED); the server may still not receive it.
     */
    public void oneWay(String service, ByteBuffer request) {
        NativeHandle h = service(service);
        long c = h.acquire();
        try {
            int st = request.isDirect()
                    ? Native.clientOneWay(c, request, request.position(), request.remaining())
                    : Native.clientOneWayArray(c, array(request), arrayOffset(request), request.remaining());
            if (st != 0) {
                throw new OctoException(st, Native.lastError());
            }
        } finally {
            h.release();
        }
    }

    /** The client's timeout in milliseconds. */
    public int timeoutMillis() {
        return config.timeoutMillis;
    }

    /** The configured service, or null. */
    public String serviceName() {
        return config.serviceName;
    }

    /** Closes every connection; calls still in flight fail with CLOSED or TRANSPORT_EXCEPTION. Idempotent. */
    @Override
    public void close() {
        cleanable.clean();
    }

    /**
     * {@code host:port[,host:port...]} as "IP:PORT" strings (host names resolved now, IPv6 in
     * brackets); IllegalArgumentException for anything else.
     */
    static String[] parseEndpoints(String list) {
        String[] parts = list.split(",");
        java.util.List<String> out = new java.util.ArrayList<>();
        for (String raw : parts) {
            String p = raw.trim();
            if (p.isEmpty()) {
                continue;
            }
            int colon = p.lastIndexOf(':');
            if (colon <= 0 || colon == p.length() - 1) {
                throw new IllegalArgumentException("endpoint " + p + " is not host:port");
            }
            String host = p.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            int port;
            try {
                port = Integer.parseInt(p.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("endpoint " + p + " has no valid port", e);
            }
            if (port <= 0 || port > 65535) {
                throw new IllegalArgumentException("endpoint " + p + " has port " + port + " outside 1..65535");
            }
            java.net.InetAddress address;
            try {
                address = java.net.InetAddress.getByName(host);
            } catch (java.net.UnknownHostException e) {
                throw new IllegalArgumentException("endpoint " + p + ": unknown host", e);
            }
            String ip = address.getHostAddress();
            out.add((address instanceof java.net.Inet6Address ? "[" + ip + "]" : ip) + ":" + port);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("no endpoint in \"" + list + "\"");
        }
        return out.toArray(new String[0]);
    }

    private static byte[] array(ByteBuffer b) {
        if (b.hasArray()) {
            return b.array();
        }
        byte[] copy = new byte[b.remaining()];
        b.duplicate().get(copy);
        return copy;
    }

    private static int arrayOffset(ByteBuffer b) {
        return b.hasArray() ? b.arrayOffset() + b.position() : 0;
    }

    private static String strip(String message) {
        int colon = message == null ? -1 : message.indexOf(": ");
        return colon < 0 ? String.valueOf(message) : message.substring(colon + 2);
    }

    /** The client's native clients and its hold on the engine, freed exactly once (close or Cleaner). */
    private static final class Natives implements Runnable {
        final ConcurrentHashMap<String, NativeHandle> clients = new ConcurrentHashMap<>();
        private final NativeHandle engine;
        volatile boolean closed;

        Natives(NativeHandle engine) {
            this.engine = engine;
        }

        @Override
        public void run() {
            synchronized (clients) {
                closed = true;
                for (NativeHandle h : clients.values()) {
                    h.close();
                }
                clients.clear();
            }
            engine.release();
        }
    }

    /** The configuration of a client (Dorado's words where they fit). */
    public static final class Builder implements Cloneable {
        private String directConnAddress;
        private String serviceName;
        private String appkey = "";
        private Framing framing = Framing.OCTO;
        private int timeoutMillis = 1000;
        private int connectTimeoutMillis = -1;
        private int shards;
        private OctoEngine engine;
        private Executor callbackExecutor;

        private Builder() {}

        private Builder copy() {
            try {
                return (Builder) clone();
            } catch (CloneNotSupportedException e) {
                throw new AssertionError(e);
            }
        }

        /** The servers: {@code host:port[,host:port...]} (IP addresses); calls are spread over those up. */
        public Builder directConnAddress(String endpoints) {
            this.directConnAddress = endpoints;
            return this;
        }

        /** The service that {@link OctoClient#call(ByteBuffer)} and Thrift clients call (RequestInfo.serviceName). */
        public Builder serviceName(String serviceName) {
            this.serviceName = serviceName;
            return this;
        }

        /** This caller's appkey, sent in TraceInfo.clientAppkey. */
        public Builder appkey(String appkey) {
            this.appkey = appkey == null ? "" : appkey;
            return this;
        }

        /** OCTO frames (default) or Apache Thrift's framed transport. */
        public Builder framing(Framing framing) {
            this.framing = framing;
            return this;
        }

        /** The default per-call timeout (default 1000 ms), also sent to the server in RequestInfo. */
        public Builder timeoutMillis(int millis) {
            if (millis <= 0) {
                throw new IllegalArgumentException("timeoutMillis must be > 0");
            }
            this.timeoutMillis = millis;
            return this;
        }

        /** The default per-call timeout. */
        public Builder timeout(Duration timeout) {
            return timeoutMillis((int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        }

        /** How long a connection attempt may take (default: octo's). */
        public Builder connectTimeoutMillis(int millis) {
            if (millis <= 0) {
                throw new IllegalArgumentException("connectTimeoutMillis must be > 0");
            }
            this.connectTimeoutMillis = millis;
            return this;
        }

        /** Shard threads of the client's own engine (default: one per CPU); ignored with {@link #engine}. */
        public Builder shards(int shards) {
            if (shards <= 0) {
                throw new IllegalArgumentException("shards must be > 0");
            }
            this.shards = shards;
            return this;
        }

        /** Runs on a shared engine instead of making one. */
        public Builder engine(OctoEngine engine) {
            this.engine = engine;
            return this;
        }

        /** Completes futures on this executor instead of on the shard threads. */
        public Builder callbackExecutor(Executor executor) {
            this.callbackExecutor = executor;
            return this;
        }

        /** Makes the client (connections open in the background). */
        public OctoClient build() {
            return new OctoClient(this);
        }
    }
}
