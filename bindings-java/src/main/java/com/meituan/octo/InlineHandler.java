package com.meituan.octo;

/**
 * A handler that answers every call before it returns, on the shard thread that received it:
 * octo's own fast path (used by {@code ThriftService} without an executor), with no object made
 * per call. The call is lent through an {@link InlineCall} that the shard thread reuses.
 *
 * <p>A handler that returns true from {@link #answersInline()} gets {@link #handleInline} instead
 * of {@link OctoHandler#handle}. It must answer the call before returning; one that returns
 * without answering has the call answered with status 2 (RuntimeException), and one that throws
 * has it answered as {@link OctoHandler#handle} would.
 */
public interface InlineHandler extends OctoHandler {
    /** True if calls go to {@link #handleInline} (checked once, when the server is built). */
    boolean answersInline();

    /** Handles one call and answers it through {@code call} before returning. */
    void handleInline(InlineCall call) throws Exception;
}
