package com.meituan.octo;

/**
 * A service: answers the calls routed to it by serviceName (native Thrift calls go to the
 * server's default service).
 *
 * <p>It runs on octo's shard threads, several at once, so it must never block: answer at once
 * through the {@link Responder} (the answer is then written straight into the connection's output,
 * the fastest path), or keep the responder, return, and answer later from any thread. A handler
 * that throws has the call answered with status 2 (RuntimeException), or with the status of an
 * {@link OctoException} it throws.
 */
@FunctionalInterface
public interface OctoHandler {
    /**
     * Handles one call. {@code request} and its body are valid only until this method returns
     * ({@link OctoRequest#retainBody()} keeps the body longer, without a copy); {@code responder}
     * stays valid until it is answered.
     */
    void handle(OctoRequest request, Responder responder) throws Exception;
}
