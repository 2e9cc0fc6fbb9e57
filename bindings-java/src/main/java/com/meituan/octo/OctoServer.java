package com.meituan.octo;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An OCTO and Apache Thrift server: one port served on every shard of its engine, OCTO frames and
 * native framed Thrift detected per connection, calls routed to services by serviceName (native
 * Thrift calls go to the default service: the first one added unless {@link Builder#defaultService}
 * names another).
 *
 * <pre>{@code
 * try (OctoServer server = OctoServer.builder()
 *         .port(9001)
 *         .shards(2)
 *         .service("com.example.Echo", (request, responder) -> responder.ok(reply(request)))
 *         .build()) {
 *     server.start();
 *     ...
 * } // close(): a graceful shutdown, then the native server and its own engine are freed
 * }</pre>
 *
 * <p>Threads: any thread. From inside a handler (a shard thread) {@link #port()}, {@link #stats()}
 * and {@link #answers} work; {@code start()} and {@code close()} there would wait for that very
 * thread and are refused. A forgotten server is shut down without
 * grace and freed once it becomes unreachable — as long as no handler refers to it (the handlers are
 * held by the native side until the server is freed).
 */
public final class OctoServer implements AutoCloseable {
    /** The grace {@link #close()} gives calls in flight. */
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(5);

    static {
        NativeLibrary.load();
    }

    private final NativeHandle handle;
    private final OctoEngine ownEngine;
    private final List<String> services;
    private volatile boolean started;

    private OctoServer(Builder b) {
        if (b.services.isEmpty()) {
            throw new IllegalArgumentException("a server needs at least one service");
        }
        OctoEngine own = null;
        OctoEngine engine = b.engine;
        if (engine == null) {
            OctoEngine.Builder eb = OctoEngine.builder();
            if (b.shards > 0) {
                eb.shards(b.shards);
            }
            engine = own = eb.build();
        }
        NativeHandle engineHandle = engine.handle();
        long e = engineHandle.acquire();
        long s;
        try {
            s = Native.serverNew(e, b.host + ":" + b.port);
        } catch (RuntimeException ex) {
            engineHandle.release();
            if (own != null) {
                own.close();
            }
            throw ex;
        }
        // The server holds the engine until it is freed; its own engine closes with it.
        this.handle = NativeHandle.own(this, s, address -> {
            Native.serverFree(address);
            engineHandle.release();
        }, "server");
        this.ownEngine = own;
        if (own != null) {
            own.close(); // marked closed; its shards stop once the server releases it
        }
        try {
            for (Map.Entry<String, OctoHandler> svc : b.services.entrySet()) {
                Service service = new Service(svc.getKey(), svc.getValue());
                Native.serverAddService(s, svc.getKey(), service, service.inlineArray());
            }
            if (b.defaultService != null) {
                Native.serverSetDefaultService(s, b.defaultService);
            }
        } catch (RuntimeException ex) {
            handle.close();
            throw ex;
        }
        this.services = List.copyOf(new ArrayList<>(b.services.keySet()));
    }

    /** Starts configuring a server. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Binds the port on every shard and starts serving.
     *
     * @throws OctoException IO if the port cannot be bound (the server is then unusable: close it)
     */
    public OctoServer start() {
        long s = handle.acquire();
        try {
            Native.serverStart(s);
            started = true;
        } finally {
            handle.release();
        }
        return this;
    }

    /** The port the server listens on (the one picked by the kernel when built with port 0). */
    public int port() {
        long s = handle.acquire();
        try {
            return Native.serverPort(s);
        } finally {
            handle.release();
        }
    }

    /** The names of the services, in the order they were added. */
    public List<String> services() {
        return services;
    }

    /**
     * The server's counters: {@code [connectionsAccepted, connectionsRefused, connectionsOpen, requests,
     * expired, heartbeats, closedOnBadInput, answers with status 0, ..., answers with status 9]}.
     */
    public long[] stats() {
        long s = handle.acquire();
        try {
            return Native.serverStats(s);
        } finally {
            handle.release();
        }
    }

    /** Answers given with {@code status}, summed over shards (handlers' answers and the engine's). */
    public long answers(Status status) {
        if (!status.isWire()) {
            throw new IllegalArgumentException(status + " is not a wire status");
        }
        return stats()[7 + status.code()];
    }

    /**
     * Shuts down gracefully: stops accepting, lets calls in flight be answered and flushed, and
     * closes every connection once it owes nothing, or at {@code grace} whatever is left. Returns
     * when every connection is closed. The server cannot be started again.
     */
    public void shutdown(Duration grace) {
        long s = handle.acquire();
        try {
            Native.serverShutdown(s, (int) Math.min(Integer.MAX_VALUE, Math.max(0, grace.toMillis())));
        } finally {
            handle.release();
        }
    }

    /** Shuts down gracefully ({@link #DEFAULT_GRACE}) if running, then frees the server (and its own engine). */
    @Override
    public void close() {
        if (handle.isClosed()) {
            return;
        }
        if (started) {
            try {
                shutdown(DEFAULT_GRACE);
            } catch (OctoException e) {
                if (e.status() != Status.CLOSED) {
                    throw e;
                }
            }
        }
        handle.close();
    }

    /** True if this server made its engine (and frees it when closed). */
    boolean ownsEngine() {
        return ownEngine != null;
    }

    /** The configuration of a server. */
    public static final class Builder {
        private String host = "0.0.0.0";
        private int port;
        private int shards;
        private OctoEngine engine;
        private final Map<String, OctoHandler> services = new LinkedHashMap<>();
        private String defaultService;

        private Builder() {}

        /** The TCP port (0, the default, lets the kernel pick one: see {@link OctoServer#port()}). */
        public Builder port(int port) {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port " + port + " is outside 0..65535");
            }
            this.port = port;
            return this;
        }

        /** The address to bind (default 0.0.0.0, every interface); an IPv6 address in brackets. */
        public Builder host(String host) {
            this.host = host;
            return this;
        }

        /** Shard threads of the server's own engine (default: one per CPU); ignored with {@link #engine}. */
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

        /** Adds the service {@code serviceName} (RequestInfo.serviceName) handled by {@code handler}. */
        public Builder service(String serviceName, OctoHandler handler) {
            if (serviceName == null || serviceName.isEmpty() || handler == null) {
                throw new IllegalArgumentException("a service needs a name and a handler");
            }
            if (services.putIfAbsent(serviceName, handler) != null) {
                throw new IllegalArgumentException("a service named " + serviceName + " was added already");
            }
            return this;
        }

        /** The service native Thrift calls go to (default: the first one added). */
        public Builder defaultService(String serviceName) {
            this.defaultService = serviceName;
            return this;
        }

        /** Makes the server (not started yet: see {@link OctoServer#start()}). */
        public OctoServer build() {
            return new OctoServer(this);
        }
    }
}
