package com.meituan.octo;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One call as a handler sees it: the service, the method, the ids, the caller's timeout, the
 * contexts and the body.
 *
 * <p>The body is the whole Thrift message (message header, then the args struct), as a read-only
 * direct {@link ByteBuffer} over the connection's native read buffer: nothing was copied. Like
 * everything else here it is valid only while the handler runs; keep it longer with
 * {@link #retainBody()} (no copy either) or copy what you need.
 */
public final class OctoRequest {
    private final String service;
    private final ByteBuffer body;
    private final long sequenceId;
    private final int thriftSeqid;
    private final int timeoutMillis;
    private final int argsOffset;
    private final int flags;
    private long request;
    private String method;

    static final int ONE_WAY = 1;
    static final int THRIFT_FRAMING = 2;
    static final int SHARD_SHIFT = 8;

    OctoRequest(String service, long request, ByteBuffer body, long sequenceId, int thriftSeqid,
            int timeoutMillis, int argsOffset, int flags) {
        this.service = service;
        this.request = request;
        this.body = body;
        this.sequenceId = sequenceId;
        this.thriftSeqid = thriftSeqid;
        this.timeoutMillis = timeoutMillis;
        this.argsOffset = argsOffset;
        this.flags = flags;
    }

    /** Ends the handler's loan: the native request is gone. */
    void expire() {
        request = 0;
    }

    /** The service called (RequestInfo.serviceName; the default service for native Thrift). */
    public String service() {
        return service;
    }

    /** The Thrift method name (read from the message header on first use). */
    public String method() {
        if (method == null) {
            method = ThriftMessages.methodName(body);
        }
        return method;
    }

    /** The 64-bit sequence id (OCTO), or the Thrift seqid (native Thrift). */
    public long sequenceId() {
        return sequenceId;
    }

    /** The seqid in the Thrift message header (a reply message carries it back). */
    public int thriftSeqid() {
        return thriftSeqid;
    }

    /** The caller's timeout in milliseconds; 0 if it sent none. */
    public int timeoutMillis() {
        return timeoutMillis;
    }

    /** True for a one-way (NoReply) call: whatever is answered is discarded. */
    public boolean isOneWay() {
        return (flags & ONE_WAY) != 0;
    }

    /** How the call arrived. */
    public Framing framing() {
        return (flags & THRIFT_FRAMING) != 0 ? Framing.THRIFT : Framing.OCTO;
    }

    /** The shard (thread) running the handler, 0-based. */
    public int shard() {
        return flags >>> SHARD_SHIFT;
    }

    /**
     * The whole Thrift message, read-only, over native memory; valid only while the handler runs.
     * Each call returns a new view (its own position and limit) of the same bytes.
     */
    public ByteBuffer body() {
        return body.duplicate();
    }

    /** The args struct: the body after the Thrift message header (same validity as {@link #body()}). */
    public ByteBuffer args() {
        return body.duplicate().position(argsOffset).slice();
    }

    /**
     * Keeps the body past the handler without copying it: the returned buffer shares the received
     * bytes and must be closed (a forgotten one is freed once unreachable).
     */
    public OctoBuffer retainBody() {
        return new OctoBuffer(Native.requestBodyRetain(live()));
    }

    /** The caller's TraceInfo (OCTO only), or null when it sent none. */
    public TraceInfo traceInfo() {
        return Native.requestTraceInfo(live());
    }

    /** The whole-call-chain context (globalContext, OCTO only), in wire order; empty if absent. */
    public Map<String, String> globalContext() {
        return context(0);
    }

    /** The single-hop context (localContext, OCTO only), in wire order; empty if absent. */
    public Map<String, String> localContext() {
        return context(1);
    }

    private Map<String, String> context(int which) {
        String[] kv = Native.requestContext(live(), which);
        if (kv.length == 0) {
            return Collections.emptyMap();
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.putIfAbsent(kv[i], kv[i + 1]);
        }
        return Collections.unmodifiableMap(m);
    }

    private long live() {
        long r = request;
        if (r == 0) {
            throw new IllegalStateException("the request is valid only while its handler runs");
        }
        return r;
    }

    @Override
    public String toString() {
        return "OctoRequest{" + service + "." + method() + " seq=" + sequenceId + (isOneWay() ? " one-way" : "")
                + " " + framing() + " body=" + body.remaining() + "B}";
    }

    static String utf8(ByteBuffer b, int at, int len) {
        byte[] bytes = new byte[len];
        b.get(at, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
