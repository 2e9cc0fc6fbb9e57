package com.meituan.octo;

import java.nio.ByteBuffer;

/**
 * Reads and patches the header of a Thrift TBinaryProtocol message in place: strict
 * ({@code 0x8001 version | type, name, seqid}) or old non-strict ({@code name, type, seqid}).
 */
public final class ThriftMessages {
    private static final int VERSION_MASK = 0xffff0000;
    private static final int VERSION_1 = 0x80010000;

    private ThriftMessages() {}

    /** The method name of the message at {@code b.position()}; "" if the header is malformed. */
    public static String methodName(ByteBuffer b) {
        int at = b.position();
        int end = b.limit();
        if (end - at < 8) {
            return "";
        }
        int first = b.getInt(at);
        int len = (first & VERSION_MASK) == VERSION_1 ? b.getInt(at + 4) : first;
        int nameAt = (first & VERSION_MASK) == VERSION_1 ? at + 8 : at + 4;
        if (len < 0 || len > end - nameAt) {
            return "";
        }
        return OctoRequest.utf8(b, nameAt, len);
    }

    /** The offset (from {@code b.position()}) of the i32 seqid, or -1 if the header is malformed. */
    public static int seqidOffset(ByteBuffer b) {
        int at = b.position();
        int end = b.limit();
        if (end - at < 8) {
            return -1;
        }
        int first = b.getInt(at);
        int off;
        if (first < 0) {
            if ((first & VERSION_MASK) != VERSION_1) {
                return -1;
            }
            int len = b.getInt(at + 4);
            if (len < 0) {
                return -1;
            }
            off = 8 + len;
        } else {
            off = 4 + first + 1;
        }
        return off >= 0 && off + 4 <= end - at ? off : -1;
    }

    /** The message type (1 CALL, 2 REPLY, 3 EXCEPTION, 4 ONEWAY), or -1 if malformed. */
    public static int messageType(ByteBuffer b) {
        int at = b.position();
        if (b.limit() - at < 8) {
            return -1;
        }
        int first = b.getInt(at);
        if (first < 0) {
            return (first & VERSION_MASK) == VERSION_1 ? first & 0xff : -1;
        }
        int typeAt = at + 4 + first;
        return first <= b.limit() - at - 5 ? b.get(typeAt) : -1;
    }
}
