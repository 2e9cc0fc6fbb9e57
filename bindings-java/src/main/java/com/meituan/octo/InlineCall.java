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
    /** The body: in {@code array} (its first {@code length} bytes), or else in {@code body}. */
    private ByteBuffer body;
    private byte[] array;
    private int length;
    private boolean lent;
    private int thriftSeqid;
    private int flags;

    private InlineCall() {}

    /** This thread's instance, lent for one call. */
    static InlineCall lend(long responder, ByteBuffer body, int thriftSeqid, int flags) {
        return CURRENT.get().take(responder, body, null, body.remaining(), thriftSeqid, flags);
    }

    /** As above, with the body in the first {@code length} bytes of {@code array}. */
    static InlineCall lend(long responder, byte[] array, int length, int thriftSeqid, int flags) {
        return CURRENT.get().take(responder, null, array, length, thriftSeqid, flags);
    }

    private InlineCall take(long responder, ByteBuffer body, byte[] array, int length, int thriftSeqid,
            int flags) {
        this.responder = responder;
        this.body = body;
        this.array = array;
        this.length = length;
        this.lent = true;
        this.thriftSeqid = thriftSeqid;
        this.flags = flags;
        return this;
    }

    /** Ends the loan; returns the responder if the call is still unanswered (else 0). */
    long end() {
        long r = responder;
        responder = 0;
        body = null;
        array = null;
        lent = false;
        return r;
    }

    /** The length of the body (the whole Thrift message). */
    public int bodyLength() {
        live();
        return length;
    }

    /** Copies the body (the whole Thrift message) into {@code dst} at 0; it must have room. */
    public void copyBody(byte[] dst) {
        live();
        if (array != null) {
            System.arraycopy(array, 0, dst, 0, length);
        } else {
            body.get(body.position(), dst, 0, length);
        }
    }

    /**
     * The array holding the body in its first {@link #bodyLength()} bytes, if the body was
     * delivered in one (then no copy is needed to read it), else null. Lent like the call: the
     * shard thread reuses it for its next call, so never keep it nor write into it.
     */
    public byte[] bodyArray() {
        live();
        return array;
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
        check(Native.responderReplyInline(take(), status.code(), body, offset, length));
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

    private void live() {
        if (!lent) {
            throw new IllegalStateException("the call is valid only while its handler runs");
        }
    }

    private long take() {
        long r = responder;
        if (r == 0) {
            throw new OctoException(lent ? Status.ALREADY_ANSWERED : Status.CLOSED,
                    lent ? "the call was answered already" : "the call is valid only while its handler runs");
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
