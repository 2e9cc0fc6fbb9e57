package com.meituan.octo;

/**
 * The outcome of a call: the OCTO status codes of PROTOCOL.md (0 to 9, what a peer or the engine
 * reported, carried in ResponseInfo.status) and the codes local to this process (100 and up:
 * misuse, lifecycle, timeouts), the same numbers as {@code octo_status} in include/octo.h.
 */
public enum Status {
    /** Success (OCTO status 0). */
    SUCCESS(0),
    /** The handler raised a declared exception (OCTO status 1). */
    APPLICATION_EXCEPTION(1),
    /** The handler failed unexpectedly (OCTO status 2). */
    RUNTIME_EXCEPTION(2),
    /** Other framework errors (OCTO status 3). */
    RPC_EXCEPTION(3),
    /** Connection-level failure (OCTO status 4). */
    TRANSPORT_EXCEPTION(4),
    /** Malformed frame, header or body (OCTO status 5). */
    PROTOCOL_EXCEPTION(5),
    /** Request shed: overload, rate limit, circuit open (OCTO status 6). */
    DEGRADE_EXCEPTION(6),
    /** Authentication or authorization refused (OCTO status 7). */
    SECURITY_EXCEPTION(7),
    /** Unknown service or method (OCTO status 8). */
    SERVICE_EXCEPTION(8),
    /** Error reported by a further hop (OCTO status 9). */
    REMOTE_EXCEPTION(9),
    /** An argument was null, out of range or otherwise invalid. */
    INVALID_ARGUMENT(100),
    /** The object was shut down or closed; the call was not carried out. */
    CLOSED(101),
    /** The deadline passed before the operation completed. */
    TIMEOUT(102),
    /** The object is in a state that does not allow the call now, or a queue is full. */
    BUSY(103),
    /** octo panicked inside the call; the panic was caught at the boundary. */
    PANIC(104),
    /** The responder was answered already: a call is answered exactly once. */
    ALREADY_ANSWERED(105),
    /** The operating system refused (e.g. the address is in use). */
    IO(106),
    /** A code this binding does not know (a newer library). */
    UNKNOWN(-1);

    private static final Status[] WIRE = {
        SUCCESS, APPLICATION_EXCEPTION, RUNTIME_EXCEPTION, RPC_EXCEPTION, TRANSPORT_EXCEPTION,
        PROTOCOL_EXCEPTION, DEGRADE_EXCEPTION, SECURITY_EXCEPTION, SERVICE_EXCEPTION, REMOTE_EXCEPTION,
    };

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /** The numeric code (as on the wire for 0..9, as in octo.h for all). */
    public int code() {
        return code;
    }

    /** True for the OCTO wire statuses 0..9. */
    public boolean isWire() {
        return code >= 0 && code <= 9;
    }

    /** The status with this code, or {@link #UNKNOWN}. */
    public static Status of(int code) {
        if (code >= 0 && code <= 9) {
            return WIRE[code];
        }
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return UNKNOWN;
    }
}
