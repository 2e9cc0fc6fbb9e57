package com.meituan.octo;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The answer to one call, given exactly once, from any thread.
 *
 * <p>Answered while the handler runs (on its shard thread), the answer is written straight into the
 * connection's output buffer. Answered later, from any thread, it travels back to the connection's
 * shard. A responder that is never answered and becomes unreachable answers status 3
 * (RpcException) by itself, so no call stays open forever. Answers to one-way calls are discarded.
 *
 * <p>A body is a whole Thrift message: the REPLY header (the call's method and
 * {@link OctoRequest#thriftSeqid() thrift seqid}), then the result struct. It is copied before the
 * answering method returns, so the caller may reuse its buffer at once.
 */
public final class Responder {
    /** The native responder, until it is answered or freed (then 0). Shared with the Cleaner. */
    private final Slot slot;
    /** The Cleaner registration of a deferred responder, dropped once it is answered. */
    private volatile java.lang.ref.Cleaner.Cleanable cleanable;

    Responder(long responder) {
        this.slot = new Slot(responder);
    }

    /** Answers with success and {@code body}, a whole Thrift REPLY message (its remaining bytes). */
    public void ok(ByteBuffer body) {
        reply(Status.SUCCESS, body);
    }

    /** Answers with success and {@code body}, a whole Thrift REPLY message. */
    public void ok(byte[] body) {
        ok(ByteBuffer.wrap(body));
    }

    /**
     * Answers with a wire {@code status} (0..9; e.g. 1, APPLICATION_EXCEPTION, for a declared exception
     * carried in the result struct) and {@code body}, a whole Thrift message (its remaining bytes).
     *
     * @throws OctoException ALREADY_ANSWERED on a second answer; INVALID_ARGUMENT for a local status
     */
    public void reply(Status status, ByteBuffer body) {
        checkWire(status, true);
        long r = take();
        int code;
        if (body.isDirect()) {
            code = Native.responderReply(r, status.code(), body, body.position(), body.remaining());
        } else if (body.hasArray()) {
            code = Native.responderReplyArray(r, status.code(), body.array(), body.arrayOffset() + body.position(),
                    body.remaining());
        } else {
            byte[] copy = new byte[body.remaining()];
            body.duplicate().get(copy);
            code = Native.responderReplyArray(r, status.code(), copy, 0, copy.length);
        }
        check(code);
    }

    /**
     * Answers with an error: a wire {@code status} (1..9) and {@code message}, sent as
     * ResponseInfo.message and as a TApplicationException body (what a native Thrift caller sees).
     */
    public void error(Status status, String message) {
        checkWire(status, false);
        check(Native.responderError(take(), status.code(), message == null ? "" : message));
    }

    /** True once an answer was given (or the responder was abandoned). */
    public boolean isAnswered() {
        return slot.get() == 0;
    }

    /** Keeps the call open past the handler: from now on an unreachable responder answers status 3. */
    void deferred() {
        if (!isAnswered()) {
            cleanable = NativeHandle.CLEANER.register(this, slot);
            if (isAnswered()) {
                cleanable.clean(); // answered meanwhile by another thread: nothing to guard
            }
        }
    }

    /** Answers status 2 (or the exception's wire status) if the call is still open; for a failed handler. */
    void fail(Throwable t) {
        long r = slot.getAndSet(0);
        if (r != 0) {
            fail(r, t);
        }
    }

    /** Answers the native responder {@code r} for a failed handler (and frees it). */
    static void fail(long r, Throwable t) {
        Status status = Status.RUNTIME_EXCEPTION;
        if (t instanceof OctoException && ((OctoException) t).status().isWire()
                && ((OctoException) t).status() != Status.SUCCESS) {
            status = ((OctoException) t).status();
        }
        String message;
        try {
            message = t.toString();
        } catch (RuntimeException e) {
            message = t.getClass().getName();
        }
        Native.responderError(r, status.code(), message);
    }

    private long take() {
        long r = slot.getAndSet(0);
        if (r == 0) {
            throw new OctoException(Status.ALREADY_ANSWERED, "the call was answered already");
        }
        java.lang.ref.Cleaner.Cleanable c = cleanable;
        if (c != null) {
            c.clean(); // a no-op action now (the slot is empty) that unregisters it
        }
        return r;
    }

    private static void checkWire(Status status, boolean allowSuccess) {
        if (!status.isWire() || (!allowSuccess && status == Status.SUCCESS)) {
            throw new OctoException(Status.INVALID_ARGUMENT, "status " + status + " cannot be sent to a caller");
        }
    }

    private static void check(int code) {
        if (code != 0) {
            throw new OctoException(code, Native.lastError());
        }
    }

    /** The native responder's address; the Cleaner's action frees it unanswered (status 3). */
    private static final class Slot extends AtomicLong implements Runnable {
        private static final long serialVersionUID = 1L;

        Slot(long responder) {
            super(responder);
        }

        @Override
        public void run() {
            long r = getAndSet(0);
            if (r != 0) {
                Native.responderFree(r);
            }
        }
    }
}
