package com.meituan.octo;

import java.nio.ByteBuffer;

/**
 * A service registered on a server: its name and handler, and the entry point the JNI glue calls
 * on a shard thread for each call routed to it. The glue holds it through a global reference,
 * deleted when octo finalizes the service (after the server is shut down or freed).
 */
final class Service {
    private final String name;
    private final OctoHandler handler;
    /** The handler, if it answers every call before returning (no Responder, no OctoRequest). */
    private final InlineHandler inline;

    Service(String name, OctoHandler handler) {
        this.name = name;
        this.handler = handler;
        this.inline = handler instanceof InlineHandler && ((InlineHandler) handler).answersInline()
                ? (InlineHandler) handler
                : null;
    }

    String name() {
        return name;
    }

    /** True if the glue should call {@link #dispatchArray} (the body copied into a byte[]). */
    boolean inlineArray() {
        return inline != null;
    }

    /**
     * Called by the glue for one call of an inline service, on a shard thread: the body is the
     * first {@code length} bytes of {@code body}, the thread's reused array. Owns the responder.
     */
    void dispatchArray(long responder, byte[] body, int length, int thriftSeqid, int flags) {
        InlineCall call = InlineCall.lend(responder, body, length, thriftSeqid, flags);
        Throwable failure = null;
        try {
            inline.handleInline(call);
        } catch (Throwable t) {
            failure = t;
        }
        finish(call, failure);
    }

    /**
     * Called by the glue for one call, on a shard thread. Returns true once it owns
     * {@code responder} (it then answers or frees it exactly once); false or an exception tells the
     * glue to free it.
     */
    boolean dispatch(long request, long responder, ByteBuffer body, long sequenceId, int thriftSeqid,
            int timeoutMillis, int argsOffset, int flags) {
        if (inline != null) {
            dispatchInline(responder, body, thriftSeqid, flags);
            return true;
        }
        Responder r = new Responder(responder);
        OctoRequest req = null;
        try {
            req = new OctoRequest(name, request, body.asReadOnlyBuffer(), sequenceId, thriftSeqid, timeoutMillis,
                    argsOffset, flags);
            handler.handle(req, r);
            r.deferred();
        } catch (Throwable t) {
            r.fail(t);
        } finally {
            if (req != null) {
                req.expire();
            }
        }
        return true;
    }

    /** The inline path: the body is lent through this thread's InlineCall, answered before return. */
    private void dispatchInline(long responder, ByteBuffer body, int thriftSeqid, int flags) {
        InlineCall call = InlineCall.lend(responder, body, thriftSeqid, flags);
        Throwable failure = null;
        try {
            inline.handleInline(call);
        } catch (Throwable t) {
            failure = t;
        }
        finish(call, failure);
    }

    /** Ends an inline call's loan; answers it if the handler did not. */
    private static void finish(InlineCall call, Throwable failure) {
        long unanswered = call.end();
        if (unanswered != 0) {
            Responder.fail(unanswered, failure != null ? failure
                    : new IllegalStateException("the inline handler returned without answering"));
        }
    }
}
