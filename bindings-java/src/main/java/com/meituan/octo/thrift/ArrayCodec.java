package com.meituan.octo.thrift;

import com.meituan.octo.InlineCall;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.TException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessage;
import org.apache.thrift.protocol.TProtocolException;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;

/**
 * The server side's Thrift codec for one thread: a call message read from a reused array and a
 * reply written into another, both as plain Java arrays, reused from call to call.
 *
 * <p>{@link Protocol} is a {@link TBinaryProtocol} (same wire format, same checks and exceptions)
 * whose primitive reads and writes work on those arrays directly: one bounds check and one
 * load or store per number instead of a transport call and an array copy per field (the
 * library's own fast path copies every 2-, 4- and 8-byte number through a temporary array into
 * the transport). Structural methods (messages, fields, containers, skipping) are the library's,
 * running over these primitives and {@link Transport}'s buffer accessors.
 */
final class ArrayCodec {
    /** Past this size an input or output array is not kept for the next call. */
    private static final int KEEP_AT_MOST = 1 << 20;

    private static final VarHandle I16 = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle I32 = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle I64 = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);

    private final int initial;
    /** The input array of this codec (the transport may read a lent one instead). */
    private byte[] own;
    final Transport transport = new Transport();
    final Protocol protocol = new Protocol(transport);

    ArrayCodec(int initial) {
        this.initial = initial;
        own = transport.in = new byte[initial];
        transport.out = new byte[initial];
    }

    /** Starts a call: its message (the buffer's remaining bytes) is copied into the input array. */
    void load(ByteBuffer message) {
        int n = message.remaining();
        message.get(message.position(), start(n), 0, n);
    }

    /**
     * Starts a call lent inline: its message is read where it is if it came in an array (the
     * output array is still this codec's own), else copied into the input array.
     */
    void load(InlineCall call) {
        int n = call.bodyLength();
        byte[] lent = call.bodyArray();
        if (lent == null) {
            call.copyBody(start(n));
            return;
        }
        start(0);
        transport.in = lent;
        transport.inEnd = n;
    }

    /** Readies the arrays for a message of {@code n} bytes; returns the input array to fill. */
    private byte[] start(int n) {
        Transport t = transport;
        t.in = own;
        if (n > t.in.length || t.in.length > KEEP_AT_MOST) {
            t.in = own = new byte[Math.max(n, initial)];
        }
        t.inPos = 0;
        t.inEnd = n;
        if (t.out.length > KEEP_AT_MOST) {
            t.out = new byte[initial];
        }
        t.outLength = 0;
        protocol.echoed = null;
        return t.in;
    }

    /** The reply's bytes: {@link #written()} bytes of this array. */
    byte[] output() {
        return transport.out;
    }

    int written() {
        return transport.outLength;
    }

    /** The transport under {@link Protocol}: the input and output arrays and their positions. */
    static final class Transport extends TTransport {
        private final TConfiguration configuration = new TConfiguration();
        byte[] in;
        int inPos;
        int inEnd;
        byte[] out;
        int outLength;

        /** Room for {@code n} more output bytes; returns where they go. */
        int reserve(int n) {
            int at = outLength;
            if (n > out.length - at) {
                long need = (long) at + n;
                if (need > Integer.MAX_VALUE - 8) {
                    throw new OutOfMemoryError("a Thrift reply over 2 GiB");
                }
                byte[] bigger = new byte[(int) Math.max(need, Math.min(2L * out.length, Integer.MAX_VALUE - 8))];
                System.arraycopy(out, 0, bigger, 0, at);
                out = bigger;
            }
            outLength = at + n;
            return at;
        }

        /** Where the next {@code n} input bytes are (consumed), or END_OF_FILE. */
        int take(int n) throws TTransportException {
            int at = inPos;
            if (n > inEnd - at) {
                throw new TTransportException(TTransportException.END_OF_FILE, "the message ended early");
            }
            inPos = at + n;
            return at;
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
            int n = Math.min(len, inEnd - inPos);
            if (n <= 0 && len > 0) {
                throw new TTransportException(TTransportException.END_OF_FILE, "the message ended early");
            }
            System.arraycopy(in, inPos, buf, off, n);
            inPos += n;
            return n;
        }

        @Override
        public void write(byte[] buf, int off, int len) {
            int at = reserve(len); // first: it may replace out
            System.arraycopy(buf, off, out, at, len);
        }

        @Override
        public byte[] getBuffer() {
            return in;
        }

        @Override
        public int getBufferPosition() {
            return inPos;
        }

        @Override
        public int getBytesRemainingInBuffer() {
            return inEnd - inPos;
        }

        @Override
        public void consumeBuffer(int len) {
            inPos += len;
        }

        @Override
        public TConfiguration getConfiguration() {
            return configuration;
        }

        @Override
        public void updateKnownMessageSize(long size) {}

        @Override
        public void checkReadBytesAvailable(long numBytes) throws TTransportException {
            if (numBytes > inEnd - inPos) {
                throw new TTransportException(TTransportException.END_OF_FILE,
                        "the message claims " + numBytes + " bytes but has " + (inEnd - inPos));
            }
        }
    }

    /**
     * TBinaryProtocol (strict writes, lenient reads, as {@code new TBinaryProtocol(t)}) over the
     * arrays. Method names are decoded once: the message header's name is looked up among the
     * last few names read (compared byte by byte) and the same String returned, so the processor's
     * map lookup hashes nothing new; a String written again (the same object, e.g. the method
     * name constant a generated processor writes) reuses its encoded bytes, and the String
     * this call read last, written back (an Echo), is its ASCII input bytes copied.
     */
    static final class Protocol extends TBinaryProtocol {
        private static final int NAMES = 8;
        private static final int SHORT = 64;
        private final Transport t;
        private final byte[][] nameBytes = new byte[NAMES][];
        private final String[] names = new String[NAMES];
        private int nextName;
        private String lastWritten;
        private byte[] lastWrittenBytes;
        /**
         * The String the last readString of this call returned, if its bytes (at
         * {@code echoedAt} in the input) were ASCII, so that writing that same String again
         * (a service answering with an argument it was given, as Echo does) copies them
         * instead of encoding the String into a new array. Reset for every call.
         */
        String echoed;
        private int echoedAt;

        Protocol(Transport t) {
            super(t);
            this.t = t;
        }

        @Override
        public void writeByte(byte b) {
            int at = t.reserve(1); // first: it may replace t.out
            t.out[at] = b;
        }

        @Override
        public void writeI16(short i16) {
            int at = t.reserve(2);
            I16.set(t.out, at, i16);
        }

        @Override
        public void writeI32(int i32) {
            int at = t.reserve(4);
            I32.set(t.out, at, i32);
        }

        @Override
        public void writeI64(long i64) {
            int at = t.reserve(8);
            I64.set(t.out, at, i64);
        }

        @Override
        public void writeDouble(double dub) {
            writeI64(Double.doubleToLongBits(dub));
        }

        @Override
        public void writeString(String str) {
            if (str == echoed) {
                int n = str.length(); // ASCII: as many bytes as chars
                int at = t.reserve(4 + n);
                I32.set(t.out, at, n);
                System.arraycopy(t.in, echoedAt, t.out, at + 4, n);
                return;
            }
            byte[] bytes;
            if (str == lastWritten) {
                bytes = lastWrittenBytes;
            } else {
                bytes = str.getBytes(StandardCharsets.UTF_8);
                if (bytes.length <= SHORT) {
                    lastWritten = str;
                    lastWrittenBytes = bytes;
                }
            }
            int n = bytes.length;
            int at = t.reserve(4 + n);
            byte[] out = t.out;
            I32.set(out, at, n);
            if (n <= SHORT) {
                for (int i = 0; i < n; i++) { // short: no call into the copy routine
                    out[at + 4 + i] = bytes[i];
                }
            } else {
                System.arraycopy(bytes, 0, out, at + 4, n);
            }
        }

        @Override
        public TMessage readMessageBegin() throws TException {
            int size = readI32();
            if (size < 0) {
                if ((size & VERSION_MASK) != VERSION_1) {
                    throw new TProtocolException(TProtocolException.BAD_VERSION, "Bad version in readMessageBegin");
                }
                String name = readName(readI32());
                return new TMessage(name, (byte) (size & 0xff), readI32());
            }
            if (strictRead_) {
                throw new TProtocolException(TProtocolException.BAD_VERSION,
                        "Missing version in readMessageBegin, old client?");
            }
            String name = readName(size);
            return new TMessage(name, readByte(), readI32());
        }

        /** A method name of {@code size} bytes: one of the last few decoded, or decoded now. */
        private String readName(int size) throws TException {
            if (size < 0) {
                throw new TProtocolException(TProtocolException.NEGATIVE_SIZE, "Negative length: " + size);
            }
            int at = t.take(size);
            byte[] in = t.in;
            if (size > SHORT) {
                return new String(in, at, size, StandardCharsets.UTF_8);
            }
            for (int k = 0; k < NAMES; k++) {
                byte[] b = nameBytes[k];
                if (b != null && b.length == size && same(in, at, b)) {
                    return names[k];
                }
            }
            String name = new String(in, at, size, StandardCharsets.UTF_8);
            int k = nextName;
            nextName = (k + 1) % NAMES;
            nameBytes[k] = Arrays.copyOfRange(in, at, at + size);
            names[k] = name;
            return name;
        }

        private static boolean same(byte[] in, int at, byte[] b) {
            for (int i = 0; i < b.length; i++) {
                if (in[at + i] != b[i]) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public void writeBinary(ByteBuffer bin) {
            int n = bin.remaining();
            int at = t.reserve(4 + n);
            I32.set(t.out, at, n);
            bin.get(bin.position(), t.out, at + 4, n);
        }

        @Override
        public byte readByte() throws TException {
            return t.in[t.take(1)];
        }

        @Override
        public short readI16() throws TException {
            return (short) I16.get(t.in, t.take(2));
        }

        @Override
        public int readI32() throws TException {
            return (int) I32.get(t.in, t.take(4));
        }

        @Override
        public long readI64() throws TException {
            return (long) I64.get(t.in, t.take(8));
        }

        @Override
        public double readDouble() throws TException {
            return Double.longBitsToDouble(readI64());
        }

        @Override
        public String readString() throws TException {
            int size = readI32();
            if (size < 0) {
                throw new TProtocolException(TProtocolException.NEGATIVE_SIZE, "Negative length: " + size);
            }
            int at = t.take(size);
            String s = new String(t.in, at, size, StandardCharsets.UTF_8);
            // As many chars as bytes and no U+FFFD (which every malformed sequence becomes): no
            // byte began a multi-byte sequence, so all were ASCII and encoding s gives them back.
            // (For a compact Latin-1 String, indexOf of a char above 0xFF returns at once.)
            if (s.length() == size && s.indexOf('\uFFFD') < 0) {
                echoed = s;
                echoedAt = at;
            } else {
                echoed = null;
            }
            return s;
        }

        @Override
        public ByteBuffer readBinary() throws TException {
            int size = readI32();
            if (size < 0) {
                throw new TProtocolException(TProtocolException.NEGATIVE_SIZE, "Negative length: " + size);
            }
            // Like the library over a framed transport: a view of the input array, valid until
            // the next call on this thread (copy it to keep it).
            return ByteBuffer.wrap(t.in, t.take(size), size);
        }
    }
}
