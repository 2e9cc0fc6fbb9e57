package com.meituan.octo.thrift;

import com.meituan.octo.OctoClient;
import com.meituan.octo.OctoException;
import com.meituan.octo.Status;
import com.meituan.octo.ThriftMessages;
import java.nio.ByteBuffer;
import org.apache.thrift.protocol.TMessageType;
import org.apache.thrift.transport.TTransportException;

/**
 * The Thrift transport a generated client (e.g. {@code Echo.Client}) calls through octo: each
 * message the client writes and flushes is one octo call of the service, and the answer is what
 * the client then reads. One-way messages are sent as one-way calls.
 *
 * <p>octo owns sequence ids on the wire; this transport puts the generated client's own seqid back
 * into each answer, so the client's sequence check holds. A declared exception (status 1) reaches
 * the generated client as the declared exception, and every other answer with a body (e.g. status
 * 2 or 8 with a TApplicationException) as what an Apache Thrift server would have sent; failures
 * without a body (timeouts, closed client, connection loss) surface as a
 * {@link TTransportException} whose cause is the {@link OctoException} with the OCTO status.
 *
 * <p>Like generated clients, a transport is for one thread at a time; make one per thread (they are
 * cheap: the connections belong to the {@link OctoClient}).
 */
public final class OctoTransport extends ByteBufferTransport {
    private final OctoClient client;
    private final String service;

    /** A transport calling {@code service} through {@code client} (which stays the caller's to close). */
    public OctoTransport(OctoClient client, String service) {
        super(256);
        this.client = client;
        this.service = service;
    }

    @Override
    public void flush() throws TTransportException {
        ByteBuffer request = written();
        // The next message starts afresh whatever happens to this one; `request` keeps its array.
        reset(ByteBuffer.allocate(0));
        int seqidAt = ThriftMessages.seqidOffset(request);
        if (seqidAt < 0) {
            throw new TTransportException(TTransportException.UNKNOWN, "the client wrote no Thrift message");
        }
        int seqid = request.getInt(request.position() + seqidAt);
        ByteBuffer answer;
        try {
            if (ThriftMessages.messageType(request) == TMessageType.ONEWAY) {
                client.oneWay(service, request);
                return;
            }
            answer = client.callBlocking(service, request);
        } catch (OctoException e) {
            ByteBuffer body = e.body();
            if (body == null || body.remaining() == 0) {
                int type = e.isTimeout() ? TTransportException.TIMED_OUT
                        : e.status() == Status.CLOSED ? TTransportException.NOT_OPEN : TTransportException.UNKNOWN;
                throw new TTransportException(type, e.getMessage(), e);
            }
            // The server's own Thrift message: the generated client raises what it carries.
            answer = ByteBuffer.allocate(body.remaining());
            answer.put(body).flip();
        }
        int answerSeqidAt = ThriftMessages.seqidOffset(answer);
        if (answerSeqidAt >= 0) {
            answer.putInt(answer.position() + answerSeqidAt, seqid);
        }
        reset(answer);
    }
}
