package com.meituan.octo;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * A call in flight: the future its caller holds, completed by the JNI glue on the shard thread that
 * received the answer (or, with a callback executor, on that executor).
 */
final class PendingCall extends CompletableFuture<ByteBuffer> {
    private final Executor executor;

    PendingCall(Executor executor) {
        this.executor = executor;
    }

    /**
     * Called by the glue exactly once: status 0 with the answer's Thrift message, or an error status,
     * the server's (or octo's) message and the body sent with the error, if any.
     */
    void done(int status, byte[] body, String message) {
        if (executor == null) {
            settle(status, body, message);
            return;
        }
        try {
            executor.execute(() -> settle(status, body, message));
        } catch (RuntimeException e) {
            settle(status, body, message);
        }
    }

    private void settle(int status, byte[] body, String message) {
        if (status == 0) {
            complete(ByteBuffer.wrap(body == null ? new byte[0] : body));
        } else {
            completeExceptionally(OctoException.completing(status, message == null ? "" : message,
                    body == null ? null : ByteBuffer.wrap(body)));
        }
    }
}
