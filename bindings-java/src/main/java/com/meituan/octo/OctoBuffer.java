package com.meituan.octo;

import java.nio.ByteBuffer;

/**
 * Bytes owned by octo's native side (a retained request body), seen through a read-only direct
 * {@link ByteBuffer} without a copy. Close it when done: the view must not be used afterwards. A
 * forgotten buffer is freed once it becomes unreachable.
 */
public final class OctoBuffer implements AutoCloseable {
    private final NativeHandle handle;
    private final ByteBuffer view;

    OctoBuffer(long buf) {
        this.handle = NativeHandle.own(this, buf, Native::bufFree, "buffer");
        ByteBuffer v = Native.bufView(buf);
        this.view = (v == null ? ByteBuffer.allocateDirect(0) : v).asReadOnlyBuffer();
    }

    /** A new view (own position and limit) of the bytes; valid until {@link #close()}. */
    public ByteBuffer buffer() {
        if (handle.isClosed()) {
            throw new OctoException(Status.CLOSED, "the buffer is closed");
        }
        return view.duplicate();
    }

    /** The number of bytes. */
    public int length() {
        return view.capacity();
    }

    /** The native handle, for a call that consumes or reads it while this buffer is open. */
    NativeHandle handle() {
        return handle;
    }

    /** Frees the bytes (once every other holder of them is done). Idempotent. */
    @Override
    public void close() {
        handle.close();
    }
}
