package com.meituan.octo.thrift;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import octo.idl.Header;
import octo.idl.HeartbeatInfo;
import octo.idl.LoadInfo;
import octo.idl.RequestInfo;
import octo.idl.TraceInfo;
import org.apache.thrift.TException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessage;
import org.apache.thrift.protocol.TMessageType;
import org.apache.thrift.protocol.TProtocolException;
import org.apache.thrift.transport.TMemoryBuffer;
import org.junit.jupiter.api.Test;

/** The server's array codec writes and reads exactly what the library's TBinaryProtocol does. */
class ArrayCodecTest {
    private static Header sample() {
        return new Header()
                .setMessageType((byte) -2)
                .setRequestInfo(new RequestInfo("com.example.Écho ✓ 𝄞", Long.MIN_VALUE + 7, (byte) 1, -1))
                .setTraceInfo(new TraceInfo("appkey").setTraceId("t").setDebug(true).setSample(false))
                .setGlobalContext(Map.of("k", "v", "ключ", "значение"))
                .setLocalContext(Map.of())
                .setHeartbeatInfo(new HeartbeatInfo(4).setSendTime(1_700_000_000_123L)
                        .setLoadInfo(new LoadInfo().setAverageLoad(-0.25).setMethodQpsMap(Map.of("m", 1e300))));
    }

    private static byte[] libraryWrites(Header h) throws TException {
        TMemoryBuffer m = new TMemoryBuffer(64);
        TBinaryProtocol p = new TBinaryProtocol(m);
        p.writeMessageBegin(new TMessage("echo", TMessageType.CALL, 42));
        h.write(p);
        p.writeMessageEnd();
        return Arrays.copyOf(m.getArray(), m.length());
    }

    private static byte[] codecWrites(ArrayCodec c, Header h) throws TException {
        c.load(ByteBuffer.allocate(0));
        c.protocol.writeMessageBegin(new TMessage("echo", TMessageType.CALL, 42));
        h.write(c.protocol);
        c.protocol.writeMessageEnd();
        return Arrays.copyOf(c.output(), c.written());
    }

    @Test
    void writesTheLibrarysBytes() throws Exception {
        ArrayCodec c = new ArrayCodec(16); // small: the output array grows on the way
        byte[] expected = libraryWrites(sample());
        assertArrayEquals(expected, codecWrites(c, sample()));
        assertArrayEquals(expected, codecWrites(c, sample()), "again, over the reused arrays");
    }

    @Test
    void theTransportsOwnWritesGrowTheOutput() throws Exception {
        ArrayCodec c = new ArrayCodec(4);
        c.load(ByteBuffer.allocate(0));
        byte[] data = new byte[100];
        Arrays.fill(data, (byte) 3);
        c.protocol.getTransport().write(data, 0, 3);
        c.protocol.getTransport().write(data, 3, 97);
        assertArrayEquals(data, Arrays.copyOf(c.output(), c.written()));
    }

    @Test
    void messageHeadersStrictAndOldReadAsTheLibraryReadsThem() throws Exception {
        ArrayCodec c = new ArrayCodec(16);
        String[] names = {"echo", "greet", "echo", "a", "", "ünïcødé", "x".repeat(100), "echo", "b", "c", "d", "e"};
        for (boolean strict : new boolean[] {true, false}) {
            TMemoryBuffer m = new TMemoryBuffer(64);
            TBinaryProtocol p = new TBinaryProtocol(m, false, strict);
            for (int i = 0; i < names.length; i++) {
                p.writeMessageBegin(new TMessage(names[i], TMessageType.CALL, i));
            }
            c.load(ByteBuffer.wrap(Arrays.copyOf(m.getArray(), m.length())));
            TMessage first = null;
            for (int i = 0; i < names.length; i++) {
                TMessage read = c.protocol.readMessageBegin();
                assertEquals(new TMessage(names[i], TMessageType.CALL, i), read);
                if (i == 0) {
                    first = read;
                } else if (i == 2) {
                    assertSame(first.name, read.name, "a name read again is the same String");
                }
            }
        }
        c.load(ByteBuffer.wrap(new byte[] {(byte) 0x80, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
        assertThrows(TProtocolException.class, c.protocol::readMessageBegin, "a bad version");
    }

    @Test
    void aStringWrittenAgainIsEncodedAgainWhenItIsAnotherString() throws Exception {
        ArrayCodec c = new ArrayCodec(16);
        c.load(ByteBuffer.allocate(0));
        String a = "name";
        c.protocol.writeString(a);
        c.protocol.writeString(a);
        c.protocol.writeString(new String("nom"));
        c.protocol.writeString("ü".repeat(40));
        c.protocol.writeString("ü".repeat(40));
        TMemoryBuffer m = new TMemoryBuffer(64);
        TBinaryProtocol p = new TBinaryProtocol(m);
        for (String x : new String[] {"name", "name", "nom", "ü".repeat(40), "ü".repeat(40)}) {
            p.writeString(x);
        }
        assertArrayEquals(Arrays.copyOf(m.getArray(), m.length()), Arrays.copyOf(c.output(), c.written()));
    }

    /** Strings as the library writes them, each a length and its bytes, in one array. */
    private static byte[] libraryStrings(byte[]... raw) throws TException {
        TMemoryBuffer m = new TMemoryBuffer(64);
        TBinaryProtocol p = new TBinaryProtocol(m);
        for (byte[] r : raw) {
            p.writeBinary(ByteBuffer.wrap(r));
        }
        return Arrays.copyOf(m.getArray(), m.length());
    }

    @Test
    void aStringReadAndWrittenBackIsWhatTheLibraryWouldWrite() throws Exception {
        byte[] ascii = "hello, echo".repeat(100).getBytes(StandardCharsets.UTF_8);
        byte[] utf8 = "hé✓𝄞".getBytes(StandardCharsets.UTF_8);
        byte[] malformed = {'a', (byte) 0x80, 'b', (byte) 0xff};
        byte[] replacement = "a\uFFFDb".getBytes(StandardCharsets.UTF_8); // a real U+FFFD
        byte[] empty = {};
        ArrayCodec c = new ArrayCodec(16);
        for (byte[] raw : new byte[][] {ascii, utf8, malformed, replacement, empty}) {
            c.load(ByteBuffer.wrap(libraryStrings(raw)));
            String s = c.protocol.readString();
            c.protocol.writeString(s); // the echo: the same String back
            c.protocol.writeString(s);
            TMemoryBuffer m = new TMemoryBuffer(64);
            TBinaryProtocol p = new TBinaryProtocol(m);
            p.writeString(s);
            p.writeString(s);
            assertArrayEquals(Arrays.copyOf(m.getArray(), m.length()), Arrays.copyOf(c.output(), c.written()),
                    "written back: " + Arrays.toString(raw));
        }
        // A String read in one call and written in the next is encoded, not copied from the
        // input the next call has replaced.
        c.load(ByteBuffer.wrap(libraryStrings("first".getBytes(StandardCharsets.UTF_8))));
        String first = c.protocol.readString();
        c.load(ByteBuffer.wrap(libraryStrings("other".getBytes(StandardCharsets.UTF_8))));
        assertEquals("other", c.protocol.readString());
        c.load(ByteBuffer.wrap(libraryStrings("third".getBytes(StandardCharsets.UTF_8))));
        c.protocol.writeString(first);
        assertArrayEquals(libraryStrings("first".getBytes(StandardCharsets.UTF_8)),
                Arrays.copyOf(c.output(), c.written()));
        // Two strings read: only the last is copied back; the first is encoded.
        c.load(ByteBuffer.wrap(libraryStrings("one".getBytes(StandardCharsets.UTF_8), utf8)));
        String one = c.protocol.readString();
        String two = c.protocol.readString();
        c.protocol.writeString(two);
        c.protocol.writeString(one);
        assertArrayEquals(libraryStrings(utf8, "one".getBytes(StandardCharsets.UTF_8)),
                Arrays.copyOf(c.output(), c.written()));
    }

    @Test
    void readsWhatTheLibraryWrote() throws Exception {
        ArrayCodec c = new ArrayCodec(16);
        byte[] bytes = libraryWrites(sample());
        for (ByteBuffer in : new ByteBuffer[] {ByteBuffer.wrap(bytes), ByteBuffer.allocateDirect(bytes.length).put(bytes).flip()}) {
            c.load(in);
            TMessage m = c.protocol.readMessageBegin();
            assertEquals(new TMessage("echo", TMessageType.CALL, 42), m);
            Header back = new Header();
            back.read(c.protocol);
            assertEquals(sample(), back);
        }
    }

    @Test
    void binaryFieldsRoundTripFromHeapAndDirectBuffers() throws Exception {
        ArrayCodec c = new ArrayCodec(16);
        byte[] data = new byte[300];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 7);
        }
        c.load(ByteBuffer.allocate(0));
        c.protocol.writeBinary(ByteBuffer.wrap(data, 5, 200));
        c.protocol.writeBinary(ByteBuffer.allocateDirect(300).put(data).flip().position(10));
        c.protocol.writeDouble(Double.NaN);
        byte[] written = Arrays.copyOf(c.output(), c.written());

        TMemoryBuffer m = new TMemoryBuffer(64);
        TBinaryProtocol p = new TBinaryProtocol(m);
        p.writeBinary(ByteBuffer.wrap(Arrays.copyOfRange(data, 5, 205)));
        p.writeBinary(ByteBuffer.wrap(Arrays.copyOfRange(data, 10, 300)));
        p.writeDouble(Double.NaN);
        assertArrayEquals(Arrays.copyOf(m.getArray(), m.length()), written);

        c.load(ByteBuffer.wrap(written));
        assertEquals(ByteBuffer.wrap(data, 5, 200), c.protocol.readBinary());
        assertEquals(ByteBuffer.wrap(data, 10, 290), c.protocol.readBinary());
        assertEquals(Double.NaN, c.protocol.readDouble());
    }

    @Test
    void aTruncatedOrLyingMessageIsATException() throws Exception {
        ArrayCodec c = new ArrayCodec(16);
        byte[] bytes = libraryWrites(sample());
        for (int n = 0; n < bytes.length; n++) {
            c.load(ByteBuffer.wrap(bytes, 0, n));
            assertThrows(TException.class, () -> {
                c.protocol.readMessageBegin();
                new Header().read(c.protocol);
            }, "prefix of " + n + " bytes");
        }
        c.load(ByteBuffer.wrap(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xfe}));
        assertThrows(TException.class, c.protocol::readString, "a negative length");
        c.load(ByteBuffer.wrap(new byte[] {0, 0, 0, 9, 'a'}));
        assertThrows(TException.class, c.protocol::readBinary, "a length past the end");
    }
}
