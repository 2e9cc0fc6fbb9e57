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

    /** An exception with the status of this code (as octo.h numbers it) and a message. */
    public OctoException(int code, String message) {
        super(Status.of(code).name() + ": " + message);
        this.code = code;
        this.status = Status.of(code);
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
