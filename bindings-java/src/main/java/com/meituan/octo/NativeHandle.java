package com.meituan.octo;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * One native object owned by a Java object: its address, who frees it, and a guard that keeps
 * it alive while calls use it. {@link #close()} frees it once no call is using it; a Java owner
 * that becomes unreachable without being closed has it freed by the {@link Cleaner} instead,
 * so a forgotten close never leaks.
 *
 * <p>The guard is one atomic word: the count of calls in progress, and a closed bit. Calls
 * {@link #acquire()} and {@link #release()} around their use of the address; the last of them
 * (or {@code close} when none is running) frees it.
 */
final class NativeHandle implements Runnable {
    static final Cleaner CLEANER = Cleaner.create();

    private static final long CLOSED = 1L << 62;

    private final long address;
    private final LongConsumer free;
    private final String what;
    private final AtomicLong state = new AtomicLong();
    private final AtomicLong freed = new AtomicLong();
    private Cleaner.Cleanable cleanable;

    private NativeHandle(long address, LongConsumer free, String what) {
        this.address = address;
        this.free = free;
        this.what = what;
    }

    /**
     * Takes ownership of {@code address}: {@code free} runs exactly once, when the handle is closed
     * or when {@code owner} becomes unreachable. {@code free} must not refer to {@code owner}.
     */
    static NativeHandle own(Object owner, long address, LongConsumer free, String what) {
        NativeHandle h = new NativeHandle(address, free, what);
        h.cleanable = CLEANER.register(owner, h);
        return h;
    }

    /**
     * Takes ownership of {@code address} for an owner that frees it itself (with {@link #close()}),
     * also from its own Cleaner action.
     */
    static NativeHandle held(long address, LongConsumer free, String what) {
        return new NativeHandle(address, free, what);
    }

    /** The address, for a call that has {@link #acquire acquired} the handle. */
    long address() {
        return address;
    }

    /** Marks a use of the address; throws {@link OctoException} (CLOSED) once closed. */
    long acquire() {
        for (;;) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                throw new OctoException(Status.CLOSED, "the " + what + " is closed");
            }
            if (state.compareAndSet(s, s + 1)) {
                return address;
            }
        }
    }

    /** Ends a use begun by {@link #acquire()}. */
    void release() {
        long s = state.decrementAndGet();
        if (s == CLOSED) {
            freeOnce();
        }
    }

    /** True once {@link #close()} was called (or the owner was cleaned). */
    boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /** Closes: the address is freed now, or by the last call still using it. Idempotent. */
    void close() {
        if (cleanable != null) {
            cleanable.clean();
        } else {
            run();
        }
    }

    /** The Cleaner's action (also what {@link #close()} runs): never referring to the owner. */
    @Override
    public void run() {
        for (;;) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                return;
            }
            if (state.compareAndSet(s, s | CLOSED)) {
                if (s == 0) {
                    freeOnce();
                }
                return;
            }
        }
    }

    private void freeOnce() {
        if (freed.compareAndSet(0, 1)) {
            free.accept(address);
        }
    }
}
