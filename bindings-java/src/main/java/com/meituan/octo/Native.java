package com.meituan.octo;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Every crossing into libocto: the native methods the JNI glue (src/main/c) registers in
 * {@code JNI_OnLoad}, one per C ABI operation, plus the few helpers the glue calls back.
 *
 * <p>Conventions: addresses of native objects travel as {@code long}; a method declared to return a
 * status code returns the {@code octo_status} as an int (hot paths, no exception machinery) and
 * leaves the message for {@link #lastError()}; every other method throws {@link OctoException}
 * carrying the status.
 */
final class Native {
    static {
        NativeLibrary.load();
    }

    private Native() {}

    // The library.
    static native String version();

    static native String lastError();

    static native String statusName(int code);

    // Engines.
    static native long engineNew(int shards, boolean pinShards, int[] cpus, int ringEntries, int maxFrameSize,
            int maxConnectionsPerShard, int maxInFlightPerConnection, int idleTimeoutMillis, int writeHighWater,
            int writeLowWater);

    static native int engineShardCount(long engine);

    static native void engineFree(long engine);

    // Servers.
    static native long serverNew(long engine, String address);

    /** {@code inlineArray}: calls go to {@link Service#dispatchArray} with the body in a byte[]. */
    static native void serverAddService(long server, String name, Service service, boolean inlineArray);

    static native void serverSetDefaultService(long server, String name);

    static native void serverStart(long server);

    static native int serverPort(long server);

    static native long[] serverStats(long server);

    static native void serverShutdown(long server, int deadlineMillis);

    static native void serverFree(long server);

    // The call a handler is running (valid only during its handler).
    /** Nine UTF-8 strings in TraceInfo field order (null when absent; debug and sample as {-1|0|1}), or null. */
    static native byte[][] requestTraceInfoRaw(long request);

    /** Keys and values in turn, wire order. */
    static native byte[][] requestContextRaw(long request, int which);

    static native long requestBodyRetain(long request);

    // Responders: each answers and frees the responder in one crossing.
    static native int responderReply(long responder, int status, ByteBuffer body, int position, int length);

    static native int responderReplyArray(long responder, int status, byte[] body, int offset, int length);

    /** Answers and frees, copying the region (checked by the caller) straight into the output. */
    static native int responderReplyInline(long responder, int status, byte[] body, int offset, int length);

    static native int responderError(long responder, int status, String message);

    static native void responderFree(long responder);

    // Clients (one native client per service).
    /** {@code endpoints}: "IP:PORT" each; {@code framing}: the Framing ordinal (= octo_framing). */
    static native long clientNew(long engine, String service, String[] endpoints, int framing, int timeoutMillis,
            int connectTimeoutMillis, String appkey);

    /** Starts a call; {@code call.done} runs exactly once if this returns 0. */
    static native int clientCall(long client, ByteBuffer body, int position, int length, int timeoutMillis,
            PendingCall call);

    static native int clientCallArray(long client, byte[] body, int offset, int length, int timeoutMillis,
            PendingCall call);

    static native int clientOneWay(long client, ByteBuffer body, int position, int length);

    static native int clientOneWayArray(long client, byte[] body, int offset, int length);

    static native void clientFree(long client);

    // Buffers.
    /** A direct view of the buffer's bytes, or null when it is empty. */
    static native ByteBuffer bufView(long buf);

    static native void bufFree(long buf);

    // Helpers over the raw forms.
    static TraceInfo requestTraceInfo(long request) {
        byte[][] f = requestTraceInfoRaw(request);
        if (f == null) {
            return null;
        }
        return new TraceInfo(str(f[0]), str(f[1]), str(f[2]), str(f[3]), str(f[4]), str(f[5]), bool(f[6]),
                bool(f[7]), str(f[8]));
    }

    static String[] requestContext(long request, int which) {
        byte[][] raw = requestContextRaw(request, which);
        String[] out = new String[raw.length];
        for (int i = 0; i < raw.length; i++) {
            out[i] = str(raw[i]);
        }
        return out;
    }

    private static String str(byte[] utf8) {
        return utf8 == null ? null : new String(utf8, StandardCharsets.UTF_8);
    }

    private static Boolean bool(byte[] tri) {
        return tri == null || tri.length == 0 || tri[0] < 0 ? null : tri[0] != 0;
    }

    /** Called by the glue to make Java strings from UTF-8 (octo's text is not modified UTF-8). */
    static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
