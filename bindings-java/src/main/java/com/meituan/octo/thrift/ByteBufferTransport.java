package com.meituan.octo.thrift;

import java.nio.ByteBuffer;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;

/**
 * A Thrift transport that reads one message from a {@link ByteBuffer} (direct or heap) in place and
 * writes into a growable array that is reused from message to message. Reads never copy more than
 * the protocol asks for; a heap buffer's array is exposed to the protocol's fast paths. The server
 * side ({@link ThriftService}) uses it as is; {@link OctoTransport} adds the client's flush.
 */
class ByteBufferTransport extends TTransport {
    /** Past this size the output array is not kept for the next message. */
    private static final int KEEP_AT_MOST = 1 << 20;

    private final TConfiguration configuration = new TConfiguration();
    private final int initialOutput;
    private ByteBuffer in = ByteBuffer.allocate(0);
    private byte[] out;
    private int outLength;

    ByteBufferTransport(int initialOutput) {
        this.initialOutput = initialOutput;
        this.out = new byte[initialOutput];
    }

    /** Starts reading {@code message} (its remaining bytes) and forgets what was written. */
    ByteBufferTransport reset(ByteBuffer message) {
        this.in = message;
        this.outLength = 0;
        if (out.length > KEEP_AT_MOST) {
            out = new byte[initialOutput];
        }
        return this;
    }

    /** The bytes written since the last reset, as a heap buffer over the reused array. */
    ByteBuffer written() {
        return ByteBuffer.wrap(out, 0, outLength);
    }

    /** Drops a read buffer that may point at native memory about to go away. */
    void clearInput() {
        in = ByteBuffer.allocate(0);
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    public void open() {}

    @Override
    public void close() {}

    @Override
    public int read(byte[] buf, int off, int len) throws TTransportException {
        int n = Math.min(len, in.remaining());
        if (n <= 0 && len > 0) {
            throw new TTransportException(TTransportException.END_OF_FILE, "the message ended early");
        }
        in.get(buf, off, n);
        return n;
    }

    @Override
    public void write(byte[] buf, int off, int len) {
        int need = outLength + len;
        if (need > out.length) {
            int grown = Math.max(need, out.length * 2);
            byte[] bigger = new byte[grown];
            System.arraycopy(out, 0, bigger, 0, outLength);
            out = bigger;
        }
        System.arraycopy(buf, off, out, outLength, len);
        outLength = need;
    }

    @Override
    public byte[] getBuffer() {
        return in.hasArray() ? in.array() : null;
    }

    @Override
    public int getBufferPosition() {
        return in.hasArray() ? in.arrayOffset() + in.position() : 0;
    }

    @Override
    public int getBytesRemainingInBuffer() {
        return in.hasArray() ? in.remaining() : -1;
    }

    @Override
    public void consumeBuffer(int len) {
        in.position(in.position() + len);
    }

    @Override
    public TConfiguration getConfiguration() {
        return configuration;
    }

    @Override
    public void updateKnownMessageSize(long size) {}

    @Override
    public void checkReadBytesAvailable(long numBytes) throws TTransportException {
        if (numBytes > in.remaining()) {
            throw new TTransportException(TTransportException.END_OF_FILE,
                    "the message claims " + numBytes + " bytes but has " + in.remaining());
        }
    }
}
