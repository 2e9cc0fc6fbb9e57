package com.meituan.octo;

import java.nio.ByteBuffer;

/**
 * One call lent to an {@link InlineHandler}: its body and its answer, valid only while the
 * handler runs. Each shard thread reuses one instance for every call (no object is made per call);
 * never keep it, nor use it from another thread.
 */
public final class InlineCall {
    private static final ThreadLocal<InlineCall> CURRENT = ThreadLocal.withInitial(InlineCall::new);

    private long responder;
    private ByteBuffer body;
    private int thriftSeqid;
    private int flags;

    private InlineCall() {}

    /** This thread's instance, lent for one call. */
    static InlineCall lend(long responder, ByteBuffer body, int thriftSeqid, int flags) {
        InlineCall c = CURRENT.get();
        c.responder = responder;
        c.body = body;
        c.thriftSeqid = thriftSeqid;
        c.flags = flags;
        return c;
    }

    /** Ends the loan; returns the responder if the call is still unanswered (else 0). */
    long end() {
        long r = responder;
        responder = 0;
        body = null;
        return r;
    }

    /** The length of the body (the whole Thrift message). */
    public int bodyLength() {
        return live().remaining();
    }

    /** Copies the body (the whole Thrift message) into {@code dst} at 0; it must have room. */
    public void copyBody(byte[] dst) {
        ByteBuffer b = live();
        b.get(b.position(), dst, 0, b.remaining());
    }

    /** The seqid in the Thrift message header. */
    public int thriftSeqid() {
        return thriftSeqid;
    }

    /** True for a one-way (NoReply) call: whatever is answered is discarded. */
    public boolean isOneWay() {
        return (flags & OctoRequest.ONE_WAY) != 0;
    }

    /** How the call arrived. */
    public Framing framing() {
        return (flags & OctoRequest.THRIFT_FRAMING) != 0 ? Framing.THRIFT : Framing.OCTO;
    }

    /**
     * Answers with a wire {@code status} and {@code length} bytes of {@code body} from
     * {@code offset}: a whole Thrift message, copied into the connection's output before this
     * returns.
     */
    public void reply(Status status, byte[] body, int offset, int length) {
        if (!status.isWire()) {
            throw new OctoException(Status.INVALID_ARGUMENT, "status " + status + " cannot be sent to a caller");
        }
        if (offset < 0 || length < 0 || offset > body.length - length) {
            throw new OctoException(Status.INVALID_ARGUMENT, "the reply is out of its array's bounds");
        }
        check(Native.responderReplyArray(take(), status.code(), body, offset, length));
    }

    /** Answers with an error: a wire {@code status} (1..9) and {@code message}. */
    public void error(Status status, String message) {
        if (!status.isWire() || status == Status.SUCCESS) {
            throw new OctoException(Status.INVALID_ARGUMENT, "status " + status + " cannot be sent as an error");
        }
        check(Native.responderError(take(), status.code(), message == null ? "" : message));
    }

    /** True once answered. */
    public boolean isAnswered() {
        return responder == 0;
    }

    private ByteBuffer live() {
        ByteBuffer b = body;
        if (b == null) {
            throw new IllegalStateException("the call is valid only while its handler runs");
        }
        return b;
    }

    private long take() {
        long r = responder;
        if (r == 0) {
            throw new OctoException(body == null ? Status.CLOSED : Status.ALREADY_ANSWERED,
                    body == null ? "the call is valid only while its handler runs" : "the call was answered already");
        }
        responder = 0;
        return r;
    }

    private static void check(int code) {
        if (code != 0) {
            throw new OctoException(code, Native.lastError());
        }
    }
}
