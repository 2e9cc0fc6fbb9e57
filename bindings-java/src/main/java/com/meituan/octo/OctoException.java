package com.meituan.octo;

/**
 * A failed call or operation, carrying the {@link Status} it maps to, so that Java, C++ and Rust
 * report the same cause. For a call answered with an error, {@link #status()} is the OCTO status
 * the server sent (1 to 9) and the message is its ResponseInfo.message; local failures (a timeout,
 * a closed client, a bad argument) carry the local statuses (100 and up).
 */
public class OctoException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Status status;
    private final int code;
    private final transient java.nio.ByteBuffer body;

    /** An exception with the status of this code (as octo.h numbers it) and a message. */
    public OctoException(int code, String message) {
        this(code, message, (java.nio.ByteBuffer) null);
    }

    /**
     * An exception for a call answered with status {@code code}, the server's message and the
     * Thrift message it sent with the error ({@code body}, may be null).
     */
    public OctoException(int code, String message, java.nio.ByteBuffer body) {
        super(Status.of(code).name() + ": " + message);
        this.code = code;
        this.status = Status.of(code);
        this.body = body;
    }

    /**
     * A failure delivered to a call's future, made without a stack trace. It is made on the shard
     * thread that saw the failure, where the stack says only that the glue completed a future, and
     * filling one in took about 0.4 us of that thread's time (10 ns without; a loop of 200,000
     * on this project's machines), per call in a storm of timeouts.
     * A blocking call rethrows it as a new exception with its caller's stack.
     */
    static OctoException completing(int code, String message, java.nio.ByteBuffer body) {
        return new OctoException(code, message, body, false);
    }

    private OctoException(int code, String message, java.nio.ByteBuffer body, boolean writableStackTrace) {
        super(Status.of(code).name() + ": " + message, null, true, writableStackTrace);
        this.code = code;
        this.status = Status.of(code);
        this.body = body;
    }

    /** An exception with this status and message. */
    public OctoException(Status status, String message) {
        this(status.code(), message);
    }

    /** An exception with this status, a message and the cause. */
    public OctoException(Status status, String message, Throwable cause) {
        this(status.code(), message);
        initCause(cause);
    }

    /**
     * The Thrift message the server answered with, when the call was answered with an error status
     * (a TApplicationException, or for status 1 the result struct carrying a declared exception);
     * null for local failures. Read-only.
     */
    public java.nio.ByteBuffer body() {
        return body == null ? null : body.asReadOnlyBuffer();
    }

    /** The status this failure maps to. */
    public Status status() {
        return status;
    }

    /** The numeric status code (the wire code for OCTO statuses). */
    public int code() {
        return code;
    }

    /** True when the call's deadline passed (status TIMEOUT). */
    public boolean isTimeout() {
        return status == Status.TIMEOUT;
    }
}
