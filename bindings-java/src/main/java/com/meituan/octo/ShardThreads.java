package com.meituan.octo;

/**
 * Which threads are octo's shard threads (they run handlers and call completions): a shard thread
 * must never wait for a call, since the answer may need that very thread.
 */
final class ShardThreads {
    private static final ThreadLocal<Boolean> SHARD = new ThreadLocal<>();

    private ShardThreads() {}

    /** Marks the current thread: called by the glue once, when it attaches a shard thread to the JVM. */
    static void enter() {
        SHARD.set(Boolean.TRUE);
    }

    /** True on a shard thread (one the glue attached to run handlers and completions). */
    static boolean current() {
        return SHARD.get() != null;
    }
}
