package com.meituan.octo.thrift;

import com.meituan.octo.InlineCall;
import com.meituan.octo.InlineHandler;
import com.meituan.octo.OctoBuffer;
import com.meituan.octo.OctoRequest;
import com.meituan.octo.Responder;
import com.meituan.octo.Status;
import java.nio.ByteBuffer;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.TException;
import org.apache.thrift.TProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessageType;
import org.apache.thrift.protocol.TType;

/**
 * An octo service that runs an Apache Thrift generated {@link TProcessor} (e.g.
 * {@code new Echo.Processor<>(impl)}), unchanged, over TBinaryProtocol.
 *
 * <p>The request is copied once from octo's native buffer into a per-thread array (on the shard
 * thread the glue copies it into that thread's array before the upcall: {@link InlineHandler}), and
 * the reply is written into another per-thread array, both reused from call to call; the protocol
 * is TBinaryProtocol reading and writing those arrays in place ({@link ArrayCodec}). The reply is
 * copied once, straight from that array into the connection's output. The answer's OCTO status
 * follows what the processor wrote: 0 for a result, 1 (ApplicationException) for a declared
 * exception in the result struct, 8 (ServiceException) for an unknown method, 5
 * (ProtocolException) for malformed arguments and 2 (RuntimeException) for anything else the
 * implementation threw; the body is always the processor's own message, so a native Thrift
 * caller sees exactly what a Thrift server would have sent.
 *
 * <p>By default the processor runs on the shard thread that received the call, the fastest path
 * for implementations that never block. Give an {@link Executor} for implementations that block:
 * the body is then kept without a copy and processed there.
 */
public final class ThriftService implements InlineHandler {
    private static final int INITIAL_ARRAYS = 4096;

    private final TProcessor processor;
    private final Executor executor;
    private final ThreadLocal<ArrayCodec> codecs = ThreadLocal.withInitial(() -> new ArrayCodec(INITIAL_ARRAYS));

    /** Runs {@code processor} on the shard threads (its implementation must never block). */
    public ThriftService(TProcessor processor) {
        this(processor, null);
    }

    /** Runs {@code processor} on {@code executor} (null: on the shard threads). */
    public ThriftService(TProcessor processor, Executor executor) {
        if (processor == null) {
            throw new IllegalArgumentException("processor is null");
        }
        this.processor = processor;
        this.executor = executor;
    }

    /** Without an executor every call is answered on the shard thread, before the handler returns. */
    @Override
    public boolean answersInline() {
        return executor == null;
    }

    /** The shard thread's path: no object per call but what the processor itself makes. */
    @Override
    public void handleInline(InlineCall call) {
        ArrayCodec c = codecs.get();
        c.load(call);
        try {
            processor.process(c.protocol, c.protocol);
        } catch (TException | RuntimeException e) {
            call.error(Status.PROTOCOL_EXCEPTION, "the Thrift message could not be processed: " + e);
            return;
        }
        int n = c.written();
        // n == 0: a one-way call; no reply was written and none will be sent.
        call.reply(n == 0 ? Status.SUCCESS : statusOf(ByteBuffer.wrap(c.output(), 0, n)), c.output(), 0, n);
    }

    @Override
    public void handle(OctoRequest request, Responder responder) {
        if (executor == null) {
            process(request.body(), responder);
            return;
        }
        OctoBuffer body = request.retainBody();
        try {
            executor.execute(() -> {
                try (body) {
                    process(body.buffer(), responder);
                }
            });
        } catch (RejectedExecutionException e) {
            body.close();
            responder.error(Status.DEGRADE_EXCEPTION, "the service's executor refused the call: " + e.getMessage());
        }
    }

    private void process(ByteBuffer body, Responder responder) {
        ArrayCodec c = codecs.get();
        c.load(body);
        try {
            processor.process(c.protocol, c.protocol);
        } catch (TException | RuntimeException e) {
            responder.error(Status.PROTOCOL_EXCEPTION, "the Thrift message could not be processed: " + e);
            return;
        }
        ByteBuffer reply = ByteBuffer.wrap(c.output(), 0, c.written());
        if (reply.remaining() == 0) {
            // A one-way call: no reply was written and none will be sent.
            responder.ok(reply);
            return;
        }
        responder.reply(statusOf(reply), reply);
    }

    /** The OCTO status of the reply message the processor wrote. */
    static Status statusOf(ByteBuffer reply) {
        int type = com.meituan.octo.ThriftMessages.messageType(reply);
        int seqidAt = com.meituan.octo.ThriftMessages.seqidOffset(reply);
        if (seqidAt < 0) {
            return Status.RUNTIME_EXCEPTION;
        }
        int structAt = reply.position() + seqidAt + 4;
        if (type == TMessageType.REPLY) {
            if (structAt >= reply.limit()) {
                return Status.RUNTIME_EXCEPTION;
            }
            byte fieldType = reply.get(structAt);
            if (fieldType == TType.STOP) {
                return Status.SUCCESS; // a void method's empty result
            }
            if (structAt + 3 > reply.limit()) {
                return Status.RUNTIME_EXCEPTION;
            }
            short fieldId = reply.getShort(structAt + 1);
            return fieldId == 0 ? Status.SUCCESS : Status.APPLICATION_EXCEPTION;
        }
        if (type == TMessageType.EXCEPTION) {
            ByteBufferTransport t = new ByteBufferTransport(0);
            t.reset(reply.duplicate().position(structAt));
            try {
                TApplicationException e = TApplicationException.readFrom(new TBinaryProtocol(t));
                switch (e.getType()) {
                    case TApplicationException.UNKNOWN_METHOD:
                        return Status.SERVICE_EXCEPTION;
                    case TApplicationException.PROTOCOL_ERROR:
                    case TApplicationException.INVALID_MESSAGE_TYPE:
                    case TApplicationException.WRONG_METHOD_NAME:
                        return Status.PROTOCOL_EXCEPTION;
                    default:
                        return Status.RUNTIME_EXCEPTION;
                }
            } catch (TException e) {
                return Status.RUNTIME_EXCEPTION;
            }
        }
        return Status.RUNTIME_EXCEPTION;
    }
}
