package com.meituan.octo;

/**
 * The running shards (one io_uring thread per CPU) that servers and clients run on.
 *
 * <p>An {@link OctoServer} or {@link OctoClient} built without an engine makes its own and frees it
 * when closed; several can share one engine by passing it to their builders. Closing an engine
 * that servers or clients still use only marks it closed: its shards stop when the last of them
 * is closed. A forgotten engine is freed once it becomes unreachable (Cleaner).
 *
 * <p>Threads: any thread. Never close anything from inside a handler (a shard thread).
 */
public final class OctoEngine implements AutoCloseable {
    static {
        NativeLibrary.load();
    }

    private final NativeHandle handle;
    private final int shards;

    private OctoEngine(Builder b) {
        long address = Native.engineNew(b.shards, b.pinShards, b.cpus, b.ringEntries, b.maxFrameSize,
                b.maxConnectionsPerShard, b.maxInFlightPerConnection, b.idleTimeoutMillis,
                b.writeHighWater, b.writeLowWater);
        this.handle = NativeHandle.own(this, address, Native::engineFree, "engine");
        this.shards = Native.engineShardCount(address);
    }

    /** Starts configuring an engine (one shard per available CPU, pinned, by default). */
    public static Builder builder() {
        return new Builder();
    }

    /** The number of shard threads. */
    public int shards() {
        return shards;
    }

    /** The guard servers and clients hold for their lifetime (they acquire it once). */
    NativeHandle handle() {
        return handle;
    }

    /** Closes the engine: its shards stop now, or when the last server or client on it is closed. */
    @Override
    public void close() {
        handle.close();
    }

    /** The configuration of an engine; every value left unset keeps octo's default. */
    public static final class Builder {
        private int shards = -1;
        private boolean pinShards = true;
        private int[] cpus;
        private int ringEntries = -1;
        private int maxFrameSize = -1;
        private int maxConnectionsPerShard = -1;
        private int maxInFlightPerConnection = -1;
        private int idleTimeoutMillis = -1;
        private int writeHighWater = -1;
        private int writeLowWater = -1;

        private Builder() {}

        /** Shard threads (default: one per available CPU; at most 1024). */
        public Builder shards(int shards) {
            this.shards = positive(shards, "shards");
            return this;
        }

        /** Pin shard threads to CPUs (default true). */
        public Builder pinShards(boolean pin) {
            this.pinShards = pin;
            return this;
        }

        /** CPUs to pin shard i to ({@code cpus[i % cpus.length]}); default: the i-th available CPU. */
        public Builder cpus(int... cpus) {
            this.cpus = cpus.clone();
            return this;
        }

        /** Submission queue entries per shard ring (default 1024). */
        public Builder ringEntries(int entries) {
            this.ringEntries = positive(entries, "ringEntries");
            return this;
        }

        /** The largest frame a peer may send, in bytes (default 16 MiB). */
        public Builder maxFrameSize(int bytes) {
            this.maxFrameSize = positive(bytes, "maxFrameSize");
            return this;
        }

        /** Connections each shard accepts per server (default 16384). */
        public Builder maxConnectionsPerShard(int n) {
            this.maxConnectionsPerShard = positive(n, "maxConnectionsPerShard");
            return this;
        }

        /** Calls answered later that one connection may have open; more get status 6 (default 4096). */
        public Builder maxInFlightPerConnection(int n) {
            this.maxInFlightPerConnection = positive(n, "maxInFlightPerConnection");
            return this;
        }

        /** An idle server connection is closed after this long; 0 = never (default 180000 ms). */
        public Builder idleTimeoutMillis(int millis) {
            if (millis < 0) {
                throw new IllegalArgumentException("idleTimeoutMillis must be >= 0");
            }
            this.idleTimeoutMillis = millis;
            return this;
        }

        /** A connection stops reading above {@code high} unsent bytes, until they fall to {@code low}. */
        public Builder writeWaterMarks(int low, int high) {
            this.writeLowWater = positive(low, "low");
            this.writeHighWater = positive(high, "high");
            return this;
        }

        /** Starts the shards. */
        public OctoEngine build() {
            return new OctoEngine(this);
        }

        private static int positive(int v, String what) {
            if (v <= 0) {
                throw new IllegalArgumentException(what + " must be > 0, not " + v);
            }
            return v;
        }
    }
}
